"""Reading run folders for the dashboard (no HTML): run records, metrics curves and evaluation reports,
each file parsed again only when its (size, mtime_ns, inode) changed since the previous call in this process.

File names come from mission_gym.runs.layout, and which report is a run's latest evaluation from
mission_gym.runs.reports, as for every other view.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import threading
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from mission_gym.dashboard.fmt import finite
from mission_gym.errors import MissionGymError, RunNameError
from mission_gym.runs.index import FileKey, RecordIndex, file_key
from mission_gym.runs.layout import RUN_RECORD_FILE, RunPaths
from mission_gym.runs.lineage import (
    TreeNode, active_run, is_foreign, lineage_forest, lineage_members, run_entries, walk_forest,
)
from mission_gym.runs.naming import unknown_run_message
from mission_gym.runs.record import RunRecord, load_record
from mission_gym.runs.reports import latest_report_path, report_paths, report_rank

REPORT_SUFFIXES = (".md", ".gif")  # beside each evaluations/<model>.json: the readable report, the replay
TIME_KEY = "time"  # the metrics column holding the wall-clock time of a row

ACTIVE = "active"  # the lineage_filter meaning "the most recently active run's lineage" (wins over a run so named)
_MAX_CACHED_ROOTS = 8  # a process renders one or two runs roots; the cap only bounds memory in long test runs

if TYPE_CHECKING:
    from mission_gym.search import SearchRecord

T = TypeVar("T")


@dataclass
class Curve:
    """Every numeric column read so far from one metrics.jsonl (`timestep` first, `time` as Unix seconds,
    NaN where a row lacks the key), the byte offset reading resumes at, and the sparkline drawn."""

    key: FileKey | None = None
    offset: int = 0
    columns: dict[str, array] = field(default_factory=lambda: {"timestep": array("d")})
    svg: str | None = None

    def __len__(self) -> int:
        return len(self.columns["timestep"])

    def column(self, name: str) -> np.ndarray:
        """A copy of one column (all NaN when no row had the key): a view would pin the growing buffer."""
        values = self.columns.get(name)
        return np.array(values, dtype=np.float64) if values is not None else np.full(len(self), np.nan)

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        """Append metrics rows (each with a finite timestep), column by column; non-numeric values are NaN."""
        if not rows:
            return
        before = len(self)
        for name in dict.fromkeys(key for row in rows for key in row):
            column = self.columns.get(name)
            if column is None:
                column = self.columns[name] = array("d", [math.nan]) * before
            column.extend(_numbers([row.get(name) for row in rows], name == TIME_KEY))
        for column in self.columns.values():
            if len(column) == before:
                column.extend(array("d", [math.nan]) * len(rows))
        self.svg = None


_PLAIN_NUMBERS = {int, float, type(None)}


def _numbers(values: list[Any], is_time: bool) -> np.ndarray:
    """Floats of one column, NaN for what is not a finite number (times: Unix seconds of ISO strings)."""
    if is_time:
        return np.array([_nan_if_none(_epoch_seconds(v)) for v in values], dtype=np.float64)
    if set(map(type, values)) <= _PLAIN_NUMBERS:  # the usual case, converted by numpy in one go
        try:
            numbers = np.array(values, dtype=np.float64)  # None becomes NaN
        except OverflowError:  # a JSON integer beyond float range
            numbers = np.array([_nan_if_none(finite(v)) for v in values], dtype=np.float64)
    else:
        numbers = np.array([_nan_if_none(finite(v)) for v in values], dtype=np.float64)
    numbers[~np.isfinite(numbers)] = math.nan
    return numbers


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else value


def _epoch_seconds(value: Any) -> float | None:
    """Unix seconds of an ISO 8601 time with a UTC offset (training writes `time` so); None otherwise."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


