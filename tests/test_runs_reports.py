"""One rule for a run's latest evaluation report, shared by the dashboard and the Dagster views."""

from __future__ import annotations

import json
import os

from mission_gym.runs.layout import RunPaths
from mission_gym.runs.reports import latest_evaluation, latest_report_path, report_key, report_rank


def _report(run: RunPaths, stem: str, step: int, capture_rate: float = 0.5):
    path = run.evaluations_dir / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"checkpoint": f"{run.root.name}/{stem}.zip", "step": step,
                                "capture_rate": capture_rate}))
    return path


def test_the_newest_model_by_the_step_in_its_name_not_by_file_time(tmp_path):
    run = RunPaths.of(tmp_path, "r")
    assert latest_report_path(run.root) is None  # no evaluations/ folder
    newer = _report(run, "ppo_mission_10000_steps", 10000)
    older = _report(run, "ppo_mission_900_steps", 900)
    os.utime(newer, (1, 1))
    os.utime(older, (2, 2))
    (run.evaluations_dir / "ppo_mission_10000_steps.md").write_text("# markdown, not a report")
    (run.evaluations_dir / ".ppo_mission_99999_steps.json.x.tmp").write_text("{")  # an atomic write in progress
    assert latest_report_path(run.root) == newer
    evaluation = latest_evaluation(run.root)
    assert evaluation is not None and (evaluation.run_name, evaluation.step) == ("r", 10000)
    assert evaluation.checkpoint == "r/ppo_mission_10000_steps.zip"


def test_final_model_comes_after_every_checkpoint(tmp_path):
    # The final model is saved at the step of the last checkpoint: its report is the run's latest.
    run = RunPaths.of(tmp_path, "r")
    _report(run, "ppo_mission_3000_steps", 3000, capture_rate=0.3)
    final = _report(run, "final_model", 3000, capture_rate=0.4)
    assert latest_report_path(run.root) == final
    assert latest_evaluation(run.root).report["capture_rate"] == 0.4


def test_an_unreadable_latest_report_is_not_replaced_by_an_older_one(tmp_path):
    run = RunPaths.of(tmp_path, "r")
    _report(run, "ppo_mission_1000_steps", 1000)
    broken = run.evaluations_dir / "ppo_mission_2000_steps.json"
    broken.write_text("{cut")
    assert latest_report_path(run.root) == broken  # the dashboard shows why it cannot be read
    assert latest_evaluation(run.root) is None
    broken.write_text("[1, 2]")
    assert latest_evaluation(run.root) is None


def _measured(run: RunPaths, name: str, episodes: int, *, own: bool = True, deterministic: bool = True, mtime: int = 1):
    config_dir = run.config_snapshot if own else "configs"
    path = run.evaluations_dir / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"checkpoint": f"{run.root.name}/final_model.zip", "step": 3000, "episodes": episodes,
                                "config_dir": str(config_dir), "deterministic": deterministic}))
    os.utime(path, (mtime, mtime))
    return path


def test_the_most_complete_report_of_the_latest_checkpoint(tmp_path):
    run = RunPaths.of(tmp_path, "r")
    _report(run, "ppo_mission_3000_steps", 3000)  # an older model: never chosen over final_model's reports
    full = _measured(run, "final_model.aaaaaaaaaaaa", 100)
    _measured(run, "final_model.bbbbbbbbbbbb", 2, mtime=5)  # a quick, newer evaluation
    _measured(run, "final_model.cccccccccccc", 500, own=False, mtime=5)  # on another config folder
    _measured(run, "final_model", 100, deterministic=False, mtime=5)  # an old-style name, stochastic
    assert latest_report_path(run.root) == full
    assert latest_evaluation(run.root).report["episodes"] == 100
    tie = _measured(run, "final_model.dddddddddddd", 100, mtime=9)
    assert latest_report_path(run.root) == tie  # the newest file breaks a tie
    assert report_rank(full) == report_rank(run.evaluations_dir / "final_model.json")


def test_report_keys_name_what_was_measured():
    key = report_key("r/final_model.zip", "ab12", 100, True, "cfg1")
    assert key == report_key("r/final_model.zip", "ab12", 100, True, "cfg1") and len(key) == 12
    others = [report_key("r/ppo_mission_1_steps.zip", "ab12", 100, True, "cfg1"),
              report_key("r/final_model.zip", "cd34", 100, True, "cfg1"),
              report_key("r/final_model.zip", "ab12", 2, True, "cfg1"),
              report_key("r/final_model.zip", "ab12", 100, False, "cfg1"),
              report_key("r/final_model.zip", "ab12", 100, True, "cfg2")]
    assert len({key, *others}) == 6
