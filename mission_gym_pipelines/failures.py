"""Library errors shown in Dagster the way the CLI shows them: the readable message, no traceback."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from mission_gym.errors import MissionGymError


@contextmanager
def readable_failure() -> Iterator[None]:
    """Turn a MissionGymError (a report meant for the user) into a Dagster Failure carrying that report.

    Retrying would not help (an incompatible parent stays incompatible), so retries are off.
    """
    try:
        yield
    except MissionGymError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


# Read by Dagster's run-retry daemon from the failed run's tags (dagster.yaml run_retries).
RETRY_ON_FAILURE_TAG = "dagster/retry_on_asset_or_op_failure"


@contextmanager
def not_retried(context: dg.OpExecutionContext) -> Iterator[None]:
    """A failure that retrying cannot fix (`allow_retries=False`) also opts its Dagster run out of run retries.

    Run retries are for preemption (a lost worker, a SIGTERM); a refused or invalid request would fail the
    same way on every retry.
    """
    try:
        yield
    except dg.Failure as failure:
        if not failure.allow_retries:
            context.instance.add_run_tags(context.run_id, {RETRY_ON_FAILURE_TAG: "false"})
        raise
