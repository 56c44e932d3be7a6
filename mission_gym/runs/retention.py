"""Which run folders to delete: the one place cleanup plans are made (the CLI and the Dagster sensor).

Planning never deletes; `apply_cleanup` does, and only inside the runs root. Two protections hold in every
mode: a live run (or a folder a run is still creating) is never deleted, and neither is a run holding a
checkpoint that a kept run branched from. Both are checked again right before each deletion, because a
run may start or branch between planning and applying (the user may sit at the prompt for minutes).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mission_gym.yaml_io import YamlLoader, describe_validation_error
from mission_gym.errors import ConfigError, MissionGymError, RunNameError
from mission_gym.runs.checkpoints import TEMP_FILE_PATTERN, model_files, sweep_temp_files
from mission_gym.runs.layout import SEARCH_RECORD_FILE, SEARCHES_DIR
from mission_gym.runs.lineage import (
    RunFolder, active_run, describe_cycle, lineage_members, parent_cycles, parent_names, read_run_folder, scan_runs,
)
from mission_gym.runs.naming import unknown_run_message, validate_name
from mission_gym.runs.record import read_json, utc_now

CleanupMode = Literal["keep-active-lineage", "keep-lineage", "delete-failed", "prune-search", "retention"]

MODES_HELP = (
    "choose exactly one cleanup mode: --keep-active-lineage (keep the most recently active run's whole "
    "lineage, delete every other run), --keep-lineage RUN (keep RUN's whole lineage, delete every other "
    "run), --delete-failed (delete only failed, interrupted or dead runs that saved no checkpoint) or "
    "--prune-search NAME (delete the member runs of finished branch search NAME that are not ancestors of its "
    "winner)"
)
_BYTES_PER_GB = 1e9


class PlannedDeletion(BaseModel):
    """A run folder the plan deletes, and why."""

    run_name: str
    path: Path
    size_bytes: int
    reason: str


class CleanupPlan(BaseModel):
    """What a cleanup would delete and keep; `apply_cleanup` carries it out."""

    mode: CleanupMode
    runs_root: Path
    anchor: str | None = None  # the run whose lineage is kept (keep modes)
    delete: list[PlannedDeletion] = []
    keep: list[str] = []
    skipped_live: list[str] = []  # selected by the mode but live right now
    protected: list[str] = []  # selected by the mode but a kept run branched from one of their checkpoints
    ignored: list[str] = []  # folders that are not runs (no run.json and nothing of a run's layout)
    problems: list[str] = []  # records that contradict each other (a parent cycle), named for the user

    @property
    def delete_bytes(self) -> int:
        return sum(item.size_bytes for item in self.delete)


class RetentionPolicy(BaseModel):
    """Automatic retention limits (a YAML file); each limit left out is not enforced."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # `.inf` GB is no limit: leave the key out

    max_runs: Annotated[int, Field(gt=0, le=10**9)] | None = None
    max_disk_gb: Annotated[float, Field(gt=0, le=1e9)] | None = None
    failed_run_max_age_hours: Annotated[float, Field(ge=0, le=1e6)] | None = None  # timedelta holds ~2e8 hours
    keep_active_lineage: bool = True

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> RetentionPolicy:
        """Load and validate a policy file; ConfigError names the file and the bad key."""
        try:
            data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=YamlLoader) or {}
            return cls.model_validate(data)
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read retention policy ({exc})") from None
        except ValidationError as exc:
            raise ConfigError(f"{path}: invalid retention policy: {describe_validation_error(exc)}") from None


# --- planning -----------------------------------------------------------------------------------------


