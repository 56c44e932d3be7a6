"""PPO timesteps per second on 2 CPU threads with the batched VecEnv, through the real training path.

    .venv/bin/python benchmarks/train_throughput.py [--timesteps N]

(a) the older system's settings: SB3's default 64-64 network, n_steps 2048, batch 64, 10 epochs, 4 arenas
    (it reached ~1,500 timesteps/s here; its 512-512-256 network ~870/s);
(b) our default training configuration (TrainSettings / PPOHyperparameters defaults), MLP policy;
(c) the same with the entity policy (`--policy entity`), whose weights do not depend on the unit counts.
"""

import argparse
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch

from mission_gym.training import TrainSettings, train

OLDER_SYSTEM_FPS = 1500
OLDER_SETTINGS = {"net_arch": [64, 64], "n_steps": 2048, "batch_size": 64, "n_epochs": 10}
REPO = Path(__file__).resolve().parent.parent


def measure(label: str, timesteps: int, n_envs: int, hyperparameters: dict) -> float:
    """Train a throwaway run and return timesteps/s from the end of its first update on (start-up, including any
    first-call compilation, is excluded)."""
    with tempfile.TemporaryDirectory() as runs:
        settings = TrainSettings(timesteps=timesteps, n_envs=n_envs, seed=0, run_name="bench", runs_root=Path(runs),
                                 config_dir=REPO / "configs", checkpoint_freq=10**12, keep_checkpoints=None,
                                 tensorboard=False, progress_bar=False, hyperparameters=hyperparameters)
        started = time.perf_counter()
        record = train(settings)
        wall = time.perf_counter() - started
        rows = [json.loads(line) for line in (Path(runs) / record.run_name / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[1], rows[-1]  # a row is written when a rollout ends, before its update
    fps = (last["timestep"] - first["timestep"]) / _elapsed(first, last)
    print(f"{label:<58} {fps:>9,.0f} timesteps/s   ({record.timesteps.current:,} steps, {wall:.0f} s wall)")
    return fps


def _elapsed(first: dict, last: dict) -> float:
    return (datetime.fromisoformat(last["time"]) - datetime.fromisoformat(first["time"])).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=1_000_000, help="timesteps for the default configuration")
    args = parser.parse_args()
    print(f"torch {torch.__version__}; training's own thread setting (TrainSettings.torch_threads) applies")
    older = measure("(a) older system's settings (64-64, n_steps 2048, batch 64)", 4 * 8192, 4, OLDER_SETTINGS)
    ours = measure("(b) our defaults (MLP policy)", args.timesteps, TrainSettings().n_envs, {})
    entity = measure("(c) our defaults, entity policy", args.timesteps, TrainSettings().n_envs, {"policy": "entity"})
    print(f"(a) vs the older system's ~{OLDER_SYSTEM_FPS:,}/s: {older / OLDER_SYSTEM_FPS:.1f}x   "
          f"(b) vs the older system: {ours / OLDER_SYSTEM_FPS:.1f}x   (c) vs (b): {entity / ours:.2f}x   "
          "target (b) and (c) >= 20,000/s")


if __name__ == "__main__":
    main()
