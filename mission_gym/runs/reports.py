"""Reading a run's evaluation reports (`<run>/evaluations/<model>.<key>.json`, written by mission_gym.evaluation).

A report's name holds the key of what it measured (`report_key`), so a quick `--episodes 2` evaluation never
replaces the 100-seed one. One rule says which report is a run's latest evaluation, for every view (the
dashboard, Dagster's sensor and lineage view): among the reports of the newest model (judged by the step in
the report's file name, with `final_model` after every checkpoint: it is written last, at the step of the
last checkpoint) the most complete one: on the run's own config snapshot, with the most episodes,
deterministic, then the newest file. File names, not file times, choose the model: re-evaluating an old
checkpoint must not make it the latest. A report of a checkpoint pruned since still counts, as the
evaluation it is. Older reports named `<model>.json` read the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mission_gym.runs.layout import CONFIG_SNAPSHOT_DIR, FINAL_MODEL_FILE, RunPaths, checkpoint_step
from mission_gym.runs.record import read_json

REPORT_SUFFIX = ".json"
KEY_LENGTH = 12
_KEYED_NAME = re.compile(rf"(?P<model>.+)\.[0-9a-f]{{{KEY_LENGTH}}}")


def report_key(checkpoint: str, seeds_hash: str, episodes: int, deterministic: bool, config_hash: str) -> str:
    """The short hash of what a report measured: the same measurement gets the same key (and file)."""
    fields = [checkpoint, seeds_hash, episodes, deterministic, config_hash]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:KEY_LENGTH]


def report_model_stem(report: Path) -> str:
    """The stem of the model file a report evaluated, from the report's name (keyed or not)."""
    match = _KEYED_NAME.fullmatch(report.stem)
    return match.group("model") if match else report.stem


def report_rank(report: Path) -> tuple[int, str]:
    """Newest model last: the checkpoint step in the name, final_model after every checkpoint, others first."""
    model = report_model_stem(report)
    if model == Path(FINAL_MODEL_FILE).stem:
        return (2**63, model)
    try:
        return (checkpoint_step(f"{model}.zip"), model)
    except ValueError:
        return (-1, model)


def report_paths(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Every evaluation report file of the run (none when it has no evaluations folder)."""
    try:
        entries = list(RunPaths(Path(run_dir)).evaluations_dir.iterdir())
    except OSError:
        return []
    # A leading dot marks the temporary file of an atomic write in progress.
    return [p for p in entries if p.suffix == REPORT_SUFFIX and not p.name.startswith(".")]


def latest_report_path(run_dir: str | os.PathLike[str], reports: list[Path] | None = None) -> Path | None:
    """The run's latest evaluation report file (see the module docstring), or None when it has none;
    `reports`: the run's `report_paths`, when the caller has just listed them."""
    reports = report_paths(run_dir) if reports is None else reports
    if not reports:
        return None
    newest_model = max(map(report_rank, reports))
    candidates = [p for p in reports if report_rank(p) == newest_model]
    if len(candidates) == 1:  # the usual case, chosen without opening the file (the dashboard's cache relies on it)
        return candidates[0]
    return max(candidates, key=lambda p: _completeness(p, Path(run_dir).name))


def _completeness(report: Path, run_name: str) -> tuple[bool, float, bool, int]:
    """Own config snapshot, episodes, deterministic, file time: larger is more complete (unreadable: least)."""
    try:
        content = read_report(report)
        mtime = report.stat().st_mtime_ns
    except (OSError, ValueError):
        return (False, -1.0, False, -1)
    config_dir = Path(str(content.get("config_dir", "")))
    own = config_dir.name == CONFIG_SNAPSHOT_DIR and config_dir.parent.name == run_name
    episodes = content.get("episodes")
    count = float(episodes) if isinstance(episodes, int | float) and not isinstance(episodes, bool) else -1.0
    return (own, count, content.get("deterministic") is True, mtime)


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
