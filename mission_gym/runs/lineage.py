"""What is in the runs folder and how runs descend from each other.

Every non-hidden folder under the runs root is reported, whether or not its run.json is valid: a folder
whose record is missing or broken is still a run (cleanup must see it) unless nothing in it looks like a
run (then it is `foreign` and left alone), and a symbolic link is reported as such and never followed, so
nothing outside the runs root is ever read or deleted through it.

Lineage groups runs by descent: a run branched from a checkpoint of its parent run, and every run records
the root ancestor of its tree. Runs connected through either link form one lineage.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from mission_gym.errors import MissionGymError, RunNameError
from mission_gym.runs.index import FileKey, RecordIndex, file_key, gc_paused, stat_key
from mission_gym.runs.layout import RUN_MARKERS, RUN_RECORD_FILE
from mission_gym.runs.naming import unknown_run_message
from mission_gym.runs.record import CLOCK_SKEW_S, LIVE_HEARTBEAT_S, RunRecord, load_record, utc_now

_LONG_AGO = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
E = TypeVar("E", Path, os.DirEntry)
T = TypeVar("T")


@dataclass(frozen=True)
class RunFolder:
    """One entry of the runs root: a run folder with its record, or why it has none."""

    name: str
    path: Path
    record: RunRecord | None
    problem: str | None  # why `record` is None: run.json missing/invalid, or a symlink that is not followed
    is_symlink: bool
    modified_at: dt.datetime  # newest mtime of the folder and its direct entries (never through symlinks)
    foreign: bool = False  # no record, not empty, and nothing of a run's layout: not a run folder at all

    def last_activity(self) -> dt.datetime:
        """The record's last activity, or the folder's newest modification when it has no valid record."""
        return last_activity(self.record) if self.record else self.modified_at

    def is_live(self, now: dt.datetime | None = None) -> bool:
        """A live run, or a recordless folder touched within LIVE_HEARTBEAT_S (a run still starting up)."""
        if self.record is not None:
            return self.record.is_live(now, written_at=self.modified_at)
        age = ((now or utc_now()) - self.modified_at).total_seconds()
        return not self.is_symlink and age <= LIVE_HEARTBEAT_S


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)


def _newest_mtime(folder: os.stat_result, entries: list[os.DirEntry[str]]) -> tuple[dt.datetime, FileKey | None]:
    """Newest mtime of a folder and its entries (an entry replaced meanwhile, as atomic writes do, is
    skipped), and the key of its run.json from the same lstat (None when it has none). A symlinked
    run.json's lstat key never equals the key the index checks a read against, so it is always read."""
    newest, record_key = folder.st_mtime, None
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        newest = max(newest, st.st_mtime)
        if entry.name == RUN_RECORD_FILE:
            record_key = stat_key(st)
    return _utc(newest), record_key


def read_run_folder(path: Path, index: RecordIndex | None = None) -> RunFolder:
    """Describe one entry of the runs root without following it if it is a symbolic link; `index` (of the
    runs root) supplies the record when its run.json is unchanged."""
    folder = path.lstat()
    if stat.S_ISLNK(folder.st_mode):
        problem = f"symbolic link to {os.readlink(path)} (not followed)"
        return RunFolder(path.name, path, None, problem, True, _utc(folder.st_mtime))
    with os.scandir(path) as listing:  # one directory read; the entries' lstat gives run.json's key too
        entries = list(listing)
    newest, record_key = _newest_mtime(folder, entries)
    try:
        record = index.record(path, record_key) if index is not None else load_record(path)
        return RunFolder(path.name, path, record, None, False, newest)
    except MissionGymError as exc:
        foreign = is_foreign([entry.name for entry in entries])
        return RunFolder(path.name, path, None, str(exc), False, newest, foreign)


def is_foreign(names: Collection[str]) -> bool:
    """A recordless folder with entries of these names is not a run at all (runs/searches, a user's
    notes): it has content, none of it a run's layout."""
    return bool(names) and RUN_MARKERS.isdisjoint(names)


def run_entries(runs_root: str | os.PathLike[str]) -> list[Path]:
    """Run folders and symlinked run folders in the runs root, by name; hidden entries are temp files."""
    return [Path(entry.path) for entry in _root_entries(runs_root)]


def _root_entries(runs_root: str | os.PathLike[str]) -> list[os.DirEntry[str]]:
    """The entries `run_entries` names; their types come with the listing, with no stat per folder."""
    if not Path(runs_root).is_dir():
        return []
    with os.scandir(runs_root) as listing:
        return sorted((entry for entry in listing if _is_run_entry(entry)), key=lambda entry: entry.name)


