"""Training from Dagster: materializing a new partition of the `checkpoint` asset trains that run.

Assets -> checkpoint -> Materialize (v) -> Open launchpad -> Add new partition (the run's name) -> config
-> Materialize.
The partition key is the run folder's name, verbatim (no timestamp appended): the asset refuses a key
whose folder exists, so a run folder is only ever written by the process that created it, and children
branched from its files can trust them. Materializing an existing partition is refused with how to
continue the run instead (a new partition with `parent_checkpoint: <run>`), or re-records the run from
disk when asked (`rerecord: true`).

The `train_run` job stays for a launchpad without a partition to pick (names like the CLI's,
`<run_name>-<timestamp>`); it plans, registers the partition and then trains and reports through the
same functions as the asset (`plan_training`, `train_planned`, `report_new_run`).

Training declares the "gpu" pool (dagster_home/dagster.yaml lets one run hold it at a time) and asks
Kubernetes for one GPU (op tags for k8s_job_executor, job tags for the K8s run launcher).
"""

from functools import partial
from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from mission_gym.errors import MissionGymError
from mission_gym.runs.lineage import list_runs
from mission_gym.runs.naming import MAX_RUN_NAME_LEN, validate_name
from mission_gym.runs.record import RunRecord, load_record
from mission_gym.training import PPOHyperparameters, RunPlan, TrainSettings, plan_run, train
from mission_gym_pipelines.assets import GROUP, recorded_checkpoint
from mission_gym_pipelines.events import (
    CHECKPOINT,
    CONFIG_SNAPSHOT,
    checkpoint_metadata,
    first_sight_events,
    latest_model,
    run_link,
    status_line,
)
from mission_gym_pipelines.failures import not_retried, readable_failure
from mission_gym_pipelines.partitions import run_partitions
from mission_gym_pipelines.pools import GPU_K8S_TAGS, GPU_POOL
from mission_gym_pipelines.progress import DagsterProgress
from mission_gym_pipelines.reported import TRAINING_RUN_TAG
from mission_gym_pipelines.resources import RunsRoot

# Set by Dagster's run-retry daemon on each automatic retry (dagster.yaml run_retries): 1, 2, ...
RETRY_NUMBER_TAG = "dagster/retry_number"


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


class _TrainingFields(dg.Config):
    """The launchpad fields both ways of training share: TrainSettings' own defaults and descriptions."""

    timesteps: int = _setting("timesteps")
    n_envs: int = _setting("n_envs")
    seed: int | None = _setting("seed")
    notes: str = _setting("notes")
    parent_checkpoint: str | None = _setting("parent_checkpoint")
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

    def to_settings(self, runs: RunsRoot, **overrides: Any) -> TrainSettings:
        """The library's settings; only the PPO values given explicitly are passed (the rest inherit).

        `overrides` (run_name, branch_name, ...) replace this config's values; fields TrainSettings lacks stay here.
        """
        values = {k: v for k, v in self.model_dump().items() if k in TrainSettings.model_fields}
        hyperparameters = {name: getattr(self, name) for name in PPOHyperparameters.model_fields}
        return TrainSettings(
            **{**values, **overrides},
            hyperparameters={k: v for k, v in hyperparameters.items() if v is not None},
            config_dir=runs.config_dir,
            runs_root=runs.runs_root,
            progress_bar=False,  # no terminal here: the Dagster run's log lines show progress
        )


class TrainingConfig(_TrainingFields):
    """Train the run this partition names: fresh, or branched from / continuing a parent checkpoint or run.

    The partition key is the run folder's name, verbatim. To continue a run, add a new partition and give
    the run's name as parent_checkpoint: the new run's step counter continues the parent's.
    """

    rerecord: bool = Field(default=False, description="Only for a partition whose run folder exists: re-record "
                           "that run from disk (no training; the other fields are not used). Without it, "
                           "materializing an existing run is refused: it is never retrained or written into.")


class TrainRunConfig(_TrainingFields):
    """A new training run named like the CLI names it (`<run_name>-<timestamp>`): no partition to pick."""

    run_name: str | None = _setting("run_name")
    branch_name: str | None = _setting("branch_name")


def plan_training(settings: TrainSettings, run_name: str | None = None) -> RunPlan:
    """The library's plan, named `run_name` verbatim when given (a partition key); creates nothing.

    A bad request fails with the CLI's readable report. A name whose folder exists is refused, since a run
    folder is written only by the process that created it (children branched from its files).
    """
    if run_name is not None and (settings.runs_root / run_name).exists():
        raise dg.Failure(description=existing_run_message(settings.runs_root, run_name), allow_retries=False)
    with readable_failure():
        plan = plan_run(settings)
        if run_name is None:
            return plan
        validate_name(run_name, "partition key (the run's folder name)", max_len=MAX_RUN_NAME_LEN)
    return plan.model_copy(update={"run_name": run_name})


