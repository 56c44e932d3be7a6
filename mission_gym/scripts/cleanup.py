"""Delete old run folders: `python cleanup_runs.py --keep-active-lineage [--dry-run] [--yes]`.

The plan comes from mission_gym.runs.retention (shared with the Dagster retention sensor); this module
only parses arguments, prints the plan and asks before deleting.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mission_gym.errors import MissionGymError
from mission_gym.runs.lineage import lineage_forest, list_runs, walk_forest
from mission_gym.runs.retention import CleanupPlan, apply_cleanup, plan_cleanup
from mission_gym.scripts.cli_support import CommandParser, run_cli, runs_folder


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="cleanup_runs.py",
        description="Delete run folders you no longer need. Live runs, and runs a kept run branched from, "
        "are never deleted.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--keep-active-lineage",
        action="store_true",
        help="keep the most recently active run with its whole lineage (parents, siblings, children); "
        "delete every other run",
    )
    mode.add_argument("--keep-lineage", metavar="RUN", help="keep RUN's whole lineage; delete every other run (no default: choose exactly one mode)")
    mode.add_argument(
        "--delete-failed",
        action="store_true",
        help="delete only failed, interrupted or dead runs that saved no checkpoint",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would be deleted; delete nothing")
    parser.add_argument("--yes", "-y", action="store_true", help="delete without asking")
    parser.add_argument("--runs-dir", default="runs", help="the runs folder (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cleanup CLI; returns the exit status (2 on any error, printed without a traceback)."""
    return run_cli(build_parser(), argv, _cleanup)


def _cleanup(args: argparse.Namespace) -> int:
    plan = plan_cleanup(
        runs_folder("--runs-dir", args.runs_dir, must_exist=True),
        keep_active_lineage=args.keep_active_lineage,
        keep_lineage=args.keep_lineage,
        delete_failed=args.delete_failed,
    )
    print("\n".join(describe_plan(plan)))
    if args.dry_run:
        print("Dry run: nothing was deleted.")
        return 0
    if not plan.delete:
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise MissionGymError(
                f"not deleting {len(plan.delete)} run(s) without confirmation: stdin is not a terminal, "
                "so there is no one to ask. Pass --yes to delete, or --dry-run to only preview."
            )
        if not _confirm(f"Delete {len(plan.delete)} run(s), {human_size(plan.delete_bytes)}? [y/N] "):
            print("Aborted: nothing was deleted.")
            return 1
    deleted = apply_cleanup(plan)
    skipped = [item.run_name for item in plan.delete if item.run_name not in deleted]
    print(f"Deleted {len(deleted)} run(s).")
    if skipped:
        print(f"Skipped (became live or needed by a new branch since planning): {', '.join(skipped)}")
    return 0


def _confirm(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except (EOFError, KeyboardInterrupt):
        print()
        return False


def describe_plan(plan: CleanupPlan) -> list[str]:
    """The lines printed for a plan: kept lineage tree, protected runs, and every deletion with its size."""
    lines = [f"Runs folder: {plan.runs_root} ({len(plan.keep) + len(plan.delete)} runs), mode --{plan.mode}"]
    if plan.anchor is not None:
        lines += _kept_tree(plan)
    else:
        lines.append(f"Kept: {len(plan.keep)} run(s)")
    lines += [f"  kept, live right now: {name}" for name in plan.skipped_live]
    lines += [f"  kept, a kept run branched from it: {name}" for name in plan.protected]
    if plan.ignored:
        lines.append(f"Left alone, not run folders: {', '.join(plan.ignored)}")
    lines += [f"Problem: {problem}" for problem in plan.problems]
    if not plan.delete:
        lines.append("Nothing to delete.")
        return lines
    lines.append(f"To delete: {len(plan.delete)} run(s), {human_size(plan.delete_bytes)}")
    width = max(len(item.run_name) for item in plan.delete)
    lines += [f"  {item.run_name:<{width}}  {human_size(item.size_bytes):>9}  {item.reason}" for item in plan.delete]
    return lines


def _kept_tree(plan: CleanupPlan) -> list[str]:
    kept = set(plan.keep) - set(plan.skipped_live) - set(plan.protected)  # the lineage itself
    records = [r for r in list_runs(plan.runs_root) if r.run_name in kept]
    # Only --keep-active-lineage picks the anchor by activity; --keep-lineage RUN keeps the run it was given.
    role = "active" if plan.mode == "keep-active-lineage" else "named by --keep-lineage"
    lines = [f"Lineage tree of {plan.anchor} (KEPT):"]
    for node in walk_forest(lineage_forest(records)):
        indent = "  " * (node.depth - 1) + "↳ " if node.depth else ""
        state = "live" if node.record.is_live() else node.record.status
        anchor = f", {role}" if node.name == plan.anchor else ""
        lines.append(f"  {indent}{node.name} ({state}, {human_steps(node.record.timesteps.current)} steps{anchor})")
    return lines


def human_size(size: int) -> str:
    """Decimal units, like the retention policy's max_disk_gb: `512 B`, `3.4 MB`, `1.20 GB`."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.2f} {unit}" if unit == "GB" else f"{size / scale:.1f} {unit}"
    return f"{size} B"


def human_steps(steps: int) -> str:
    """`27.67M`, `50.0k`, `800`."""
    if steps >= 1_000_000:
        return f"{steps / 1e6:.2f}M"
    if steps >= 1_000:
        return f"{steps / 1e3:.1f}k"
    return str(steps)


if __name__ == "__main__":
    sys.exit(main())
