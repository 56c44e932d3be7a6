"""Train the default scenario with the default configuration for a wall-clock budget, then evaluate on the
held-out seeds beside the scripted baseline.

    .venv/bin/python benchmarks/learning.py [--minutes 15] [--runs-dir runs-bench]

Target: >= 80 % capture rate on the held-out seeds, above the scripted baseline, within 15 minutes on 2 CPU
cores. Prints what it measured, whatever it is.
"""

import argparse
import time
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback

from mission_gym.evaluation import evaluate_model
from mission_gym.training import TrainSettings, plan_run, train

REPO = Path(__file__).resolve().parent.parent


class WallClockBudget(BaseCallback):
    """Stops training once the budget is spent (the run then finishes normally, with a final checkpoint)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.deadline = time.monotonic() + seconds

    def _on_step(self) -> bool:
        return time.monotonic() < self.deadline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="training wall-clock budget")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "runs-bench", help="where the run is kept")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = TrainSettings(timesteps=10**10, seed=args.seed, run_name="learning-benchmark", runs_root=args.runs_dir,
                             config_dir=REPO / "configs", checkpoint_freq=1_000_000, progress_bar=False)
    started = time.monotonic()
    record = train(settings, plan_run(settings), extra_callbacks=[WallClockBudget(args.minutes * 60)])
    trained_s = time.monotonic() - started
    report = evaluate_model(args.runs_dir / record.run_name / "final_model.zip", runs_root=args.runs_dir)
    low, high = report["capture_rate_ci"]
    base = report["baseline"]
    print(f"trained {record.timesteps.current:,} timesteps in {trained_s / 60:.1f} min "
          f"({record.timesteps.current / trained_s:,.0f}/s)")
    print(f"held-out capture rate {report['capture_rate']:.1%} (95% CI {low:.1%}-{high:.1%}) on {report['episodes']} seeds; "
          f"scripted baseline {base['capture_rate']:.1%}; target >= 80% and above the baseline")
    print(f"report: {report['files'][0]}")


if __name__ == "__main__":
    main()
