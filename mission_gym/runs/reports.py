"""Reading a run's evaluation reports (`<run>/evaluations/<model>.json`, written by mission_gym.evaluation).

One rule says which report is a run's latest evaluation, for every view (the dashboard, Dagster's
sensor and lineage view): the report of the newest model, judged by the step in the report's file name,
with `final_model` after every checkpoint (it is written last, at the step of the last checkpoint). File
names, not file times: re-evaluating an old checkpoint must not make it the latest. A report of a
checkpoint pruned since still counts, as the evaluation it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mission_gym.runs.layout import FINAL_MODEL_FILE, RunPaths, checkpoint_step
from mission_gym.runs.record import read_json

REPORT_SUFFIX = ".json"


def report_rank(report: Path) -> tuple[int, str]:
    """Newest last: the checkpoint step in the name, final_model after every checkpoint, others first."""
    if report.stem == Path(FINAL_MODEL_FILE).stem:
        return (2**63, report.name)
    try:
        return (checkpoint_step(f"{report.stem}.zip"), report.name)
    except ValueError:
        return (-1, report.name)


def report_paths(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Every evaluation report file of the run (none when it has no evaluations folder)."""
    try:
        entries = list(RunPaths(Path(run_dir)).evaluations_dir.iterdir())
    except OSError:
        return []
    # A leading dot marks the temporary file of an atomic write in progress.
    return [p for p in entries if p.suffix == REPORT_SUFFIX and not p.name.startswith(".")]


def latest_report_path(run_dir: str | os.PathLike[str]) -> Path | None:
    """The run's latest evaluation report file (see the module docstring), or None when it has none."""
    reports = report_paths(run_dir)
    return max(reports, key=report_rank, default=None)


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An evaluation report's content; OSError when unreadable, ValueError when not a strict JSON object."""
    report = read_json(path)
    if not isinstance(report, dict):
        raise ValueError("not a JSON object")
    return report


@dataclass(frozen=True)
class EvaluationFile:
    """One evaluation report on disk and its content."""

    path: Path
    run_name: str
    report: dict[str, Any]

    @property
    def checkpoint(self) -> str:
        """The evaluated model, relative to the runs root."""
        return str(self.report["checkpoint"])

    @property
    def step(self) -> int:
        return int(self.report["step"])


def latest_evaluation(run_dir: str | os.PathLike[str]) -> EvaluationFile | None:
    """The run's latest evaluation report, read; None when it has none or that report is unreadable."""
    path = latest_report_path(run_dir)
    if path is None:
        return None
    try:
        return EvaluationFile(path, Path(run_dir).name, read_report(path))
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
