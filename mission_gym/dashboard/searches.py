"""Branch searches for the dashboard (no HTML): each `runs/searches/<name>/search.json`, parsed again only when
its (size, mtime_ns, inode) changed, and the search as a tree of member-rounds under the search's parent.

A search folder without a readable, valid record is reported as a problem (folder, why), never raised: the
page must render while a search is starting up (its record is written after its first member trains) or
after a hand edit broke it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from mission_gym.dashboard.changes import Change, hyperparameter_changes
from mission_gym.dashboard.data import RootCache, read_cached
from mission_gym.runs.index import FileKey
from mission_gym.runs.layout import SEARCH_RECORD_FILE, SEARCHES_DIR
from mission_gym.runs.record import RunRecord
from mission_gym.search import MemberRound, SearchRecord
from mission_gym.yaml_io import describe_validation_error

EdgeKind = Literal["sampled", "continues", "exploit"]  # how a member-round came from its parent in the tree


@dataclass(frozen=True)
class SearchFile:
    """One search's record as read, with the folder it lives in and when the record was last written."""

    folder: str
    record: SearchRecord
    updated: dt.datetime


@dataclass(frozen=True)
class SearchNode:
    """One node of a search tree: the search's parent (member None, at depth 0) or a member-round, with the
    edge from its parent: how it came to be and what it changed."""

    name: str
    depth: int
    member: MemberRound | None = None
    kind: EdgeKind | None = None
    changes: tuple[Change, ...] = ()
    replaces: str | None = None  # an exploit's: the member's previous round, found worse


@dataclass(frozen=True)
class SearchTree:
    """A search as drawn: nodes depth-first (a parent before its children, siblings by round and member),
    and the winner's lineage from the search's parent down to the winner (empty before a round is decided)."""

    source: SearchFile
    nodes: tuple[SearchNode, ...]
    lineage: tuple[str, ...]

    @property
    def record(self) -> SearchRecord:
        return self.source.record

    @property
    def root(self) -> str:
        return self.nodes[0].name

    @property
    def runs(self) -> list[str]:
        """The search's parent, then every member-round by round and member: what "compare this search" picks."""
        return [self.root] + [m.run_name for m in _in_order(self.record.members)]


