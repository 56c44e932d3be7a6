"""Branch search: population-based training whose every exploit and explore is a real branch.

    mission-gym search --parent RUN --population K --rounds R --round-timesteps N --space FILE

Losers are decided by a sequential paired test against the round's best; see mission_gym/search.py.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from mission_gym.errors import MissionGymError
from mission_gym.runs.layout import SEARCH_SUMMARY_FILE
from mission_gym.scripts.cli_support import CommandParser, run_cli
from mission_gym.search import SearchSettings, run_search, search_dir

# The runs folder is --runs-dir, as in every other command.
FLAGS = {name: "--" + name.replace("_", "-") for name in SearchSettings.model_fields} | {"runs_root": "--runs-dir"}


def build_parser() -> argparse.ArgumentParser:
    """The command line; every flag's default and help come from SearchSettings."""
    parser = CommandParser(prog="mission-gym search", description=__doc__.split("\n")[0])
    for name, field in SearchSettings.model_fields.items():
        kind = Path if field.annotation in (Path, Path | None) else (int if field.annotation is int else str)
        default = None if field.is_required() else field.default
        said = "(required, no default)" if field.is_required() else "" if default is None else "(default: %(default)s)"
        parser.add_argument(FLAGS[name], dest=name, type=kind, required=field.is_required(), default=default,
                            help=f"{field.description} {said}".rstrip())
    return parser


def _search(args: argparse.Namespace) -> int:
    try:
        settings = SearchSettings(**vars(args))
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0])
        raise MissionGymError(f"{FLAGS.get(name, name)} {first.get('input')!r}: {first['msg']}") from None
    record = run_search(settings)
    folder = search_dir(settings.runs_root, record.name)
    print(f"Search {record.name} finished; winner {record.winner}")
    print(f"Summary: {folder / SEARCH_SUMMARY_FILE}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run or resume a search; print where its summary is."""
    return run_cli(build_parser(), argv, _search)


if __name__ == "__main__":
    sys.exit(main())
