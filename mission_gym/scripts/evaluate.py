"""`python -m mission_gym.scripts.evaluate --model PATH [--config-dir DIR]`: evaluate a checkpoint on the
held-out seeds beside the scripted baseline (and its parent), and write the report into its run folder."""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mission_gym.comparison import compare_sequential
from mission_gym.errors import MissionGymError
from mission_gym.evaluation import evaluate_model, report_markdown
from mission_gym.scripts.cli_support import CommandParser, finite_float, run_cli, runs_folder
from mission_gym.sequential import SequentialDesign


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint path (.zip optional) or run name (its latest checkpoint); required, no default")
    parser.add_argument("--config-dir", type=Path, help="config directory (default: the run's own config snapshot)")
    parser.add_argument("--episodes", type=int, help="evaluate on the first N seeds (default: all)")
    parser.add_argument("--seeds-file", type=Path, help="seed file, one integer per line (default: the config's eval_seeds.txt)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the most likely")
    parser.add_argument("--gif", action="store_true", help="also write an animated replay of the first seed's episode")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="runs folder (default: %(default)s)")
    duel = parser.add_argument_group("sequential comparison (stops as soon as the answer is clear)")
    duel.add_argument("--against", help="'parent', 'baseline', or a run name / checkpoint path to compare "
                      "with (default: none, a plain evaluation)")
    duel.add_argument("--sequential", action="store_true", help="play both on the same seeds, in order, until a "
                      "sequential paired test decides better, worse or no difference (needs --against)")
    design = SequentialDesign()
    duel.add_argument("--alpha", type=finite_float, default=design.alpha,
                      help="chance of calling equal policies different (default: %(default)s)")
    duel.add_argument("--beta", type=finite_float, default=design.beta,
                      help="chance of missing a difference of the margin (default: %(default)s)")
    duel.add_argument("--margin", type=finite_float, default=design.margin,
                      help="difference worth finding: among seeds only one policy captures, the share above one half "
                           "(default: %(default)s)")
    return parser


def _evaluate(args: argparse.Namespace) -> int:
    if args.against or args.sequential:
        return _compare(args)
    source = "from --config-dir" if args.config_dir else "the run's config snapshot"
    report = evaluate_model(args.model, config_dir=args.config_dir, episodes=args.episodes,
                            seeds_file=args.seeds_file, deterministic=not args.stochastic,
                            runs_root=runs_folder("--runs-dir", args.runs_dir, must_exist=False), gif=args.gif)
    print(f"Using config {report['config_dir']} ({source})")
    print(report_markdown(report))
    print("Report written to:", *report["files"], sep="\n  ")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate and print the readable report; returns the exit status."""
    return run_cli(build_parser(), argv, _evaluate)


def _compare(args: argparse.Namespace) -> int:
    if not (args.against and args.sequential):
        raise MissionGymError("--against and --sequential go together: a plain evaluation already compares with the "
                              "parent and the baseline on every seed")
    if args.episodes is not None or args.gif or args.stochastic:
        raise MissionGymError("--sequential decides how many seeds to play and plays deterministically; drop "
                              "--episodes, --gif and --stochastic")
    report = compare_sequential(args.model, args.against, config_dir=args.config_dir, seeds_file=args.seeds_file,
                                runs_root=runs_folder("--runs-dir", args.runs_dir, must_exist=False),
                                design=SequentialDesign(alpha=args.alpha, beta=args.beta, margin=args.margin))
    print(Path(report["files"][1]).read_text(encoding="utf-8"))
    print("Report written to:", *report["files"], sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