def read_searches(root: Path, cache: RootCache) -> tuple[list[SearchFile], list[tuple[str, str]]]:
    """Every search of the runs root, newest first, and (folder, problem) for search folders without a valid
    record. No searches folder: none."""
    folder = root / SEARCHES_DIR
    try:
        entries = sorted(entry for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    except OSError:  # no search yet (or not a folder): nothing to show
        return [], []
    paths = {entry / SEARCH_RECORD_FILE: entry.name for entry in entries}
    for gone in [path for path in cache.searches if path not in paths]:
        del cache.searches[gone]
    found, problems = [], []
    for path, name in paths.items():
        outcome = _cached_search(path, cache)
        if isinstance(outcome, str):
            problems.append((f"{SEARCHES_DIR}/{name}", outcome))
        else:
            found.append(SearchFile(name, *outcome))
    found.sort(key=lambda search: _created(search), reverse=True)
    return found, problems


def _cached_search(path: Path, cache: RootCache) -> tuple[SearchRecord, dt.datetime] | str:
    missing = f"{SEARCH_RECORD_FILE} missing (a search starting up writes it once its first member has trained)"
    return read_cached(cache.searches, path, missing, lambda key, _: _parse_search(path, key))


def _parse_search(path: Path, key: FileKey) -> tuple[SearchRecord, dt.datetime] | str:
    """The search record and when it was written, or why it cannot be read."""
    try:
        written = dt.datetime.fromtimestamp(key[1] / 1e9, dt.timezone.utc)
        return SearchRecord.model_validate_json(path.read_bytes()), written
    except ValidationError as exc:
        first = exc.errors()[0]
        return (f"{SEARCH_RECORD_FILE} is not valid JSON: {first['msg']}" if first["type"] == "json_invalid"
                else f"{SEARCH_RECORD_FILE} is not a valid search record: {describe_validation_error(exc)}")
    except (OSError, ValueError, RecursionError) as exc:
        return f"{SEARCH_RECORD_FILE} unreadable ({exc})"


def _created(search: SearchFile) -> dt.datetime:
    """When the search started (its record's created_at), or when its record was last written if that is
    not a time with a UTC offset."""
    try:
        created = dt.datetime.fromisoformat(search.record.created_at)
    except ValueError:
        return search.updated
    return created if created.tzinfo is not None else search.updated


def search_tree(
    search: SearchFile, records: Mapping[str, RunRecord], changes: Mapping[str, list[Change]]
) -> SearchTree:
    """The search as a tree. `records`: the runs root's run records (a member's folder may have been pruned);
    `changes`: what each run changed against its parent run (from its folder), used when both folders exist."""
    record = search.record
    members = {}
    for member in _in_order(record.members):
        members.setdefault(member.run_name, member)  # a name listed twice (a hand edit) is drawn once
    root = _search_parent(record)
    members.pop(root, None)
    parent_of = {name: m.parent_run if m.parent_run in members and m.parent_run != name else root
                 for name, m in members.items()}  # fmt: skip
    nodes = [SearchNode(root, 0)]
    for name, depth in _depth_first(root, parent_of):
        member = members[name]
        kind, replaces = _kind(record, member)
        nodes.append(SearchNode(name, depth, member, kind, tuple(_edge_changes(member, members, records, changes)),
                                replaces))  # fmt: skip
    return SearchTree(search, tuple(nodes), _lineage(record.winner, root, parent_of))


def _in_order(members: list[MemberRound]) -> list[MemberRound]:
    return sorted(members, key=lambda m: (m.round, m.member))


def _search_parent(record: SearchRecord) -> str:
    """The run the search started from (its settings say; a hand-edited record without it: round 0's parent)."""
    parent = record.settings.get("parent")
    if isinstance(parent, str):
        return parent
    return next((m.parent_run for m in _in_order(record.members)), "(unknown parent)")


def _depth_first(root: str, parent_of: Mapping[str, str]) -> list[tuple[str, int]]:
    """(name, depth) of every member under `root`, parents first; members caught in a parent cycle (a hand
    edit) hang under the root, so that every member is drawn exactly once."""
    children: dict[str, list[str]] = {}
    for name, parent in parent_of.items():
        children.setdefault(parent, []).append(name)
    order: list[tuple[str, int]] = []
    seen = {root}
    starts = [root] + list(parent_of)  # the root first; then whatever a cycle kept out of reach
    for start in starts:
        if start != root and start in seen:
            continue
        stack = [(start, 0 if start == root else 1)]
        while stack:
            name, depth = stack.pop()
            if name != root:
                order.append((name, depth))
            seen.add(name)
            stack += [(child, depth + 1) for child in reversed(children.get(name, [])) if child not in seen]
    return order


def _kind(record: SearchRecord, member: MemberRound) -> tuple[EdgeKind, str | None]:
    """Round 0 samples from the space; later a member either continues its own previous round or replaces it
    by an exploit of the round's best (search.py's _next_plan); with the run an exploit replaced."""
    if member.round == 0:
        return "sampled", None
    previous = record.trained(member.round - 1, member.member)
    if previous is not None and previous.run_name == member.parent_run:
        return "continues", None
    return "exploit", previous.run_name if previous is not None else None


def _edge_changes(member: MemberRound, members: Mapping[str, MemberRound], records: Mapping[str, RunRecord],
                  changes: Mapping[str, list[Change]]) -> list[Change]:  # fmt: skip
    """What the member changed against its parent run: from the run folders when both exist, else the
    searched hyperparameters of the record (nothing when the parent's are unknown too)."""
    if member.run_name in changes:
        return changes[member.run_name]
    parent, parent_run = members.get(member.parent_run), records.get(member.parent_run)
    before = parent.hyperparameters if parent else parent_run.hyperparameters if parent_run else None
    if before is None:
        return []
    # The record holds only the searched hyperparameters; a run record holds all of them.
    return hyperparameter_changes({k: v for k, v in before.items() if k in member.hyperparameters},
                                  dict(member.hyperparameters))


def _lineage(winner: str | None, root: str, parent_of: Mapping[str, str]) -> tuple[str, ...]:
    if winner is None or winner not in parent_of:
        return ()
    chain = [winner]
    while chain[-1] != root:
        chain.append(parent_of[chain[-1]])
        if len(chain) > len(parent_of) + 1:  # a parent cycle (a hand edit): no lineage rather than a loop
            return ()
    return tuple(reversed(chain))
