"""The cleanup job: deletes exactly the run folders of a plan made by mission_gym.runs.retention.

The retention sensor puts the plan into the run config, so what a cleanup run deleted can always be
compared with what it was asked to delete. `apply_cleanup` re-checks every folder right before deleting
it (a run that became live, or that a new branch depends on, is skipped), and the job also spares the
lineage that is active when it runs, so an old plan cannot delete the active lineage, a running run or
a checkpoint a child branched from.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from mission_gym.runs.lineage import active_run, lineage_members, list_runs
from mission_gym.runs.retention import CleanupPlan, apply_cleanup
from mission_gym_pipelines.failures import readable_failure
from mission_gym_pipelines.partitions import run_partitions
from mission_gym_pipelines.resources import RunsRoot


class CleanupConfig(dg.Config):
    """What to delete: a `CleanupPlan` as a mapping (the retention sensor writes it; you may paste one too)."""

    plan: dict[str, Any] = Field(
        description="A mission_gym.runs.retention.CleanupPlan (mode, runs_root, delete: [{run_name, path, "
        "size_bytes, reason}], keep, ...), e.g. from `plan_retention` or `plan_cleanup`."
    )


@dg.op(description="Delete the plan's run folders that are still safe to delete, and their partitions.")
def delete_planned_runs(context: dg.OpExecutionContext, config: CleanupConfig, runs: RunsRoot) -> dg.Output[list[str]]:
    plan = CleanupPlan.model_validate(config.plan)
    if plan.runs_root.resolve() != runs.path.resolve():
        raise dg.Failure(description=f"The plan is for runs folder {plan.runs_root}, but this deployment's runs "
                         f"folder is {runs.path.resolve()}; refusing to delete anything.", allow_retries=False)
    with readable_failure():
        deleted = apply_cleanup(_sparing_the_active_lineage(plan))
    for run_name in deleted:
        context.instance.delete_dynamic_partition(run_partitions.name, run_name)
    by_name = {item.run_name: item for item in plan.delete}
    skipped = [name for name in by_name if name not in deleted]
    rows = [f"| {name} | {by_name[name].size_bytes / 1e6:.1f} MB | {by_name[name].reason} |" for name in deleted]
    return dg.Output(
        deleted,
        metadata={
            "deleted_runs": dg.MetadataValue.json(deleted),
            "deleted": dg.MetadataValue.md("\n".join(["| run | size | reason |", "|---|---|---|", *rows])),
            "freed_bytes": sum(by_name[name].size_bytes for name in deleted),
            "skipped_runs": dg.MetadataValue.json(skipped),
            "plan_mode": plan.mode,
            "kept_runs": len(plan.keep),
        },
    )


def _sparing_the_active_lineage(plan: CleanupPlan) -> CleanupPlan:
    """The plan without today's active lineage, when the plan was made to keep the active lineage.

    `apply_cleanup` re-checks live runs and runs a kept run branched from; the active run itself may have
    changed since planning (a new branch started), and its siblings must survive too.
    """
    if plan.mode not in ("keep-active-lineage", "retention") or plan.anchor is None:
        return plan
    records = list_runs(plan.runs_root)
    active = active_run(records)
    keep = lineage_members(records, active.run_name) if active else set()
    return plan.model_copy(update={"delete": [item for item in plan.delete if item.run_name not in keep]})


@dg.job(description="Delete the run folders of a cleanup plan (launched by retention_sensor).")
def cleanup_runs() -> None:
    delete_planned_runs()
