"""Run folder names: timestamps, two runs in the same second, names that could leave runs/."""

from __future__ import annotations

import re

import pytest
from runs_factory import make_run
from test_training_support import (
    TIMESTAMP, TINY, assert_user_error, make_workdir, record, run_dirs, train_main, tree_state,
)

from mission_gym.config import load_config
from mission_gym.spaces import space_signature
from mission_gym.training import TrainSettings, plan_run, train

pytestmark = pytest.mark.slow  # end to end: PPO training


@pytest.fixture()
def work(tmp_path, monkeypatch):
    folder = make_workdir(tmp_path / "project")
    monkeypatch.chdir(folder)
    return folder


def test_two_runs_started_in_the_same_second_get_their_own_folders(work):
    settings = TrainSettings(timesteps=256, n_envs=4, run_name="same", seed=1, tensorboard=False, progress_bar=False,
                             hyperparameters={"n_steps": 64, "batch_size": 256, "net_arch": [32, 32]})
    for _ in range(5):  # both plans must fall in the same second
        first, second = plan_run(settings), plan_run(settings)
        if first.run_name == second.run_name:
            break
    assert first.run_name == second.run_name and re.fullmatch(rf"same-{TIMESTAMP}", first.run_name)
    records = [train(settings, first), train(settings, second)]
    names = [r.run_name for r in records]
    assert names == [first.run_name, f"{first.run_name}-2"]
    assert [p.name for p in run_dirs(work / "runs")] == sorted(names)
    for name in names:
        rec = record(work / "runs" / name)
        assert rec["run_name"] == name and rec["root_ancestor"] == name and rec["status"] == "finished"
        assert rec["checkpoints"][0]["file"].startswith(f"{name}/checkpoints/")


@pytest.mark.parametrize("name", ["a/b", "..", "", "../escape", "/tmp/abs", ".hidden", "with space"])
def test_run_names_that_could_leave_runs_are_refused(work, name):
    state = tree_state(work)
    code, _, err = train_main(["--run-name", name, "--timesteps", "256", *TINY])
    assert_user_error(code, err, "invalid run name")
    assert tree_state(work) == state
    assert not (work / "runs").exists()


@pytest.mark.parametrize("name", ["../x", "a/b", ""])
def test_branch_names_that_could_leave_runs_are_refused(work, name):
    spaces = space_signature(load_config(work / "configs"))
    make_run(work / "runs", "parent-20260101-000000", steps=[1000], spaces=spaces)
    state = tree_state(work)
    code, _, err = train_main(["--parent-checkpoint", "parent-20260101-000000", "--branch-name", name,
                               "--timesteps", "256", "--no-progress"])
    assert_user_error(code, err, "invalid branch name")
    assert tree_state(work) == state


def test_branch_name_without_a_parent_is_refused(work):
    state = tree_state(work)
    code, _, err = train_main(["--branch-name", "orphan", "--timesteps", "256", *TINY])
    assert_user_error(code, err, "orphan", "no parent checkpoint")
    assert tree_state(work) == state
