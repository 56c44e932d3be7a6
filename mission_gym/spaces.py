"""Observation and action spaces of a config, and their signature (what a checkpoint is compatible with)."""

from typing import Any

import numpy as np
from gymnasium import spaces

from mission_gym.config import MissionConfig
from mission_gym.sim.observation import feature_names


def observation_space(config: MissionConfig) -> spaces.Box:
    """A bounded Box: every feature is normalized into [-1, 1]."""
    return spaces.Box(low=-1.0, high=1.0, shape=(len(feature_names(config)),), dtype=np.float32)


def action_space(config: MissionConfig) -> spaces.MultiDiscrete:
    """One discrete command per attacker, sized by its unit type's action list."""
    sizes = [len(config.attacker_unit(i).actions) for i in range(len(config.scenario.attackers))]
    return spaces.MultiDiscrete(sizes)


def space_signature(config: MissionConfig) -> dict[str, Any]:
    """The `spaces` record of a run: shapes, feature/action names and unit counts (plain JSON types)."""
    attackers = [config.attacker_unit(i) for i in range(len(config.scenario.attackers))]
    return {
        "observation": {
            "type": "Box",
            "shape": [len(feature_names(config))],
            "feature_names": feature_names(config),
        },
        "action": {
            "type": "MultiDiscrete",
            "nvec": [len(unit.actions) for unit in attackers],
            "action_names": [list(unit.actions) for unit in attackers],
        },
        "counts": {
            "attackers": len(config.scenario.attackers),
            "defenders": len(config.scenario.defenders),
            "actions_per_unit_type": {s.unit_type: list(config.attacker_types[s.unit_type].actions) for s in config.scenario.attackers},
        },
    }
