"""The callback that keeps a run folder true while PPO learns: metrics, heartbeat, checkpoints recorded with
their SHA-256, retention, the dashboard, and the run's closing status."""

import hashlib
import io
import json
import math
import time
import warnings
from collections import deque
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from mission_gym.config import load_config
from mission_gym.errors import MissionGymError
from mission_gym.evaluation import run_episodes, summarize
from mission_gym.guards import DivergedError, TerminationRequested, check_finite
from mission_gym.runs.checkpoints import prune_checkpoints, relative_to_runs
from mission_gym.runs.layout import RunPaths
from mission_gym.runs.record import CheckpointEntry, RunRecord, atomic_write_bytes, save_record, utc_now
from mission_gym.train_settings import TrainSettings

RECENT_EPISODES = 100
DASHBOARD_EVERY_S = 15.0


class RunTracker(BaseCallback):
    """Keeps the run folder true while PPO learns: episode statistics (metrics.jsonl and TensorBoard),
    heartbeat, atomic checkpoints with their SHA-256 in the run record, retention, and the dashboard."""

    def __init__(self, run_dir: Path, record: RunRecord, settings: TrainSettings) -> None:
        super().__init__()
        self.run_dir, self.record, self.settings = run_dir, record, settings
        self.paths = RunPaths(run_dir)
        self.returns: deque[float] = deque(maxlen=RECENT_EPISODES)
        self.lengths: deque[int] = deque(maxlen=RECENT_EPISODES)
        self.captures: deque[float] = deque(maxlen=RECENT_EPISODES)
        self.episodes = 0
        self._next_checkpoint = record.timesteps.start + settings.checkpoint_freq
        self._next_eval = record.timesteps.start + (settings.eval_freq or 0)
        self._last_dashboard = 0.0
        self._started = time.monotonic()
        self._metrics = self.paths.metrics.open("a", encoding="utf-8")
        self._update_threads = torch.get_num_threads()
        self.stop_reason: str | None = None  # the signal that asked training to stop
        self._learning = False

    def request_stop(self, signal_name: str) -> None:
        """A termination signal arrived: once PPO is learning, stop at the next timestep (the update under
        way completes, nothing is lost); before that there is nothing to keep, so stop at once."""
        self.stop_reason = signal_name
        if not self._learning:
            raise TerminationRequested(signal_name)

    def _on_training_start(self) -> None:
        self._learning = True

    def _on_rollout_start(self) -> None:
        check_finite(self.model, int(self.num_timesteps))  # after each update, before a checkpoint can save it
        # Stepping arenas feeds the policy small batches, where a second OpenMP thread costs ~10x more than it
        # saves (measured: 2.8 ms vs 0.3 ms per 64-row forward on 2 cores); updates use every thread.
        self._update_threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.episodes += 1
                self.returns.append(float(info["episode"]["r"]))
                self.lengths.append(int(info["episode"]["l"]))
                self.captures.append(1.0 if info["outcome"] == "captured" else 0.0)
        if self.num_timesteps >= self._next_checkpoint:
            self._save_checkpoint()
            self._next_checkpoint = (self.num_timesteps // self.settings.checkpoint_freq + 1) * self.settings.checkpoint_freq
        return self.stop_reason is None

    def _on_rollout_end(self) -> None:
        torch.set_num_threads(self._update_threads)
        row = self._metrics_row()
        if self.settings.eval_freq and self.num_timesteps >= self._next_eval:
            row.update(self._evaluate())
            self._next_eval = self.num_timesteps + self.settings.eval_freq
        for key, value in row.items():
            if key.startswith(("ep_", "capture_rate", "eval_")):
                self.logger.record(f"mission/{key}", value)
        self._metrics.write(_json_line(row))
        self._metrics.flush()
        self._heartbeat()

    def _metrics_row(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self._started
        row: dict[str, Any] = {
            "timestep": int(self.num_timesteps), "time": utc_now().isoformat(), "episodes": self.episodes,
            "fps": (self.num_timesteps - self.record.timesteps.start) / max(elapsed, 1e-9),
        }
        if self.returns:
            row.update(ep_return_mean=float(np.mean(self.returns)), ep_len_mean=float(np.mean(self.lengths)),
                       capture_rate=float(np.mean(self.captures)))
        for key, value in self.logger.name_to_value.items():
            if key.startswith("train/"):
                row[key.replace("/", "_")] = float(value)
        return row

    def _evaluate(self) -> dict[str, float]:
        config = load_config(self.paths.config_snapshot)
        results = run_episodes(self.model, config, config.eval_seeds, deterministic=True)
        summary = summarize(results)
        return {"eval_capture_rate": summary["capture_rate"], "eval_mean_return": summary["mean_return"]}

    def _heartbeat(self) -> None:
        self.record = self.record.model_copy(update={
            "heartbeat_at": utc_now(),
            "timesteps": self.record.timesteps.model_copy(update={"current": int(self.num_timesteps)}),
        })
        save_record(self.run_dir, self.record)
        if time.monotonic() - self._last_dashboard >= DASHBOARD_EVERY_S:
            self._refresh_dashboard()

    def _refresh_dashboard(self) -> None:
        from mission_gym.dashboard import generate_unified_dashboard  # the dashboard reads run records

        self._last_dashboard = time.monotonic()
        try:
            generate_unified_dashboard(self.settings.runs_root)
        except (OSError, MissionGymError) as error:  # the page is a view: it must never stop training
            warnings.warn(f"dashboard not refreshed: {error}", stacklevel=1)

    def _save_checkpoint(self, model: PPO | None = None) -> None:
        model = model or self.model
        step = int(model.num_timesteps)
        self._save_model(model, self.paths.checkpoint(step), step)
        if self.settings.keep_checkpoints is not None:
            self._prune()

    def _save_model(self, model: PPO, path: Path, step: int) -> None:
        """Write a model file atomically, then record it (with the SHA-256 of its bytes) in the run record.

        The file comes first, so the record only ever names files that exist: a crash in between leaves a
        checkpoint the record does not list, which a run name never resolves to (see `run_model`). A model
        holding a non-finite number is never written (DivergedError).
        """
        check_finite(model, step)
        buffer = io.BytesIO()
        model.save(buffer)
        data = buffer.getvalue()
        entry = CheckpointEntry(file=relative_to_runs(path, self.settings.runs_root), step=step,
                                sha256=hashlib.sha256(data).hexdigest())
        atomic_write_bytes(path, data)
        entries = [e for e in self.record.checkpoints if e.file != entry.file] + [entry]
        self.record = self.record.model_copy(update={"checkpoints": entries})
        save_record(self.run_dir, self.record)

    def _prune(self) -> None:
        prune_checkpoints(self.run_dir, self.settings.keep_checkpoints, self.settings.runs_root,
                          before_delete=self._forget)

    def _forget(self, doomed: list[Path]) -> None:
        """Drop files about to be deleted from the record (first, so it never names a missing file)."""
        gone = {relative_to_runs(p, self.settings.runs_root) for p in doomed}
        kept = [e for e in self.record.checkpoints if e.file not in gone]
        self.record = self.record.model_copy(update={"checkpoints": kept})
        save_record(self.run_dir, self.record)

    def finish(self, model: PPO | None, status: Literal["finished", "interrupted"]) -> None:
        """Save the last checkpoint and final model, and close the record with `status` (an interrupted
        run's `error` names the signal). A diverged model is never saved: the run is closed failed instead
        and DivergedError raised."""
        if model is not None:
            step = int(model.num_timesteps)
            try:
                check_finite(model, step)
            except DivergedError as error:
                self.fail(error)
                raise
            if not self.paths.checkpoint(step).is_file():
                self._save_checkpoint(model)
            self._save_model(model, self.paths.final_model, step)
        self._close(status, error=self.stop_reason if status == "interrupted" else None)

    def fail(self, error: BaseException) -> None:
        """Mark the run failed with the error's message."""
        self._close("failed", error=f"{type(error).__name__}: {error}")

    def _close(self, status: str, error: str | None = None) -> None:
        if self.record.status != "running":  # closed already (a diverged model found while finishing)
            return
        self._metrics.close()
        model = getattr(self, "model", None)
        current = int(model.num_timesteps) if model is not None else self.record.timesteps.current
        self.record = self.record.model_copy(update={
            "status": status, "error": error, "heartbeat_at": utc_now(),
            "timesteps": self.record.timesteps.model_copy(update={"current": current}),
        })
        save_record(self.run_dir, self.record)
        self._refresh_dashboard()


def _json_line(row: dict[str, Any]) -> str:
    """One metrics line; a non-finite number (a diverged loss) is written as null, keeping the file valid JSON."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
    return json.dumps(clean, allow_nan=False, separators=(",", ":")) + "\n"
