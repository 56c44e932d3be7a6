"""What a person sees while a run trains: the steps before the first timestep, a progress bar with the learning
numbers, and the closing summary (with the command that resumes an interrupted run).

On a terminal the bars are rich's; anywhere else (CI, Dagster, a pipe) the same facts come as plain periodic
lines without control characters, so logs stay readable.
"""

import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TextIO

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from stable_baselines3.common.callbacks import BaseCallback

from mission_gym.runs.checkpoints import CHECKPOINT_PATTERN
from mission_gym.runs.record import RunRecord

PLAIN_EVERY_S = 30.0  # a plain line this often: often enough to see a run live, rare enough for a log
BAR_EVERY_S = 0.25  # rich redraws on its own; feeding it more often only costs the training loop
COMPILING_NOTE = "compiling the simulation kernels, first run only (~20 s)"


class EpisodeStats(Protocol):
    """The recent episodes' returns and captures (1.0 or 0.0), as RunTracker keeps them."""

    returns: Sequence[float]
    captures: Sequence[float]


class ProgressDisplay:
    """Where progress goes: rich bars on a terminal, plain lines elsewhere, only notes when bars are off."""

    def __init__(self, bars: bool = True, stream: TextIO | None = None, plain_every_s: float | None = None) -> None:
        self.stream = stream or sys.stdout
        self.bars = bars
        self.live = bars and self.stream.isatty()
        self.plain_every_s = PLAIN_EVERY_S if plain_every_s is None else plain_every_s
        self._console = Console(file=self.stream) if self.live else None

    def note(self, text: str) -> None:
        """One line about what is happening now."""
        if self._console is not None:
            self._console.print(text, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    @contextmanager
    def task(self, description: str, total: float) -> Iterator[Callable[[float], None]]:
        """A bar for `total` units of work; yields `advance(n)`. Plain mode notes the start and the end."""
        if not self.bars:
            yield lambda n: None
            return
        if self._console is None:
            started = time.monotonic()
            self.note(f"{description} ...")
            yield lambda n: None
            self.note(f"{description}: done in {time.monotonic() - started:.0f} s")
            return
        with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                      console=self._console) as progress:
            task = progress.add_task(description, total=total)
            yield lambda n: progress.advance(task, n)

    def training_bar(self) -> Progress | None:
        """The rich bar of the PPO phase (None off a terminal)."""
        if self._console is None:
            return None
        return Progress(TextColumn("[bold]PPO"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
                        TextColumn("{task.fields[learning]}  {task.fields[speed]}  ETA"), TimeRemainingColumn(),
                        console=self._console)


def kernels_compiled() -> bool:
    """Whether numba's on-disk cache already holds the step kernel of these sources (then the first step starts
    at once). Asks the kernel's own cache for its index file, so the answer follows numba's naming exactly."""
    from mission_gym.sim import kernel

    index = Path(kernel.step_arenas._cache._cache_file._index_path)  # numba is pinned (constraints.txt)
    return index.is_file()


class TrainingProgress(BaseCallback):
    """The PPO phase's bar (or plain lines): timesteps of this run, mean return and capture rate of the recent
    episodes, timesteps per second and ETA. The count never passes the target, though PPO finishes its last
    rollout past it."""

    def __init__(self, display: ProgressDisplay, start: int, target: int, stats: EpisodeStats) -> None:
        super().__init__()
        self.display, self.start, self.target, self.stats = display, start, target, stats
        self._bar: Progress | None = None
        self._task = None
        self._started = self._last = 0.0
        self._closed = False

    def _on_training_start(self) -> None:
        self._started = self._last = time.monotonic()
        self._bar = self.display.training_bar() if self.display.bars else None
        if self._bar is None and self.display.bars:
            self.display.note(f"PPO: {self.target - self.start:,} timesteps, a line every {self.display.plain_every_s:.0f} s")
        elif self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task("ppo", total=self.target - self.start, learning="", speed="")

    def _on_step(self) -> bool:
        now = time.monotonic()
        every = BAR_EVERY_S if self._bar is not None else self.display.plain_every_s
        if now - self._last >= every:
            self._last = now
            self.show()
        return True

    def _on_training_end(self) -> None:
        self.close()

    def show(self) -> None:
        """Bring the bar (or a plain line) up to date."""
        if not self.display.bars:
            return
        done = min(int(self.num_timesteps), self.target) - self.start
        speed = done / max(time.monotonic() - self._started, 1e-9)
        if self._bar is not None:
            self._bar.update(self._task, completed=done, learning=self.learning(), speed=f"{speed:,.0f} steps/s")
            return
        left = (self.target - self.start - done) / speed if speed > 0 else float("nan")
        eta = _duration(left) if np.isfinite(left) else "?"
        self.display.note(f"step {self.start + done:,}/{self.target:,} ({done / (self.target - self.start):.0%})  "
                          f"{self.learning()}  {speed:,.0f} steps/s  ETA {eta}")

    def learning(self) -> str:
        """Mean return and capture rate of the recent episodes, or a wait note before the first one ends."""
        if not self.stats.returns:
            return "no episode finished yet"
        return f"return {np.mean(self.stats.returns):.1f}  capture {np.mean(self.stats.captures):.0%}"

    def close(self) -> None:
        """Show the last state and release the terminal (safe to call twice, and after an interruption)."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            self.show()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def training_summary(record: RunRecord, runs_root: Path, capture_rate: float | None, config_dir: Path,
                     n_envs: int) -> str:
    """The closing lines: status, steps, time, last capture rate, latest checkpoint, and after an interruption
    the exact command that continues the run to its target."""
    seconds = (record.heartbeat_at - record.created_at).total_seconds()
    steps = record.timesteps
    lines = [f"{record.status.capitalize()}: {record.run_name} at step {steps.current:,} of {steps.target:,} "
             f"({steps.current - steps.start:,} trained in {_duration(seconds)})"]
    if capture_rate is not None:
        lines.append(f"Capture rate (recent episodes): {capture_rate:.0%}")
    checkpoints = [e for e in record.checkpoints if CHECKPOINT_PATTERN.fullmatch(Path(e.file).name)]
    if checkpoints:
        lines.append(f"Latest checkpoint: {runs_root / max(checkpoints, key=lambda e: e.step).file}")
    if record.status == "interrupted" and checkpoints and steps.current < steps.target:
        lines.append("Resume: " + resume_command(record, runs_root, config_dir, n_envs))
    return "\n".join(lines)


def resume_command(record: RunRecord, runs_root: Path, config_dir: Path, n_envs: int) -> str:
    """`mission-gym train` branching from the run's latest checkpoint for the timesteps it still owed."""
    args = ["mission-gym", "train", "--parent-checkpoint", record.run_name, "--branch-name", "resumed",
            "--timesteps", str(record.timesteps.target - record.timesteps.current), "--n-envs", str(n_envs)]
    if Path(runs_root) != Path("runs"):
        args += ["--runs-dir", str(runs_root)]
    if Path(config_dir) != Path("configs"):
        args += ["--config-dir", str(config_dir)]
    return shlex.join(args)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
