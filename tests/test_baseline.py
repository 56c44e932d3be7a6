"""The scripted attacker policy: the bar every evaluation compares against must clearly beat random play."""

import numpy as np
import pytest

from mission_gym.baseline import ScriptedAttackerPolicy
from mission_gym.config import load_config
from mission_gym.vec_env import MissionVecEnv

from conftest import REPO_CONFIGS

N_SEEDS = 40


def _first_episode_outcomes(config, policy) -> list[str]:
    """Outcome of the first episode on each of the first N_SEEDS eval seeds (one arena per seed)."""
    seeds = config.eval_seeds[:N_SEEDS]
    vec = MissionVecEnv(len(seeds), config, seed=0)
    vec.seed_arenas(seeds)
    observations = vec.reset()
    rng = np.random.default_rng(0)
    outcomes: list[str | None] = [None] * len(seeds)
    for _ in range(config.max_decisions + 1):
        if policy is None:
            actions = rng.integers(0, vec.action_space.nvec, size=(len(seeds), len(vec.action_space.nvec)))
        else:
            actions, _ = policy.predict(observations)
        observations, _, dones, infos = vec.step(actions)
        for i in np.flatnonzero(dones):
            if outcomes[i] is None:
                outcomes[i] = infos[i]["outcome"]
        if all(outcomes):
            return outcomes
    raise AssertionError("an episode outlived the time limit")


@pytest.fixture(scope="module")
def config():
    return load_config(REPO_CONFIGS)


def test_baseline_captures_far_more_often_than_random(config):
    scripted = _first_episode_outcomes(config, ScriptedAttackerPolicy(config))
    random = _first_episode_outcomes(config, None)
    scripted_captures, random_captures = scripted.count("captured"), random.count("captured")
    assert scripted_captures >= N_SEEDS // 2, scripted
    assert random_captures <= 2, random
    assert scripted_captures >= random_captures + N_SEEDS // 3


def test_baseline_actions_are_valid_for_single_and_batched_observations(config):
    policy = ScriptedAttackerPolicy(config)
    vec = MissionVecEnv(3, config, seed=1)
    observations = vec.reset()
    actions, state = policy.predict(observations)
    assert state is None and actions.shape == (3, len(config.scenario.attackers))
    assert all(vec.action_space.contains(a) for a in actions)
    single, _ = policy.predict(observations[0])
    np.testing.assert_array_equal(single, actions[0])