@dataclass(frozen=True)
class Evaluation:
    """The fields of an evaluation report the dashboard shows; any of them may be missing (None)."""

    file: str
    checkpoint: str | None = None
    capture_rate: float | None = None
    episodes: float | None = None
    ci: tuple[float | None, float | None] = (None, None)
    mean_return: float | None = None
    baseline_capture: float | None = None
    parent_capture: float | None = None
    parent_label: str | None = None
    baseline_paired: tuple[int, int] | None = None  # seeds only this model captures, only the baseline does
    parent_paired: tuple[int, int] | None = None
    step: float | None = None
    problem: str | None = None


@dataclass
class RootCache:
    """What was read from one runs root, keyed by file so that unchanged files are never opened again."""

    records: dict[Path, tuple[FileKey, RunRecord | str]] = field(default_factory=dict)
    curves: dict[Path, Curve] = field(default_factory=dict)
    evaluations: dict[Path, tuple[FileKey, Evaluation]] = field(default_factory=dict)
    configs: dict[Path, tuple[FileKey, dict[str, Any]]] = field(default_factory=dict)  # flattened YAML
    # search.json files (dashboard.searches): the record and when it was written, or why it is not shown
    searches: dict[Path, tuple[FileKey, tuple[SearchRecord, dt.datetime] | str]] = field(default_factory=dict)
    fragments: dict[tuple[str, str], tuple[tuple[Any, ...], Any]] = field(default_factory=dict)
    pruned_for: frozenset[str] = frozenset()  # the run folders of the last prune

    def memo(self, kind: str, run_name: str, inputs: tuple[Any, ...], make: Callable[[], T]) -> T:
        """`make()` for one run, reused while each input is the same object (or an equal value) as last
        time: at 10,000 runs, rendering every unchanged row again would dominate a refresh."""
        cached = self.fragments.get((kind, run_name))
        if cached is not None and all(a is b or a == b for a, b in zip(cached[0], inputs, strict=True)):
            return cached[1]
        value = make()
        self.fragments[(kind, run_name)] = (inputs, value)
        return value

    def prune(self, root: Path, names: frozenset[str]) -> None:
        """Forget runs no longer in the runs root (deleted by cleanup) so the cache never outgrows it.
        Nothing to do while the set of run folders is the one seen last time (the usual refresh)."""
        if names == self.pruned_for:
            return
        self.pruned_for = names
        run_dirs = {root / name for name in names}
        for table in (self.records, self.curves):
            for path in [p for p in table if p.parent not in run_dirs]:
                del table[path]
        for kind_and_name in [k for k in self.fragments if k[1] not in names]:
            del self.fragments[kind_and_name]
        for deeper in (self.evaluations, self.configs):
            for path in [p for p in deeper if p.parent.parent not in run_dirs]:
                del deeper[path]


LOCK = threading.Lock()
_CACHES: dict[Path, RootCache] = {}


def root_cache(root: Path) -> RootCache:
    key = root.resolve()
    cache = _CACHES.pop(key, None) or RootCache()
    _CACHES[key] = cache  # most recently used last
    while len(_CACHES) > _MAX_CACHED_ROOTS:
        del _CACHES[next(iter(_CACHES))]
    return cache


def scan(root: Path, cache: RootCache) -> tuple[list[RunRecord], list[tuple[str, str]]]:
    """Valid run records, and (folder, problem) for run folders without one (shown, never hidden).

    A record this process has not read yet comes from the runs root's RecordIndex, so a fresh process
    re-reads only the run.json files changed since the last listing by anyone."""
    records, problems = [], []
    entries, index = run_entries(root), RecordIndex(root)
    for entry in entries:
        if entry.is_symlink():
            problems.append((entry.name, "symbolic link (not followed)"))
            continue
        outcome = _cached_record(entry, cache, index)
        if isinstance(outcome, str):
            if not _foreign(entry):  # runs/searches and the like are no broken runs
                problems.append((entry.name, outcome))
        else:
            records.append(outcome)
    index.save({entry.name for entry in entries})
    return records, problems