def existing_run_message(runs_root: Path, run_name: str) -> str:
    """Why an existing run is not trained again, and what to do instead."""
    return (f"Run {run_name} already exists in {runs_root}: materializing it never retrains it or writes into its "
            f"folder (children may have branched from its files). To continue it, add a new partition (e.g. "
            f"{run_name}-more) and materialize that with parent_checkpoint: {run_name}. To re-record this run "
            "from disk instead, launch again with rerecord: true.")


def train_planned(context: dg.OpExecutionContext, plan: RunPlan) -> RunRecord:
    """Train `plan` into runs/<plan.run_name>/ with progress in the Dagster run; the finished run's record.

    A run that ends without finishing (interrupted, failed, diverged) fails the Dagster step after
    reporting its state on the partition, so it never looks like a finished run; only an interrupted one
    stays eligible for a run retry.
    """
    context.log.info(f"Training {plan.run_name} on {plan.device}: {plan.settings.timesteps:,} timesteps"
                     + (f", branched from {plan.parent.path}" if plan.parent else ""))
    progress = DagsterProgress(context, plan.run_dir)
    with readable_failure():
        record = train(plan.settings, plan, extra_callbacks=[progress], on_created=partial(_is_planned, plan))
    if record.status != "finished":
        context.log_event(dg.AssetObservation(asset_key=CHECKPOINT, partition=record.run_name,
                                              metadata={"status": record.status, "step": record.timesteps.current},
                                              description=status_line(record)))
        # An interruption (preemption) is worth a run retry, which resumes the run; a run the library stopped
        # itself (failed, diverged) would stop the same way again.
        raise dg.Failure(description=status_line(record), allow_retries=record.status == "interrupted")
    return record


def _is_planned(plan: RunPlan, run_dir: Path) -> None:
    """train() makes `<name>-2` when another process took the name first; the partition key must be the folder."""
    if run_dir.name != plan.run_name:
        raise MissionGymError(f"run folder {plan.run_dir} was created by another process while this one started; "
                              f"nothing was trained under that name ({run_dir.name} is marked failed): materialize "
                              "a new partition instead")


def report_new_run(context: dg.OpExecutionContext, runs: RunsRoot, record: RunRecord, *,
                   with_check: bool) -> dict[str, Any] | None:
    """Log the new run's config snapshot and back-link (and parent check); its checkpoint metadata.

    The asset passes with_check=False: its parent check is a planned asset check that runs after it.
    """
    records = list_runs(runs.path)
    for event in first_sight_events(runs.path, record, records):
        if with_check or not isinstance(event, dg.AssetCheckEvaluation):
            context.log_event(event)
    return checkpoint_metadata(runs.path, record, records)


@dg.asset(
    key=CHECKPOINT,
    partitions_def=run_partitions,
    deps=[CONFIG_SNAPSHOT],
    group_name=GROUP,
    kinds={"pytorch"},
    pool=GPU_POOL,
    op_tags=GPU_K8S_TAGS,
    description="A run's trained checkpoint (runs/<run>/checkpoints/), with its lineage. Materializing a NEW "
    "partition trains that run (the partition key is the run's folder name; config: fresh, or parent_checkpoint "
    "to branch or continue). An existing run is never retrained: it is refused (rerecord: true re-records it).",
)
def checkpoint(context: dg.AssetExecutionContext, config: TrainingConfig, runs: RunsRoot) -> dg.MaterializeResult:
    with not_retried(context.op_execution_context):
        return _train_partition(context.op_execution_context, config, runs, context.partition_key)


def _train_partition(context: dg.OpExecutionContext, config: TrainingConfig, runs: RunsRoot,
                     run_name: str) -> dg.MaterializeResult:
    if config.rerecord:
        if not runs.run_dir(run_name).exists():
            raise dg.Failure(description=f"rerecord: true, but run {run_name} has no folder in {runs.path}; "
                             "launch without rerecord to train it.", allow_retries=False)
        return recorded_checkpoint(runs, run_name)
    # A retry after a resumed attempt carries that attempt's tag: resume the furthest run, not the partition's.
    stopped = _preempted_run(context, runs, context.run.tags.get(TRAINING_RUN_TAG, run_name))
    if stopped is not None:
        return dg.MaterializeResult(metadata=_resumed_metadata(runs, run_name, _resume(context, config, runs, stopped)))
    record = train_planned(context, plan_training(config.to_settings(runs, **_names(config, run_name)), run_name))
    metadata = report_new_run(context, runs, record, with_check=False)
    if metadata is None:
        raise dg.Failure(description=f"Run {run_name} finished without a checkpoint on disk.")
    return dg.MaterializeResult(metadata=metadata)


def _names(config: _TrainingFields, run_name: str) -> dict[str, str | None]:
    """The partition key names the folder; it is recorded as the branch name of a branch, as the CLI does."""
    if config.parent_checkpoint:
        return {"branch_name": run_name, "run_name": None}
    return {"run_name": run_name, "branch_name": None}


