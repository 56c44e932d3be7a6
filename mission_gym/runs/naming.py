"""Run and branch names, and reserving a run folder that no other run can share.

A name becomes a folder under `runs/`, a Dagster partition key and part of shell commands users copy, so
names are restricted to a portable set and checked before anything touches the disk.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import random
import re
from collections.abc import Iterable
from pathlib import Path

from mission_gym.errors import RunNameError

MAX_NAME_LEN = 100
# Generated names add "-YYYYMMDD-HHMMSS" and maybe "-N" to a user's name of up to MAX_NAME_LEN characters.
MAX_RUN_NAME_LEN = 128
TIMESTAMP_FORMAT = "%Y%m%d-%H%M%S"

_ALLOWED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_ALLOWED_TEXT = "letters A-Z/a-z, digits, '-', '_', '.' and '+', starting with a letter or digit"

# A private generator: drawing a name must not shift the global `random` state a seeded training run uses.
_RNG = random.Random()

ADJECTIVES = (
    "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "daring", "eager",
    "fierce", "gentle", "golden", "happy", "hidden", "keen", "lively", "lucky", "mighty", "nimble",
    "noble", "quiet", "rapid", "silent", "silver", "steady", "swift", "vivid", "warm", "zen",
)  # fmt: skip
ANIMALS = (
    "badger", "bison", "cobra", "comet", "condor", "coyote", "crane", "dolphin", "eagle", "falcon",
    "ferret", "gecko", "heron", "ibex", "jaguar", "lynx", "marten", "moose", "orca", "osprey",
    "otter", "panther", "puma", "raven", "salmon", "stork", "tiger", "viper", "walrus", "wolf",
)  # fmt: skip


def validate_name(name: str, what: str = "run name", *, max_len: int = MAX_NAME_LEN) -> str:
    """Return `name` if it is a safe folder name, else raise RunNameError saying what is allowed."""
    problem = _name_problem(name, max_len)
    if problem:
        raise RunNameError(f"invalid {what} {name!r}: {problem}. Allowed: 1-{max_len} {_ALLOWED_TEXT}.")
    return name


def _name_problem(name: str, max_len: int) -> str | None:
    """Why `name` is refused, in the user's terms, or None when it is fine."""
    if not isinstance(name, str) or not name.strip():
        return "it is empty"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if ".." in name or name.startswith("."):
        return "it could name a parent or hidden folder"
    if any(ch.isspace() for ch in name):
        return "it contains whitespace (use '-' instead)"
    if any(not ch.isprintable() for ch in name):
        return "it contains control characters"
    if len(name) > max_len:
        return f"it is {len(name)} characters long"
    if not _ALLOWED.fullmatch(name):
        return "it contains characters outside the allowed set"
    return None


def timestamp(now: dt.datetime) -> str:
    """`YYYYMMDD-HHMMSS` in UTC (a naive `now` is taken to be UTC) so names sort by start time."""
    if now.tzinfo is not None:
        now = now.astimezone(dt.timezone.utc)
    return now.strftime(TIMESTAMP_FORMAT)


def new_run_name(
    runs_root: str | os.PathLike[str],
    *,
    run_name: str | None = None,
    branch_name: str | None = None,
    is_branch: bool = False,
    now: dt.datetime | None = None,
) -> str:
    """The name for a new run: `<run-name>-<ts>`, `<branch-name>-<ts>`, `branch-<ts>` or `<adj>-<animal>-<ts>`.

    Pass the result to `reserve_run_dir`, which makes it unique (two runs may start in the same second).
    """
    stamp = timestamp(now or dt.datetime.now(dt.timezone.utc))
    if branch_name is not None:
        if not is_branch:
            raise RunNameError(f"branch name {branch_name!r} given for a run that has no parent checkpoint")
        base = validate_name(branch_name, "branch name")
    elif run_name is not None:
        base = validate_name(run_name)
    elif is_branch:
        base = "branch"
    else:
        base = _random_base(Path(runs_root), stamp)
    return f"{base}-{stamp}"


def _random_base(runs_root: Path, stamp: str) -> str:
    """An `adjective-animal` pair whose timestamped folder does not exist yet (when one can be found)."""
    pairs = [f"{adj}-{animal}" for adj in ADJECTIVES for animal in ANIMALS]
    for pair in _RNG.sample(pairs, k=20):
        if not (runs_root / f"{pair}-{stamp}").exists():
            return pair
    return pairs[0]  # every try taken: reserve_run_dir's numeric suffix still keeps the folder unique


def reserve_run_dir(runs_root: str | os.PathLike[str], name: str) -> Path:
    """Create and return `runs_root/name`, or `name-2`, `name-3`, ... when taken.

    os.mkdir either creates the folder or fails, so two processes can never both get the same folder.
    """
    root = Path(runs_root)
    validate_name(name, max_len=MAX_RUN_NAME_LEN)
    root.mkdir(parents=True, exist_ok=True)
    real_root = root.resolve()
    n = 1
    while True:
        candidate = name if n == 1 else validate_name(f"{name}-{n}", max_len=MAX_RUN_NAME_LEN)
        path = root / candidate
        try:
            os.mkdir(path)
        except FileExistsError:
            n += 1
            continue
        if path.resolve().parent != real_root:  # impossible for a valid name; cheap to guarantee anyway
            path.rmdir()
            raise RunNameError(f"run folder {path} would resolve outside {real_root}")
        return path


def similar_names(name: str, known: Iterable[str], limit: int = 5) -> list[str]:
    """Names the user may have meant: those extending `name` (a run name typed without its timestamp,
    newest first), then close spellings. Runs share date digits, so closeness needs a high bar."""
    known = list(known)
    extending = sorted((k for k in known if k.startswith(name) and k != name), reverse=True)
    close = difflib.get_close_matches(name, known, n=limit, cutoff=0.75)
    return list(dict.fromkeys(extending + close))[:limit]


def unknown_run_message(name: str, known: Iterable[str], where: str | os.PathLike[str]) -> str:
    """`no run named X in runs/; did you mean: a, b?` for errors about a run name that does not exist."""
    close = similar_names(name, known)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    return f"no run named {name!r} in {where}{hint}"
