"""The Dagster events that describe a run folder, built from what is on disk.

One place for them, because three callers report the same facts and must agree: the training job
(after `mission_gym.training.train`), the asset functions, and the sensor that picks up runs made with
the CLI. Lineage between runs is expressed as metadata links (Dagster cannot map one partition of an
asset to another partition of the same asset by data; see docs/dagster.md).
"""

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg

from mission_gym.runs.checkpoints import run_model
from mission_gym.runs.layout import EVALUATIONS_DIR, RunPaths
from mission_gym.runs.lineage import children
from mission_gym.runs.record import CheckpointEntry, RunRecord, sha256_file
from mission_gym.runs.reports import EvaluationFile
from mission_gym.sequential import paired_verdict
from mission_gym_pipelines.curve import learning_curve_markdown

CONFIG_SNAPSHOT = dg.AssetKey("config_snapshot")
CHECKPOINT = dg.AssetKey("checkpoint")
EVALUATION_REPORT = dg.AssetKey("evaluation_report")
PARENT_CHECK = "parent_checkpoint_intact"
# Metadata keys the sensor and schedule read back to know what was reported.
STEP_KEY = "step"
EVALUATED_CHECKPOINT_KEY = "checkpoint"


def partition_path(asset_key: dg.AssetKey, run_name: str) -> str:
    """The UI path of one run's partition of an asset (relative, so it works behind any host name)."""
    return f"/assets/{asset_key.to_user_string()}?view=partitions&partition={quote(run_name)}"


def run_link(run_name: str, asset_key: dg.AssetKey = CHECKPOINT) -> dg.MetadataValue:
    """A link to a run's partition labelled by the run's name (a url entry would show the raw path)."""
    return dg.MetadataValue.md(f"[{run_name}]({partition_path(asset_key, run_name)})")


def run_links_md(run_names: list[str], asset_key: dg.AssetKey = CHECKPOINT) -> str:
    """A markdown list of links to runs' partitions (the UI renders markdown metadata, links included)."""
    return "\n".join(f"- [{name}]({partition_path(asset_key, name)})" for name in run_names) or "none"


def rounded(value: Any, digits: int = 4) -> float:
    """A float as the UI should show it (metrics carry 16 digits nobody reads)."""
    return round(float(value), digits)


def space_summary(space: dict[str, Any]) -> str:
    """One line for a space signature: `Box (57,)`, `MultiDiscrete [9, 9, 9, 9]: STOP, N, ...` (not 4 lists)."""
    if space.get("type") == "MultiDiscrete":
        names = {tuple(actions) for actions in space.get("action_names", [])}
        listed = "; ".join(", ".join(actions) for actions in sorted(names))
        return f"MultiDiscrete {space.get('nvec')}" + (f": {listed}" if listed else "")
    return f"{space.get('type')} {tuple(space.get('shape', []))}"


# --- config snapshot ----------------------------------------------------------------------------------


def config_snapshot_metadata(record: RunRecord, parent: RunRecord | None) -> dict[str, Any]:
    """What changed versus the parent run's configs, then the config hash, per-file checksums and unit counts.

    Dagster lists metadata in this order, so a branch's kind and changes stay above the long JSON entries."""
    metadata: dict[str, Any] = {}
    if parent is not None:
        changed_files = sorted(
            name for name in record.config.files.keys() | parent.config.files.keys()
            if record.config.files.get(name) != parent.config.files.get(name)
        )
        metadata["branch_kind"] = branch_kind(record)
        metadata["counts_changed_vs_parent"] = _count_changes(parent.spaces.counts, record.spaces.counts)
        metadata["files_changed_vs_parent"] = ", ".join(changed_files) or "none"
        metadata["parent_run"] = run_link(parent.run_name, CONFIG_SNAPSHOT)
    metadata["config_hash"] = record.config.hash
    metadata["files"] = dg.MetadataValue.json(record.config.files)
    metadata["unit_counts"] = dg.MetadataValue.json(record.spaces.counts)
    return metadata


def branch_kind(record: RunRecord) -> str:
    """How a branch carried its parent's weights: as they were, or by transfer across unit counts."""
    if record.transfer is None:
        return "same spaces: weights loaded as they were"
    return f"transfer: {'; '.join(record.transfer.changes)}; weights transfer: {record.transfer.policy} policy"


def _count_changes(parent: dict[str, Any], child: dict[str, Any]) -> str:
    """`defenders: 2 -> 3` per unit count that differs (only an entity-policy branch, by transfer, has any)."""
    changes = [f"{key}: {parent.get(key)} -> {child.get(key)}"
               for key in sorted(parent.keys() | child.keys()) if parent.get(key) != child.get(key)]
    return "; ".join(changes) or "none"


# --- checkpoint ---------------------------------------------------------------------------------------


