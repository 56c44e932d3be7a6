"""Branching an entity-policy run across unit-count changes: the weights carry over, the counter continues,
the record says what changed; type changes are still refused. One tiny entity parent serves every test."""

from __future__ import annotations

import contextlib
import os
import shutil

import numpy as np
import pytest
import torch
from runs_factory import make_run
from stable_baselines3.common.callbacks import BaseCallback
from test_training_support import (
    REPO, TINY, add_defender, assert_user_error, checkpoint_path, edit_yaml, evaluate_main, make_workdir, only_new_run,
    record, run_dirs, train_main, tree_state,
)

from mission_gym.config import load_config
from mission_gym.errors import MissionGymError
from mission_gym.evaluation import run_episodes
from mission_gym.ppo import load_model
from mission_gym.spaces import space_signature
from mission_gym.runs.record import load_record
from mission_gym.training import TrainSettings, _hyperparameters, plan_run, train
from mission_gym_pipelines.events import config_snapshot_metadata
from mission_gym_pipelines.lineage import lineage_json, lineage_markdown

ENTITY = [*TINY, "--policy", "entity"]
PARENT_STEP = 1024


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    folder = make_workdir(tmp_path_factory.mktemp("transfer"))
    shutil.copytree(folder / "configs", folder / "configs-3def")
    add_defender(folder / "configs-3def")
    with contextlib.chdir(folder):
        code, out, err = train_main(["--timesteps", str(PARENT_STEP), *ENTITY, "--checkpoint-freq", "512",
                                     "--run-name", "parent", "--seed", "1"])
    assert code == 0, err
    return folder


@pytest.fixture()
def parent(work, monkeypatch):
    monkeypatch.chdir(work)
    (run,) = [p for p in run_dirs(work / "runs") if p.name.startswith("parent-")]
    return run


class FirstModel(BaseCallback):
    """Saves the model as training starts, before any update: the branch's starting point."""

    def __init__(self, path) -> None:
        super().__init__()
        self.path = path

    def _on_training_start(self) -> None:
        self.model.save(self.path)

    def _on_step(self) -> bool:
        return True


def test_branch_into_more_defenders_carries_the_weights_and_the_counter(parent, work):
    assert record(parent)["hyperparameters"]["policy"] == "entity"
    settings = TrainSettings(timesteps=512, n_envs=4, seed=2, parent_checkpoint=str(checkpoint_path(parent, PARENT_STEP)),
                             config_dir=work / "configs-3def", runs_root=work / "runs", progress_bar=False,
                             tensorboard=False, branch_name="more-defenders")
    before = run_dirs(work / "runs")
    first = work / "branch-start.zip"
    rec = train(settings, plan_run(settings), extra_callbacks=[FirstModel(first)])
    child = only_new_run(work / "runs", before)

    # The record names the parent, the change and both signatures; the counter continues.
    assert rec.parent_run == parent.name and rec.parent_checkpoint.step == PARENT_STEP
    assert rec.transfer is not None and rec.transfer.changes == ["defenders 2 → 3"]
    assert rec.transfer.from_counts == {"attackers": 4, "defenders": 2}
    assert rec.transfer.to_counts == {"attackers": 4, "defenders": 3}
    assert rec.transfer.parent_spaces.model_dump() == record(parent)["spaces"] and rec.spaces.counts["defenders"] == 3
    assert rec.hyperparameters["policy"] == "entity"
    assert (rec.timesteps.start, rec.timesteps.current) == (PARENT_STEP, PARENT_STEP + 512)
    assert load_model(child / "final_model.zip").num_timesteps == PARENT_STEP + 512

    # Copied, not reinitialized: the branch's starting model plays the parent's scenario exactly as the parent.
    parent_config = load_config(parent / "configs")
    theirs = load_model(checkpoint_path(parent, PARENT_STEP), parent_config, device="cpu")
    ours = load_model(first, parent_config, device="cpu")
    for key, value in theirs.policy.state_dict().items():
        assert torch.equal(ours.policy.state_dict()[key], value), key
    seeds = parent_config.eval_seeds[:4]
    assert run_episodes(ours, parent_config, seeds) == run_episodes(theirs, parent_config, seeds)


