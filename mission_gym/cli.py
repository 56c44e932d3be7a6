"""`mission-gym COMMAND ...`: one console entry point for every workflow step."""

import sys
from collections.abc import Sequence

# command -> (module with its own `main`, the one line `mission-gym --help` shows)
COMMANDS = {
    "train": ("mission_gym.scripts.train_ppo", "train PPO into a new run folder, fresh or branched from a checkpoint"),
    "evaluate": ("mission_gym.scripts.evaluate", "evaluate a checkpoint beside the scripted baseline and its parent"),
    "cleanup": ("mission_gym.scripts.cleanup", "delete run folders you no longer need (live lineages are kept)"),
    "dashboard": ("mission_gym.scripts.run_utils", "write the offline HTML dashboard of the runs folder"),
    "search": ("mission_gym.scripts.search", "population-based branch search decided by sequential paired tests"),
}


def usage() -> str:
    """The top-level help: every command with its one line."""
    width = max(map(len, COMMANDS))
    lines = ["usage: mission-gym COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "Run `mission-gym COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch `mission-gym train|evaluate|cleanup|dashboard` to that command's own `main`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(usage())
        return 0
    if not args or args[0] not in COMMANDS:
        problem = f"unknown command {args[0]!r}" if args else "no command given"
        print(f"error: {problem}; choose one of {', '.join(COMMANDS)}\n\n{usage()}", file=sys.stderr)
        return 2
    import importlib

    return importlib.import_module(COMMANDS[args[0]][0]).main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
