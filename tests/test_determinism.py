"""Same seeds, same actions, same trajectories: in one env, across envs, and between the env and the VecEnv."""

import numpy as np
import pytest

import mission_gym
from mission_gym.env import MissionGymEnv

from conftest import REPO_CONFIGS

STEPS = 900  # random play stalls after 30 s (120 decisions): several episodes, so auto-resets are covered


def _actions(seed: int, nvec: np.ndarray, steps: int = STEPS) -> np.ndarray:
    """A fixed action sequence, sticky so that units travel (and meet defenders and obstacles)."""
    rng = np.random.default_rng(seed)
    out = np.empty((steps, len(nvec)), dtype=np.int64)
    current = rng.integers(0, nvec)
    for t in range(steps):
        current = np.where(rng.random(len(nvec)) < 0.1, rng.integers(0, nvec), current)
        out[t] = current
    return out


def _play(env: MissionGymEnv, seed: int, actions: np.ndarray) -> list[tuple]:
    """Run the env through `actions`, resetting (unseeded) after each episode end, as the VecEnv does."""
    observation, _ = env.reset(seed=seed)
    trace = [("reset", observation)]
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(action)
        trace.append(("step", observation, reward, terminated, truncated, info["outcome"]))
        if terminated or truncated:
            observation, _ = env.reset()
            trace.append(("reset", observation))
    return trace


def _assert_same_trace(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x[0] == y[0]
        np.testing.assert_array_equal(x[1], y[1])
        assert x[2:] == y[2:]


@pytest.fixture(scope="module")
def envs():
    return MissionGymEnv(config_dir=REPO_CONFIGS), MissionGymEnv(config_dir=REPO_CONFIGS)


def test_same_seed_same_trajectory(envs):
    first, second = envs
    actions = _actions(0, first.action_space.nvec)
    trace = _play(first, 123, actions)
    assert sum(1 for t in trace if t[0] == "reset") >= 4  # several episodes
    _assert_same_trace(trace, _play(second, 123, actions))
    _assert_same_trace(trace, _play(first, 123, actions))  # and again in a used env


def test_different_seeds_differ(envs):
    first, _ = envs
    a, _ = first.reset(seed=1)
    b, _ = first.reset(seed=2)
    assert not np.array_equal(a, b)


def test_vec_env_arena_i_matches_env_seeded_seed_plus_i(envs):
    env, _ = envs
    n, seed = 3, 40
    vec = mission_gym.make_vec_env(n, config_dir=REPO_CONFIGS, seed=seed)
    actions = [_actions(100 + i, env.action_space.nvec) for i in range(n)]
    vec_observations = [vec.reset()]
    vec_steps = []
    for t in range(STEPS):
        observations, rewards, dones, infos = vec.step(np.stack([a[t] for a in actions]))
        vec_observations.append(observations)
        vec_steps.append((rewards, dones, infos))
    for i in range(n):
        episodes = 0
        trace = _play(env, seed + i, actions[i])
        np.testing.assert_array_equal(trace[0][1], vec_observations[0][i])
        k = 1
        for t in range(STEPS):
            _, observation, reward, terminated, truncated, outcome = trace[k]
            rewards, dones, infos = vec_steps[t]
            assert rewards[i] == np.float32(reward)
            assert dones[i] == (terminated or truncated)
            if dones[i]:
                episodes += 1
                np.testing.assert_array_equal(infos[i]["terminal_observation"], observation)
                assert infos[i]["outcome"] == outcome
                assert infos[i]["TimeLimit.truncated"] == truncated
                k += 1  # the env's reset: its first observation is what the VecEnv returned
                observation = trace[k][1]
            np.testing.assert_array_equal(vec_observations[t + 1][i], observation)
            k += 1
        assert episodes >= 2  # auto-resets were exercised in this arena


def test_seed_arenas_matches_env_seeds_and_is_independent_of_batch_size(envs):
    env, _ = envs
    seeds = [7000001, 5, 99]
    vec = mission_gym.make_vec_env(3, config_dir=REPO_CONFIGS, seed=0)
    vec.seed_arenas(seeds)
    observations = vec.reset()
    single = mission_gym.make_vec_env(1, config_dir=REPO_CONFIGS, seed=seeds[2])
    lone = single.reset()
    actions = _actions(5, env.action_space.nvec, steps=60)
    for i, seed in enumerate(seeds):
        np.testing.assert_array_equal(observations[i], env.reset(seed=seed)[0])
    np.testing.assert_array_equal(observations[2], lone[0])
    for action in actions:
        observations, rewards, *_ = vec.step(np.stack([action] * 3))
        lone, lone_rewards, *_ = single.step(action[None])
        np.testing.assert_array_equal(observations[2], lone[0])
        assert rewards[2] == lone_rewards[0]


def test_vec_env_reset_reseeds(envs):
    vec = mission_gym.make_vec_env(2, config_dir=REPO_CONFIGS, seed=8)
    first = vec.reset()
    vec.step(np.ones((2, 4), dtype=np.int64))
    vec.seed(8)
    np.testing.assert_array_equal(vec.reset(), first)
