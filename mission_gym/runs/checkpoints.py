"""Checkpoint files of a run (named in layout.py): ordering by step, resolving what a user typed, integrity, pruning.

"Latest" always means the highest step in the file name, never the newest file time or glob order: a
copied or touched file must not change which checkpoint a run resumes from.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from mission_gym.errors import CheckpointIntegrityError, CheckpointNotFoundError, MissionGymError
from mission_gym.runs.layout import (
    CHECKPOINT_NAME_HELP,
    CHECKPOINT_PATTERN,
    CHECKPOINTS_DIR,
    FINAL_MODEL_FILE,
    STEP_IN_NAME,
    TEMP_FILE_PATTERN,
    RunPaths,
    checkpoint_step,
)
from mission_gym.runs.lineage import list_runs, parent_checkpoint_paths, run_entries
from mission_gym.runs.naming import similar_names
from mission_gym.runs.record import CheckpointEntry, load_record, sha256_file

_NEAREST_SHOWN = 5
MODEL_MEMBERS = ("data", "policy.pth")  # what every SB3 model archive holds


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """The run's checkpoint files sorted by step, oldest first."""
    folder = RunPaths(Path(run_dir)).checkpoints_dir
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if CHECKPOINT_PATTERN.fullmatch(p.name) and p.is_file()]
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The run's checkpoint with the highest step, or None when it has none."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def model_files(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Every model the run wrote: its checkpoints by step, then final_model.zip if present."""
    final = RunPaths(Path(run_dir)).final_model
    return list_checkpoints(run_dir) + ([final] if final.is_file() else [])


def run_model(run_dir: str | os.PathLike[str]) -> Path | None:
    """The model a run name stands for: its highest-step checkpoint, else final_model.zip, else None.

    Where the run's record is readable only the files it lists count: a kill between a checkpoint landing
    and the record naming it leaves a file whose integrity nothing vouches for.
    """
    folder = Path(run_dir)
    try:
        recorded = {Path(entry.file).name for entry in load_record(folder).checkpoints}
    except MissionGymError:
        recorded = None
    for model in reversed(model_files(folder)):
        if model.name != FINAL_MODEL_FILE and (recorded is None or model.name in recorded):
            return model
    final = folder / FINAL_MODEL_FILE
    return final if final.is_file() and (recorded is None or FINAL_MODEL_FILE in recorded) else None


