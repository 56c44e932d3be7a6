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
import subprocess
import tempfile
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, JsonValue, ValidationError, field_validator

from mission_gym.errors import RunRecordError
from mission_gym.runs.naming import MAX_RUN_NAME_LEN, validate_name

RUN_RECORD_FILE = "run.json"
CHECKPOINTS_DIR = "checkpoints"
FINAL_MODEL_FILE = "final_model.zip"
SCHEMA_VERSION: Literal[1] = 1
# A running run rewrites its heartbeat far more often than this; an older heartbeat means its process died.
LIVE_HEARTBEAT_S = 120

RunStatus = Literal["running", "finished", "failed", "interrupted"]


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


class Git(_Record):
    """The code version a run trained with; None where the code was not in a git checkout."""

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
    error: str | None = None

    @field_validator("run_name", "root_ancestor", "parent_run")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        return None if value is None else validate_name(value, max_len=MAX_RUN_NAME_LEN)

    def is_live(self, now: dt.datetime | None = None) -> bool:
        """True while the run is `running` and its heartbeat is recent (a future heartbeat counts as recent)."""
        age = ((now or utc_now()) - self.heartbeat_at).total_seconds()
        return self.status == "running" and age <= LIVE_HEARTBEAT_S


# --- time ---------------------------------------------------------------------------------------------


def utc_now() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.timezone.utc)


def to_iso(moment: dt.datetime) -> str:
    """ISO-8601 UTC with a `Z` suffix; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> dt.datetime:
    """Parse an ISO-8601 timestamp as aware UTC (naive means UTC)."""
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


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
    path = folder / RUN_RECORD_FILE
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
    atomic_write_json(folder / RUN_RECORD_FILE, record.model_dump(mode="json"))


def update_record(run_dir: str | os.PathLike[str], **changes: Any) -> RunRecord:
    """Load the record, apply `changes` with full validation, save it and return the new record."""
    current = load_record(run_dir)
    try:
        updated = RunRecord.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        raise RunRecordError(f"{Path(run_dir) / RUN_RECORD_FILE}: invalid update:\n{_describe(exc)}") from None
    save_record(run_dir, updated)
    return updated


# --- provenance ---------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (checkpoints are tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_info(repo_dir: str | os.PathLike[str]) -> Git:
    """Commit and dirty flag of the checkout containing `repo_dir`; None values outside git (or without it)."""
    commit = _git(repo_dir, "rev-parse", "HEAD")
    if commit is None:
        return Git()
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
