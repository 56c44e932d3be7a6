"""The run folder's layout: the names on disk that every part of Mission Gym reads from runs/layout.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from mission_gym.runs.layout import RUN_MARKERS, RunPaths, checkpoint_file_name, checkpoint_step, dashboard_file


def test_every_name_on_disk(tmp_path):
    paths = RunPaths.of(tmp_path, "run-1")
    relative = {name: getattr(paths, name).relative_to(tmp_path).as_posix() for name in (
        "root", "record", "config_snapshot", "checkpoints_dir", "final_model", "metrics", "tensorboard",
        "evaluations_dir")}  # fmt: skip
    assert relative == {
        "root": "run-1", "record": "run-1/run.json", "config_snapshot": "run-1/configs",
        "checkpoints_dir": "run-1/checkpoints", "final_model": "run-1/final_model.zip",
        "metrics": "run-1/metrics.jsonl", "tensorboard": "run-1/tensorboard", "evaluations_dir": "run-1/evaluations",
    }  # fmt: skip
    assert paths.checkpoint(2048) == tmp_path / "run-1/checkpoints/ppo_mission_2048_steps.zip"
    assert paths.evaluation(paths.checkpoint(2048), "0123456789ab") == (
        tmp_path / "run-1/evaluations/ppo_mission_2048_steps.0123456789ab.json")
    assert paths.evaluation(paths.final_model, "0123456789ab", ".md") == (
        tmp_path / "run-1/evaluations/final_model.0123456789ab.md")
    assert dashboard_file(tmp_path) == tmp_path / "dashboard.html"
    assert RunPaths(Path("run-1")).tensorboard.as_posix() == "run-1/tensorboard"  # runs-root-relative form
    assert {"run.json", "configs", "checkpoints", "final_model.zip", "lineage.json"} <= RUN_MARKERS


def test_checkpoint_names_round_trip():
    assert checkpoint_file_name(100_000) == "ppo_mission_100000_steps.zip"
    assert checkpoint_step(Path("runs/r/checkpoints") / checkpoint_file_name(123)) == 123
    for other in ("final_model.zip", "ppo_mission_12_steps.zip.bak", "ppo_mission_x_steps.zip"):
        with pytest.raises(ValueError, match="not a checkpoint file name"):
            checkpoint_step(other)


def test_the_run_folder_of_a_model(tmp_path):
    run = RunPaths.of(tmp_path, "r")
    assert RunPaths.of_model(run.checkpoint(5)) == run
    assert RunPaths.of_model(run.final_model) == run
    assert RunPaths.of_model(tmp_path / "elsewhere" / "policy.zip").root == tmp_path / "elsewhere"
