"""Branching an entity policy across unit-count changes, against training the new scenario from scratch.

    .venv/bin/python benchmarks/transfer.py [--minutes 15] [--episodes 100] [--runs-dir runs-transfer]

Scenarios: A = configs/ (4 attackers, 2 defenders); B = A plus a third defender patrolling across the diagonal
approach the attackers take from their spawn corner to the objective; A5 = A plus a fifth attacker (UGV_A).
Trainings, each for --minutes of wall clock (a fresh run's imitation warm start included), snapshotted at
1/15, 2/15, 5/15, 10/15 and 15/15 of it (1, 2, 5, 10, 15 minutes by default), each snapshot evaluated
afterwards on the scenario's held-out seeds (capture rate and 95 % Wilson interval):

- A, entity, from scratch: the parent of every branch (its final model), and the time-to-skill beside
- A, MLP, from scratch;
- B, entity, branched from the A parent (2 -> 3 defenders), against B, entity, from scratch;
- A, entity, branched from the B branch's final model (3 -> 2 defenders);
- A5, entity, branched from the A parent (4 -> 5 attackers).

A branch's column 0 is its parent's weights on the new scenario before any training (what transfers as is).
Prints one table, whatever it measures, then the paired tests on the same seeds (the B branch at 0, 5 and 15
minutes against the B scratch run's end, the MLP against the entity policy on A, the 3 -> 2 branch untrained
against A's own entity run); target: the B branch reaches the B scratch run's final capture rate by a third of
the budget and ends higher.
"""

import argparse
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from stable_baselines3.common.callbacks import BaseCallback

from mission_gym.baseline import ScriptedAttackerPolicy
from mission_gym.config import load_config
from mission_gym.evaluation import EpisodeResult, paired_comparison, run_episodes, summarize
from mission_gym.ppo import load_model
from mission_gym.training import TrainSettings, plan_run, train

REPO = Path(__file__).resolve().parent.parent
MARKS = (0.0, 1 / 15, 2 / 15, 5 / 15, 10 / 15, 1.0)  # fractions of the budget; 0: before any training
THIRD_DEFENDER = {"unit_type": "DEF_UGV", "spawn": {"x": 72.0, "y": 72.0, "heading": 135.0},
                  "patrol_waypoints": [[60.0, 84.0], [84.0, 60.0]]}
FIFTH_ATTACKER = {"unit_type": "UGV_A", "spawn": {"x": 20.0, "y": 20.0, "heading": 45.0}}


class Snapshots(BaseCallback):
    """Saves the model at given wall-clock times (from its creation, so a warm start counts) and stops training
    after the last one."""

    def __init__(self, folder: Path, seconds: list[float]) -> None:
        super().__init__()
        self.folder, self.seconds, self.started = folder, seconds, time.monotonic()
        self.saved: list[tuple[float, Path]] = []
        folder.mkdir(parents=True, exist_ok=True)

    def _on_training_start(self) -> None:
        self._save_due()

    def _on_step(self) -> bool:
        self._save_due()
        return len(self.saved) < len(self.seconds)

    def _save_due(self) -> None:
        elapsed = time.monotonic() - self.started
        while len(self.saved) < len(self.seconds) and elapsed >= self.seconds[len(self.saved)]:
            path = self.folder / f"snapshot_{len(self.saved)}.zip"
            self.model.save(path)
            self.saved.append((elapsed, path))


@dataclass
class Curve:
    """One training's snapshots, evaluated: (wall-clock s, capture rate, Wilson interval) per mark, and each
    snapshot's episodes (for paired tests on the same seeds)."""

    label: str
    points: list[tuple[float, float, tuple[float, float]]]
    episodes: list[list[EpisodeResult]]
    final_model: Path


def scenario(root: Path, name: str, defenders: int = 0, attackers: int = 0) -> Path:
    """configs/ copied to root/name with extra defenders (THIRD_DEFENDER) and attackers (FIFTH_ATTACKER)."""
    folder = root / name
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(REPO / "configs", folder)
    data = yaml.safe_load((folder / "scenario.yaml").read_text())
    data["defenders"] += [THIRD_DEFENDER] * defenders
    data["attackers"] += [FIFTH_ATTACKER] * attackers
    (folder / "scenario.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def trained(label: str, args: argparse.Namespace, config_dir: Path, policy: str = "entity",
            parent: Path | None = None) -> Curve:
    """Train for the budget (fresh, or branched from `parent`), then evaluate every snapshot on the held-out seeds."""
    budget = args.minutes * 60
    marks = [m * budget for m in MARKS] if parent else [m * budget for m in MARKS[1:]]
    snapshots = Snapshots(args.runs_dir / "snapshots" / label.replace(" ", "_"), marks)
    settings = TrainSettings(timesteps=10**10, seed=args.seed, runs_root=args.runs_dir, config_dir=config_dir,
                             checkpoint_freq=10**9, progress_bar=False, notes=f"benchmarks/transfer.py: {label}",
                             parent_checkpoint=str(parent) if parent else None,
                             run_name=None if parent else "transfer-bench",
                             branch_name="transfer-bench" if parent else None,
                             hyperparameters={} if parent else {"policy": policy},
                             imitation_samples=args.imitation_samples)
    record = train(settings, plan_run(settings), extra_callbacks=[snapshots])
    config = load_config(config_dir)
    seeds = config.eval_seeds[:args.episodes]
    points, episodes = [], []
    for elapsed, path in snapshots.saved:
        episodes.append(run_episodes(load_model(path, config, device="cpu"), config, seeds))
        summary = summarize(episodes[-1])
        points.append((elapsed, summary["capture_rate"], tuple(summary["capture_rate_ci"])))
    print(f"  {label}: {record.timesteps.current - record.timesteps.start:,} timesteps", flush=True)
    return Curve(label, points, episodes, args.runs_dir / record.run_name / "final_model.zip")