def sweep_temp_files(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete the temp files a killed writer left in a run folder (`.<name>.<random>.tmp`, see atomic writes).

    Only the training process writes the run folder and its checkpoints (reports in evaluations/ are left
    to whoever writes them), so call this only once that process is gone: then every temp file is older
    than its death and none will ever be renamed into place. Returns the files deleted.
    """
    folder = Path(run_dir)
    swept = []
    for place in (folder, folder / CHECKPOINTS_DIR):
        if place.is_dir() and not place.is_symlink():
            for path in place.iterdir():
                if TEMP_FILE_PATTERN.fullmatch(path.name) and path.is_file() and not path.is_symlink():
                    path.unlink(missing_ok=True)
                    swept.append(path)
    return swept


def _looks_like_run_dir(path: Path) -> bool:
    paths = RunPaths(path)
    return any(p.exists() for p in (paths.record, paths.checkpoints_dir, paths.final_model))


def resolve_checkpoint(spec: str | os.PathLike[str], runs_root: str | os.PathLike[str]) -> Path:
    """Turn what a user typed into an existing model file.

    `spec` is a checkpoint path with or without `.zip` (absolute, relative to the working directory, or
    relative to the runs root), or a run folder / run name, which means that run's highest-step checkpoint
    (its final_model.zip when it has no checkpoints). CheckpointNotFoundError lists every path tried and
    the nearest existing checkpoints.
    """
    text = os.fspath(spec)
    if not text.strip():
        raise CheckpointNotFoundError("empty checkpoint path: pass a checkpoint path or a run name")
    given = Path(text).expanduser()
    bases = [given] if given.is_absolute() else [Path.cwd() / given, Path(runs_root) / given]
    tried: list[Path] = []
    for base in (Path(os.path.abspath(b)) for b in bases):
        for candidate in (base, Path(f"{base}.zip")):
            if candidate not in tried:
                tried.append(candidate)
                if candidate.is_file() and candidate.suffix == ".zip":
                    return candidate
        if base.is_dir() and _looks_like_run_dir(base):
            model = run_model(base)
            if model is not None:
                return model
            paths = RunPaths(base)
            tried += [paths.checkpoints_dir / CHECKPOINT_NAME_HELP, paths.final_model]
    not_models = [p for p in tried if p.is_file()]  # a run.json or config passed by mistake
    if not_models:
        raise CheckpointNotFoundError(
            f"{_show(not_models[0])} is not a model file: models are .zip files "
            f"({CHECKPOINT_NAME_HELP}, {FINAL_MODEL_FILE})"
        )
    raise CheckpointNotFoundError(_not_found_message(text, given, tried, Path(runs_root)))


def _not_found_message(text: str, given: Path, tried: list[Path], runs_root: Path) -> str:
    lines = [f"checkpoint not found: {text!r}", "Tried:"]
    lines += [f"  {_show(p)}" for p in tried]
    nearest = _nearest_checkpoints(given, runs_root)
    if nearest:
        lines += ["Nearest existing checkpoints:", *nearest]
    else:
        lines.append(f"No similar checkpoints under {_show(runs_root)}.")
    lines.append("Pass a checkpoint path (the .zip extension is optional) or a run name (its latest checkpoint).")
    return "\n".join(lines)


def _nearest_checkpoints(given: Path, runs_root: Path) -> list[str]:
    """Checkpoints of the run the user meant (closest steps first), else latest ones of similarly named runs."""
    parts = given.parts
    if CHECKPOINTS_DIR in parts:
        cut = len(parts) - 1 - parts[::-1].index(CHECKPOINTS_DIR)
        run_ref = Path(*parts[:cut]) if cut else Path(".")
    else:
        run_ref = given
    wanted = STEP_IN_NAME.search(given.name)
    bases = [run_ref] if run_ref.is_absolute() else [Path.cwd() / run_ref, runs_root / run_ref]
    for base in bases:
        found = list_checkpoints(base)
        if found:
            if wanted:
                found.sort(key=lambda p: abs(checkpoint_step(p) - int(wanted.group(1))))
            else:
                found.reverse()
            return [f"  {_show(p)}" for p in found[:_NEAREST_SHOWN]]
    names = [entry.name for entry in run_entries(runs_root)]
    lines = []
    for name in similar_names(run_ref.name.removesuffix(".zip"), names, _NEAREST_SHOWN):
        latest = latest_checkpoint(runs_root / name)
        lines.append(f"  {_show(latest)}" if latest else f"  {name} (a run with no checkpoints)")
    return lines


def _show(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()


def relative_to_runs(path: str | os.PathLike[str], runs_root: str | os.PathLike[str]) -> str:
    """`path` relative to the runs root, posix style, as run records store it.

    Symlinks are resolved first, so a path that only looks inside the runs root through a link is refused.
    """
    root = Path(runs_root).resolve()
    real = Path(path).resolve()
    try:
        relative = real.relative_to(root)
    except ValueError:
        raise MissionGymError(
            f"{path} is outside the runs folder {root}; run records can only name files inside it"
        ) from None
    if not relative.parts:
        raise MissionGymError(f"{path} is the runs folder itself, not a file inside a run")
    return relative.as_posix()


def verify_checkpoint(path: str | os.PathLike[str], runs_root: str | os.PathLike[str]) -> CheckpointEntry:
    """Check a checkpoint against the SHA-256 its run recorded; return that record entry.

    CheckpointIntegrityError when the hash differs or the run's record does not list the file at all.
    """
    relative = relative_to_runs(path, runs_root)
    run_dir = Path(runs_root) / relative.split("/", 1)[0]
    record_path = RunPaths(run_dir).record
    record = load_record(run_dir)
    entry = next((e for e in record.checkpoints if e.file == relative), None)
    if entry is None:
        raise CheckpointIntegrityError(
            f"{relative} is not listed in the checkpoints of {record_path}: run {record.run_name} did not record "
            "writing it (copied in by hand, or the record is out of date), so its integrity cannot be checked; "
            "branch from a checkpoint the run recorded"
        )
    try:
        actual = sha256_file(path)
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"{relative} is recorded in {record_path} but the file is gone") from None
    if actual != entry.sha256:
        raise CheckpointIntegrityError(
            f"{relative} changed after run {record.run_name} wrote it: SHA-256 is {actual}, {record_path} "
            f"recorded {entry.sha256}; the file was overwritten or corrupted, branch from another checkpoint"
        )
    return entry


def check_model_archive(path: str | os.PathLike[str]) -> None:
    """Refuse a model file whose zip archive is damaged (truncated, a flipped byte), reading every member.

    A recorded hash cannot catch a file that was damaged before it was hashed, and SB3 fails on one with an
    assertion deep inside loading (after a branch's run folder exists): CheckpointIntegrityError instead.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            missing = [name for name in MODEL_MEMBERS if name not in archive.namelist()]
            # A truncated file can still parse: as the torch archive nested inside it, so check the members.
            damaged = f"no {', '.join(missing)} in it" if missing else archive.testzip()  # testzip: first bad CRC
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
        damaged = str(error)
    if damaged:
        raise CheckpointIntegrityError(f"{path}: the checkpoint archive is damaged ({damaged}), so it cannot be "
                                       "loaded; use another checkpoint of the run")


def prune_checkpoints(run_dir: str | os.PathLike[str], keep: int, runs_root: str | os.PathLike[str],
                      before_delete: Callable[[list[Path]], None] | None = None) -> list[Path]:
    """Delete all but the `keep` highest-step checkpoints of a run, sparing any another run branched from.

    `before_delete(doomed)` runs first: the trainer drops them from its run record there, so the record
    never names a file that is gone. Returns the deleted files.
    """
    if keep < 0:
        raise ValueError(f"keep must be >= 0, got {keep}")
    needed = parent_checkpoint_paths(list_runs(runs_root))
    found = list_checkpoints(run_dir)
    doomed = [p for p in found[: max(len(found) - keep, 0)] if relative_to_runs(p, runs_root) not in needed]
    if doomed and before_delete is not None:
        before_delete(doomed)
    for path in doomed:
        path.unlink()
    return doomed