def _preempted_run(context: dg.OpExecutionContext, runs: RunsRoot, run_name: str | None) -> RunRecord | None:
    """The run `run_name`, when this Dagster run is an automatic retry and that run stopped unfinished.

    Unfinished: interrupted or failed, or still "running" without a heartbeat (its worker was killed).
    """
    if RETRY_NUMBER_TAG not in context.run.tags or run_name is None or not runs.run_dir(run_name).exists():
        return None
    with readable_failure():
        record = load_record(runs.run_dir(run_name))
    return None if record.status == "finished" or record.is_live() else record


def _resume(context: dg.OpExecutionContext, config: _TrainingFields, runs: RunsRoot,
            stopped: RunRecord) -> RunRecord | None:
    """Finish a preempted run's requested timesteps as a child branched from its latest checkpoint.

    The child is `<run>-retry<N>` (N: Dagster's retry number), a new folder and partition: the stopped run's
    folder is never written again. Without a checkpoint to resume from, the child trains the original request.
    Returns the child's record; None when the stopped run had no timestep left to train.
    """
    child = f"{stopped.run_name}-retry{context.run.tags[RETRY_NUMBER_TAG]}"
    model = latest_model(runs.path, stopped)
    if model is None:
        overrides: dict[str, Any] = _names(config, child)
    else:
        overrides = {"branch_name": child, "run_name": None, "parent_checkpoint": stopped.run_name,
                     "timesteps": stopped.timesteps.target - model[1]}
        if overrides["timesteps"] <= 0:  # stopped after its last step: nothing left to train
            return None
    context.log.info(f"Run {stopped.run_name} stopped ({stopped.status}) at step {stopped.timesteps.current:,}; "
                     f"resuming it as {child}")
    return _train_new_partition(context, runs, plan_training(config.to_settings(runs, **overrides), child))


def _resumed_metadata(runs: RunsRoot, run_name: str, child: RunRecord | None) -> dict[str, Any]:
    """The stopped run's own checkpoint metadata, plus the run that finished its timesteps."""
    record = load_record(runs.run_dir(run_name))
    metadata = checkpoint_metadata(runs.path, record, list_runs(runs.path)) or {"status": record.status}
    if child is None:
        return metadata
    return {**metadata, "resumed_by": run_link(child.run_name), "resumed_to_step": child.timesteps.current,
            "resumed": f"{run_name} stopped ({record.status}) at step {record.timesteps.current:,}; Dagster's retry "
                       f"resumed it as {child.run_name}, which finished at step {child.timesteps.current:,}."}


def _train_new_partition(context: dg.OpExecutionContext, runs: RunsRoot, plan: RunPlan) -> RunRecord:
    """Register the plan's run as a partition, train it, and report it (its checkpoint as a materialization)."""
    context.instance.add_run_tags(context.run_id, {TRAINING_RUN_TAG: plan.run_name})  # the sensor leaves it alone
    context.instance.add_dynamic_partitions(run_partitions.name, [plan.run_name])
    record = train_planned(context, plan)
    metadata = report_new_run(context, runs, record, with_check=True)
    if metadata is not None:
        context.log_event(dg.AssetMaterialization(asset_key=CHECKPOINT, partition=record.run_name, metadata=metadata,
                                                  description=status_line(record)))
    return record


@dg.op(
    pool=GPU_POOL,
    tags=GPU_K8S_TAGS,
    description="Plan, then train a new run (fresh or branched) into runs/<name>-<timestamp>/ and report it as "
    "a partition of checkpoint (the same training and reporting as materializing a new checkpoint partition).",
)
def train_new_run(context: dg.OpExecutionContext, config: TrainRunConfig, runs: RunsRoot) -> dg.Output[str]:
    with not_retried(context):
        # A retry carries the tags of the run it retries, the stopped run's name among them.
        stopped = _preempted_run(context, runs, context.run.tags.get(TRAINING_RUN_TAG))
        if stopped is not None:
            child = _resume(context, config, runs, stopped)
            context.log_event(dg.AssetMaterialization(asset_key=CHECKPOINT, partition=stopped.run_name,
                                                      metadata=_resumed_metadata(runs, stopped.run_name, child)))
            run_name = child.run_name if child else stopped.run_name
        else:
            run_name = _train_new_partition(context, runs, plan_training(config.to_settings(runs))).run_name
    record = load_record(runs.run_dir(run_name))
    return dg.Output(run_name, metadata={"run": run_link(run_name), "status": record.status, "device": record.device,
                                         "global_timesteps": record.timesteps.current})


@dg.job(tags=GPU_K8S_TAGS, description="Train a new run or a branch without picking a partition name: "
        "Launchpad -> edit the config -> Launch Run (the run is named <run_name>-<timestamp>, as by the CLI).")
def train_run() -> None:
    train_new_run()
