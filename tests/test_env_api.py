"""The two faces of the core: the Gymnasium env (checkers, spaces, render) and the SB3 VecEnv (auto-reset)."""

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

import mission_gym
from mission_gym.config import load_config
from mission_gym.env import MissionGymEnv
from mission_gym.render import ATTACKER, DEFENDER
from mission_gym.sim.observation import ATTACKER_FEATURES, DEFENDER_FEATURES, GLOBAL_FEATURES
from mission_gym.vec_env import MissionVecEnv

from conftest import REPO_CONFIGS


@pytest.fixture(scope="module")
def env():
    made = gymnasium.make("MissionGym-v0", config_dir=REPO_CONFIGS, render_mode="rgb_array")
    yield made
    made.close()


def test_gymnasium_env_checker_passes(env):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker reports most problems as warnings
        gymnasium_check_env(env.unwrapped)


def test_sb3_env_checker_passes(env):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env.unwrapped, warn=True)


def test_registered_and_renders_an_rgb_frame(env):
    assert mission_gym.ENV_ID in gymnasium.registry
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape[0] >= 200 and frame.shape[1] >= 200
    colours = {tuple(c) for c in frame.reshape(-1, 3)[::7]}
    assert len(colours) > 4  # background, obstacles, zone, units: a picture, not a blank
    assert ATTACKER in {tuple(c) for c in frame.reshape(-1, 3)}  # attackers drawn
    assert DEFENDER in {tuple(c) for c in frame.reshape(-1, 3)}  # defenders drawn
    for _ in range(8):
        env.step(env.action_space.sample())
    assert not np.array_equal(env.render(), frame)  # the picture follows the game


def test_render_modes():
    assert MissionGymEnv(config_dir=REPO_CONFIGS).render() is None
    with pytest.raises(ValueError, match="render_mode"):
        MissionGymEnv(config_dir=REPO_CONFIGS, render_mode="human")


def test_spaces_and_observation(env):
    unwrapped = env.unwrapped
    config = load_config(REPO_CONFIGS)
    attackers, defenders = config.scenario.attackers, config.scenario.defenders
    assert isinstance(env.action_space, gymnasium.spaces.MultiDiscrete)
    assert list(env.action_space.nvec) == [len(config.attacker_types[a.unit_type].actions) for a in attackers]
    space = env.observation_space
    assert isinstance(space, gymnasium.spaces.Box) and space.dtype == np.float32
    assert np.all(space.low == -1.0) and np.all(space.high == 1.0)
    size = len(attackers) * len(ATTACKER_FEATURES) + len(defenders) * len(DEFENDER_FEATURES) + len(GLOBAL_FEATURES)
    assert len(unwrapped.feature_names) == space.shape[0] == size
    assert len(set(unwrapped.feature_names)) == len(unwrapped.feature_names)
    for name in ("attacker_0.x", "defender_1.rel_x", "defender_0.alive", "objective.x", "objective.y",
                 "capture_progress", "time_remaining"):
        assert name in unwrapped.feature_names
    observation, info = env.reset(seed=1)
    assert observation.dtype == np.float32 and space.contains(observation)
    assert info["outcome"] == "running"
    features = dict(zip(unwrapped.feature_names, observation))
    assert features["time_remaining"] == 1.0 and features["capture_progress"] == 0.0


def test_observation_bounded_and_finite_over_random_play():
    vec = mission_gym.make_vec_env(8, config_dir=REPO_CONFIGS, seed=21)
    observations = vec.reset()
    rng = np.random.default_rng(21)
    finished = 0
    for _ in range(600):
        assert np.all(np.isfinite(observations)) and np.all(np.abs(observations) <= 1.0)
        actions = rng.integers(0, vec.action_space.nvec, size=(8, len(vec.action_space.nvec)))
        observations, _, dones, infos = vec.step(actions)
        for i in np.flatnonzero(dones):
            terminal = infos[i]["terminal_observation"]
            assert np.all(np.isfinite(terminal)) and np.all(np.abs(terminal) <= 1.0)
            finished += 1
    assert finished >= 8