def test_transfer_is_announced_before_training(parent, work):
    before = run_dirs(work / "runs")
    code, out, err = train_main(["--parent-checkpoint", os.path.relpath(checkpoint_path(parent, 512)),
                                 "--config-dir", "configs-3def", "--timesteps", "256", "--n-envs", "4", "--no-progress"])
    assert code == 0, err
    assert "Transfer:   defenders 2 → 3; weights transfer: entity policy" in out
    child = only_new_run(work / "runs", before)
    assert record(child)["transfer"]["changes"] == ["defenders 2 → 3"]

    # Dagster marks the transfer: the config snapshot's metadata and the lineage view's edge and line.
    child_record, parent_record = load_record(child), load_record(parent)
    snapshot = config_snapshot_metadata(child_record, parent_record)
    assert snapshot["branch_kind"] == "transfer: defenders 2 → 3; weights transfer: entity policy"
    assert snapshot["counts_changed_vs_parent"] == "defenders: 2 -> 3"
    assert list(snapshot)[:2] == ["branch_kind", "counts_changed_vs_parent"]  # above the long JSON in the UI
    assert config_snapshot_metadata(parent_record, None).get("branch_kind") is None
    view = lineage_json(work / "runs", [parent_record, child_record])
    assert {"parent": parent.name, "child": child.name, "step": 512, "transfer": ["defenders 2 → 3"]} in view["edges"]
    [line] = [line for line in lineage_markdown(view).splitlines() if child.name in line]
    assert "branched at step 512 · **transfer: defenders 2 → 3**" in line


def test_a_changed_action_list_is_refused_with_no_folder_left(parent, work, tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(work / "configs-3def", configs)
    edit_yaml(configs / "units_attackers.yaml",
              lambda d: d["unit_types"]["UAV_A"]["actions"].remove("SCAN"))
    state = tree_state(work / "runs")
    code, out, err = train_main(["--parent-checkpoint", os.path.relpath(checkpoint_path(parent, 512)),
                                 "--config-dir", str(configs), "--timesteps", "256", "--n-envs", "4", "--no-progress"])
    assert_user_error(code, err, "Actions of UAV_A: removed SCAN (", "configs/units_*.yaml)",
                      "transfers across unit counts only", "configs/scenario.yaml and")
    assert tree_state(work / "runs") == state


def test_a_branch_keeps_its_parents_policy(parent, work):
    state = tree_state(work / "runs")
    code, out, err = train_main(["--parent-checkpoint", os.path.relpath(checkpoint_path(parent, 512)),
                                 "--policy", "mlp", "--timesteps", "256", "--n-envs", "4", "--no-progress"])
    assert_user_error(code, err, "--policy mlp differs from the parent's entity")
    assert tree_state(work / "runs") == state


def test_evaluate_on_a_config_with_other_unit_counts(parent, work):
    code, out, err = evaluate_main(["--model", os.path.relpath(checkpoint_path(parent, PARENT_STEP)),
                                    "--config-dir", "configs-3def", "--episodes", "3"])
    assert code == 0, err
    assert "configs-3def" in out and "this checkpoint" in out
    assert np.isfinite(float(out.split("| this checkpoint |")[1].split("%")[0]))


def test_a_run_recorded_before_policies_existed_is_an_mlp_parent(tmp_path):
    """Records without hyperparameters.policy were MLPs: branching one as an entity policy is refused."""
    make_run(tmp_path, "old", steps=[512], spaces=space_signature(load_config(REPO / "configs")))
    settings = TrainSettings(parent_checkpoint="old", runs_root=tmp_path, config_dir=REPO / "configs",
                             hyperparameters={"policy": "entity"})
    with pytest.raises(MissionGymError, match="--policy entity differs from the parent's mlp"):
        plan_run(settings)
    old = load_record(tmp_path / "old")
    assert old.policy == "mlp"
    assert _hyperparameters(settings.model_copy(update={"hyperparameters": {}}), old).policy == "mlp"
