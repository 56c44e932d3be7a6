"""Branching from a checkpoint: the global counter, hyperparameters, TensorBoard, compatibility checks and
parent checkpoint resolution. One tiny parent run (checkpoints at 512, 1024, 1536, 2048) serves every test."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from test_training_support import (
    TINY, TRAIN_MODULE, add_attacker, add_defender, assert_user_error, checkpoint_path, checkpoint_steps, edit_yaml,
    load_model, make_workdir, only_new_run, record, run_cli, run_dirs, train_main, tree_state,
)

from mission_gym.config import load_config
from mission_gym.spaces import space_signature
from mission_gym.training import TrainSettings, plan_run

pytestmark = pytest.mark.slow  # end to end: PPO training

PARENT_STEPS = [512, 1024, 1536, 2048]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    folder = make_workdir(tmp_path_factory.mktemp("branching"))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        code, out, err = train_main(["--timesteps", "2048", *TINY, "--checkpoint-freq", "512",
                                     "--keep-checkpoints", "0",
                                     "--run-name", "parent", "--seed", "1", "--ent-coef", "0.02"])
        assert code == 0, err
    finally:
        os.chdir(cwd)
    return folder


@pytest.fixture()
def parent(work, monkeypatch):
    """The parent run folder, with the working directory set to the project folder."""
    monkeypatch.chdir(work)
    (run,) = [p for p in run_dirs(work / "runs") if p.name.startswith("parent-")]
    assert checkpoint_steps(run) == PARENT_STEPS
    return run


@pytest.fixture()
def scenario_restored(work):
    scenario = work / "configs" / "scenario.yaml"
    original = scenario.read_bytes()
    yield scenario
    scenario.write_bytes(original)


def rel(path) -> str:
    return os.path.relpath(path)


def test_branch_continues_the_global_counter_and_applies_new_hyperparameters(parent, work):
    runs = work / "runs"
    before = run_dirs(runs)
    events_before = set(work.rglob("events.out.tfevents.*"))
    parent_tb = tree_state(parent / "tensorboard")
    code, out, err = train_main(["--parent-checkpoint", rel(checkpoint_path(parent, 1024, zip_suffix=False)),
                                 "--timesteps", "1024", "--n-envs", "4", "--checkpoint-freq", "512", "--no-progress",
                                 "--learning-rate", "0.00123", "--n-epochs", "2", "--seed", "2"])
    assert code == 0, err
    child = only_new_run(runs, before)
    rec = record(child)
    assert rec["timesteps"] == {"start": 1024, "target": 2048, "current": 2048}
    assert rec["parent_checkpoint"]["step"] == 1024
    assert checkpoint_steps(child) == [1536, 2048], "child checkpoints continue upward from the parent's step"
    hp, parent_hp = rec["hyperparameters"], record(parent)["hyperparameters"]
    assert hp["learning_rate"] == pytest.approx(0.00123) and hp["n_epochs"] == 2  # given on the command line
    for inherited in ("ent_coef", "n_steps", "batch_size", "net_arch", "gamma"):
        assert hp[inherited] == parent_hp[inherited], inherited
    assert parent_hp["ent_coef"] == pytest.approx(0.02) and hp["net_arch"] == [32, 32]

    model = load_model(child / "final_model.zip")
    assert model.num_timesteps == 2048
    assert model.learning_rate == pytest.approx(0.00123) and model.n_epochs == 2
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(0.00123), "new learning rate was used"
    assert model.ent_coef == pytest.approx(0.02) and model.n_steps == 64 and model.batch_size == 256
    assert model.policy_kwargs["net_arch"] == [32, 32]
    assert load_model(checkpoint_path(child, 1536)).num_timesteps == 1536

    # TensorBoard: the child's curves continue after the parent's step, in the child's own folder only.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = set(work.rglob("events.out.tfevents.*")) - events_before
    assert events and all(child / "tensorboard" in e.parents for e in events), events
    assert tree_state(parent / "tensorboard") == parent_tb
    steps = []
    for event_file in events:
        acc = EventAccumulator(str(event_file))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            steps += [e.step for e in acc.Scalars(tag)]
    assert steps and min(steps) > 1024 and max(steps) <= 2048


def test_parent_run_logs_episode_returns_to_tensorboard(parent):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for event_file in (parent / "tensorboard").rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(event_file))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    assert "rollout/ep_rew_mean" in tags and "mission/ep_return_mean" in tags, sorted(tags)


def test_branch_cannot_change_the_network(parent, work):
    state = tree_state(work)
    code, _, err = train_main(["--parent-checkpoint", rel(checkpoint_path(parent, 2048)), "--timesteps", "256",
                               "--net-arch", "64,64", "--no-progress"])
    assert_user_error(code, err, "--net-arch", "[64, 64]", "[32, 32]")
    assert tree_state(work) == state
    # Giving the parent's own network again is fine.
    plan = plan_run(TrainSettings(parent_checkpoint=parent.name, hyperparameters={"net_arch": [32, 32]}))
    assert plan.hyperparameters.net_arch == [32, 32]


@pytest.mark.parametrize("change", ["defender", "attacker"])
def test_changed_unit_counts_are_refused_with_a_readable_report(parent, work, scenario_restored, change):
    configs = work / "configs"
    old = space_signature(load_config(configs))
    (add_defender if change == "defender" else add_attacker)(configs)
    new = space_signature(load_config(configs))
    state = tree_state(work)
    argv = ["--parent-checkpoint", rel(checkpoint_path(parent, 2048, zip_suffix=False)), "--branch-name", "more-units",
            "--timesteps", "256", "--no-progress"]
    if change == "defender":  # the guide's scenario, through the real command
        done = run_cli(["-m", TRAIN_MODULE, *argv], cwd=work)
        code, err = done.returncode, done.stderr
    else:
        code, _, err = train_main(argv)
    assert_user_error(code, err, "Observation space mismatch!",
                      f"Parent: {json.dumps({'type': 'Box', 'shape': old['observation']['shape']})}",
                      f"Current: {json.dumps({'type': 'Box', 'shape': new['observation']['shape']})}")
    side = f"{change}s"
    assert f"Number of {side}: {old['counts'][side]} -> {new['counts'][side]}" in err
    added = [n for n in new["observation"]["feature_names"] if n not in old["observation"]["feature_names"]]
    assert added
    assert "Features added:" in err
    for group in {name.split(".", 1)[0] for name in added}:
        assert group in err, group
    if change == "attacker":
        assert "Action space mismatch!" in err
        assert f"Controlled units: {len(old['action']['nvec'])} -> {len(new['action']['nvec'])}" in err
    assert "train from scratch" in err
    assert tree_state(work) == state, "a refused branch must leave nothing behind"


@pytest.fixture()
def units_restored(work):
    units = work / "configs" / "units_attackers.yaml"
    original = units.read_bytes()
    yield units
    units.write_bytes(original)


def test_reordered_actions_of_the_same_count_are_refused(parent, work, units_restored):
    """Same shapes, different meaning: action k of a unit type is no longer the command it was."""
    unit_type = load_config(work / "configs").scenario.attackers[0].unit_type

    def swap_first_two(data):
        actions = data["unit_types"][unit_type]["actions"]
        actions[0], actions[1] = actions[1], actions[0]
    edit_yaml(units_restored, swap_first_two)
    state = tree_state(work)
    code, _, err = train_main(["--parent-checkpoint", parent.name, "--timesteps", "256", "--no-progress"])
    assert_user_error(code, err, "Action space mismatch!", f"Actions of {unit_type}", "reordered")
    assert tree_state(work) == state


def test_changes_the_guide_allows_keep_the_parent_loadable(parent, work, units_restored, scenario_restored):
    unit_type = load_config(work / "configs").scenario.attackers[0].unit_type
    edit_yaml(units_restored, lambda d: d["unit_types"][unit_type].update(max_speed=9.5))
    reward = work / "configs" / "reward.yaml"
    original = reward.read_bytes()
    try:
        edit_yaml(reward, lambda d: d["components"]["time_penalty"].update(weight=-0.01))
        plan = plan_run(TrainSettings(parent_checkpoint=parent.name))
        assert plan.parent.step == 2048
        assert plan.config.config_hash != record(parent)["config"]["hash"]
    finally:
        reward.write_bytes(original)


@pytest.mark.parametrize("form", ["without_zip", "with_zip", "absolute", "under_runs_root", "final_model"])
def test_parent_checkpoint_path_forms(parent, work, form):
    path = checkpoint_path(parent, 1536, zip_suffix=form == "with_zip")
    spec = {"without_zip": rel(path), "with_zip": rel(path), "absolute": str(path.resolve()),
            "under_runs_root": f"{parent.name}/checkpoints/ppo_mission_1536_steps",
            "final_model": f"runs/{parent.name}/final_model"}[form]
    state = tree_state(work)
    plan = plan_run(TrainSettings(parent_checkpoint=spec))
    if form == "final_model":
        assert plan.parent.path == f"{parent.name}/final_model.zip" and plan.parent.step == 2048
    else:
        assert plan.parent.path == f"{parent.name}/checkpoints/ppo_mission_1536_steps.zip"
        assert plan.parent.step == 1536 and plan.start_step == 1536
    assert tree_state(work) == state


def test_run_name_means_its_latest_checkpoint_by_step_not_file_time(parent, work):
    oldest = checkpoint_path(parent, 512)
    future = oldest.stat().st_mtime + 3600
    os.utime(oldest, (future, future))  # now the newest file by time
    assert max((parent / "checkpoints").iterdir(), key=lambda p: p.stat().st_mtime) == oldest
    before = run_dirs(work / "runs")
    code, out, err = train_main(["--parent-checkpoint", parent.name, "--timesteps", "256", "--n-envs", "4",
                                 "--no-progress", "--no-tensorboard", "--seed", "3"])
    assert code == 0, err
    child = only_new_run(work / "runs", before)
    rec = record(child)
    assert rec["parent_checkpoint"]["step"] == 2048 and rec["timesteps"]["start"] == 2048
    assert child.name.startswith("branch-"), "a branch without --branch-name is branch-<timestamp>"
    assert checkpoint_steps(child) == [2304]


def test_missing_checkpoint_lists_tried_paths_and_nearest_checkpoints(parent, work):
    state = tree_state(work)
    missing = f"runs/{parent.name}/checkpoints/ppo_mission_999_steps"
    code, _, err = train_main(["--parent-checkpoint", missing, "--timesteps", "256", "--no-progress"])
    assert_user_error(code, err, "checkpoint not found", "Tried:", f"{missing}.zip", "Nearest existing checkpoints:")
    nearest = err.split("Nearest existing checkpoints:", 1)[1].strip().splitlines()
    assert nearest[0].strip() == f"runs/{parent.name}/checkpoints/ppo_mission_1024_steps.zip", err
    assert tree_state(work) == state


def test_tampered_parent_checkpoint_is_refused(parent, work):
    target = checkpoint_path(parent, 1536)
    original = target.read_bytes()
    try:
        data = bytearray(original)
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
        state = tree_state(work)
        code, _, err = train_main(["--parent-checkpoint", rel(target), "--timesteps", "256", "--no-progress"])
        assert_user_error(code, err, "SHA-256", "ppo_mission_1536_steps.zip")
        assert tree_state(work) == state
    finally:
        target.write_bytes(original)


def test_checkpoint_the_run_never_recorded_is_refused(parent, work):
    stray = checkpoint_path(parent, 9999)
    shutil.copyfile(checkpoint_path(parent, 2048), stray)
    try:
        state = tree_state(work)
        # Named by path it is refused; a run name stands for the run's latest *recorded* checkpoint (a kill
        # between a checkpoint landing and its record entry leaves such a file; see run_model).
        code, _, err = train_main(["--parent-checkpoint", f"runs/{parent.name}/checkpoints/ppo_mission_9999_steps",
                                   "--timesteps", "256", "--no-progress"])
        assert_user_error(code, err, "ppo_mission_9999_steps.zip", "not listed")
        assert tree_state(work) == state
    finally:
        stray.unlink()


def test_checkpoint_outside_the_runs_folder_is_refused(parent, work, tmp_path):
    outside = tmp_path / "model.zip"
    shutil.copyfile(checkpoint_path(parent, 2048), outside)
    state = tree_state(work)
    code, _, err = train_main(["--parent-checkpoint", str(outside), "--timesteps", "256", "--no-progress"])
    assert_user_error(code, err, "outside the runs folder")
    assert tree_state(work) == state

