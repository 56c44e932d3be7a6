"""A cache of validated run records kept beside the runs, so listing 10,000 runs re-reads only what changed.

The index maps each run name to the key of its run.json (size, mtime_ns, inode) and the record validated
from it. It is never the source of truth: a record is taken from the index only while its file's key is
unchanged; otherwise run.json is read and validated again. A missing, unreadable or foreign index is
ignored and rebuilt. It is a pickle of validated records (loading it skips validation, which is most of
the listing cost); the runs folder is already trusted that far, as its checkpoints are pickles too.
"""

from __future__ import annotations

import gc
import os
import pickle
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mission_gym.runs.layout import RunPaths
from mission_gym.runs.record import RunRecord, atomic_write_bytes, load_record

INDEX_FILE = ".index.pickle"  # hidden: run listing skips names starting with "."
_FORMAT = "mission-gym-run-index/1"

FileKey = tuple[int, int, int]
Entries = dict[str, tuple[FileKey, RunRecord]]

# The index last read or written by this process, per index file, with that file's key: a long-lived
# process (the Dagster sensor, the dashboard server) skips unpickling while no one else rewrote it.
_LAST: dict[Path, tuple[FileKey, Entries]] = {}
_MAX_REMEMBERED = 4  # a process lists one or two runs roots; the cap only bounds memory in long test runs


_PAUSE_LOCK = threading.Lock()
_pauses = 0  # callers inside gc_paused now, across threads
_reenable = False  # whether the collector was on when the first of them came in


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while building many objects at once (unpickling 10,000
    records, listing them, building the dashboard): each collection scans every container made since
    the last one, and as they age, older generations scan them again, so bulk building triggers several
    full passes that find nothing (records hold no reference cycles). Afterwards one collection of the
    young generation runs at the next allocation. Nestable and thread-safe; the collector is switched
    back on when the last caller leaves, if it was on when the first came in."""
    global _pauses, _reenable
    with _PAUSE_LOCK:
        if _pauses == 0:
            _reenable = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _PAUSE_LOCK:
            _pauses -= 1
            if _pauses == 0 and _reenable:
                gc.enable()


def _remember(path: Path, key: FileKey | None, entries: Entries) -> None:
    _LAST.pop(path, None)
    if key is not None:
        _LAST[path] = (key, dict(entries))  # most recent last
    while len(_LAST) > _MAX_REMEMBERED:
        del _LAST[next(iter(_LAST))]


def file_key(path: str | os.PathLike[str]) -> FileKey | None:
    """What changes whenever run.json is replaced or rewritten; None when it cannot be stat'ed."""
    try:
        return stat_key(os.stat(path))
    except OSError:
        return None


def stat_key(st: os.stat_result) -> FileKey:
    """The FileKey of a file already stat'ed."""
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _belongs(record: object, run_dir: Path) -> bool:
    return isinstance(record, RunRecord) and record.run_name == run_dir.name


class RecordIndex:
    """Validated records of one runs root by run.json key; `load_record` is called only on a miss.

    The index file is read on the first lookup, so a caller with its own in-process cache pays nothing
    while that cache answers."""

    def __init__(self, runs_root: str | os.PathLike[str]) -> None:
        self.path = Path(runs_root) / INDEX_FILE
        self._entries: Entries | None = None
        self._changed = False

    def _read(self) -> Entries:
        key = file_key(self.path)
        last = _LAST.get(self.path)
        if key is not None and last is not None and last[0] == key:
            return dict(last[1])
        try:
            with self.path.open("rb") as f, gc_paused():
                data = pickle.load(f)
        except Exception:  # noqa: BLE001 - unpickling garbage can raise almost anything; rebuilt from the runs
            return {}
        if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("runs"), dict):
            return {}
        _remember(self.path, key, data["runs"])
        return data["runs"]

    def record(self, run_dir: Path, key: FileKey | None) -> RunRecord:
        """The record of `run_dir`, from the index if its run.json is unchanged; raises as `load_record`.

        `key` is `file_key` of its run.json, taken by the caller before this call (with the listing's stat)."""
        if self._entries is None:
            self._entries = self._read()
        cached = self._entries.get(run_dir.name)
        if key is not None and cached is not None and cached[0] == key and _belongs(cached[1], run_dir):
            return cached[1]
        self._changed = True
        self._entries.pop(run_dir.name, None)
        record = load_record(run_dir)
        if key is not None and key == file_key(RunPaths(run_dir).record):  # not rewritten while we read it
            self._entries[run_dir.name] = (key, record)
        return record

    def save(self, names: set[str]) -> None:
        """Keep the entries of the run folders `names` (the ones present now) and write them if they changed."""
        if self._entries is None:
            return
        gone = self._entries.keys() - names
        if not self._changed and not gone:
            return
        runs = {name: entry for name, entry in self._entries.items() if name in names}
        data = pickle.dumps({"format": _FORMAT, "runs": runs}, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            atomic_write_bytes(self.path, data)
            _remember(self.path, file_key(self.path), runs)
        except OSError:  # a read-only runs folder still lists, only without the speed-up
            pass
