"""Mission Gym: a multi-unit capture-the-zone game for reinforcement learning, and the tooling to train,
branch, evaluate and prune its policies."""

import gymnasium

from mission_gym.config import MissionConfig, load_config
from mission_gym.env import MissionGymEnv
from mission_gym.errors import ConfigError, MissionGymError
from mission_gym.vec_env import MissionVecEnv, make_vec_env

ENV_ID = "MissionGym-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="mission_gym.env:MissionGymEnv")

__all__ = [
    "ENV_ID", "ConfigError", "MissionConfig", "MissionGymEnv", "MissionGymError", "MissionVecEnv",
    "load_config", "make_vec_env",
]
