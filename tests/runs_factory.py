"""Fake run folders for tests: a real run.json (docs/design.md schema) and small real checkpoint files.

from runs_factory import make_run, make_broken_run, make_spaces
make_run(tmp_path, "root-run", steps=[1000, 2000])
make_run(tmp_path, "child", parent="root-run", status="running", heartbeat_age_s=5)
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mission_gym.runs.checkpoints import relative_to_runs
from mission_gym.runs.layout import RUN_RECORD_FILE, RunPaths
from mission_gym.runs.record import (
    CheckpointEntry,
    ConfigRef,
    Git,
    ParentCheckpoint,
    RunRecord,
    Spaces,
    Timesteps,
    load_record,
    save_record,
    sha256_file,
    utc_now,
)

ACTIONS = ["STOP", "N", "NE", "E", "SE", "S", "SW", "W", "NW"]
ATTACKER_TYPES = ["UGV_A", "UGV_B", "UAV_A", "UAV_B"]
ATTACKER_FEATURES = ["x", "y", "heading_cos", "heading_sin", "speed", "integrity", "tag_cooldown",
                     "scan_cooldown", "altitude", "disabled"]  # fmt: skip
DEFENDER_FEATURES = ["dx", "dy", "heading_cos", "heading_sin", "integrity", "visible"]


def make_spaces(attackers: int = 4, defenders: int = 2, actions: Sequence[str] = ACTIONS) -> dict[str, Any]:
    """A `spaces` record shaped like the real env's: per-unit feature groups, one action list per attacker."""
    features = [f"attacker_{i}.{f}" for i in range(attackers) for f in ATTACKER_FEATURES]
    features += [f"defender_{j}.{f}" for j in range(defenders) for f in DEFENDER_FEATURES]
    features += ["objective.dx", "objective.dy", "objective.radius", "time_remaining", "capture_progress"]
    types = [ATTACKER_TYPES[i % len(ATTACKER_TYPES)] for i in range(attackers)]
    return {
        "observation": {"type": "Box", "shape": [len(features)], "feature_names": features},
        "action": {"type": "MultiDiscrete", "nvec": [len(actions)] * attackers,
                   "action_names": [list(actions) for _ in range(attackers)]},
        "counts": {"attackers": attackers, "defenders": defenders,
                   "actions_per_unit_type": {t: list(actions) for t in sorted(set(types))}},
    }  # fmt: skip


def make_run(
    runs_root: Path,
    name: str,
    parent: str | None = None,
    status: str = "finished",
    steps: Sequence[int] = (),
    heartbeat_age_s: float = 3600.0,
    created_at: dt.datetime | None = None,
    parent_step: int | None = None,
    spaces: dict[str, Any] | None = None,
    final_model: bool = False,
    notes: str = "",
) -> Path:
    """Write `runs_root/name` with real checkpoint files for `steps` and a valid run.json; return the folder.

    With `parent`, the run branches from that run's checkpoint at `parent_step` (default: its latest).
    """
    paths = RunPaths.of(runs_root, name)
    run_dir = paths.root
    paths.checkpoints_dir.mkdir(parents=True)
    heartbeat_at = utc_now() - dt.timedelta(seconds=heartbeat_age_s)
    model_paths = [(paths.checkpoint(s), s) for s in steps]
    if final_model:
        model_paths.append((paths.final_model, max(steps, default=0)))
    for path, step in model_paths:
        path.write_bytes(f"{name}:{step}:".encode() * 64)
    parent_checkpoint, root, start = None, name, 0
    if parent is not None:
        parent_record = load_record(runs_root / parent)
        chosen = next(e for e in reversed(parent_record.checkpoints) if parent_step is None or e.step == parent_step)
        parent_checkpoint = ParentCheckpoint(path=chosen.file, step=chosen.step, sha256=chosen.sha256)
        root, start = parent_record.root_ancestor, chosen.step
    record = RunRecord(
        run_name=name,
        created_at=created_at or heartbeat_at - dt.timedelta(seconds=60),
        heartbeat_at=heartbeat_at,
        status=status,
        parent_run=parent,
        parent_checkpoint=parent_checkpoint,
        root_ancestor=root,
        notes=notes,
        git=Git(commit="0" * 40, dirty=False),
        config=ConfigRef(hash="c" * 64, files={"scenario.yaml": "d" * 64}),
        spaces=Spaces(**(spaces or make_spaces())),
        hyperparameters={"learning_rate": 0.0003, "n_steps": 128},
        device="cpu",
        timesteps=Timesteps(start=start, target=start + 10_000, current=max(steps, default=start)),
        checkpoints=[checkpoint_entry(path, runs_root, step) for path, step in model_paths],
        pid=os.getpid(),
        host="test-host",
    )
    save_record(run_dir, record)
    return run_dir


def checkpoint_entry(path: Path, runs_root: Path, step: int) -> CheckpointEntry:
    """The run-record entry of a model file written by hand (hashes the file)."""
    return CheckpointEntry(file=relative_to_runs(path, runs_root), step=step, sha256=sha256_file(path))


def update_record(run_dir: Path, **changes: Any) -> RunRecord:
    """Rewrite a fake run's run.json with `changes` (validated), as the run's own process would."""
    record = RunRecord.model_validate({**load_record(run_dir).model_dump(), **changes})
    save_record(run_dir, record)
    return record


def make_broken_run(runs_root: Path, name: str, run_json: str | None = None, age_s: float = 3600.0) -> Path:
    """A run folder without a valid record (`run_json` text, or no run.json), last modified `age_s` ago."""
    run_dir = runs_root / name
    run_dir.mkdir(parents=True)
    if run_json is not None:
        (run_dir / RUN_RECORD_FILE).write_text(run_json)
    backdate(run_dir, age_s)
    return run_dir


def backdate(path: Path, age_s: float) -> None:
    """Set the mtime of `path` and everything under it to `age_s` seconds ago."""
    moment = utc_now().timestamp() - age_s
    for item in [path, *path.rglob("*")]:
        os.utime(item, (moment, moment), follow_symlinks=False)


def _fake_parent_checkpoint(parent: str) -> ParentCheckpoint:
    return ParentCheckpoint(path=RunPaths(Path(parent)).checkpoint(1000).as_posix(), step=1000, sha256="0" * 64)


def fake_record(
    name: str,
    parent: str | None = None,
    root: str | None = None,
    created_at: dt.datetime | None = None,
    heartbeat_at: dt.datetime | None = None,
    status: str = "finished",
) -> RunRecord:
    """An in-memory record (no files) for lineage logic; `root` defaults to `parent` or the run itself."""
    created_at = created_at or utc_now() - dt.timedelta(hours=1)
    return RunRecord(
        run_name=name,
        created_at=created_at,
        heartbeat_at=heartbeat_at or created_at,
        status=status,
        parent_run=parent,
        parent_checkpoint=_fake_parent_checkpoint(parent) if parent else None,
        root_ancestor=root or parent or name,
        git=Git(),
        config=ConfigRef(hash="c" * 64, files={}),
        spaces=Spaces(**make_spaces()),
        device="cpu",
        timesteps=Timesteps(start=0, target=1000, current=1000),
        pid=1,
        host="test-host",
    )
