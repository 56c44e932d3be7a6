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