def latest_model(runs_root: Path, record: RunRecord) -> tuple[str, int, str] | None:
    """(path relative to the runs root, step, SHA-256) of the model the run name stands for, if any.

    The same model branching from the run name would load; its hash comes from the run record.
    """
    model = run_model(runs_root / record.run_name)
    if model is None:
        return None
    relative = f"{record.run_name}/{model.relative_to(runs_root / record.run_name).as_posix()}"
    entry = next((e for e in record.checkpoints if e.file == relative), None)
    if entry is None:  # written but not yet recorded (the record is rewritten right after each save)
        return None
    return relative, entry.step, entry.sha256


def last_metrics(run_dir: Path) -> dict[str, Any]:
    """The last complete line of the run's metrics.jsonl ({} without one); reads only the file's tail."""
    path = RunPaths(run_dir).metrics
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(size - 65536, 0))
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return {}
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:  # a line cut by the seek, or one being appended right now
            continue
    return {}


def checkpoint_metadata(runs_root: Path, record: RunRecord, records: list[RunRecord]) -> dict[str, Any] | None:
    """What the checkpoint partition shows: steps, file and hash, lineage links, spaces, last training stats.

    `records` are all runs (to list the children). None when the run has saved no model yet.
    """
    model = latest_model(runs_root, record)
    if model is None:
        return None
    path, step, sha256 = model
    run_dir = runs_root / record.run_name
    metrics = last_metrics(run_dir)
    metadata: dict[str, Any] = {
        "status": record.status,
        STEP_KEY: step,
        "global_timesteps": record.timesteps.current,
        "target_timesteps": record.timesteps.target,
        "checkpoint_path": dg.MetadataValue.path(path),
        "checkpoint_sha256": sha256,
        "device": record.device,
        "parent_run": run_link(record.parent_run) if record.parent_run else "none (trained from scratch)",
        "parent_step": record.parent_checkpoint.step if record.parent_checkpoint else 0,
        "root_ancestor": run_link(record.root_ancestor),
        "children": dg.MetadataValue.md(run_links_md([c.run_name for c in children(records, record.run_name)])),
        "branch_name": record.branch_name or "",
        "notes": record.notes,
        "observation_space": space_summary(record.spaces.observation),
        "action_space": space_summary(record.spaces.action),
        "hyperparameters": dg.MetadataValue.json(record.hyperparameters),
        "learning_curve": dg.MetadataValue.md(learning_curve_markdown(run_dir)),
        "tensorboard": dg.MetadataValue.path(RunPaths(Path(record.run_name)).tensorboard.as_posix()),
    }
    for name in ("ep_return_mean", "capture_rate"):
        if isinstance(metrics.get(name), (int, float)):
            metadata[f"last_{name}"] = rounded(metrics[name])
    if record.error:
        metadata["error"] = record.error
    return metadata


def status_line(record: RunRecord) -> str:
    """What the run's state means for someone reading its partition (a stopped run must not look finished)."""
    steps = f"{record.timesteps.current:,} of {record.timesteps.target:,} timesteps"
    if record.status == "finished":
        return f"Finished: {steps}."
    if record.status == "running":
        return f"Still training: {steps} so far."
    return (f"NOT FINISHED: {record.status.upper()} at {steps}. Continue it as a new run: materialize a new "
            f"partition with parent_checkpoint: {record.run_name}.")


def checkpoint_observation(record: RunRecord, entry: CheckpointEntry, metrics: dict[str, Any]) -> dg.AssetObservation:
    """A checkpoint saved while the run trains, shown on its partition before the run ends."""
    metadata: dict[str, Any] = {STEP_KEY: entry.step, "checkpoint_path": dg.MetadataValue.path(entry.file),
                                "checkpoint_sha256": entry.sha256, "status": record.status,
                                "target_timesteps": record.timesteps.target}
    for name in ("ep_return_mean", "capture_rate"):
        if isinstance(metrics.get(name), (int, float)):
            metadata[name] = rounded(metrics[name])
    return dg.AssetObservation(asset_key=CHECKPOINT, partition=record.run_name, metadata=metadata,
                               description=f"Checkpoint saved at step {entry.step:,} while training.")


def child_backlink(record: RunRecord) -> dg.AssetObservation | None:
    """An observation on the parent's checkpoint partition pointing at this new child (the reverse link)."""
    if record.parent_run is None:
        return None
    return dg.AssetObservation(
        asset_key=CHECKPOINT,
        partition=record.parent_run,
        description=f"Run {record.run_name} branched from this run.",
        metadata={
            "child_run": run_link(record.run_name),
            "branched_at_step": record.parent_checkpoint.step if record.parent_checkpoint else 0,
        },
    )


# --- parent checkpoint check --------------------------------------------------------------------------


