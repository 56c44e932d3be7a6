"""What a branch changed against its parent: hyperparameters, config files and keys, unit counts.

Config snapshots are compared file by file through the SHA-256 in each run record, so only files whose
hash differs are opened and YAML-parsed (and cached per file content): equal configs cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from mission_gym.dashboard.data import RootCache
from mission_gym.runs.index import file_key
from mission_gym.runs.layout import CONFIG_SNAPSHOT_DIR
from mission_gym.runs.record import RunRecord

Change = tuple[str, str, str]  # (what, parent's value, child's value); "—" where one side has none
ABSENT = "—"
_UNIT_COUNTS = ("attackers", "defenders")


def run_changes(root: Path, child: RunRecord, parent: RunRecord, cache: RootCache) -> list[Change]:
    """Every difference of `child` against `parent`: hyperparameters, then config keys, then unit counts."""
    changes = hyperparameter_changes(parent.hyperparameters, child.hyperparameters)
    for name in sorted(set(parent.config.files) | set(child.config.files)):
        if name not in parent.config.files or name not in child.config.files:
            changes.append((name, _presence(parent, name), _presence(child, name)))
        elif parent.config.files[name] != child.config.files[name]:
            before = _flat_config(root / parent.run_name / CONFIG_SNAPSHOT_DIR / name, cache)
            after = _flat_config(root / child.run_name / CONFIG_SNAPSHOT_DIR / name, cache)
            changes += _dict_changes(before, after, f"{name}: ") or [(name, "differs", "differs")]
    for unit in _UNIT_COUNTS:
        before, after = parent.spaces.counts.get(unit), child.spaces.counts.get(unit)
        if before != after:
            changes.append((unit, _show(before), _show(after)))
    return changes


def hyperparameter_changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """The keys whose values differ, by name (a search member whose run folder was pruned has only these)."""
    return _dict_changes(before, after, "")


def _presence(record: RunRecord, file_name: str) -> str:
    return "present" if file_name in record.config.files else ABSENT


def _dict_changes(before: dict[str, Any], after: dict[str, Any], prefix: str) -> list[Change]:
    return [
        (f"{prefix}{key}", _show(before.get(key, ABSENT)), _show(after.get(key, ABSENT)))
        for key in sorted(set(before) | set(after))
        if before.get(key, ABSENT) != after.get(key, ABSENT)
    ]


def _flat_config(path: Path, cache: RootCache) -> dict[str, Any]:
    """A YAML file flattened to dotted key paths (`win_bonus.weight`); an unreadable file to one entry
    saying why, so the difference still shows."""
    key = file_key(path)
    cached = cache.configs.get(path)
    if key is not None and cached is not None and cached[0] == key:
        return cached[1]
    try:
        flat = dict(_flatten(yaml.safe_load(path.read_text(encoding="utf-8")), ""))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        flat = {"(file)": f"unreadable: {type(exc).__name__}"}
    if key is not None:
        cache.configs[path] = (key, flat)
    return flat


def _flatten(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix or "(value)", value


def _show(value: Any) -> str:
    """Short text of a value: `0.0003`, `150`, `[1, 2]`."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return ABSENT if value is None else str(value)


def change_text(changes: list[Change], limit: int | None = None) -> str:
    """`learning_rate 0.0003 → 0.0001 · reward.yaml: win_bonus.weight 200 → 150`, the first `limit` of them."""
    shown = changes if limit is None else changes[:limit]
    text = " · ".join(f"{what} {before} → {after}" for what, before, after in shown)
    more = len(changes) - len(shown)
    return f"{text} · +{more} more" if more > 0 else text
