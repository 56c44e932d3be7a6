"""Checkpoint listing, resolution of what users type, integrity and pruning."""

from __future__ import annotations

import os

import pytest
from runs_factory import make_run

from mission_gym.errors import CheckpointIntegrityError, CheckpointNotFoundError, MissionGymError
from mission_gym.runs.checkpoints import (
    latest_checkpoint,
    list_checkpoints,
    prune_checkpoints,
    relative_to_runs,
    resolve_checkpoint,
    verify_checkpoint,
)
from mission_gym.runs.layout import FINAL_MODEL_FILE, checkpoint_step
from mission_gym.runs.record import load_record


@pytest.fixture()
def runs(tmp_path, monkeypatch):
    """A repo-like working directory with `runs/` inside; cwd is the repo root like the guide assumes."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs"
    root.mkdir()
    return root


def _touch_old(path, age_s):
    moment = path.stat().st_mtime - age_s
    os.utime(path, (moment, moment))


def test_step_and_sorting_by_step_not_mtime(runs):
    run_dir = make_run(runs, "r", steps=[9000, 10000, 200000, 27670000])
    ckpt = run_dir / "checkpoints"
    _touch_old(ckpt / "ppo_mission_27670000_steps.zip", 10_000)  # newest step, oldest file
    (ckpt / "ppo_mission_9000_steps.zip").touch()  # oldest step, newest file
    (ckpt / "notes.zip").write_text("not a checkpoint")
    assert [checkpoint_step(p) for p in list_checkpoints(run_dir)] == [9000, 10000, 200000, 27670000]
    assert latest_checkpoint(run_dir) == ckpt / "ppo_mission_27670000_steps.zip"
    assert latest_checkpoint(make_run(runs, "empty")) is None
    with pytest.raises(ValueError, match="not a checkpoint file name"):
        checkpoint_step("final_model.zip")


@pytest.mark.parametrize(
    "spec",
    [
        "runs/r/checkpoints/ppo_mission_20000_steps",  # the guide's form: no .zip
        "runs/r/checkpoints/ppo_mission_20000_steps.zip",
        "r/checkpoints/ppo_mission_20000_steps",  # relative to the runs root
        "./runs/r/checkpoints/../checkpoints/ppo_mission_20000_steps",
    ],
)
def test_resolve_relative_paths_with_or_without_zip(runs, spec):
    make_run(runs, "r", steps=[10000, 20000, 30000])
    assert resolve_checkpoint(spec, "runs") == runs / "r/checkpoints/ppo_mission_20000_steps.zip"


def test_resolve_absolute_path(runs, tmp_path):
    run_dir = make_run(runs, "r", steps=[10000])
    target = run_dir / "checkpoints/ppo_mission_10000_steps.zip"
    assert resolve_checkpoint(str(target)[: -len(".zip")], runs) == target
    assert resolve_checkpoint(target, tmp_path / "elsewhere") == target


def test_resolve_run_name_gives_latest_by_step(runs):
    run_dir = make_run(runs, "r", steps=[500000, 90000, 1000000])
    _touch_old(run_dir / "checkpoints/ppo_mission_1000000_steps.zip", 3600)
    assert resolve_checkpoint("r", "runs") == runs / "r/checkpoints/ppo_mission_1000000_steps.zip"
    assert resolve_checkpoint("runs/r", "runs") == runs / "r/checkpoints/ppo_mission_1000000_steps.zip"


def test_resolve_run_name_without_checkpoints_gives_final_model(runs):
    make_run(runs, "done", final_model=True)
    assert resolve_checkpoint("done", runs) == runs / "done" / FINAL_MODEL_FILE


def test_not_found_lists_tried_paths_and_nearest_checkpoints(runs):
    make_run(runs, "r", steps=[10000, 20000, 30000, 27670000])
    with pytest.raises(CheckpointNotFoundError) as info:
        resolve_checkpoint("runs/r/checkpoints/ppo_mission_27000000_steps", "runs")
    message = str(info.value)
    assert "runs/r/checkpoints/ppo_mission_27000000_steps\n" in message
    assert "runs/r/checkpoints/ppo_mission_27000000_steps.zip" in message
    assert "runs/runs/r/checkpoints/ppo_mission_27000000_steps.zip" in message  # tried under the runs root too
    nearest = message.split("Nearest existing checkpoints:")[1]
    assert nearest.index("ppo_mission_27670000_steps.zip") < nearest.index("ppo_mission_30000_steps.zip")


def test_not_found_suggests_similar_run_names(runs):
    make_run(runs, "branch-20260122-193222", steps=[27670000])
    make_run(runs, "zen-comet-20260122-012517", steps=[1000])
    with pytest.raises(CheckpointNotFoundError) as info:
        resolve_checkpoint("runs/branch-20260122-193223/checkpoints/ppo_mission_27670000_steps", "runs")
    message = str(info.value)
    assert "runs/branch-20260122-193222/checkpoints/ppo_mission_27670000_steps.zip" in message
    assert "zen-comet" not in message  # shares only the date digits


def test_not_found_suggests_runs_named_without_timestamp(runs):
    make_run(runs, "zen-comet-20260122-012517", steps=[1000, 2000])
    with pytest.raises(CheckpointNotFoundError, match="runs/zen-comet-20260122-012517/checkpoints/ppo_mission_2000"):
        resolve_checkpoint("zen-comet", "runs")


def test_not_found_for_run_without_any_model(runs):
    make_run(runs, "crashed", status="failed")
    with pytest.raises(CheckpointNotFoundError, match=r"crashed/final_model\.zip"):
        resolve_checkpoint("crashed", runs)
    with pytest.raises(CheckpointNotFoundError, match="empty"):
        resolve_checkpoint(" ", runs)


def test_verify_checkpoint_accepts_recorded_file(runs):
    run_dir = make_run(runs, "r", steps=[1000, 2000])
    entry = verify_checkpoint(run_dir / "checkpoints/ppo_mission_2000_steps.zip", runs)
    assert entry.step == 2000 and entry.file == "r/checkpoints/ppo_mission_2000_steps.zip"


def test_verify_checkpoint_detects_changed_file(runs):
    run_dir = make_run(runs, "r", steps=[1000])
    path = run_dir / "checkpoints/ppo_mission_1000_steps.zip"
    path.write_bytes(b"overwritten by a re-run")
    with pytest.raises(CheckpointIntegrityError) as info:
        verify_checkpoint(path, runs)
    recorded = load_record(run_dir).checkpoints[0].sha256
    assert recorded in str(info.value) and "r/checkpoints/ppo_mission_1000_steps.zip" in str(info.value)


def test_verify_checkpoint_refuses_unrecorded_file(runs):
    run_dir = make_run(runs, "r", steps=[1000])
    stray = run_dir / "checkpoints/ppo_mission_5000_steps.zip"
    stray.write_bytes(b"copied in by hand")
    with pytest.raises(CheckpointIntegrityError, match="not listed"):
        verify_checkpoint(stray, runs)


def test_relative_to_runs_refuses_outside_paths(runs, tmp_path):
    make_run(runs, "r", steps=[1000])
    assert relative_to_runs("runs/r/checkpoints/ppo_mission_1000_steps.zip", "runs") == (
        "r/checkpoints/ppo_mission_1000_steps.zip"
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (runs / "linked").symlink_to(outside, target_is_directory=True)
    for bad in (tmp_path / "model.zip", runs / "linked" / "model.zip", runs / ".." / "x.zip", runs):
        with pytest.raises(MissionGymError):
            relative_to_runs(bad, runs)


def test_prune_keeps_newest_by_step_and_branch_parents(runs):
    run_dir = make_run(runs, "r", steps=[1000, 2000, 3000, 4000, 5000, 6000])
    _touch_old(run_dir / "checkpoints/ppo_mission_6000_steps.zip", 9999)  # mtime must not matter
    make_run(runs, "child", parent="r", parent_step=2000)
    deleted = prune_checkpoints(run_dir, keep=2, runs_root=runs)
    assert sorted(checkpoint_step(p) for p in deleted) == [1000, 3000, 4000]
    assert [checkpoint_step(p) for p in list_checkpoints(run_dir)] == [2000, 5000, 6000]
    assert not any(p.exists() for p in deleted)


def test_prune_with_keep_zero_and_negative(runs):
    run_dir = make_run(runs, "r", steps=[1000, 2000])
    assert len(prune_checkpoints(run_dir, keep=0, runs_root=runs)) == 2
    with pytest.raises(ValueError):
        prune_checkpoints(run_dir, keep=-1, runs_root=runs)


def test_existing_file_that_is_not_a_model_is_refused(runs):
    make_run(runs, "r", steps=[1000])
    with pytest.raises(CheckpointNotFoundError, match=r"runs/r/run\.json is not a model file"):
        resolve_checkpoint("runs/r/run.json", "runs")