def plan_cleanup(
    runs_root: str | os.PathLike[str],
    *,
    keep_active_lineage: bool = False,
    keep_lineage: str | None = None,
    delete_failed: bool = False,
    prune_search: str | None = None,
    now: dt.datetime | None = None,
) -> CleanupPlan:
    """Plan one cleanup mode (exactly one must be chosen; there is no 'delete everything' default)."""
    chosen = [keep_active_lineage, keep_lineage is not None, delete_failed, prune_search is not None]
    if sum(chosen) != 1:
        raise MissionGymError(MODES_HELP)
    now = now or utc_now()
    folders = _scan_existing(runs_root)
    if prune_search is not None:
        return _finish_plan("prune-search", runs_root, folders, _search_losers(folders, runs_root, prune_search), now)
    if delete_failed:
        doomed = {f.name: reason for f in folders if (reason := _failed_reason(f, now))}
        return _finish_plan("delete-failed", runs_root, folders, doomed, now)
    anchor = keep_lineage if keep_lineage is not None else _active_name(folders, runs_root)
    keep = _lineage_of(folders, anchor, runs_root)
    doomed = {f.name: f"not in the lineage of {anchor}" for f in folders if f.name not in keep and not f.foreign}
    mode: CleanupMode = "keep-lineage" if keep_lineage is not None else "keep-active-lineage"
    return _finish_plan(mode, runs_root, folders, doomed, now, anchor=anchor)


def plan_retention(
    runs_root: str | os.PathLike[str], policy: RetentionPolicy, now: dt.datetime | None = None
) -> CleanupPlan:
    """Plan what a retention policy deletes: old failed runs, then the oldest runs while over a limit.

    `keep_active_lineage` shields that lineage from the count and disk limits; failed runs that saved no
    checkpoint still expire everywhere (nothing can depend on them).
    """
    now = now or utc_now()
    folders = _scan_existing(runs_root)
    pinned = {f.name for f in folders if f.is_live(now)}
    anchor = None
    if policy.keep_active_lineage and any(f.record for f in folders):
        anchor = _active_name(folders, runs_root)
        pinned |= _lineage_of(folders, anchor, runs_root)
    doomed = _old_failed(folders, policy, now)
    sizes = {f.name: folder_size(f.path) for f in folders}
    remaining = [f for f in folders if f.name not in doomed and not f.foreign]
    progress = True
    while progress and _over_limits(policy, remaining, sizes):
        progress = False  # another pass: a parent skipped for its child may go once the child went
        for folder in sorted(remaining, key=RunFolder.last_activity):  # oldest first
            over = _over_limits(policy, remaining, sizes)
            if not over:
                break
            if folder.name in pinned or _needed_by(folder.name, remaining):
                continue
            doomed[folder.name] = f"oldest run while over {over}"
            remaining.remove(folder)
            progress = True
    return _finish_plan("retention", runs_root, folders, doomed, now, anchor=anchor)


def _scan_existing(runs_root: str | os.PathLike[str]) -> list[RunFolder]:
    if not Path(runs_root).is_dir():
        raise MissionGymError(f"runs folder {runs_root} does not exist (pass --runs-dir to choose another)")
    return scan_runs(runs_root)


def _active_name(folders: list[RunFolder], runs_root: str | os.PathLike[str]) -> str:
    active = active_run(f.record for f in folders if f.record)
    if active is None:
        raise MissionGymError(
            f"no run in {runs_root} has a valid run.json, so there is no active lineage to keep; "
            "use --keep-lineage RUN or --delete-failed"
        )
    return active.run_name


def _lineage_of(folders: list[RunFolder], anchor: str, runs_root: str | os.PathLike[str]) -> set[str]:
    by_name = {f.name: f for f in folders}
    if anchor not in by_name:
        raise RunNameError(unknown_run_message(anchor, by_name, runs_root))
    if by_name[anchor].record is None:
        raise RunNameError(f"run {anchor} has no lineage to keep: {by_name[anchor].problem}")
    return lineage_members((f.record for f in folders if f.record), anchor)


class _SearchMember(BaseModel):
    run_name: str


class _SearchOutcome(BaseModel):
    """The part of a branch search's search.json that pruning needs (mission_gym.search.SearchRecord)."""

    status: str
    members: list[_SearchMember] = []
    winner: str | None = None


