"""`evaluate --against parent|baseline|RUN --sequential`: is this checkpoint better than another policy?

Both policies play the evaluation seeds in order, a group at a time, and the sequential paired test of
:mod:`mission_gym.sequential` stops as soon as it can say "better", "worse" or "no difference at this margin"
(or the seeds run out). The report (JSON and markdown) goes to the checkpoint's run folder, under
``evaluations/comparisons/``, so it never stands in for a full evaluation report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mission_gym.baseline import ScriptedAttackerPolicy
from mission_gym.config import read_seeds_file
from mission_gym.errors import MissionGymError
from mission_gym.evaluation import EvaluationTarget, Policy, load_policy, locate, run_episodes, seeds_hash
from mission_gym.runs.checkpoints import relative_to_runs, resolve_checkpoint, verify_checkpoint
from mission_gym.runs.layout import RunPaths, checkpoint_step
from mission_gym.runs.record import atomic_write_json, atomic_write_text
from mission_gym.sequential import SequentialDesign, sequential_compare, sequential_markdown

SPECIAL_OPPONENTS = ("parent", "baseline")


def compare_sequential(model: str | Path, against: str, *, config_dir: str | Path | None = None,
                       seeds_file: str | Path | None = None, runs_root: str | Path = "runs",
                       design: SequentialDesign | None = None, deterministic: bool = True) -> dict[str, Any]:
    """Play `model` against `against` (``parent``, ``baseline``, or a run name / checkpoint path) on the same
    seeds until the sequential test decides; write and return the report."""
    runs_root = Path(runs_root)
    target = locate(model, config_dir, runs_root)  # refuses a checkpoint outside a run folder
    seeds = read_seeds_file(seeds_file) if seeds_file else target.config.eval_seeds
    ours = load_policy(target.model_path, target.config, target.config_dir)
    theirs, label, slug = _opponent(against, target, runs_root)

    def play(group: list[int]) -> tuple[list[bool], list[bool]]:
        return _captured(ours, target, group, deterministic), _captured(theirs, target, group, deterministic)

    result = sequential_compare(play, seeds, design)
    shown = relative_to_runs(target.model_path, runs_root)
    report = {"checkpoint": shown, "against": label, "config_dir": str(target.config_dir),
              "config_hash": target.config.config_hash, "seeds_hash": seeds_hash(seeds),
              "deterministic": deterministic, **result.to_dict()}
    paths = RunPaths(target.run_dir)
    json_path, md_path = paths.comparison(target.model_path, slug, ".json"), paths.comparison(target.model_path, slug, ".md")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(json_path, report)
    atomic_write_text(md_path, f"# {shown} against {label}\n\n" + sequential_markdown(result, "this checkpoint", label))
    report["files"] = [str(json_path), str(md_path)]
    return report


def _opponent(against: str, target: EvaluationTarget, runs_root: Path) -> tuple[Policy, str, str]:
    """The other policy, how reports name it, and the slug of the report's file name."""
    if against == "baseline":
        return ScriptedAttackerPolicy(target.config), "the scripted baseline", "baseline"
    if against == "parent":
        parent = target.record.parent_checkpoint if target.record else None
        if parent is None:
            raise MissionGymError(f"--against parent: {target.model_path} belongs to a run with no parent (a fresh "
                                  "run); compare it --against baseline or --against RUN")
        path = runs_root / parent.path
        verify_checkpoint(path, runs_root)
        return load_policy(path, target.config, target.config_dir), f"its parent {parent.path}", "parent"
    path = resolve_checkpoint(against, runs_root)
    entry = verify_checkpoint(path, runs_root)
    run_name = entry.file.split("/", 1)[0]
    slug = f"{run_name}-{checkpoint_step(path) if path.parent.name == 'checkpoints' else 'final'}"
    return load_policy(path, target.config, target.config_dir), entry.file, slug


def _captured(policy: Policy, target: EvaluationTarget, seeds: list[int], deterministic: bool) -> list[bool]:
    return [r.outcome == "captured" for r in run_episodes(policy, target.config, seeds, deterministic)]
