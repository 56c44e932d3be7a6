"""What Dagster adds on top of training: `python benchmarks/dagster_overhead.py`.

1. Seconds from launching a training run in the UI (GraphQL `launchRun` on `dagster dev` with
   dagster_home/dagster.yaml: run queue, "gpu" pool, a fresh run-worker process) to its first training
   step, taken as the first metrics.jsonl line of a run whose first rollout is 8 decisions x 4 arenas
   (so it is an upper bound). Target <= 10 s.
2. Listing 1,000 run partitions: the instance API, the UI's GraphQL query (keys and materialization
   status), and one tick of the evaluation schedule (bulk reads of the latest step per partition).
   Target <= 2 s each.

Runs in a temporary DAGSTER_HOME and runs folder; prints the numbers.
"""

import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the `dagster dev` harness the UI test uses

from dagster_server import DagsterServer, running_dagster  # noqa: E402

from mission_gym.runs.record import load_record  # noqa: E402
from mission_gym_pipelines.events import CHECKPOINT  # noqa: E402
from mission_gym_pipelines.partitions import run_partitions  # noqa: E402
from mission_gym_pipelines.reported import TRAINING_RUN_TAG  # noqa: E402
from mission_gym_pipelines.schedules import evaluate_new_checkpoints  # noqa: E402
from mission_gym_pipelines.pools import ensure_pools  # noqa: E402

LAUNCHES = 3
PARTITIONS = 1_000
FIRST_STEP_TARGET_S, LISTING_TARGET_S = 10.0, 2.0
TRAINING = {"timesteps": 64, "n_envs": 4, "n_steps": 8, "batch_size": 32, "n_epochs": 1, "net_arch": [32, 32],
            "checkpoint_freq": 64, "tensorboard": False}
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status startTime tags { key value } } } }"""
PARTITION_STATUS = """{ assetNodeOrError(assetKey: {path: ["checkpoint"]}) { ... on AssetNode {
  partitionKeysByDimension { partitionKeys }
  assetPartitionStatuses { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } } } }"""


def seconds_to_first_step(server: DagsterServer, runs_root: Path) -> dict[str, float]:
    """Launch one training run from the UI's API; seconds from the launch to: the run worker starting,
    the run folder being created (planned), the first metrics line being written (first rollout done)."""
    params = {"selector": {"repositoryLocationName": "mission_gym", "repositoryName": "__repository__",
                           "jobName": "train_run"},
              "runConfigData": {"ops": {"train_new_run": {"config": TRAINING}}}}
    launched_at = time.time()
    result = server.graphql(LAUNCH, {"params": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    run_id = result["run"]["runId"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = server.graphql(RUN, {"id": run_id})["runOrError"]
        if run["status"] in ("FAILURE", "CANCELED"):
            raise RuntimeError(f"training run {run_id} ended {run['status']}:\n{server.log_tail()}")
        if run["status"] == "SUCCESS":
            run_dir = runs_root / {tag["key"]: tag["value"] for tag in run["tags"]}[TRAINING_RUN_TAG]
            first_row = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
            return {"worker started": run["startTime"] - launched_at,
                    "run folder created": load_record(run_dir).created_at.timestamp() - launched_at,
                    "first step": dt.datetime.fromisoformat(first_row["time"]).timestamp() - launched_at}
        time.sleep(0.2)
    raise TimeoutError(f"training run {run_id} unfinished after 120 s")


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def listing_seconds(server: DagsterServer, runs_root: Path) -> dict[str, float]:
    """Register PARTITIONS runs with a checkpoint each, then time the three ways of listing them."""
    with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
        names = [f"bench-{i:04d}-20260101-000000" for i in range(PARTITIONS)]
        for name in names:  # a folder per partition, or run_folder_sensor drops them as deleted runs
            (runs_root / name).mkdir()
        instance.add_dynamic_partitions(run_partitions.name, names)
        for step, name in enumerate(names):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=CHECKPOINT, partition=name, metadata={"step": step}))
        keys: list[str] = []
        results = {
            "instance.get_dynamic_partitions": timed(lambda: keys.extend(instance.get_dynamic_partitions("runs"))),
            "UI GraphQL keys + statuses": timed(lambda: server.graphql(PARTITION_STATUS)),
            "evaluation schedule tick": timed(lambda: evaluate_new_checkpoints(
                dg.build_schedule_context(instance=instance))),
        }
        assert len(keys) >= PARTITIONS
        return results


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mission-gym-bench-") as tmp:
        runs_root = Path(tmp) / "runs"
        env = {"MISSION_GYM_RUNS_ROOT": str(runs_root), "MISSION_GYM_CONFIG_DIR": str(REPO_ROOT / "configs")}
        print(f"Starting dagster dev (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)...", flush=True)
        with running_dagster(REPO_ROOT / "dagster_home" / "dagster.yaml", env, prepare=ensure_pools) as server:
            launches = [seconds_to_first_step(server, runs_root) for _ in range(LAUNCHES)]
            for milestone in launches[0]:
                print(f"Launch -> {milestone}: " + ", ".join(f"{launch[milestone]:.1f}" for launch in launches) + " s")
            median = statistics.median(launch["first step"] for launch in launches)
            print(f"Launch -> first training step, median of {LAUNCHES}: {median:.1f} s "
                  f"(target <= {FIRST_STEP_TARGET_S:.0f} s)")
            for what, seconds in listing_seconds(server, runs_root).items():
                print(f"Listing {PARTITIONS:,} run partitions, {what}: {seconds:.2f} s "
                      f"(target <= {LISTING_TARGET_S:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
