"""Beyond one machine: dagster-k8s builds the Kubernetes Job that trains, from this code location's tags, with
the GPU limit and the shared runs volume. The spec is built and checked; no cluster is needed.

The training step's pod (k8s_job_executor) is sized from the checkpoint asset's op tags; the run pod of
`train_run` (K8sRunLauncher) from the job's tags. The runs volume and the image come from the deployment's
config, here the values of docs/dagster.md's Helm example.
"""

from typing import Any

import pytest

from mission_gym_pipelines.training import checkpoint, train_run

k8s_job = pytest.importorskip("dagster_k8s.job",
                              reason="dagster-k8s is not installed (pip install dagster-k8s==0.29.27)")

RUNS_MOUNT = "/data/runs"
# docs/dagster.md, Helm values: the run launcher's (and executor's) volumes, mounts and environment.
DEPLOYMENT = k8s_job.DagsterK8sJobConfig(
    job_image="registry.example/mission-gym:1.0",
    dagster_home="/opt/dagster/dagster_home",
    env_vars=[f"MISSION_GYM_RUNS_ROOT={RUNS_MOUNT}", "MISSION_GYM_CONFIG_DIR=/app/configs"],
    volumes=[{"name": "runs", "persistentVolumeClaim": {"claimName": "mission-gym-runs"}}],
    volume_mounts=[{"name": "runs", "mountPath": RUNS_MOUNT}],
)


def _training_job(tags: dict[str, str], name: str) -> dict[str, Any]:
    user_config = k8s_job.get_user_defined_k8s_config(tags)
    job = k8s_job.construct_dagster_k8s_job(DEPLOYMENT, args=["dagster", "api", "execute_step"], job_name=name,
                                            user_defined_k8s_config=user_config, component="step_worker")
    return job.to_dict()


@pytest.mark.parametrize("source", ["checkpoint asset (k8s_job_executor)", "train_run job (K8sRunLauncher)"])
def test_the_training_pod_asks_for_a_gpu_and_mounts_the_runs_volume(source):
    tags = dict(checkpoint.op.tags) if source.startswith("checkpoint") else dict(train_run.tags)
    spec = _training_job(tags, "dagster-step-checkpoint")
    pod = spec["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert container["image"] == "registry.example/mission-gym:1.0"
    [mount] = [m for m in container["volume_mounts"] if m["name"] == "runs"]
    assert mount["mount_path"] == RUNS_MOUNT
    [runs_volume] = [v for v in pod["volumes"] if v["name"] == "runs"]
    assert runs_volume["persistent_volume_claim"]["claim_name"] == "mission-gym-runs"
    env = {e["name"]: e["value"] for e in container["env"] if e.get("value") is not None}
    assert env["MISSION_GYM_RUNS_ROOT"] == RUNS_MOUNT


def test_steps_without_the_gpu_tags_get_no_gpu():
    spec = _training_job({}, "dagster-step-evaluation-report")
    [container] = spec["spec"]["template"]["spec"]["containers"]
    assert not (container.get("resources") or {}).get("limits")