def _is_run_entry(entry: os.DirEntry[str]) -> bool:
    """Not hidden, and a folder or a symbolic link that does not lead to a file (a folder's, or dangling)."""
    return not entry.name.startswith(".") and ((entry.is_symlink() and not entry.is_file()) or entry.is_dir())


def scan_runs(runs_root: str | os.PathLike[str]) -> list[RunFolder]:
    """Every run folder of the runs root, valid or not (a missing runs root has none).

    Unchanged records come from the runs root's RecordIndex, which this scan then brings up to date."""
    # FileNotFoundError: deleted by a concurrent cleanup while we scanned
    return _read_all(runs_root, run_entries(runs_root), read_run_folder, FileNotFoundError)


def list_runs(runs_root: str | os.PathLike[str]) -> list[RunRecord]:
    """The valid run records of the runs root, as `scan_runs` finds them (it also returns the folders
    without one). Only each folder's run.json is stat'ed, and read when it changed: the folder's other
    entries matter only to a RunFolder's `modified_at` and `foreign`."""

    def read(entry: os.DirEntry[str], index: RecordIndex) -> RunRecord:
        return index.record(Path(entry.path), file_key(os.path.join(entry.path, RUN_RECORD_FILE)))

    folders = [entry for entry in _root_entries(runs_root) if not entry.is_symlink()]  # never followed: no record
    # MissionGymError: run.json missing or invalid, or the folder deleted meanwhile
    return _read_all(runs_root, folders, read, MissionGymError)


def _read_all(runs_root: str | os.PathLike[str], entries: list[E], read: Callable[[E, RecordIndex], T],
              skipped: type[Exception]) -> list[T]:
    """read(entry, index) for each entry, leaving out those whose read raised `skipped`; the runs root's
    RecordIndex is then saved for exactly these entries."""
    if not entries:
        return []
    index, found = RecordIndex(runs_root), []
    with gc_paused():  # records by the ten thousand: see gc_paused
        for entry in entries:
            try:
                found.append(read(entry, index))
            except skipped:
                continue
    index.save({entry.name for entry in entries})
    return found


def last_activity(record: RunRecord, now: dt.datetime | None = None) -> dt.datetime:
    """When the run last did something: its heartbeat (or creation, if the heartbeat is older).

    A time further ahead of this host's clock than CLOCK_SKEW_S (a skewed clock, a hand edit) is no
    evidence of activity and is passed over, so it cannot make a dead run the active one forever.
    """
    now = now or utc_now()
    believable = [t for t in (record.created_at, record.heartbeat_at)
                  if (t - now).total_seconds() <= CLOCK_SKEW_S]
    return min(max(believable), now) if believable else _LONG_AGO


def active_run(records: Iterable[RunRecord]) -> RunRecord | None:
    """The run with the most recent activity (the one training now, if any), or None without runs."""
    return max(records, key=lambda r: (last_activity(r), r.run_name), default=None)


def parent_names(record: RunRecord) -> set[str]:
    """Runs this run depends on: its parent run and the run holding its parent checkpoint."""
    names = {record.parent_run} if record.parent_run else set()
    if record.parent_checkpoint:
        names.add(record.parent_checkpoint.path.split("/", 1)[0])
    return names


def parent_cycles(records: Iterable[RunRecord]) -> list[list[str]]:
    """Runs whose chain of parents leads back to themselves (only a hand edit of run.json can do that), each
    cycle once, in parent order starting from its smallest name: [["A", "B"]] when A's parent is B and B's A."""
    parent_of = {r.run_name: r.parent_run for r in records if r.parent_run}
    cycles, visited = [], set()
    for start in sorted(parent_of):
        chain: dict[str, int] = {}
        name: str | None = start
        while name in parent_of and name not in visited and name not in chain:
            chain[name] = len(chain)
            name = parent_of[name]
        if name in chain:
            cycle = list(chain)[chain[name]:]
            first = cycle.index(min(cycle))
            cycles.append(cycle[first:] + cycle[:first])
        visited.update(chain)
    return cycles


def describe_cycle(cycle: list[str]) -> str:
    """'parent cycle A -> B -> A: ...' with what would fix it."""
    loop = " -> ".join([*cycle, cycle[0]])
    return (f"parent cycle {loop}: their run.json files name each other as parent_run (edited by hand?); "
            f"set parent_run of {cycle[0]} back to the run it was branched from, or to null")


