"""Time to skill: train the default scenario with the default settings for a wall-clock budget and evaluate the
policy on the 100 held-out seeds at marks along the way, beside the scripted baseline on the same seeds.

    .venv/bin/python benchmarks/learning.py [--minutes 5] [--marks 1 2 3 5] [--seeds 0 1 2]
                                            [--hyperparameters '{"reward_scale": 1.0}'] [--runs-dir runs-bench]

At each mark the current policy is copied aside (training goes on) and later played on the held-out seeds:
capture rate with its Wilson interval, and a paired test against the baseline on the same seeds (the interval
of the paired difference of capture rates; "beats the baseline" when its lower end is above zero). The first
minute at which the policy beats the baseline is the time to beat it. Wall-clock includes the imitation warm
start and, on a cold kernel cache, compilation (the first line says which). Prints what it measured,
whatever it is. Target (issue 15): 90 % held-out capture within 5 minutes on 2 CPU cores.
"""

import argparse
import json
import time
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback

from mission_gym.baseline import ScriptedAttackerPolicy
from mission_gym.config import load_config
from mission_gym.evaluation import load_policy, run_episodes, wilson_interval
from mission_gym.progress import kernels_compiled
from mission_gym.sequential import paired_difference_interval
from mission_gym.training import TrainSettings, plan_run, train

REPO = Path(__file__).resolve().parent.parent


class WallClockMarks(BaseCallback):
    """Saves the policy at each wall-clock mark and stops training at the last one."""

    def __init__(self, marks_min: list[float], folder: Path, tag: str) -> None:
        super().__init__()
        self.marks, self.folder, self.tag = sorted(marks_min), folder, tag
        self.started = time.monotonic()
        self.saved: list[tuple[float, int, Path]] = []  # (minutes actually elapsed, timesteps, policy file)

    def _on_step(self) -> bool:
        elapsed = (time.monotonic() - self.started) / 60
        while self.marks and elapsed >= self.marks[0]:
            mark = self.marks.pop(0)
            path = self.folder / f"{self.tag}-{mark:g}min.zip"
            self.model.save(path)
            # A mark passed during the warm start is saved at the first step after it: say when, truly.
            self.saved.append((elapsed, int(self.model.num_timesteps), path))
        return bool(self.marks)


class WallClockBudget(BaseCallback):
    """Stops training once the budget is spent (the run then finishes normally, with a final checkpoint)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.deadline = time.monotonic() + seconds

    def _on_step(self) -> bool:
        return time.monotonic() < self.deadline


def train_with_marks(seed: int, marks: list[float], runs: Path, hyperparameters: dict, tag: str) -> WallClockMarks:
    folder = runs / "marks"
    folder.mkdir(parents=True, exist_ok=True)
    callback = WallClockMarks(marks, folder, f"{tag}-seed{seed}")
    settings = TrainSettings(timesteps=10**10, seed=seed, run_name=f"learning-{tag}-seed{seed}", runs_root=runs,
                             config_dir=REPO / "configs", checkpoint_freq=10**9, progress_bar=False,
                             hyperparameters=hyperparameters)
    callback.started = time.monotonic()
    train(settings, plan_run(settings), extra_callbacks=[callback])
    return callback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training wall-clock budget per seed")
    parser.add_argument("--marks", type=float, nargs="+", default=[1, 2, 3, 5], help="minutes to evaluate at")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--hyperparameters", default="{}", help="JSON of PPO settings to override (e.g. old defaults)")
    parser.add_argument("--tag", default="defaults", help="label of this configuration in the output")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "runs-bench", help="where the runs are kept")
    args = parser.parse_args()
    marks = sorted({m for m in args.marks if m <= args.minutes} | {args.minutes})
    config = load_config(REPO / "configs")
    seeds = list(config.eval_seeds)
    baseline = [r.outcome == "captured" for r in run_episodes(ScriptedAttackerPolicy(config), config, seeds)]
    print(f"kernel cache {'warm' if kernels_compiled() else 'cold (first mark includes compilation)'}; "
          f"scripted baseline {sum(baseline)}/{len(seeds)} on the held-out seeds")
    rows = []
    for seed in args.seeds:
        saved = train_with_marks(seed, marks, args.runs_dir, json.loads(args.hyperparameters), args.tag).saved
        beaten = None
        for mark, step, path in saved:
            ours = [r.outcome == "captured"
                    for r in run_episodes(load_policy(path, config, REPO / "configs"), config, seeds)]
            captured = sum(ours)
            low, high = wilson_interval(captured, len(seeds))
            only_ours = sum(a and not b for a, b in zip(ours, baseline))
            only_base = sum(b and not a for a, b in zip(ours, baseline))
            d_low, d_high = paired_difference_interval(only_ours, only_base, len(seeds))
            if beaten is None and d_low > 0:
                beaten = mark
            rows.append({"tag": args.tag, "seed": seed, "minutes": mark, "timesteps": step,
                         "capture_rate": captured / len(seeds), "ci": [low, high],
                         "paired_vs_baseline": [only_ours, only_base], "difference_ci": [d_low, d_high]})
            print(f"{args.tag} seed {seed} at {mark:>4.1f} min ({step:>10,} timesteps): capture "
                  f"{captured / len(seeds):.0%} (95% CI {low:.0%}-{high:.0%}); vs baseline: better on {only_ours}, "
                  f"worse on {only_base}, difference CI {d_low:+.0%} to {d_high:+.0%}", flush=True)
        print(f"{args.tag} seed {seed}: beats the baseline (paired) from "
              f"{f'{beaten:.1f} min' if beaten is not None else 'never within the budget'}", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