def _foreign(folder: Path) -> bool:
    try:
        return is_foreign(os.listdir(folder))
    except OSError:  # vanished meanwhile: reported as the problem it had
        return False


def _cached_record(run_dir: Path, cache: RootCache, index: RecordIndex) -> RunRecord | str:
    """The run's record (or why it has none), parsed again only when run.json changed."""

    def read(key: FileKey, seen: bool) -> RunRecord | str:
        try:
            # The shared index only for runs this process never read: a live run's heartbeat must not make
            # every refresh unpickle (and rewrite) the whole index.
            return load_record(run_dir) if seen else index.record(run_dir, key)
        except MissionGymError as exc:
            return str(exc)

    missing = f"{RUN_RECORD_FILE} missing (a run starting up, or an incomplete folder)"
    return read_cached(cache.records, RunPaths(run_dir).record, missing, read)


def read_cached(store: dict[Path, tuple[FileKey, T | str]], path: Path, missing: str,
                read: Callable[[FileKey, bool], T | str]) -> T | str:
    """The file's parsed content, or why there is none (`missing` when the file is not there), kept in `store`
    and parsed again only when its FileKey changed: `read(key, seen)`, `seen` when this process parsed an
    earlier version of it."""
    key = file_key(path)
    if key is None:
        return missing
    cached = store.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    outcome = read(key, cached is not None)
    store[path] = (key, outcome)
    return outcome


def select(
    records: list[RunRecord], problems: list[tuple[str, str]], lineage_filter: str | None, root: Path
) -> tuple[list[RunRecord], str]:
    """The records to show and the page title for `lineage_filter` (see generate_unified_dashboard)."""
    if lineage_filter is None:
        return records, "All runs"
    if lineage_filter == ACTIVE:
        current = active_run(records)
        if current is None:
            return [], "Active lineage (no runs yet)"
        name, title = current.run_name, f"Lineage of the active run {current.run_name}"
    else:
        name, title = lineage_filter, f"Lineage of {lineage_filter}"
    if name not in {r.run_name for r in records}:
        broken = dict(problems).get(name)
        if broken is not None:
            raise RunNameError(f"run {name!r} in {root} has no valid run record: {broken}")
        raise RunNameError(unknown_run_message(name, [r.run_name for r in records], root))
    members = lineage_members(records, name)
    return [r for r in records if r.run_name in members], title


def _read_curve(path: Path, cache: RootCache) -> Curve:
    """The run's curve, with the lines appended to metrics.jsonl since the last call read in."""
    key = file_key(path)
    curve = cache.curves.get(path)
    if curve is not None and curve.key == key:
        return curve
    if curve is None or key is None or curve.key is None or key[2] != curve.key[2] or key[0] < curve.offset:
        curve = cache.curves[path] = Curve()  # new, deleted, replaced or truncated: start over
    if key is not None:
        _append_lines(curve, path, key)
    return curve


def _append_lines(curve: Curve, path: Path, key: FileKey) -> None:
    """Parse the complete lines between the curve's offset and the size the file had when stat'ed."""
    try:
        with open(path, "rb") as handle:
            handle.seek(curve.offset)
            chunk = handle.read(key[0] - curve.offset)
    except OSError:
        return  # deleted since the stat (a concurrent cleanup): the next call sees it gone
    # Only complete lines: an unterminated last line is being written, or was cut by a crash (then the
    # next appended line joins it into one unparsable line, which is skipped).
    end = chunk.rfind(b"\n") + 1
    rows = _parse_lines(chunk[:end])
    curve.add_rows([row for row in rows if isinstance(row, dict) and finite(row.get("timestep")) is not None])
    curve.offset += end
    curve.key = key


def _parse_lines(data: bytes) -> list[Any]:
    """The JSON value of each line, skipping unparsable ones. All lines at once when they are all valid
    (the usual case): one parse of the block is several times faster than one per line."""
    lines = [line for line in data.splitlines() if line.strip()]
    try:
        return json.loads(b"[" + b",".join(lines) + b"]")
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return [row for row in map(_parse_line, lines) if row is not _UNPARSABLE]


