"""Mission Gym: a multi-unit capture-the-zone game for reinforcement learning, and the tooling to train,
branch, evaluate and prune its policies.

``import mission_gym`` registers ``MissionGym-v0`` with Gymnasium. The environment classes load lazily, so
tools that only read run folders (cleanup, the Dagster sensors) never pay for numba, torch or SB3.
"""

import importlib
from typing import Any

import gymnasium

from mission_gym.errors import ConfigError, MissionGymError

ENV_ID = "MissionGym-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="mission_gym.env:MissionGymEnv")

_LAZY = {
    "MissionConfig": "mission_gym.config",
    "load_config": "mission_gym.config",
    "MissionGymEnv": "mission_gym.env",
    "MissionVecEnv": "mission_gym.vec_env",
    "make_vec_env": "mission_gym.vec_env",
}

__all__ = ["ENV_ID", "ConfigError", "MissionGymError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mission_gym' has no attribute {name!r}")
