"""Fixtures shared by the test modules.

``config_dir(edit)`` copies the repository's ``configs/`` into a fresh temporary folder and applies YAML edits:

    path = config_dir({
        "world.yaml": {"physics.max_episode_seconds": 5.0},           # dotted key path -> new value
        "scenario.yaml": {"attackers[0].spawn.x": 40.0, "defenders": []},
        "units_defenders.yaml": lambda data: data["unit_types"].pop("DEF_UGV"),  # or any callable(data)
        "eval_seeds.txt": "1\\n2\\n",                                    # a string replaces the file
    })

An edited file is re-dumped by PyYAML (comments go); untouched files stay byte-for-byte copies.
"""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
REPO_CONFIGS = REPO_ROOT / "configs"

# One file's edit: {key path: value}, a callable that changes the parsed data in place, or the new text.
FileEdit = Mapping[str, Any] | Callable[[Any], Any] | str
ConfigEdit = Mapping[str, FileEdit]

_KEY_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def set_key_path(data: Any, path: str, value: Any) -> None:
    """Set `data` at a key path like ``attackers[0].spawn.x`` (mappings by key, lists by [index])."""
    parts = [int(index) if index else key for key, index in _KEY_PART.findall(path)]
    target = data
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value


def write_config_dir(dest: Path, edit: ConfigEdit | None = None) -> Path:
    """Copy ``configs/`` to `dest` (which must not exist) and apply `edit` (see the module docstring)."""
    shutil.copytree(REPO_CONFIGS, dest)
    for name, change in (edit or {}).items():
        path = dest / name
        if isinstance(change, str):
            path.write_text(change)
            continue
        data = yaml.safe_load(path.read_text())
        if callable(change):
            change(data)
        else:
            for key, value in change.items():
                set_key_path(data, key, value)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[ConfigEdit | None], Path]:
    """A factory: ``config_dir(edit=None)`` returns a new edited copy of ``configs/`` (usable by module fixtures)."""
    root = tmp_path_factory.mktemp("configs")
    counter = itertools.count()

    def make(edit: ConfigEdit | None = None) -> Path:
        return write_config_dir(root / f"c{next(counter)}", edit)

    return make


def obstacle_clearances(obstacles: Sequence[Any], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Vectorized `mission_gym.config.obstacle_clearance`: distance of each point (x, y) to each obstacle's
    boundary (negative inside), shape (*x.shape, len(obstacles)). Independent of the kernel's geometry."""
    x, y = np.asarray(x, dtype=float)[..., None], np.asarray(y, dtype=float)[..., None]
    out = np.empty(np.broadcast_shapes(x.shape, y.shape)[:-1] + (len(obstacles),))
    for k, ob in enumerate(obstacles):
        dx, dy = x[..., 0] - ob.x, y[..., 0] - ob.y
        if ob.kind == "circle":
            out[..., k] = np.hypot(dx, dy) - ob.radius
            continue
        a = np.radians(ob.angle_deg)
        lx, ly = dx * np.cos(a) + dy * np.sin(a), -dx * np.sin(a) + dy * np.cos(a)
        qx, qy = np.abs(lx) - ob.width / 2, np.abs(ly) - ob.height / 2
        out[..., k] = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
    return out