_UNPARSABLE = object()


def _parse_line(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return _UNPARSABLE


def _evaluations(run_dir: Path, cache: RootCache) -> tuple[Evaluation | None, tuple[int, ...]]:
    """The run's newest evaluation report, parsed again only when that file changed, and the checkpoint
    steps of all its reports (from their names; final_model's is not in its name, so not marked)."""
    reports = report_paths(run_dir)
    steps = tuple(sorted(rank for rank, _ in map(report_rank, reports) if 0 <= rank < 2**63))
    return _latest_evaluation(run_dir, reports, cache), steps


def _latest_evaluation(run_dir: Path, reports: list[Path], cache: RootCache) -> Evaluation | None:
    newest = latest_report_path(run_dir, reports)
    if newest is None:
        return None
    key = file_key(newest)
    cached = cache.evaluations.get(newest)
    if key is None or (cached is not None and cached[0] == key):
        return cached[1] if cached else None
    for path in [p for p in cache.evaluations if p.parent == newest.parent]:
        del cache.evaluations[path]  # only the newest report of a run is kept
    evaluation = _read_evaluation(newest)
    cache.evaluations[newest] = (key, evaluation)
    return evaluation


def _read_evaluation(path: Path) -> Evaluation:
    """Pick the known fields out of a report; a malformed report yields a problem, never an exception."""
    try:
        report = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        return Evaluation(file=path.name, problem=f"unreadable ({exc})")
    if not isinstance(report, dict):
        return Evaluation(file=path.name, problem="not a JSON object")
    ci = report.get("capture_rate_ci")
    ci_pair = (finite(ci[0]), finite(ci[1])) if isinstance(ci, list) and len(ci) == 2 else (None, None)
    baseline, parent = _as_dict(report.get("baseline")), _as_dict(report.get("parent"))
    parent_label = parent.get("checkpoint") or parent.get("run") or parent.get("run_name")
    return Evaluation(
        file=path.name,
        checkpoint=_text_or_none(report.get("checkpoint")),
        capture_rate=finite(report.get("capture_rate")),
        episodes=finite(report.get("episodes")),
        ci=ci_pair,
        mean_return=finite(report.get("mean_return")),
        baseline_capture=finite(baseline.get("capture_rate")),
        parent_capture=finite(parent.get("capture_rate")),
        parent_label=_text_or_none(parent_label),
        baseline_paired=_paired(baseline.get("paired")),
        parent_paired=_paired(parent.get("paired")),
        step=finite(report.get("step")),
    )


def _paired(value: Any) -> tuple[int, int] | None:
    """(seeds only ours captured, seeds only theirs captured) of a paired comparison, when both are counts."""
    section = _as_dict(value)
    better, worse = finite(section.get("only_ours_captured")), finite(section.get("only_theirs_captured"))
    return None if better is None or worse is None else (int(better), int(worse))


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


# --- the rows shown -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One run as displayed: its place in the lineage forest and what was read from its folder."""

    node: TreeNode
    tree_parent: str | None
    is_active: bool
    curve: Curve
    evaluation: Evaluation | None
    evaluation_steps: tuple[int, ...] = ()

    @property
    def record(self) -> RunRecord:
        return self.node.record


def rows_in_order(root: Path, records: list[RunRecord], cache: RootCache, active: RunRecord | None) -> list[Row]:
    """Runs in display order; a record's folder is `root/run_name` (load_record checked the name)."""
    rows = []
    for node in walk_forest(lineage_forest(records)):
        paths = RunPaths.of(root, node.name)
        is_active = active is not None and active.run_name == node.name
        curve = _read_curve(paths.metrics, cache)
        rows.append(Row(node, node.tree_parent, is_active, curve, *_evaluations(paths.root, cache)))
    return rows
