"""`mission-gym COMMAND ...`: one console entry point for every workflow step."""

import sys
from collections.abc import Sequence

COMMANDS = {
    "train": "mission_gym.scripts.train_ppo",
    "evaluate": "mission_gym.scripts.evaluate",
    "cleanup": "mission_gym.scripts.cleanup",
    "dashboard": "mission_gym.scripts.run_utils",
    "search": "mission_gym.scripts.search",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch `mission-gym train|evaluate|cleanup|dashboard` to that command's own `main`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(f"usage: mission-gym {{{','.join(COMMANDS)}}} [options]  (each takes --help)", file=sys.stderr)
        return 2
    import importlib

    return importlib.import_module(COMMANDS[args[0]]).main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