def _search_losers(folders: list[RunFolder], runs_root: str | os.PathLike[str], name: str) -> dict[str, str]:
    """The member runs of finished search `name` that are neither its winner nor one of the winner's ancestors."""
    path = Path(runs_root, SEARCHES_DIR, validate_name(name, "--prune-search name"), SEARCH_RECORD_FILE)
    if not path.is_file():
        raise MissionGymError(f"--prune-search {name}: no search named {name!r} ({path} does not exist)")
    try:
        outcome = _SearchOutcome.model_validate(read_json(path))
    except ValidationError as exc:
        raise MissionGymError(f"--prune-search {name}: {path} is not a valid search record: {exc}") from None
    except (OSError, ValueError) as exc:
        raise MissionGymError(f"--prune-search {name}: {path} is not readable as JSON ({exc})") from None
    if outcome.status != "finished" or outcome.winner is None:
        raise MissionGymError(
            f"--prune-search {name}: the search is {outcome.status!r}, not finished ({path}); pruning it now "
            "could delete the run that would win. Let it finish (run the search again to resume it) first."
        )
    parents = {f.name: parent_names(f.record) for f in folders if f.record}
    keep, frontier = set(), {outcome.winner}
    while frontier:
        keep |= frontier
        frontier = {p for n in frontier for p in parents.get(n, set())} - keep
    present = {f.name for f in folders}
    reason = f"lost branch search {name} (winner {outcome.winner})"
    return {m.run_name: reason for m in outcome.members if m.run_name not in keep and m.run_name in present}


def _failed_reason(folder: RunFolder, now: dt.datetime) -> str | None:
    """Why a folder counts as a failed run (no model saved and not finished), or None.

    A finished run is never 'failed', however short it was.
    """
    if folder.is_symlink or folder.foreign or folder.is_live(now) or model_files(folder.path):
        return None
    record = folder.record
    if record is None:
        return "no checkpoints and no valid run.json"
    if record.status in ("failed", "interrupted"):
        return f"{record.status} with no checkpoints"
    if record.status == "running":
        return f"died while running (last heartbeat {format_age(now - record.heartbeat_at)} ago) with no checkpoints"
    return None


def _old_failed(folders: list[RunFolder], policy: RetentionPolicy, now: dt.datetime) -> dict[str, str]:
    if policy.failed_run_max_age_hours is None:
        return {}
    limit = dt.timedelta(hours=policy.failed_run_max_age_hours)
    return {
        f.name: f"{reason}, older than {policy.failed_run_max_age_hours:g} h"
        for f in folders
        if (reason := _failed_reason(f, now)) and now - f.last_activity() >= limit
    }


def _over_limits(policy: RetentionPolicy, remaining: list[RunFolder], sizes: dict[str, int]) -> str | None:
    """Which limit the remaining runs exceed ('max_runs=5'), or None."""
    if policy.max_runs is not None and len(remaining) > policy.max_runs:
        return f"max_runs={policy.max_runs}"
    if policy.max_disk_gb is not None and sum(sizes[f.name] for f in remaining) > policy.max_disk_gb * _BYTES_PER_GB:
        return f"max_disk_gb={policy.max_disk_gb:g}"
    return None


def _needed_by(name: str, staying: Iterable[RunFolder]) -> bool:
    """True when a staying run branched from `name` (its parent checkpoint lives there)."""
    return any(f.record and name in parent_names(f.record) for f in staying if f.name != name)


def _protected(folders: list[RunFolder], deleting: set[str]) -> set[str]:
    """The runs in `deleting` that a kept run depends on, transitively (a protected run is kept too)."""
    parents = {f.name: parent_names(f.record) if f.record else set() for f in folders}
    protected: set[str] = set()
    frontier = {f.name for f in folders} - deleting
    while frontier:
        frontier = {p for name in frontier for p in parents.get(name, set())} & (deleting - protected)
        protected |= frontier
    return protected


