"""Training you can watch from Dagster: a callback passed to `mission_gym.training.train(extra_callbacks=...)`.

It reads what the library's own tracker has just written (metrics.jsonl after each rollout, run.json after
each checkpoint), so the numbers in Dagster are the run folder's numbers, and mission_gym never imports
Dagster. Per rollout, at most one structured log line every `min_interval_s` seconds (a run of 30k
timesteps/s finishes a rollout several times a second); per saved checkpoint, an `AssetObservation` on the
run's partition (step, SHA-256, capture rate), so the asset's page moves while the run trains.
"""

import math
import time
from pathlib import Path
from typing import Any

import dagster as dg
from stable_baselines3.common.callbacks import BaseCallback

from mission_gym.runs.record import load_record
from mission_gym_pipelines.events import checkpoint_observation, last_metrics

LOG_EVERY_S = 10.0


def _number(value: Any, digits: int) -> Any:
    if not isinstance(value, (int, float)):
        return "n/a"  # no episode has ended yet
    return round(value, digits) if digits else int(value)


def progress_line(metrics: dict[str, Any], target: int) -> str:
    """`progress step=1024 target=2048 mean_return=3.21 capture_rate=0.42 timesteps_per_s=1234` (key=value)."""
    fields = {"step": metrics.get("timestep"), "target": target,
              "mean_return": _number(metrics.get("ep_return_mean"), 3),
              "capture_rate": _number(metrics.get("capture_rate"), 3),
              "timesteps_per_s": _number(metrics.get("fps"), 0)}
    return "progress " + " ".join(f"{key}={value}" for key, value in fields.items())


class DagsterProgress(BaseCallback):
    """Logs training progress and reports each saved checkpoint to a Dagster step, from the run folder.

    Runs after the library's tracker (train() puts extra callbacks after it), so at each rollout end the
    metrics row and the checkpoint entries of that rollout are already on disk.
    """

    def __init__(self, context: dg.OpExecutionContext, run_dir: Path, min_interval_s: float = LOG_EVERY_S) -> None:
        super().__init__()
        self.dagster, self.run_dir, self.min_interval_s = context, run_dir, min_interval_s
        self._reported: set[str] = set()
        self._last_line = -math.inf

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        metrics = last_metrics(self.run_dir)
        record = load_record(self.run_dir)
        for entry in record.checkpoints:
            if entry.file not in self._reported:
                self._reported.add(entry.file)
                self.dagster.log_event(checkpoint_observation(record, entry, metrics))
        now = time.monotonic()
        if now - self._last_line >= self.min_interval_s:
            self._last_line = now
            self.dagster.log.info(progress_line(metrics, record.timesteps.target))