def baseline(config_dir: Path, episodes: int) -> str:
    config = load_config(config_dir)
    summary = summarize(run_episodes(ScriptedAttackerPolicy(config), config, config.eval_seeds[:episodes]))
    low, high = summary["capture_rate_ci"]
    return f"{summary['capture_rate']:.0%} [{low:.0%}-{high:.0%}]"


def table(curves: list[Curve], minutes: float) -> str:
    heads = [f"{m * minutes:.3g} min" for m in MARKS]
    lines = [f"| training | {' | '.join(heads)} |", f"|---|{'---|' * len(heads)}"]
    for curve in curves:
        cells = [""] * (len(MARKS) - len(curve.points)) + [f"{rate:.0%} [{low:.0%}-{high:.0%}]"
                                                             for _, rate, (low, high) in curve.points]
        lines.append(f"| {curve.label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def verdict(branch: Curve, scratch: Curve) -> str:
    """When the branch first reached the scratch run's final capture rate, and whether it ends higher."""
    goal = scratch.points[-1][1]
    reached = next((elapsed for elapsed, rate, _ in branch.points if rate >= goal), None)
    when = f"after {reached / 60:.1f} min" if reached is not None else "never"
    return (f"B branch reached the B scratch run's final {goal:.0%} {when} (target: by a third of the budget); "
            f"final {branch.points[-1][1]:.0%} vs {goal:.0%} (target: higher)")


def paired(ours: Curve, ours_mark: int, theirs: Curve, theirs_mark: int, minutes: float) -> str:
    """The paired test of two snapshots on the same held-out seeds (marks index MARKS)."""
    def at(curve: Curve, mark: int) -> list[EpisodeResult]:
        return curve.episodes[mark - (len(MARKS) - len(curve.points))]

    result = paired_comparison(at(ours, ours_mark), at(theirs, theirs_mark))
    low, high = result["capture_rate_difference_ci"]
    return (f"{ours.label} at {MARKS[ours_mark] * minutes:.3g} min vs {theirs.label} at "
            f"{MARKS[theirs_mark] * minutes:.3g} min: {result['verdict']} "
            f"({result['capture_rate_difference']:+.0%}, 95 % CI {low:+.0%} to {high:+.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="wall-clock budget of each training")
    parser.add_argument("--episodes", type=int, default=100, help="held-out seeds per evaluation")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "runs-transfer", help="where the runs are kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--imitation-samples", type=int, default=TrainSettings().imitation_samples,
                        help="warm start of the fresh runs (default: train_ppo's)")
    args = parser.parse_args()
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    a, b, a5 = (scenario(args.runs_dir, name, defenders, attackers)
                for name, defenders, attackers in (("configs-A", 0, 0), ("configs-B", 1, 0), ("configs-A5", 0, 1)))
    print(f"scripted baseline: A {baseline(a, args.episodes)}, B {baseline(b, args.episodes)}, "
          f"A5 {baseline(a5, args.episodes)} ({args.episodes} held-out seeds)", flush=True)
    parent = trained("A entity scratch", args, a)
    mlp = trained("A MLP scratch", args, a, policy="mlp")
    branch = trained("B entity branch 2->3 def", args, b, parent=parent.final_model)
    scratch = trained("B entity scratch", args, b)
    reverse = trained("A entity branch 3->2 def", args, a, parent=branch.final_model)
    more = trained("A5 entity branch 4->5 att", args, a5, parent=parent.final_model)
    print(table([parent, mlp, branch, scratch, reverse, more], args.minutes))
    print(verdict(branch, scratch))
    last, third = len(MARKS) - 1, MARKS.index(5 / 15)
    for ours, ours_mark, theirs, theirs_mark in ((branch, 0, scratch, last), (branch, third, scratch, last),
                                                 (branch, last, scratch, last), (mlp, third, parent, third),
                                                 (mlp, last, parent, last), (reverse, 0, parent, last)):
        print("paired:", paired(ours, ours_mark, theirs, theirs_mark, args.minutes))


if __name__ == "__main__":
    main()
