"""Can a parent checkpoint be loaded with the current configs? Compares the `spaces` of two run records.

The MLP reads its observation vector by position and emits one action per unit, so everything matters:
the shapes, the order and meaning of the named features and actions, and the unit counts behind them.
The entity policy's weights do not depend on the unit counts: for its checkpoints a change of the numbers of
attackers or defenders, with the same unit types, action lists and per-unit features, is a third answer,
compatible by transfer. A parent without a space record cannot be checked and is refused rather than
assumed compatible.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mission_gym.errors import CompatibilityError
from mission_gym.runs.layout import CONFIG_SNAPSHOT_DIR

_MAX_LISTED = 8
_SCRATCH_COMMAND = "python -m mission_gym.scripts.train_ppo --run-name NEW-NAME ..."
_KNOWN_OBS_KEYS = {"type", "shape", "feature_names"}
_KNOWN_ACTION_KEYS = {"type", "nvec", "action_names"}

SpacesLike = Mapping[str, Any] | BaseModel


@dataclass(frozen=True)
class SpaceMismatch:
    """One space that differs: the signatures shown side by side and what exactly changed."""

    title: str
    parent: dict[str, Any]
    current: dict[str, Any]
    details: tuple[str, ...]


@dataclass(frozen=True)
class CompatReport:
    """The outcome of comparing a parent run's spaces with the current config's."""

    mismatches: tuple[SpaceMismatch, ...] = ()
    count_changes: tuple[str, ...] = ()
    parent_missing: bool = False
    parent_run: str | None = None
    config_dir: str = "configs"  # the directory the current configs came from (--config-dir), as the user typed it
    transfer_changes: tuple[str, ...] = ()  # e.g. "defenders 2 → 3", when unit counts are all that changed
    policy: str = "mlp"

    @property
    def ok(self) -> bool:
        """The spaces are identical."""
        return not (self.mismatches or self.count_changes or self.parent_missing)

    @property
    def by_transfer(self) -> bool:
        """Only unit counts changed and the parent is an entity policy, whose weights carry over."""
        return not self.ok and self.policy == "entity" and bool(self.transfer_changes)

    @property
    def accepted(self) -> bool:
        """The parent can be loaded with the current configs (as it is, or by transfer)."""
        return self.ok or self.by_transfer

    def text(self) -> str:
        """The report users read: what differs, the likely cause, and what to do."""
        if self.ok:
            return "Observation and action spaces match the parent checkpoint."
        if self.by_transfer:
            return f"{'; '.join(self.transfer_changes)}; weights transfer: entity policy"
        if self.parent_missing:
            return "\n".join([
                f"The parent checkpoint{self._of_run} has no space record (no `spaces` in its run.json), so its "
                "compatibility with the current configs cannot be checked and it is not loaded.",
                "Branch from a run recorded by this version of Mission Gym, or train from scratch:",
                f"  {_SCRATCH_COMMAND}",
            ])  # fmt: skip
        lines = [line for m in self.mismatches for line in _mismatch_lines(m)]
        return "\n".join(lines + self._cause_lines() + self._advice_lines())

    @property
    def _of_run(self) -> str:
        return f" (run {self.parent_run})" if self.parent_run else ""

    def _cause_lines(self) -> list[str]:
        if self.count_changes:
            heading = "This usually means you changed:" if self.mismatches else "Unit count mismatch! You changed:"
            return [heading, *(f"  - {change}" for change in self.count_changes)]
        return [
            "This usually means you changed:",
            "  - the observation or action layout in code (the parent was trained by a different version)",
        ]

    def _advice_lines(self) -> list[str]:
        snapshot = (f"runs/{self.parent_run}/{CONFIG_SNAPSHOT_DIR}/" if self.parent_run
                    else f"the parent run's {CONFIG_SNAPSHOT_DIR}/ snapshot")
        lines = [
            f"The parent checkpoint{self._of_run} cannot be loaded with the current configs. Either:",
            f"  - train from scratch: {_SCRATCH_COMMAND}",
            f"  - or restore {self.config_dir}/scenario.yaml and {self.config_dir}/units_*.yaml to the parent's "
            f"({snapshot})",
        ]
        if self.transfer_changes:  # an MLP parent: only the counts changed
            lines.append("Only unit counts changed: an entity-policy run could branch here "
                         "(train_ppo --policy entity).")
        elif self.policy == "entity":
            lines.append("The entity policy transfers across unit counts only: the unit types, their action lists "
                         "and the per-unit features must stay the parent's.")
        return lines


def _mismatch_lines(mismatch: SpaceMismatch) -> list[str]:
    return [
        mismatch.title,
        f"  Parent: {json.dumps(mismatch.parent)}",
        f"  Current: {json.dumps(mismatch.current)}",
        *(f"  {detail}" for detail in mismatch.details),
    ]


def compare_spaces(parent: SpacesLike | None, current: SpacesLike, *, parent_run: str | None = None,
                   config_dir: str | os.PathLike[str] = "configs", policy: str = "mlp") -> CompatReport:
    """Compare two `spaces` records (run.json's `spaces`: observation, action, counts); `config_dir` is where the
    current configs came from, named in the advice; `policy` is the parent's ("mlp" or "entity")."""
    config_dir = Path(config_dir).as_posix()
    current_d = _as_dict(current)
    if not current_d:
        raise ValueError("the current config has no space record to compare with")
    parent_d = _as_dict(parent)
    if not parent_d:
        return CompatReport(parent_missing=True, parent_run=parent_run, config_dir=config_dir, policy=policy)
    obs_p, obs_c = parent_d.get("observation") or {}, current_d.get("observation") or {}
    act_p, act_c = parent_d.get("action") or {}, current_d.get("action") or {}
    mismatches = [
        m
        for m in (
            _space_mismatch("Observation space mismatch!", obs_p, obs_c, ("type", "shape"), _feature_details),
            _space_mismatch("Action space mismatch!", act_p, act_c, ("type", "nvec"), _action_details),
        )
        if m is not None
    ]
    counts = _count_changes(parent_d.get("counts") or {}, current_d.get("counts") or {}, config_dir)
    return CompatReport(tuple(mismatches), tuple(counts), parent_run=parent_run, config_dir=config_dir,
                        transfer_changes=_transfer_changes(parent_d, current_d), policy=policy)


def check_compatible(parent: SpacesLike | None, current: SpacesLike, *, parent_run: str | None = None,
                     config_dir: str | os.PathLike[str] = "configs", policy: str = "mlp") -> CompatReport:
    """Return the report when the parent can be loaded (identical spaces, or by transfer for an entity policy);
    raise CompatibilityError with its text otherwise."""
    report = compare_spaces(parent, current, parent_run=parent_run, config_dir=config_dir, policy=policy)
    if not report.accepted:
        raise CompatibilityError(report.text())
    return report


def _transfer_changes(parent: Mapping[str, Any], current: Mapping[str, Any]) -> tuple[str, ...]:
    """The unit-count changes ("defenders 2 → 3") when nothing else differs: the same unit types with the same
    action lists, the same features per attacker, defender and objective, the same space types and bounds.
    Empty otherwise, and when the counts are equal."""
    p_counts, c_counts = parent.get("counts") or {}, current.get("counts") or {}
    same_units = p_counts.get("actions_per_unit_type") == c_counts.get("actions_per_unit_type")
    p_kinds, c_kinds = _features_per_kind(parent), _features_per_kind(current)
    same_features = all(p_kinds[k] == c_kinds[k] or None in (p_kinds[k], c_kinds[k]) for k in p_kinds)
    same_rest = all(_without(parent.get(k) or {}, drop) == _without(current.get(k) or {}, drop)
                    for k, drop in (("observation", {"shape", "feature_names"}), ("action", {"nvec", "action_names"})))
    if not (same_units and same_features and same_rest):
        return ()
    return tuple(f"{side} {p_counts.get(side)} → {c_counts.get(side)}" for side in ("attackers", "defenders")
                 if p_counts.get(side) != c_counts.get(side))


def _features_per_kind(spaces: Mapping[str, Any]) -> dict[str, list[str] | None]:
    """The features of the first attacker and defender and the objective's (None: no unit of that kind)."""
    names = list((spaces.get("observation") or {}).get("feature_names") or [])
    kinds: dict[str, list[str] | None] = {"attacker_0": None, "defender_0": None}
    objective = []
    for name in names:
        prefix, _, feature = name.partition(".")
        if prefix in kinds:
            kinds[prefix] = [*(kinds[prefix] or []), feature]
        elif not re.fullmatch(r"(attacker|defender)_\d+", prefix):
            objective.append(name)
    return {**kinds, "objective": objective}


def _without(signature: Mapping[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in signature.items() if k not in keys}


def _as_dict(spaces: SpacesLike | None) -> dict[str, Any]:
    if spaces is None:
        return {}
    return spaces.model_dump() if isinstance(spaces, BaseModel) else dict(spaces)


def _space_mismatch(
    title: str,
    parent: Mapping[str, Any],
    current: Mapping[str, Any],
    signature_keys: tuple[str, ...],
    describe: Callable[[Mapping[str, Any], Mapping[str, Any]], list[str]],
) -> SpaceMismatch | None:
    """A SpaceMismatch when anything differs; `signature_keys` are what the Parent/Current lines show."""
    if parent == current:
        return None
    handled = _KNOWN_OBS_KEYS | _KNOWN_ACTION_KEYS
    # Keys beyond the documented ones (e.g. Box bounds) still decide whether SB3 can load the policy.
    extra = [
        f"{key}: {parent.get(key)!r} -> {current.get(key)!r}"
        for key in sorted(set(parent) | set(current))
        if key not in handled and parent.get(key) != current.get(key)
    ]
    return SpaceMismatch(
        title,
        {key: parent.get(key) for key in signature_keys},
        {key: current.get(key) for key in signature_keys},
        tuple(describe(parent, current) + extra),
    )


def _feature_details(parent: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Which named observation features were added, removed or moved."""
    old, new = list(parent.get("feature_names") or []), list(current.get("feature_names") or [])
    if old == new:
        return []
    added = [n for n in new if n not in set(old)]
    removed = [n for n in old if n not in set(new)]
    details = []
    if added:
        details.append(f"Features added: {_compact(added, old)}")
    if removed:
        details.append(f"Features removed: {_compact(removed, new)}")
    if not added and not removed:
        index = next(i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b)
        details.append(f"Features reordered: position {index} was {old[index]!r}, is now {new[index]!r}")
    return details


def _compact(names: list[str], other_side: list[str]) -> str:
    """`defender_2.* (10), attacker_0.speed`: a whole `prefix.` group absent on the other side collapses."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.split(".", 1)[0] if "." in name else name, []).append(name)
    other_prefixes = {n.split(".", 1)[0] for n in other_side if "." in n}
    items: list[str] = []
    for prefix, members in groups.items():
        whole = "." in members[0] and prefix not in other_prefixes
        items += [f"{prefix}.* ({len(members)})"] if whole else members
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def _action_details(parent: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Which controlled units appeared or vanished and whose action lists changed."""
    old, new = list(parent.get("action_names") or []), list(current.get("action_names") or [])
    details = []
    if len(old) != len(new):
        details.append(f"Controlled units: {len(old)} -> {len(new)}")
    changed = [i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b]
    details += [f"Unit {i} actions: {_list_diff(old[i], new[i])}" for i in changed[:_MAX_LISTED]]
    return details


def _list_diff(old: list[str], new: list[str]) -> str:
    added = [n for n in new if n not in old]
    removed = [n for n in old if n not in new]
    parts = ([f"added {', '.join(added)}"] if added else []) + ([f"removed {', '.join(removed)}"] if removed else [])
    return "; ".join(parts) or f"reordered ({', '.join(old)} -> {', '.join(new)})"


def _count_changes(parent: Mapping[str, Any], current: Mapping[str, Any], config_dir: str) -> list[str]:
    """Unit counts and per-type action lists that differ, each naming the config file to look at."""
    changes = [
        f"Number of {side}: {parent.get(side)} -> {current.get(side)} ({config_dir}/scenario.yaml)"
        for side in ("attackers", "defenders")
        if parent.get(side) != current.get(side)
    ]
    old_types = parent.get("actions_per_unit_type") or {}
    new_types = current.get("actions_per_unit_type") or {}
    for unit_type in sorted(set(old_types) | set(new_types)):
        old, new = old_types.get(unit_type), new_types.get(unit_type)
        if old == new:
            continue
        if old is None or new is None:
            presence = "added" if old is None else "removed"
            changes.append(f"Unit type {unit_type} {presence} ({config_dir}/scenario.yaml, {config_dir}/units_*.yaml)")
        else:
            changes.append(f"Actions of {unit_type}: {_list_diff(old, new)} ({config_dir}/units_*.yaml)")
    return changes