def _finish_plan(
    mode: CleanupMode,
    runs_root: str | os.PathLike[str],
    folders: list[RunFolder],
    doomed: dict[str, str],
    now: dt.datetime,
    anchor: str | None = None,
) -> CleanupPlan:
    """Apply the protections every mode shares and build the plan (newest activity first)."""
    live = {f.name for f in folders if f.name in doomed and f.is_live(now)}
    protected = _protected(folders, set(doomed) - live)
    deleting = set(doomed) - live - protected
    ordered = sorted(folders, key=RunFolder.last_activity, reverse=True)
    return CleanupPlan(
        mode=mode,
        runs_root=Path(runs_root),
        anchor=anchor,
        delete=[
            PlannedDeletion(run_name=f.name, path=f.path, size_bytes=folder_size(f.path), reason=doomed[f.name])
            for f in ordered
            if f.name in deleting
        ],
        keep=[f.name for f in ordered if f.name not in deleting and not f.foreign],
        skipped_live=sorted(live),
        protected=sorted(protected),
        ignored=sorted(f.name for f in folders if f.foreign),
        problems=[describe_cycle(c) for c in parent_cycles(f.record for f in folders if f.record)],
    )


# --- applying -----------------------------------------------------------------------------------------


def apply_cleanup(plan: CleanupPlan) -> list[str]:
    """Delete the planned run folders that are still safe to delete; return the names deleted.

    The runs folder is re-read first: a run whose folder still holds a run's parent (one created after
    planning, or one skipped here) is kept, and a run that became live is re-checked right before its
    deletion. Passes repeat until nothing changes, so a parent goes only after all its children went.
    A symlinked run folder is unlinked, never followed.
    """
    root = plan.runs_root.resolve()
    for item in plan.delete:
        if item.path.name != item.run_name or item.path.parent.resolve() != root:
            raise MissionGymError(f"refusing to delete {item.path}: it is not a run folder directly inside {root}")
    folders = scan_runs(plan.runs_root)
    depends_on = {f.name: parent_names(f.record) if f.record else set() for f in folders}
    planned = {item.run_name: item for item in plan.delete}
    deletable, deleted = _without_kept_dependents(set(planned), depends_on), []
    while deletable:
        # Children before parents; when only runs naming each other as parents are left (a hand-edited
        # parent cycle, where no order exists), all of them.
        ready = {name for name in deletable if not _dependents(name, depends_on)} or deletable
        for name in sorted(ready):
            if _delete_run_folder(planned[name].path):
                deleted.append(name)
                depends_on.pop(name, None)
        deletable = _without_kept_dependents(deletable - ready, depends_on)
    for folder in folders:
        if folder.name not in deleted and not folder.is_symlink and not folder.foreign and not folder.is_live():
            sweep_temp_files(folder.path)
    return deleted


def _without_kept_dependents(names: set[str], depends_on: dict[str, set[str]]) -> set[str]:
    """The runs of `names` that no run outside them depends on, directly or through other runs of `names`."""
    names = set(names)
    while blocked := {name for name in names if not _dependents(name, depends_on) <= names}:
        names -= blocked
    return names


def _dependents(name: str, depends_on: dict[str, set[str]]) -> set[str]:
    """The runs (other than `name` itself) that name `name` as a parent."""
    return {child for child, parents in depends_on.items() if child != name and name in parents}


def _delete_run_folder(path: Path) -> bool:
    """Remove one run folder unless it vanished or is live right now; True when removed."""
    if not os.path.lexists(path):
        return False
    if path.is_symlink():
        path.unlink()
        return True
    if read_run_folder(path).is_live():
        return False
    shutil.rmtree(path)
    return True


# --- sizes and ages -----------------------------------------------------------------------------------


def folder_size(path: str | os.PathLike[str]) -> int:
    """Bytes under `path` without following symlinks (a symlinked run folder counts as the link only)."""
    top = Path(path)
    if top.is_symlink() or not top.is_dir():
        return top.lstat().st_size if os.path.lexists(top) else 0
    total = 0
    for folder, _dirs, files in os.walk(top, followlinks=False):
        for name in files:
            if TEMP_FILE_PATTERN.fullmatch(name):  # a killed writer's leftover, not data (swept on cleanup)
                continue
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:  # a live writer replaced it meanwhile
                continue
    return total


def format_age(delta: dt.timedelta) -> str:
    """`45 s`, `12 min`, `3.5 h`, `2.1 d`."""
    seconds = max(delta.total_seconds(), 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
