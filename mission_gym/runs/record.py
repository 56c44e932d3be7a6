"""The run record (`runs/<name>/run.json`, schema in docs/design.md) and the atomic writes every run file uses.

A reader (dashboard, cleanup, a branching run) may open a run's files while its training process rewrites
them, and a crash may interrupt any write: every file is therefore written to a temporary file in the same
folder, fsynced and renamed over the old one, so a reader sees the old or the new content, never half.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, JsonValue, ValidationError, field_validator

from mission_gym.errors import RunRecordError
from mission_gym.runs.layout import RunPaths
from mission_gym.runs.naming import MAX_RUN_NAME_LEN, validate_name

SCHEMA_VERSION: Literal[1] = 1
# A running run rewrites its heartbeat far more often than this; an older heartbeat means its process died.
LIVE_HEARTBEAT_S = 120
# Seconds a heartbeat may lie ahead of this host's clock and still count as an ordinary recent one.
CLOCK_SKEW_S = 5

RunStatus = Literal["running", "finished", "failed", "interrupted"]
PolicyKind = Literal["mlp", "entity"]  # the network a run trains (mission_gym.policy, mission_gym.entity_policy)


class _Record(BaseModel):
    """Strict base: an unknown key is a typo or a newer schema, and NaN/Infinity are not JSON."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _runs_relative(value: str) -> str:
    """Refuse absolute or escaping paths: run records stay valid when the runs folder moves."""
    path = PurePosixPath(value)
    if not value or path.is_absolute() or "\\" in value or ".." in path.parts:
        raise ValueError(f"{value!r} must be a path relative to the runs folder (posix, no '..')")
    return value


RunsRelativePath = Annotated[str, AfterValidator(_runs_relative)]


class ParentCheckpoint(_Record):
    """The checkpoint a branched run started from; `path` is relative to the runs root."""

    path: RunsRelativePath
    step: int
    sha256: str


class CheckpointEntry(_Record):
    """One model file a run wrote; `file` is relative to the runs root (`<run>/checkpoints/...zip`)."""

    file: RunsRelativePath
    step: int
    sha256: str


UNKNOWN_COMMIT = "unknown"  # the commit a run records where its code was not in a git checkout


class Git(_Record):
    """The code version a run trained with; commit UNKNOWN_COMMIT outside a git checkout (None in older records)."""

    commit: str | None = None
    dirty: bool | None = None


class ConfigRef(_Record):
    """Hash of the whole config directory and the SHA-256 of each file in it."""

    hash: str
    files: dict[str, str]


class Spaces(_Record):
    """Observation and action space signatures plus the unit counts that shape them (see compat.py)."""

    observation: dict[str, JsonValue]
    action: dict[str, JsonValue]
    counts: dict[str, JsonValue]


class Transfer(_Record):
    """A branch whose unit counts differ from its parent's, its weights carried over by the entity policy:
    what changed (e.g. "defenders 2 → 3"), the counts on both sides, and the parent's full space signature."""

    policy: Literal["entity"]
    changes: list[str]
    from_counts: dict[str, JsonValue]
    to_counts: dict[str, JsonValue]
    parent_spaces: Spaces


class Timesteps(_Record):
    """Global timesteps: `start` is the parent checkpoint's step (0 for a fresh run)."""

    start: int
    target: int
    current: int


class RunRecord(_Record):
    """Everything known about one run; written to `runs/<run_name>/run.json`."""

    schema_version: Literal[1] = SCHEMA_VERSION
    run_name: str
    created_at: AwareDatetime
    heartbeat_at: AwareDatetime
    status: RunStatus
    parent_run: str | None = None
    parent_checkpoint: ParentCheckpoint | None = None
    root_ancestor: str
    branch_name: str | None = None
    notes: str = ""
    git: Git
    config: ConfigRef
    spaces: Spaces
    transfer: Transfer | None = None
    hyperparameters: dict[str, JsonValue] = {}
    device: Literal["cpu", "cuda"]
    timesteps: Timesteps
    checkpoints: list[CheckpointEntry] = []
    pid: int
    host: str
    # When process `pid` started (seconds since the epoch, from /proc): tells a reused pid from the run's own.
    process_started_at: float | None = None
    error: str | None = None

    @field_validator("run_name", "root_ancestor", "parent_run")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        return None if value is None else validate_name(value, max_len=MAX_RUN_NAME_LEN)

    @property
    def policy(self) -> PolicyKind:
        """The policy the run trained; runs recorded before `policy` existed trained the MLP."""
        return "entity" if self.hyperparameters.get("policy") == "entity" else "mlp"

    def is_live(self, now: dt.datetime | None = None, written_at: dt.datetime | None = None) -> bool:
        """True while the run is `running` and its process still runs.

        On the run's own host the process table decides at once (its pid gone, or reused by another process,
        means dead, whatever the heartbeat says). From another host only the heartbeat can: recent means
        live. A heartbeat ahead of this host's clock (skew, or a hand edit) proves nothing; it counts as live
        for at most LIVE_HEARTBEAT_S after the record was written (`written_at`, its file time here) or
        first seen by this process, never forever.
        """
        if self.status != "running":
            return False
        if self.host == socket.gethostname():
            if not process_running(self.pid, self.process_started_at):
                return False
            if self.process_started_at is not None:
                return True  # an older record without it: the pid may be reused, let the heartbeat decide
        now = now or utc_now()
        age = (now - self.heartbeat_at).total_seconds()
        if age >= -CLOCK_SKEW_S:
            return age <= LIVE_HEARTBEAT_S
        seen = _FUTURE_HEARTBEATS.setdefault((self.run_name, self.heartbeat_at), now)
        if written_at is not None and written_at <= now:
            seen = min(seen, written_at)
        return (now - seen).total_seconds() <= LIVE_HEARTBEAT_S


