"""The imitation warm start teaches a fresh policy the scripted baseline's decisions."""

import numpy as np
import pytest
from stable_baselines3 import PPO

from conftest import REPO_CONFIGS

from mission_gym.config import load_config
from mission_gym.imitation import imitate, record_baseline
from mission_gym.vec_env import MissionVecEnv


@pytest.fixture(scope="module")
def config():
    return load_config(REPO_CONFIGS)


def agreement(model: PPO, observations: np.ndarray, actions: np.ndarray) -> float:
    """Share of unit commands on which the policy's most likely action is the baseline's."""
    predicted, _ = model.predict(observations, deterministic=True)
    return float((predicted == actions).mean())


def test_record_baseline_returns_discounted_returns_per_decision(config):
    demos = record_baseline(config, samples=512, n_envs=8, gamma=0.9, seed=3)
    assert demos.observations.shape == (512, len(MissionVecEnv(1, config).feature_names))
    assert demos.actions.shape == (512, len(config.scenario.attackers))
    assert np.isfinite(demos.returns).all()
    again = record_baseline(config, samples=512, n_envs=8, gamma=0.9, seed=3)
    np.testing.assert_array_equal(demos.actions, again.actions)  # same seed, same demonstrations


def test_imitation_makes_a_fresh_policy_act_like_the_baseline(config):
    train = record_baseline(config, samples=24_576, n_envs=32, gamma=0.99, seed=0)
    held_out = record_baseline(config, samples=4_096, n_envs=32, gamma=0.99, seed=1)
    model = PPO("MlpPolicy", MissionVecEnv(4, config, seed=0), policy_kwargs={"net_arch": [64, 64]}, seed=0,
                n_steps=64, batch_size=256, device="cpu")
    before = agreement(model, held_out.observations, held_out.actions)
    losses = imitate(model, train, epochs=3)
    after = agreement(model, held_out.observations, held_out.actions)
    assert before < 0.3  # ~1 in 10 actions by chance
    assert after > 0.6, f"imitation reached only {after:.0%} agreement (losses {losses})"
