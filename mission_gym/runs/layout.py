"""The run folder's layout: the one place that names the files and folders under `runs/<name>/`.

    runs/
      dashboard.html                  the unified dashboard of every run
      dashboard-<lineage>.html        a lineage-filtered dashboard ("active" or a run name)
      <name>/
        run.json                      the run record (record.py)
        configs/                      snapshot of the config files the run trained on
        checkpoints/ppo_mission_<N>_steps.zip
        final_model.zip               the model when training ended (same step as the last checkpoint)
        metrics.jsonl                 one line of training statistics per rollout
        tensorboard/                  TensorBoard logs
        evaluations/<model>.<key>.json .md .gif   evaluation reports, named after the model file they evaluate
                                        and the key of what they measured (older reports: <model>.json)

Pure names and paths: nothing here reads or writes the disk.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

RUN_RECORD_FILE = "run.json"
CONFIG_SNAPSHOT_DIR = "configs"
CHECKPOINTS_DIR = "checkpoints"
FINAL_MODEL_FILE = "final_model.zip"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
EVALUATIONS_DIR = "evaluations"
COMPARISONS_DIR = "comparisons"  # inside evaluations/
DASHBOARD_FILE = "dashboard.html"
# The older system's run record: a folder holding it is a (broken) run folder, never a user's own folder.
LEGACY_LINEAGE_FILE = "lineage.json"
# A branch search keeps its record and summary in runs/searches/<name>/ (written by mission_gym.search).
SEARCHES_DIR = "searches"
SEARCH_RECORD_FILE = "search.json"
SEARCH_SUMMARY_FILE = "summary.md"

CHECKPOINT_PATTERN = re.compile(r"^ppo_mission_(\d+)_steps\.zip$")
CHECKPOINT_NAME_HELP = "ppo_mission_<N>_steps.zip"  # how error messages spell the pattern
# The step in a name the user typed, with or without `.zip` (to suggest the checkpoints nearest to it).
STEP_IN_NAME = re.compile(r"ppo_mission_(\d+)_steps")
# The temp file of an atomic write (`.<name>.<random>.tmp`): never data; a killed writer leaves it behind.
TEMP_FILE_PATTERN = re.compile(r"^\..+\.tmp$")

# Any of these in a folder without a valid run.json marks a broken run; a non-empty folder with none of them
# is something else a user keeps there and is left alone.
RUN_MARKERS = frozenset({RUN_RECORD_FILE, CONFIG_SNAPSHOT_DIR, CHECKPOINTS_DIR, FINAL_MODEL_FILE, METRICS_FILE,
                         TENSORBOARD_DIR, EVALUATIONS_DIR, LEGACY_LINEAGE_FILE})


def checkpoint_file_name(step: int) -> str:
    """`ppo_mission_<step>_steps.zip`, the name every checkpoint is saved under."""
    return f"ppo_mission_{step}_steps.zip"


def checkpoint_step(path: str | os.PathLike[str]) -> int:
    """The global timestep in a checkpoint's file name; ValueError for any other file name."""
    match = CHECKPOINT_PATTERN.fullmatch(Path(path).name)
    if match is None:
        raise ValueError(f"{Path(path).name!r} is not a checkpoint file name ({CHECKPOINT_NAME_HELP})")
    return int(match.group(1))


def dashboard_file(runs_root: str | os.PathLike[str], lineage: str | None = None) -> Path:
    """Where the unified dashboard of a runs folder is written by default; a lineage-filtered page
    (`lineage` "active" or a run name) gets its own file, so a training run's refresh of the all-runs
    page never overwrites it."""
    if lineage is None:
        return Path(runs_root) / DASHBOARD_FILE
    return Path(runs_root) / f"{Path(DASHBOARD_FILE).stem}-{lineage}{Path(DASHBOARD_FILE).suffix}"


@dataclass(frozen=True)
class RunPaths:
    """Every path of one run, under `root` (the run folder; a bare run name gives runs-root-relative paths)."""

    root: Path

    @classmethod
    def of(cls, runs_root: str | os.PathLike[str], run_name: str) -> RunPaths:
        """The paths of run `run_name` in `runs_root`."""
        return cls(Path(runs_root) / run_name)

    @classmethod
    def of_model(cls, model: str | os.PathLike[str]) -> RunPaths:
        """The run folder a model file would belong to: `<run>/checkpoints/<file>` or `<run>/<file>`."""
        parent = Path(model).parent
        return cls(parent.parent if parent.name == CHECKPOINTS_DIR else parent)

    @property
    def record(self) -> Path:
        return self.root / RUN_RECORD_FILE

    @property
    def config_snapshot(self) -> Path:
        return self.root / CONFIG_SNAPSHOT_DIR

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / CHECKPOINTS_DIR

    @property
    def final_model(self) -> Path:
        return self.root / FINAL_MODEL_FILE

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def tensorboard(self) -> Path:
        return self.root / TENSORBOARD_DIR

    @property
    def evaluations_dir(self) -> Path:
        return self.root / EVALUATIONS_DIR

    def checkpoint(self, step: int) -> Path:
        """The checkpoint file saved at global timestep `step`."""
        return self.checkpoints_dir / checkpoint_file_name(step)

    def evaluation(self, model: str | os.PathLike[str], key: str, suffix: str = ".json") -> Path:
        """The evaluation report of a model file (`.json`, `.md` or `.gif`), named after the model and the
        key of what it measured (`<model-stem>.<key>.json`), so a different measurement never replaces it."""
        return self.evaluations_dir / f"{Path(model).stem}.{key}{suffix}"

    def comparison(self, model: str | os.PathLike[str], against: str, suffix: str = ".json") -> Path:
        """A sequential comparison of a model file with another policy (`.json` or `.md`); in a folder of its own,
        so it is never taken for an evaluation report."""
        return self.evaluations_dir / COMPARISONS_DIR / f"{Path(model).stem}.vs-{against}{suffix}"