def test_observation_size_follows_unit_counts(config_dir):
    base = len(MissionGymEnv(config_dir=REPO_CONFIGS).feature_names)
    scenario = load_config(REPO_CONFIGS).scenario
    attackers, defenders = len(scenario.attackers), len(scenario.defenders)

    def add_defender(data):
        data["defenders"].append({"unit_type": "DEF_UGV", "spawn": {"x": 130.0, "y": 100.0, "heading": 180.0},
                                  "patrol_waypoints": [[130.0, 90.0], [130.0, 110.0]]})

    def add_attacker(data):
        data["attackers"].append({"unit_type": "UAV_B", "spawn": {"x": 30.0, "y": 30.0, "heading": 45.0}})

    for edit, delta, nvec in (({"scenario.yaml": add_defender}, len(DEFENDER_FEATURES), attackers),
                              ({"scenario.yaml": add_attacker}, len(ATTACKER_FEATURES), attackers + 1),
                              ({"scenario.yaml": {"defenders": []}}, -defenders * len(DEFENDER_FEATURES), attackers)):
        env = MissionGymEnv(config_dir=config_dir(edit))
        observation, _ = env.reset(seed=0)
        assert observation.shape == env.observation_space.shape == (base + delta,)
        assert len(env.feature_names) == base + delta
        assert len(env.action_space.nvec) == nvec
        observation, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(observation)


def test_action_space_follows_each_units_action_list(config_dir):
    edit = {"units_attackers.yaml": {"unit_types.UAV_B.actions": ["STOP", "N", "E", "S", "W"]}}
    env = MissionGymEnv(config_dir=config_dir(edit))
    assert list(env.action_space.nvec) == [10, 10, 10, 5]


# ----------------------------------------------------------------------------- VecEnv
def test_vec_env_api():
    vec = mission_gym.make_vec_env(4, config_dir=REPO_CONFIGS, seed=7)
    assert isinstance(vec, VecEnv) and vec.num_envs == 4
    observations = vec.reset()
    assert observations.shape == (4, vec.observation_space.shape[0]) and observations.dtype == np.float32
    assert len({obs.tobytes() for obs in observations}) == 4  # each arena its own seed
    observations, rewards, dones, infos = vec.step(np.zeros((4, 4), dtype=np.int64))
    assert observations.shape == (4, vec.observation_space.shape[0])
    assert rewards.shape == (4,) and rewards.dtype == np.float32
    assert dones.shape == (4,) and dones.dtype == bool and not dones.any()
    assert isinstance(infos, list) and len(infos) == 4 and all(isinstance(i, dict) for i in infos)
    assert vec.last_reward_components.shape == (4, len(mission_gym.rules.REWARD_COMPONENTS))
    assert vec.get_attr("render_mode") == [None] * 4
    assert vec.env_is_wrapped(VecMonitor) == [False] * 4
    frames = vec.get_images()
    assert len(frames) == 4 and frames[0].shape[2] == 3
    with pytest.raises(ValueError, match="4 seeds"):
        vec.seed_arenas([1, 2])


def test_vec_env_auto_reset_gives_terminal_observation(config_dir):
    vec = mission_gym.make_vec_env(3, config_dir=config_dir({"world.yaml": {"physics.max_episode_seconds": 1.0}}),
                                   seed=0)
    vec.reset()
    index = vec.feature_names.index("time_remaining")
    for step in range(1, 5):
        observations, rewards, dones, infos = vec.step(np.ones((3, 4), dtype=np.int64))
        assert dones.all() == (step == 4)
    for i, info in enumerate(infos):
        assert info["outcome"] == "timeout" and info["TimeLimit.truncated"] is True
        terminal = info["terminal_observation"]
        assert terminal.shape == observations[i].shape
        assert terminal[index] == 0.0  # the last observation of the old episode...
        assert observations[i][index] == 1.0  # ...and the first of the new one
        assert info["episode_metrics"]["decisions"] == 4
        assert info["episode_reward_components"]["timeout_penalty"] == -20.0
        assert rewards[i] == pytest.approx(sum(vec.last_reward_components[i]), abs=1e-5)
    observations, rewards, dones, infos = vec.step(np.ones((3, 4), dtype=np.int64))
    assert not dones.any() and infos == [{}, {}, {}]
    returns = rewards.astype(np.float64)
    for _ in range(3):  # the rest of the second episode: its totals start from zero
        _, rewards, dones, infos = vec.step(np.ones((3, 4), dtype=np.int64))
        returns += rewards
    assert dones.all()
    for i, info in enumerate(infos):
        assert info["episode_reward_components"]["timeout_penalty"] == -20.0
        assert sum(info["episode_reward_components"].values()) == pytest.approx(returns[i], abs=1e-4)
    assert np.all(observations[:, index] == np.float32(0.75))


