"""Reward scaling: the learner sees rewards times reward_scale, everything a person reads stays unscaled, and
runs recorded before the setting existed keep learning on unscaled rewards when branched."""

import numpy as np
import pytest
from runs_factory import make_run
from stable_baselines3.common.vec_env import VecMonitor

from mission_gym.config import load_config
from mission_gym.imitation import record_baseline
from mission_gym.runs.record import load_record
from mission_gym.train_settings import REWARD_SCALE
from mission_gym.scripts.train_ppo import describe_plan
from mission_gym.training import TrainSettings, _hyperparameters, plan_run
from mission_gym.vec_env import MissionVecEnv, ScaledRewards
from test_training_support import REPO

CONFIG = load_config(REPO / "configs")


def play(env, steps=400):
    env.reset()
    rng = np.random.default_rng(0)
    rewards, returns = [], []
    for _ in range(steps):
        actions = rng.integers(0, env.action_space.nvec, size=(env.num_envs, len(env.action_space.nvec)))
        _, reward, _, infos = env.step(actions)
        rewards.append(reward)
        returns += [info["episode"]["r"] for info in infos if "episode" in info]
    return np.array(rewards), returns


def test_the_learner_sees_scaled_rewards_and_the_monitor_the_real_ones():
    plain_rewards, plain_returns = play(VecMonitor(MissionVecEnv(4, CONFIG, seed=3)))
    scaled_rewards, scaled_returns = play(ScaledRewards(VecMonitor(MissionVecEnv(4, CONFIG, seed=3)), 0.25))
    assert np.abs(plain_rewards).sum() > 0
    np.testing.assert_allclose(scaled_rewards, plain_rewards * 0.25, rtol=1e-6)
    assert scaled_returns and scaled_returns == plain_returns


def test_imitation_value_targets_use_the_same_scale():
    plain = record_baseline(CONFIG, 256, 4, 0.99, seed=1)
    scaled = record_baseline(CONFIG, 256, 4, 0.99, seed=1, reward_scale=0.01)
    np.testing.assert_allclose(scaled.returns, plain.returns * 0.01, rtol=1e-5, atol=1e-6)


def test_fresh_runs_take_the_default_and_old_parents_keep_unscaled_rewards(tmp_path):
    assert _hyperparameters(TrainSettings(), None).reward_scale == REWARD_SCALE
    make_run(tmp_path, "old")  # its record's hyperparameters predate reward_scale
    old = load_record(tmp_path / "old")
    assert "reward_scale" not in old.hyperparameters
    assert _hyperparameters(TrainSettings(), old).reward_scale == 1.0
    given = TrainSettings(hyperparameters={"reward_scale": 0.5})
    assert _hyperparameters(given, old).reward_scale == 0.5


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_a_scale_that_is_not_positive_is_refused(scale):
    with pytest.raises(Exception, match="reward_scale"):
        _hyperparameters(TrainSettings(hyperparameters={"reward_scale": scale}), None)


def test_the_plan_printed_before_training_says_which_scale_ppo_learns_from(tmp_path):
    fresh = TrainSettings(runs_root=tmp_path / "runs", config_dir=REPO / "configs", run_name="fresh")
    assert f"reward scale {REWARD_SCALE:g}" in describe_plan(plan_run(fresh)).splitlines()[-1]
    given = fresh.model_copy(update={"hyperparameters": {"reward_scale": 1.0}})
    assert describe_plan(plan_run(given)).splitlines()[-1].endswith("reward scale 1")
