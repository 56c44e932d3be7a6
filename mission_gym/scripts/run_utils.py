"""Run utilities for Python sessions and the shell.

from mission_gym.scripts.run_utils import generate_unified_dashboard
generate_unified_dashboard(lineage_filter="active")                  # runs/dashboard.html

mission-gym dashboard [--lineage active|RUN] [--runs-dir runs] [--output FILE]
python -m mission_gym.scripts.run_utils [same options]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mission_gym.dashboard import ACTIVE, generate_unified_dashboard
from mission_gym.errors import MissionGymError
from mission_gym.scripts.cli_support import CommandParser, run_cli, runs_folder

__all__ = ["generate_unified_dashboard", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="mission-gym dashboard",
        description="Write the unified dashboard of the runs folder (open it in a browser; it reloads itself "
        "every 5 s and training rewrites it).",
    )
    parser.add_argument(
        "--lineage",
        metavar="RUN",
        help=f"show only RUN's lineage tree ('{ACTIVE}': the most recently active run's); default: every run",
    )
    parser.add_argument("--runs-dir", default="runs", help="the runs folder (default: %(default)s)")
    parser.add_argument("--output", help="where to write the page (default: <runs-dir>/dashboard.html)")
    return parser


def _dashboard(args: argparse.Namespace) -> int:
    runs_root = runs_folder("--runs-dir", args.runs_dir, must_exist=True)
    if args.output is not None and Path(args.output).is_dir():
        raise MissionGymError(f"--output {args.output}: is a folder; give the page's file name, "
                              f"e.g. {Path(args.output) / 'dashboard.html'}")
    path = generate_unified_dashboard(runs_root, lineage_filter=args.lineage, output=args.output)
    print(f"Dashboard written: {path.resolve().as_uri()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 on an error, printed without a traceback)."""
    return run_cli(build_parser(), argv, _dashboard)


if __name__ == "__main__":
    sys.exit(main())