def test_vec_env_terminated_episode_is_not_marked_truncated(config_dir):
    edit = {"scenario.yaml": {"attackers": [{"unit_type": "UAV_A", "spawn": {"x": 100.0, "y": 100.0}}],
                              "defenders": [],
                              "objective.capture_seconds": 1.0}}
    vec = mission_gym.make_vec_env(2, config_dir=config_dir(edit), seed=0)
    vec.reset()
    for _ in range(4):
        _, _, dones, infos = vec.step(np.zeros((2, 1), dtype=np.int64))
    assert dones.all()
    assert all(i["outcome"] == "captured" and i["TimeLimit.truncated"] is False for i in infos)


def test_vec_monitor_records_episode_returns(config_dir):
    vec = VecMonitor(mission_gym.make_vec_env(
        2, config_dir=config_dir({"world.yaml": {"physics.max_episode_seconds": 2.0}}), seed=3))
    vec.reset()
    returns = np.zeros(2)
    for _ in range(8):
        _, rewards, dones, infos = vec.step(np.full((2, 4), 2))
        returns += rewards
    assert dones.all()
    for i in range(2):
        assert infos[i]["episode"]["l"] == 8
        assert infos[i]["episode"]["r"] == pytest.approx(returns[i], abs=1e-4)


def test_make_vec_env_without_seed_is_random():
    a = mission_gym.make_vec_env(2, config_dir=REPO_CONFIGS).reset()
    b = mission_gym.make_vec_env(2, config_dir=REPO_CONFIGS).reset()
    assert not np.array_equal(a, b)


def test_vec_env_from_config_object():
    config = mission_gym.load_config(REPO_CONFIGS)
    vec = MissionVecEnv(2, config, seed=0)
    assert vec.config is config and vec.reset().shape[0] == 2


def test_infos_are_plain_json(config_dir):
    # The older system crashed its dashboard on float32 values in what the env reported.
    import json

    edit = {"world.yaml": {"physics.max_episode_seconds": 2.0}}
    env = MissionGymEnv(config_dir=config_dir(edit))
    env.reset(seed=0)
    infos = [env.step(env.action_space.sample())[4] for _ in range(8)]
    assert "episode_metrics" in infos[-1]
    vec = mission_gym.make_vec_env(2, config_dir=config_dir(edit), seed=0)
    vec.reset()
    for _ in range(8):
        *_, vec_infos = vec.step(np.zeros((2, 4), dtype=np.int64))
    infos += [{k: v for k, v in info.items() if k != "terminal_observation"} for info in vec_infos]
    assert all(info for info in infos)
    json.loads(json.dumps(infos, allow_nan=False))


def test_no_state_grows_with_episodes(config_dir):
    # The older system kept a reward tracker list that grew forever. With the objective fixed (route fields
    # are cached per objective cell, a bounded set), thousands of episodes must not grow the heap.
    import tracemalloc

    edit = {"world.yaml": {"physics.max_episode_seconds": 0.5},
            "scenario_randomization.yaml": {"objective_jitter_m": 0.0}}
    env = MissionGymEnv(config_dir=config_dir(edit))
    vec = mission_gym.make_vec_env(8, config_dir=config_dir(edit), seed=0)
    env.reset(seed=0)
    vec.reset()
    action, actions = np.zeros(4, dtype=np.int64), np.zeros((8, 4), dtype=np.int64)

    def play(steps: int) -> None:
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
            vec.step(actions)

    tracemalloc.start()
    try:
        play(500)  # warm up under tracing: first-use allocations (numba's, numpy's) happen once
        before = tracemalloc.get_traced_memory()[0]
        play(2000)  # 1,000 env episodes, 8,000 VecEnv episodes
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 50_000, grown