# When this process first saw each heartbeat that lay in its future: (run name, heartbeat) -> first seen.
_FUTURE_HEARTBEATS: dict[tuple[str, dt.datetime], dt.datetime] = {}


# --- processes ----------------------------------------------------------------------------------------


def process_start_time(pid: int) -> float | None:
    """When process `pid` started, in seconds since the epoch, or None when it does not exist.

    Linux: field 22 of /proc/<pid>/stat (clock ticks after boot) plus the boot time; a zombie counts as
    gone. Without /proc, None too: `process_running` then falls back to whether the pid exists.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    # The command name (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # killed, not yet reaped by its parent: gone for every purpose here
        return None
    ticks = int(fields[19])
    return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")


def process_running(pid: int, started_at: float | None) -> bool:
    """True when process `pid` exists on this host and, where `started_at` and /proc are known, started then."""
    if pid <= 0:
        return False
    actual = process_start_time(pid)
    if actual is not None:
        return started_at is None or abs(actual - started_at) <= 1.0
    if Path("/proc/self/stat").exists():  # /proc works and has no such process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


# --- time ---------------------------------------------------------------------------------------------


def utc_now() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.timezone.utc)


def to_iso(moment: dt.datetime) -> str:
    """ISO-8601 UTC with a `Z` suffix; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


# --- atomic writes ------------------------------------------------------------------------------------


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace `path` with `data` atomically: temp file in the same folder, fsync, os.replace, fsync folder.

    On any failure the temp file is removed and the previous content of `path` is untouched.
    """
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
            # mkstemp creates 0600; keep the mode readers (a dashboard server, a colleague) already had.
            os.chmod(tmp_name, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; some filesystems cannot open a folder, which is harmless."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically replace `path` with UTF-8 `text`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(value: Any) -> Any:
    """Serialize numpy scalars/arrays (anything with `tolist`) and datetimes; refuse the rest."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dt.datetime):
        return to_iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps_json(obj: Any) -> str:
    """Strict, readable JSON: NaN and Infinity raise ValueError instead of producing invalid JSON."""
    return json.dumps(obj, indent=2, allow_nan=False, ensure_ascii=False, default=_json_default) + "\n"


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write `obj` as strict JSON (ValueError naming `path` on NaN/Infinity, nothing written)."""
    try:
        text = dumps_json(obj)
    except ValueError as exc:
        raise ValueError(f"{path}: refusing to write non-finite number as JSON ({exc})") from exc
    atomic_write_text(path, text)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read strict JSON: `NaN`/`Infinity` (which Python's json accepts by default) raise ValueError."""
    return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=_refuse_constant)


# --- the record on disk -------------------------------------------------------------------------------


def load_record(run_dir: str | os.PathLike[str]) -> RunRecord:
    """Read and validate `run_dir/run.json`; RunRecordError names the file and every invalid field."""
    folder = Path(run_dir)
    path = RunPaths(folder).record
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise RunRecordError(f"{path}: missing; {folder} is not a complete run folder") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunRecordError(f"{path}: not readable as JSON ({exc})") from None
    try:
        record = RunRecord.model_validate(data)
    except ValidationError as exc:
        raise RunRecordError(f"{path}: invalid run record:\n{_describe(exc)}") from None
    if record.run_name != folder.name:
        raise RunRecordError(
            f"{path}: run_name is {record.run_name!r} but the folder is {folder.name!r}; "
            "run folders must keep the name they were created with (rename the folder back)"
        )
    return record


def _describe(exc: ValidationError) -> str:
    """One line per invalid field: `  status: Input should be 'running', ...`."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)


def save_record(run_dir: str | os.PathLike[str], record: RunRecord) -> None:
    """Atomically (re)write `run_dir/run.json`; the folder name must be the record's run name."""
    folder = Path(run_dir)
    if folder.name != record.run_name:
        raise RunRecordError(f"refusing to save the record of {record.run_name!r} into folder {folder}")
    atomic_write_json(RunPaths(folder).record, record.model_dump(mode="json"))


# --- provenance ---------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (checkpoints are tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_info(repo_dir: str | os.PathLike[str]) -> Git:
    """Commit and dirty flag of the checkout containing `repo_dir`; outside git (or without it) the commit is
    UNKNOWN_COMMIT and the dirty flag None."""
    commit = _git(repo_dir, "rev-parse", "HEAD")
    if commit is None:
        return Git(commit=UNKNOWN_COMMIT)
    status = _git(repo_dir, "status", "--porcelain")
    return Git(commit=commit, dirty=None if status is None else bool(status))


def _git(repo_dir: str | os.PathLike[str], *args: str) -> str | None:
    """stdout of one git command, or None when git is missing, times out or fails (e.g. not a repo)."""
    try:
        done = subprocess.run(
            ["git", "-C", os.fspath(repo_dir), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
