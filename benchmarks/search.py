"""A branch search against the single run it branches from, for the same wall-clock, on 2 CPU cores.

    .venv/bin/python benchmarks/search.py [--parent RUN] [--minutes 15] [--population 4] [--rounds 3]
                                          [--config-dir configs | --harder] [--runs-dir runs-bench]

Without --parent it first trains a 5-minute checkpoint of the scenario (as benchmarks/learning.py does). Then,
from that checkpoint: (a) the single run continues for --minutes; (b) a search of --population members and
--rounds rounds gets the same wall-clock, its round length set from the single run's measured timesteps/s.
Both results are evaluated on the held-out seeds, paired, and compared by the sequential test. Prints the
capture rates, the paired decision, and the episodes the search's sequential tests saved. --harder plays
scenario B of benchmarks/transfer.py (a third defender across the attackers' approach) instead of --config-dir.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning import WallClockBudget  # noqa: E402
from transfer import scenario  # noqa: E402

from mission_gym.comparison import compare_sequential  # noqa: E402
from mission_gym.evaluation import evaluate_model  # noqa: E402
from mission_gym.runs.checkpoints import latest_checkpoint  # noqa: E402
from mission_gym.search import SearchSettings, run_search  # noqa: E402
from mission_gym.training import TrainSettings, plan_run, train  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def timed_run(runs: Path, config_dir: Path, minutes: float, **fields) -> tuple[str, float]:
    """Train for a wall-clock budget; returns the run's name and its timesteps/s."""
    settings = TrainSettings(timesteps=10**10, runs_root=runs, config_dir=config_dir, checkpoint_freq=1_000_000,
                             progress_bar=False, seed=0, **fields)
    started = time.monotonic()
    record = train(settings, plan_run(settings), extra_callbacks=[WallClockBudget(minutes * 60)])
    return record.run_name, (record.timesteps.current - record.timesteps.start) / (time.monotonic() - started)


def capture(runs: Path, run_name: str) -> str:
    report = evaluate_model(latest_checkpoint(runs / run_name), runs_root=runs)
    low, high = report["capture_rate_ci"]
    return f"{report['capture_rate']:.1%} (95% CI {low:.1%}-{high:.1%}, {report['episodes']} seeds)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parent", help="run to start from (default: train a 5-minute one first)")
    parser.add_argument("--minutes", type=float, default=15.0, help="wall-clock of each side")
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--config-dir", type=Path, default=REPO / "configs")
    parser.add_argument("--harder", action="store_true", help="scenario B: a third defender on the approach")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "runs-bench")
    args = parser.parse_args()
    if args.harder:
        args.config_dir = scenario(args.runs_dir, "configs-B", defenders=1)
    parent = args.parent or timed_run(args.runs_dir, args.config_dir, 5.0, run_name="search-parent")[0]
    single, fps = timed_run(args.runs_dir, args.config_dir, args.minutes, parent_checkpoint=parent,
                            branch_name="single", notes="benchmark: the single run")
    round_timesteps = int(fps * args.minutes * 60 / (args.population * args.rounds))
    started = time.monotonic()
    record = run_search(SearchSettings(parent=parent, population=args.population, rounds=args.rounds,
                                       round_timesteps=round_timesteps, runs_root=args.runs_dir,
                                       config_dir=args.config_dir, space=REPO / "configs" / "search.yaml"))
    search_minutes = (time.monotonic() - started) / 60
    duel = compare_sequential(latest_checkpoint(args.runs_dir / record.winner), single, runs_root=args.runs_dir)
    print(f"parent {parent}; single run {single} at {fps:,.0f} timesteps/s for {args.minutes:.1f} min")
    print(f"search: {args.population} members x {args.rounds} rounds x {round_timesteps:,} timesteps "
          f"in {search_minutes:.1f} min; winner {record.winner}")
    print(f"held-out capture: search winner {capture(args.runs_dir, record.winner)}; "
          f"single run {capture(args.runs_dir, single)}")
    print(f"paired sequential test, winner vs single run: {duel['decision']} after {duel['episodes']} episodes "
          f"({duel['only_ours']} seeds only the winner captured, {duel['only_theirs']} only the single run)")
    print(f"episodes the search's sequential tests played: {record.episodes_played} of {record.episodes_fixed} "
          f"a fixed evaluation would have played ({record.episodes_fixed - record.episodes_played} saved)")
    print(json.dumps({"search": record.name, "winner": record.winner, "single": single}))


if __name__ == "__main__":
    main()
