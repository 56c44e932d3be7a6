"""Sensors: keep Dagster in step with the runs folder, and enforce the retention policy.

`run_folder_sensor` makes runs trained or evaluated with the CLI appear in Dagster (partitions,
materializations reported from what is on disk, nothing re-run), and drops the partitions of folders
that were deleted outside Dagster. `retention_sensor` plans a cleanup with the same code as
`cleanup_runs.py` and launches the `cleanup_runs` job with that exact plan. `views_sensor` refreshes
the dashboard and the lineage view when a checkpoint or an evaluation is reported.
"""

import hashlib
from pathlib import Path
from typing import Any

import dagster as dg

from mission_gym.runs.lineage import scan_runs
from mission_gym.runs.record import RunRecord
from mission_gym.runs.reports import latest_evaluation
from mission_gym.runs.retention import RetentionPolicy, plan_retention
from mission_gym_pipelines.assets import dashboard, evaluation_report, lineage_view
from mission_gym_pipelines.cleanup import CleanupConfig, cleanup_runs, delete_planned_runs
from mission_gym_pipelines.events import (
    CHECKPOINT,
    CONFIG_SNAPSHOT,
    EVALUATED_CHECKPOINT_KEY,
    EVALUATION_REPORT,
    STEP_KEY,
    checkpoint_event,
    evaluation_event,
    first_sight_events,
    latest_model,
)
from mission_gym_pipelines.failures import readable_failure
from mission_gym_pipelines.partitions import run_partitions
from mission_gym_pipelines.reported import latest_metadata_value, latest_storage_ids, runs_in_progress
from mission_gym_pipelines.resources import RunsRoot

# Reporting hashes parent checkpoints; bound one tick's work so a first sync of a large runs folder
# finishes within the sensor timeout (the next tick carries on where this one stopped).
MAX_RUNS_REPORTED_PER_TICK = 100


def _run_updates(runs_root: Path, record: RunRecord, records: list[RunRecord], *, config_reported: bool,
                 reported_step: int | None, reported_evaluation: str | None) -> list[Any]:
    """The events that bring Dagster up to date with one run folder ([] when it already is)."""
    events = [] if config_reported else first_sight_events(runs_root, record, records)
    model = latest_model(runs_root, record)  # cheap: the full checkpoint event reads metrics and children
    checkpoint = checkpoint_event(runs_root, record, records) if model and model[1] != reported_step else None
    if checkpoint is not None:
        events.append(checkpoint)
    evaluation = latest_evaluation(runs_root / record.run_name)
    if evaluation is not None and evaluation.checkpoint != reported_evaluation:
        events.append(evaluation_event(runs_root, evaluation))
    return events


def _reported_steps(instance: dg.DagsterInstance) -> dict[str, int]:
    """Run -> the latest checkpoint step Dagster has, from materializations or observations (a stopped run's)."""
    steps: dict[str, int] = {}
    for event_type in (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_OBSERVATION):
        for run_name, step in latest_metadata_value(instance, CHECKPOINT, STEP_KEY, event_type).items():
            if step is not None:  # a back-link observation carries no step
                steps[run_name] = max(step, steps.get(run_name, step))
    return steps


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers run folders made outside Dagster (the CLI) as partitions and reports their "
    "checkpoints and evaluations as materializations, without re-running anything.",
)
def run_folder_sensor(context: dg.SensorEvaluationContext, runs: RunsRoot) -> dg.SensorResult | dg.SkipReason:
    if not runs.path.is_dir():
        # Also covers an unmounted shared volume: never read "no folders" as "every run was deleted".
        return dg.SkipReason(f"Runs folder {runs.path.resolve()} does not exist.")
    instance = context.instance
    folders = scan_runs(runs.path)
    records = sorted((f.record for f in folders if f.record), key=lambda r: (r.created_at, r.run_name))
    registered = set(instance.get_dynamic_partitions(run_partitions.name))
    busy = runs_in_progress(instance)
    configs_reported = set(latest_storage_ids(instance, CONFIG_SNAPSHOT))
    steps = _reported_steps(instance)
    evaluated = latest_metadata_value(instance, EVALUATION_REPORT, EVALUATED_CHECKPOINT_KEY)

    events: list[Any] = []
    reported_runs = 0
    for record in records:  # oldest first: a parent is reported before its children
        if record.run_name in busy or reported_runs >= MAX_RUNS_REPORTED_PER_TICK:
            continue
        updates = _run_updates(runs.path, record, records, config_reported=record.run_name in configs_reported,
                               reported_step=steps.get(record.run_name),
                               reported_evaluation=evaluated.get(record.run_name))
        reported_runs += bool(updates)
        events += updates
    new = [r.run_name for r in records if r.run_name not in registered]
    gone = sorted(registered - {f.name for f in folders} - busy)
    requests = ([run_partitions.build_add_request(new)] if new else []) + (
        [run_partitions.build_delete_request(gone)] if gone else [])
    if not (events or requests):
        return dg.SkipReason(f"Dagster is up to date with the {len(records)} runs in {runs.path}.")
    context.log.info(f"{len(new)} new runs, {len(gone)} deleted, {len(events)} events from {reported_runs} runs")
    return dg.SensorResult(dynamic_partitions_requests=requests, asset_events=events)


@dg.sensor(
    job=cleanup_runs,
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.STOPPED,  # it deletes: a person turns it on after reading the policy
    description="Enforces configs/retention.yaml: plans a cleanup (same code as cleanup_runs.py) and "
    "launches cleanup_runs with that exact plan.",
)
def retention_sensor(context: dg.SensorEvaluationContext, runs: RunsRoot) -> dg.RunRequest | dg.SkipReason:
    if not runs.path.is_dir():
        return dg.SkipReason(f"Runs folder {runs.path.resolve()} does not exist.")
    with readable_failure():
        policy = RetentionPolicy.from_yaml(runs.retention_policy)
        plan = plan_retention(runs.path, policy)
    if not plan.delete:
        return dg.SkipReason(f"Within the retention policy ({len(plan.keep)} runs kept).")
    names = sorted(item.run_name for item in plan.delete)
    return dg.RunRequest(
        # The same set of runs is planned on every tick until deleted: launch it once.
        run_key=hashlib.sha256("\n".join(names).encode()).hexdigest()[:16],
        run_config=dg.RunConfig(ops={delete_planned_runs.name: CleanupConfig(plan=plan.model_dump(mode="json"))}),
        tags={"mission_gym/cleanup": "retention"},
    )


# Dagster's implicit automation sensor starts stopped; this one runs by default, for the views only.
views_sensor = dg.AutomationConditionSensorDefinition(
    "views_sensor",
    target=[dashboard, lineage_view],
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Rebuilds the dashboard and the lineage view after new checkpoints or evaluations.",
)


# Evaluates a new checkpoint when it is reported (evaluation_report's eager condition), not at the next
# schedule tick; the "evaluation" pool bounds how many evaluations run at once.
evaluation_sensor = dg.AutomationConditionSensorDefinition(
    "evaluation_sensor",
    target=[evaluation_report],
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates each run's checkpoint once it is materialized: one evaluation per run at a time.",
)