def parent_checkpoint_paths(records: Iterable[RunRecord]) -> set[str]:
    """Runs-root-relative paths of every checkpoint some run branched from (these must never be deleted)."""
    return {r.parent_checkpoint.path for r in records if r.parent_checkpoint}


def _lineage_keys(records: list[RunRecord]) -> dict[str, str]:
    """Union-find over descent links: run name -> a representative shared by its whole lineage.

    The root_ancestor link keeps siblings together even when the run between them was deleted.
    """
    rep: dict[str, str] = {}

    def find(name: str) -> str:
        rep.setdefault(name, name)
        while rep[name] != name:
            rep[name] = rep[rep[name]]
            name = rep[name]
        return name

    for record in records:
        for other in parent_names(record) | {record.root_ancestor}:
            rep[find(other)] = find(record.run_name)
    return {record.run_name: find(record.run_name) for record in records}


def lineage_members(records: Iterable[RunRecord], run_name: str) -> set[str]:
    """Every run sharing `run_name`'s lineage: ancestors, descendants, siblings and cousins."""
    records = list(records)
    keys = _lineage_keys(records)
    if run_name not in keys:
        raise RunNameError(unknown_run_message(run_name, keys, "the runs folder"))
    return {name for name, key in keys.items() if key == keys[run_name]}


def children(records: Iterable[RunRecord], run_name: str) -> list[RunRecord]:
    """The runs branched directly from `run_name`, oldest first."""
    return sorted((r for r in records if r.parent_run == run_name), key=lambda r: (r.created_at, r.run_name))


@dataclass
class TreeNode:
    """One run in the lineage forest; `activity` is the most recent activity in its subtree.

    `tree_parent` is the run it hangs under: its parent run, or its root ancestor when the parent is gone.
    """

    record: RunRecord
    depth: int
    tree_parent: str | None = None
    children: list[TreeNode] = field(default_factory=list)
    activity: dt.datetime = field(init=False)

    def __post_init__(self) -> None:
        self.activity = last_activity(self.record)

    @property
    def name(self) -> str:
        return self.record.run_name


def lineage_forest(records: Iterable[RunRecord]) -> list[TreeNode]:
    """Runs as trees with depth; roots, and the children of every node, by most recent activity in their
    subtree, newest first (so the path to the active run is always the first branch of its tree).

    A run whose parent folder is gone hangs under its root ancestor when that still exists, else it
    becomes a root. Records forming a parent cycle (hand-edited) still appear exactly once.
    """
    records = sorted(records, key=lambda r: (r.created_at, r.run_name))
    by_name = {r.run_name: r for r in records}
    kids: dict[str | None, list[RunRecord]] = defaultdict(list)
    for record in records:
        kids[_tree_parent(record, by_name)].append(record)
    seen: set[str] = set()
    roots = [_grow(r, kids, seen) for r in kids[None]]
    roots += [_grow(r, kids, seen) for r in records if r.run_name not in seen]  # cycles only
    return _newest_first(roots)


def _newest_first(nodes: list[TreeNode]) -> list[TreeNode]:
    """The one sibling order of the forest: most recent activity in the subtree first (name breaks ties)."""
    return sorted(nodes, key=lambda n: (n.activity, n.name), reverse=True)


def _tree_parent(record: RunRecord, by_name: dict[str, RunRecord]) -> str | None:
    for name in (record.parent_run, record.root_ancestor):
        if name and name != record.run_name and name in by_name:
            return name
    return None


def _grow(root: RunRecord, kids: dict[str | None, list[RunRecord]], seen: set[str]) -> TreeNode:
    """Build the tree under `root` iteratively (deep branch chains must not hit the recursion limit)."""
    top = TreeNode(root, 0)
    seen.add(root.run_name)
    order = [top]
    stack = [top]
    while stack:
        node = stack.pop()
        for child in kids[node.name]:
            if child.run_name not in seen:
                seen.add(child.run_name)
                child_node = TreeNode(child, node.depth + 1, node.name)
                node.children.append(child_node)
                order.append(child_node)
                stack.append(child_node)
    for node in reversed(order):  # children before parents
        node.activity = max([node.activity, *(c.activity for c in node.children)])
        node.children = _newest_first(node.children)
    return top


def walk_forest(nodes: Iterable[TreeNode]) -> Iterator[TreeNode]:
    """Depth-first, parents before children: the order a tree is printed in."""
    stack = list(reversed(list(nodes)))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))
