"""The assets that read run folders: per run (partitioned by run name) its config snapshot, the parent
check and the evaluation report; over all runs the dashboard and the lineage view.

The `checkpoint` asset, which trains, lives in training.py: it imports torch, SB3 and the simulation,
which the sensors importing this module for the views must not pay for on every tick. The run folder is
the source of truth; runs made with the CLI are reported by `run_folder_sensor`. Materializing
`config_snapshot` of an existing run re-records it from disk.
"""


from pathlib import Path

import dagster as dg
from pydantic import Field

from mission_gym.dashboard import generate_unified_dashboard
from mission_gym.runs.checkpoints import run_model
from mission_gym.runs.lineage import list_runs
from mission_gym.runs.record import RunRecord, load_record
from mission_gym.runs.reports import EvaluationFile
from mission_gym_pipelines.events import (
    CHECKPOINT,
    CONFIG_SNAPSHOT,
    EVALUATION_REPORT,
    PARENT_CHECK,
    checkpoint_metadata,
    config_snapshot_metadata,
    evaluation_metadata,
    parent_checkpoint_check,
)
from mission_gym_pipelines.failures import readable_failure
from mission_gym_pipelines.lineage import lineage_json, lineage_markdown
from mission_gym_pipelines.partitions import run_partitions
from mission_gym_pipelines.pools import EVALUATION_POOL
from mission_gym_pipelines.resources import RunsRoot

GROUP = "mission_gym"
# Refresh the views whenever a run's checkpoint or evaluation is reported. Unlike plain eager(), do not
# wait for every partition upstream to exist: most runs are never evaluated, some never save a model.
VIEW_AUTOMATION = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())


def _record(runs: RunsRoot, run_name: str) -> RunRecord:
    with readable_failure():
        return load_record(runs.run_dir(run_name))


@dg.asset(
    key=CONFIG_SNAPSHOT,
    partitions_def=run_partitions,
    group_name=GROUP,
    kinds={"yaml"},
    description="The configs/ snapshot a run trained on (runs/<run>/configs/): hash, per-file checksums, "
    "what changed versus the parent run.",
)
def config_snapshot(context: dg.AssetExecutionContext, runs: RunsRoot) -> dg.MaterializeResult:
    record = _record(runs, context.partition_key)
    parent = next((r for r in list_runs(runs.path) if r.run_name == record.parent_run), None)  # None once deleted
    return dg.MaterializeResult(metadata=config_snapshot_metadata(record, parent))


def recorded_checkpoint(runs: RunsRoot, run_name: str) -> dg.MaterializeResult:
    """The checkpoint materialization of an existing run, re-recorded from its folder (nothing is written)."""
    record = _record(runs, run_name)
    metadata = checkpoint_metadata(runs.path, record, list_runs(runs.path))
    if metadata is None:
        raise dg.Failure(description=f"Run {record.run_name} has saved no checkpoint yet (status {record.status}).",
                         allow_retries=False)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(
    asset=CHECKPOINT,
    name=PARENT_CHECK,
    partitions_def=run_partitions,
    description="The checkpoint this run branched from still exists with the SHA-256 recorded at branching.",
)
def parent_checkpoint_intact(context: dg.AssetCheckExecutionContext, runs: RunsRoot) -> dg.AssetCheckResult:
    evaluation = parent_checkpoint_check(runs.path, _record(runs, context.partition_key))
    return dg.AssetCheckResult(passed=evaluation.passed, description=evaluation.description,
                               metadata=evaluation.metadata)


# Evaluate a run's new checkpoint as soon as it is reported, without waiting for the schedule's tick; never
# while its checkpoint is being trained or while this run is already being evaluated (eager() waits for
# both), and never for a run that has no checkpoint yet (unlike the views, a missing dependency matters).
# The "evaluation" pool (pools.py) bounds how many evaluations of all runs run at once.
EVALUATION_AUTOMATION = dg.AutomationCondition.eager()


class EvaluationConfig(dg.Config):
    """How to evaluate (the seeds come from the run's config snapshot, eval_seeds.txt)."""

    episodes: int | None = Field(default=None, description="Evaluate on the first N seeds only (empty: all seeds).")
    deterministic: bool = Field(default=True, description="Greedy actions (false: sample from the policy).")


@dg.asset(
    key=EVALUATION_REPORT,
    partitions_def=run_partitions,
    deps=[CHECKPOINT],
    group_name=GROUP,
    kinds={"json", "markdown"},
    pool=EVALUATION_POOL,
    automation_condition=EVALUATION_AUTOMATION,
    description="Evaluation of a run's latest checkpoint on the fixed seeds, paired with the scripted "
    "baseline and the parent checkpoint (runs/<run>/evaluations/<checkpoint>.json and .md).",
)
def evaluation_report(context: dg.AssetExecutionContext, config: EvaluationConfig,
                      runs: RunsRoot) -> dg.MaterializeResult:
    # Imported here: evaluating loads torch, SB3 and the compiled simulation, which the sensors importing
    # this module for the views' asset definitions must not pay for on every tick.
    from mission_gym.evaluation import evaluate_model

    run_dir = runs.run_dir(context.partition_key)
    model = run_model(run_dir)
    if model is None:
        raise dg.Failure(description=f"Run {context.partition_key} has no checkpoint to evaluate.",
                         allow_retries=False)
    with readable_failure():
        report = evaluate_model(model, episodes=config.episodes, deterministic=config.deterministic,
                                runs_root=runs.path)
    written = EvaluationFile(Path(report["files"][0]), context.partition_key, report)
    return dg.MaterializeResult(metadata=evaluation_metadata(runs.path, written))


@dg.asset(
    deps=[CHECKPOINT, EVALUATION_REPORT],
    group_name=GROUP,
    kinds={"html"},
    automation_condition=VIEW_AUTOMATION,
    description="runs/dashboard.html: every run, its learning curves, evaluations and the lineage forest "
    "(self-contained, works from file://).",
)
def dashboard(runs: RunsRoot) -> dg.MaterializeResult:
    path = generate_unified_dashboard(runs.path)
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path.resolve())),
                                          "open": dg.MetadataValue.url(path.resolve().as_uri())})


@dg.asset(
    deps=[CHECKPOINT, EVALUATION_REPORT],
    group_name=GROUP,
    kinds={"markdown", "json"},
    automation_condition=VIEW_AUTOMATION,
    description="The lineage forest of all runs: parents, branch points with steps, capture rate per run; "
    "each run links to its checkpoint partition.",
)
def lineage_view(runs: RunsRoot) -> dg.MaterializeResult:
    view = lineage_json(runs.path, list_runs(runs.path))
    return dg.MaterializeResult(metadata={"lineage": dg.MetadataValue.md(lineage_markdown(view)),
                                          "edges": dg.MetadataValue.json(view), "runs": len(view["runs"])})
