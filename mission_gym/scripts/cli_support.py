"""What every Mission Gym command shares: one error wrapper, so a user error is one `error: ...` line on
stderr and exit status 2, never a traceback; and argument types that refuse what no command can use.

    parser = CommandParser(prog="evaluate", ...)
    parser.add_argument("--learning-rate", type=finite_float)
    return run_cli(parser, argv, lambda args: ...)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from mission_gym.errors import MissionGymError, UsageError

USER_ERROR_EXIT = 2


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors (unknown flag, bad value, missing argument) become a UsageError, which
    `run_cli` prints as one line, instead of the usage block and an exit from inside parsing."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def run_cli(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
            command: Callable[[argparse.Namespace], int]) -> int:
    """Parse `argv` and run `command`; a MissionGymError or OS error becomes `error: ...` and exit status 2.

    --help still prints and exits 0 through argparse's SystemExit.
    """
    try:
        return command(parser.parse_args(argv))
    except MissionGymError as error:
        print(f"error: {error}", file=sys.stderr)
    except OSError as error:
        print(f"error: {describe_os_error(error)}", file=sys.stderr)
    return USER_ERROR_EXIT


def describe_os_error(error: OSError) -> str:
    """`PATH: No such file or directory` rather than `[Errno 2] No such file or directory: 'PATH'`."""
    if error.filename is None:
        return error.strerror or str(error)
    return f"{os.fsdecode(error.filename)}: {error.strerror or error}"


def finite_float(text: str) -> float:
    """argparse type: a float that is a real number (`inf`, `nan` and overflowing spellings are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; give a real number such as 0.001")
    return value


def runs_folder(flag: str, path: str | os.PathLike[str], *, must_exist: bool) -> Path:
    """Check a runs-folder option: it must be a folder (or, unless `must_exist`, not exist yet)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise MissionGymError(f"{flag} {path}: is a file, not a folder; pass the folder that holds the run folders")
    if must_exist and not folder.is_dir():
        raise MissionGymError(f"{flag} {path}: no such folder; pass the runs folder that training wrote "
                              "(default: runs), or train a run first")
    return folder


def positive_int(text: str) -> int:
    """argparse type: a whole number above zero (timesteps, counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above zero")
    return value
