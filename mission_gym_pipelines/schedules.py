"""The evaluation schedule: evaluate every run whose latest checkpoint is newer than its last evaluation.

"Newer" compares the step recorded on the latest checkpoint materialization with the step of the
latest evaluation materialization, read for all partitions in two bulk queries. Comparing steps rather
than event order keeps it right when an evaluation of an older checkpoint finishes after a newer
checkpoint was reported. (`build_schedule_from_partitioned_job` refuses dynamic partitions.)
"""

import dagster as dg

from mission_gym_pipelines.events import CHECKPOINT, EVALUATION_REPORT, STEP_KEY
from mission_gym_pipelines.partitions import run_partitions
from mission_gym_pipelines.reported import latest_metadata_value, runs_in_progress

evaluate_runs = dg.define_asset_job(
    "evaluate_runs",
    selection=dg.AssetSelection.assets(EVALUATION_REPORT),
    description="Evaluate a run's latest checkpoint on the fixed seeds (one run partition per Dagster run).",
)


@dg.schedule(
    job=evaluate_runs,
    cron_schedule="*/15 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: evaluate each checkpoint newer than its run's last evaluation report.",
)
def evaluate_new_checkpoints(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    instance = context.instance
    existing = set(instance.get_dynamic_partitions(run_partitions.name))  # deleted runs keep their events
    busy = runs_in_progress(instance)
    checkpoint_steps = latest_metadata_value(instance, CHECKPOINT, STEP_KEY)
    evaluated_steps = latest_metadata_value(instance, EVALUATION_REPORT, STEP_KEY)
    stale = sorted(
        run_name for run_name, step in checkpoint_steps.items()
        if run_name in existing and run_name not in busy and step is not None
        and (evaluated_steps.get(run_name) is None or step > evaluated_steps[run_name])
    )
    if not stale:
        return dg.SkipReason("Every checkpoint has an evaluation report at least as new.")
    # The run key names the checkpoint step: a checkpoint is never evaluated twice by this schedule.
    return [dg.RunRequest(partition_key=name, run_key=f"{name}@{checkpoint_steps[name]}") for name in stale]