def parent_checkpoint_check(runs_root: Path, record: RunRecord) -> dg.AssetCheckEvaluation:
    """Does the checkpoint this run branched from still exist with the SHA-256 recorded when branching?"""
    parent = record.parent_checkpoint
    if parent is None:
        return _check(record, True, "Trained from scratch: no parent checkpoint.", {})
    metadata = {"parent_checkpoint": dg.MetadataValue.path(parent.path), "recorded_sha256": parent.sha256,
                "parent_run": run_link(record.parent_run or parent.path.split("/", 1)[0])}
    path = runs_root / parent.path
    if not path.is_file():
        return _check(record, False, f"Parent checkpoint {parent.path} is missing.", metadata)
    actual = sha256_file(path)
    metadata["actual_sha256"] = actual
    if actual != parent.sha256:
        return _check(record, False, f"Parent checkpoint {parent.path} changed since this run branched.", metadata)
    return _check(record, True, f"Parent checkpoint {parent.path} is intact.", metadata)


def _check(record: RunRecord, passed: bool, description: str, metadata: dict[str, Any]) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(asset_key=CHECKPOINT, check_name=PARENT_CHECK, passed=passed,
                                   partition=record.run_name, description=description, metadata=metadata)


# --- evaluation report --------------------------------------------------------------------------------


def evaluation_metadata(runs_root: Path, evaluation: EvaluationFile) -> dict[str, Any]:
    """Capture rate with its interval, the paired comparisons (scripted baseline, parent), the report files."""
    report = evaluation.report
    low, high = report["capture_rate_ci"]
    metadata: dict[str, Any] = {
        EVALUATED_CHECKPOINT_KEY: evaluation.checkpoint,
        STEP_KEY: evaluation.step,
        "capture_rate": rounded(report["capture_rate"]),
        "capture_rate_ci95_low": rounded(low),
        "capture_rate_ci95_high": rounded(high),
        "mean_return": rounded(report["mean_return"]),
        "seeds_hash": str(report.get("seeds_hash", "")),
        "report": dg.MetadataValue.md(_report_markdown(runs_root, evaluation)),
        # Named from the layout, not by relative_to: the report's path is absolute, the runs root may not be.
        "report_file": dg.MetadataValue.path(f"{evaluation.run_name}/{EVALUATIONS_DIR}/{evaluation.path.name}"),
    }
    for name in ("baseline", "parent"):
        other = report.get(name)
        if isinstance(other, dict) and "capture_rate" in other:
            metadata[f"{name}_capture_rate"] = rounded(other["capture_rate"])
            metadata[f"capture_rate_vs_{name}"] = rounded(float(report["capture_rate"]) - float(other["capture_rate"]))
            if isinstance(other.get("paired"), dict):
                metadata[f"paired_vs_{name}"] = paired_verdict(other["paired"])
    return metadata


def _report_markdown(runs_root: Path, evaluation: EvaluationFile) -> str:
    """The report's own markdown (tables), written next to its JSON by the evaluation."""
    path = evaluation.path.with_suffix(".md")  # beside its JSON, whatever key names the pair
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"No markdown report next to {evaluation.path.name} (expected {path.name})."


def evaluation_event(runs_root: Path, evaluation: EvaluationFile) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(asset_key=EVALUATION_REPORT, partition=evaluation.run_name,
                                   metadata=evaluation_metadata(runs_root, evaluation))


# --- a whole run --------------------------------------------------------------------------------------


def first_sight_events(runs_root: Path, record: RunRecord, records: list[RunRecord]) -> list[Any]:
    """Reported once per run: its config snapshot, the parent-checkpoint check, the back-link on the parent.

    Once, because Dagster stores one runless check evaluation per check and partition (a second one
    from a sensor hits a unique constraint); later checks run with the checkpoint asset.
    """
    parent = next((r for r in records if r.run_name == record.parent_run), None)
    events: list[Any] = [dg.AssetMaterialization(asset_key=CONFIG_SNAPSHOT, partition=record.run_name,
                                                 metadata=config_snapshot_metadata(record, parent)),
                         parent_checkpoint_check(runs_root, record)]
    backlink = child_backlink(record)
    return events + ([backlink] if backlink else [])


def checkpoint_event(runs_root: Path, record: RunRecord,
                     records: list[RunRecord]) -> dg.AssetMaterialization | dg.AssetObservation | None:
    """The run's latest checkpoint as an event (None before it saved one).

    A materialization while the run trains or once it finished; an observation when it stopped without
    finishing (interrupted, failed, diverged), so its partition never looks like a finished run's.
    """
    metadata = checkpoint_metadata(runs_root, record, records)
    if metadata is None:
        return None
    if record.status in ("running", "finished"):
        return dg.AssetMaterialization(asset_key=CHECKPOINT, partition=record.run_name, metadata=metadata,
                                       description=status_line(record))
    return dg.AssetObservation(asset_key=CHECKPOINT, partition=record.run_name, metadata=metadata,
                               description=status_line(record))
