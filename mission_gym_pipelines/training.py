"""Training from Dagster: the `train_run` job, launched from the UI's launchpad with a typed config.

One op does what `python -m mission_gym.scripts.train_ppo` does, in an order that keeps Dagster and
the runs folder in agreement:

1. `plan_run` checks the request (config, names, parent checkpoint and its hash, space compatibility)
   and creates nothing; a problem fails the Dagster run with the CLI's readable report, leaving no
   folder and no partition behind.
2. The Dagster run is tagged with the new run's name (so the run-folder sensor leaves it alone), and
   the run name is registered as a partition.
3. `train` creates `runs/<name>/` and trains. A new run is always a new folder: branching from a run,
   or continuing one, never writes into the parent's folder.
4. The config snapshot and checkpoint materializations of the new partition, its parent check and the
   back-link on the parent are reported.

Training declares the "gpu" pool (dagster_home/dagster.yaml lets one run hold it at a time) and asks
Kubernetes for one GPU, both through the op; the job tags carry the same request for the K8s run launcher.
"""

from typing import Any, Literal

import dagster as dg
from pydantic import Field

from mission_gym.runs.lineage import list_runs
from mission_gym.training import PPOHyperparameters, TrainSettings, plan_run, train
from mission_gym_pipelines.events import checkpoint_event, first_sight_events, run_link
from mission_gym_pipelines.failures import readable_failure
from mission_gym_pipelines.partitions import run_partitions
from mission_gym_pipelines.reported import TRAINING_RUN_TAG
from mission_gym_pipelines.resources import RunsRoot

GPU_POOL = "gpu"
# Read by the K8s run launcher from run tags and by k8s_job_executor from op tags (dagster issue #20429).
GPU_K8S_TAGS = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}


def ensure_gpu_pool(instance: dg.DagsterInstance) -> None:
    """Create the "gpu" pool's limit (dagster.yaml's default_limit) now if the instance has none yet.

    Dagster creates it lazily, in the queue pass that first sees a run using the pool, and that pass
    does not enforce it yet (dagster 1.13.27): on a fresh instance the first two training runs would
    start together. The demo calls this; `dagster instance concurrency set gpu 1` does the same.
    """
    if GPU_POOL not in instance.event_log_storage.get_concurrency_keys():
        instance.event_log_storage.initialize_concurrency_limit_to_default(GPU_POOL)


def _setting(name: str) -> Any:
    """A launchpad field with TrainSettings' own default and description (one source for both)."""
    field = TrainSettings.model_fields[name]
    return Field(default=field.default, description=field.description)


def _ppo(name: str) -> Any:
    """An optional PPO field: empty means the default for a fresh run, the parent's value for a branch."""
    field = PPOHyperparameters.model_fields[name]
    default = PPOHyperparameters().model_dump()[name]
    return Field(default=None, description=f"{field.description} (empty: {default} for a new run, the "
                                           "parent's value for a branch)")


class TrainingConfig(dg.Config):
    """A new training run: fresh, or branched from a parent checkpoint or run (its latest checkpoint).

    To continue a run, give its name as parent_checkpoint: the continuation is a new run (a new
    partition) whose step counter continues the parent's.
    """

    timesteps: int = _setting("timesteps")
    n_envs: int = _setting("n_envs")
    seed: int | None = _setting("seed")
    run_name: str | None = _setting("run_name")
    notes: str = _setting("notes")
    parent_checkpoint: str | None = _setting("parent_checkpoint")
    branch_name: str | None = _setting("branch_name")
    checkpoint_freq: int = _setting("checkpoint_freq")
    keep_checkpoints: int | None = _setting("keep_checkpoints")
    eval_freq: int | None = _setting("eval_freq")
    device: Literal["auto", "cpu", "cuda"] = _setting("device")
    torch_threads: int | None = _setting("torch_threads")
    tensorboard: bool = _setting("tensorboard")
    imitation_samples: int = _setting("imitation_samples")
    learning_rate: float | None = _ppo("learning_rate")
    n_steps: int | None = _ppo("n_steps")
    batch_size: int | None = _ppo("batch_size")
    n_epochs: int | None = _ppo("n_epochs")
    gamma: float | None = _ppo("gamma")
    gae_lambda: float | None = _ppo("gae_lambda")
    clip_range: float | None = _ppo("clip_range")
    ent_coef: float | None = _ppo("ent_coef")
    vf_coef: float | None = _ppo("vf_coef")
    max_grad_norm: float | None = _ppo("max_grad_norm")
    net_arch: list[int] | None = _ppo("net_arch")
    policy: str | None = _ppo("policy")  # mlp or entity; PPOHyperparameters refuses anything else
    reward_scale: float | None = _ppo("reward_scale")

    def to_settings(self, runs: RunsRoot) -> TrainSettings:
        """The library's settings; only the PPO values given explicitly are passed (the rest inherit)."""
        values = self.model_dump()
        hyperparameters = {name: values.pop(name) for name in PPOHyperparameters.model_fields}
        return TrainSettings(
            **values,
            hyperparameters={k: v for k, v in hyperparameters.items() if v is not None},
            config_dir=runs.config_dir,
            runs_root=runs.runs_root,
            progress_bar=False,  # no terminal here: the run's logs, the dashboard and TensorBoard show progress
        )


@dg.op(
    pool=GPU_POOL,
    tags=GPU_K8S_TAGS,
    description="Plan, then train a new run (fresh or branched) into runs/<name>/ and report it as a partition.",
)
def train_new_run(context: dg.OpExecutionContext, config: TrainingConfig, runs: RunsRoot) -> dg.Output[str]:
    settings = config.to_settings(runs)
    with readable_failure():
        plan = plan_run(settings)
    context.log.info(f"Training {plan.run_name} on {plan.device}"
                     + (f", branched from {plan.parent.path}" if plan.parent else ""))
    context.instance.add_run_tags(context.run_id, {TRAINING_RUN_TAG: plan.run_name})
    context.instance.add_dynamic_partitions(run_partitions.name, [plan.run_name])
    with readable_failure():
        record = train(settings, plan)
    if record.run_name != plan.run_name:  # the name was taken in the same second: train added a suffix
        context.instance.add_dynamic_partitions(run_partitions.name, [record.run_name])
        context.instance.delete_dynamic_partition(run_partitions.name, plan.run_name)
    records = list_runs(runs.path)
    checkpoint = checkpoint_event(runs.path, record, records)
    for event in [*first_sight_events(runs.path, record, records), *([checkpoint] if checkpoint else [])]:
        context.log_event(event)
    return dg.Output(record.run_name, metadata={"run": run_link(record.run_name), "status": record.status,
                                                "device": record.device,
                                                "global_timesteps": record.timesteps.current})


@dg.job(tags=GPU_K8S_TAGS, description="Train a new run or a branch: Launchpad -> edit the config -> Launch Run.")
def train_run() -> None:
    train_new_run()
