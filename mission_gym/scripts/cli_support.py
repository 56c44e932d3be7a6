"""What every Mission Gym command shares: user errors print one clear line, never a traceback."""

import sys
from collections.abc import Callable

from mission_gym.errors import MissionGymError

USER_ERROR_EXIT = 2


def run_command(command: Callable[[], int]) -> int:
    """Run a command body; a MissionGymError or OS error becomes `error: ...` on stderr and exit status 2."""
    try:
        return command()
    except (MissionGymError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USER_ERROR_EXIT
