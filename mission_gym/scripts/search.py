"""`mission-gym search --parent RUN --population K --rounds R --round-timesteps N --space FILE`: population-based
training whose every exploit and explore is a real branch, decided by a sequential paired test."""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from mission_gym.errors import MissionGymError
from mission_gym.scripts.cli_support import run_command
from mission_gym.search import SearchSettings, run_search, search_dir

FLAGS = {name: "--" + name.replace("_", "-") for name in SearchSettings.model_fields}


def build_parser() -> argparse.ArgumentParser:
    """The command line; every flag's default and help come from SearchSettings."""
    parser = argparse.ArgumentParser(prog="mission-gym search", description=__doc__.split("\n")[0])
    for name, field in SearchSettings.model_fields.items():
        kind = Path if field.annotation in (Path, Path | None) else (int if field.annotation is int else str)
        default = None if field.is_required() else field.default
        parser.add_argument(FLAGS[name], type=kind, required=field.is_required(), default=default,
                            help=f"{field.description}" + ("" if default is None else " (default: %(default)s)"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run or resume a search; print where its summary is."""
    args = build_parser().parse_args(argv)

    def command() -> int:
        try:
            settings = SearchSettings(**vars(args))
        except ValidationError as error:
            first = error.errors()[0]
            name = str(first["loc"][0])
            raise MissionGymError(f"{FLAGS.get(name, name)} {first.get('input')!r}: {first['msg']}") from None
        record = run_search(settings)
        folder = search_dir(settings.runs_root, record.name)
        print(f"Search {record.name} finished; winner {record.winner}")
        print(f"Summary: {folder / 'summary.md'}")
        return 0

    return run_command(command)


if __name__ == "__main__":
    sys.exit(main())
