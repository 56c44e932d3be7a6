"""The scripted attacker policy every evaluation compares against.

It reads only the observation: each attacker follows its route direction to the objective (ground units
thus go around obstacles), holds near the centre of the zone, and tags a defender sighted close by when its
type can. It is a policy like a trained one: ``predict(obs)`` returns actions for a batch of observations.
"""

import numpy as np

from mission_gym.config import MissionConfig
from mission_gym.rules import MOVE_HEADINGS_DEG
from mission_gym.sim.observation import feature_names

TAG_RANGE_NORMALIZED = 0.08  # ~16 m in a 200 m arena: close enough for the defender to be in tag range


class ScriptedAttackerPolicy:
    """Go for the objective along the route, hold the zone, tag defenders that come close."""

    def __init__(self, config: MissionConfig) -> None:
        names = feature_names(config)
        self._index = {name: k for k, name in enumerate(names)}
        self._n_attackers = len(config.scenario.attackers)
        self._n_defenders = len(config.scenario.defenders)
        self._actions = [config.attacker_unit(i).actions for i in range(self._n_attackers)]
        self._hold_radius = 0.4 * config.scenario.objective.radius / config.world.arena.width
        self._move_names = list(MOVE_HEADINGS_DEG)
        angles = np.radians(list(MOVE_HEADINGS_DEG.values()))
        self._directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)

    def predict(self, observation: np.ndarray, state=None, episode_start=None, deterministic: bool = True):
        """Actions for a batch (or one) observation, in the (actions, state) form of SB3's ``predict``."""
        obs = np.atleast_2d(observation)
        actions = np.stack([self._act(row) for row in obs])
        return (actions if observation.ndim > 1 else actions[0]), None

    def _act(self, row: np.ndarray) -> np.ndarray:
        return np.array([self._unit_action(row, i) for i in range(self._n_attackers)], dtype=np.int64)

    def _feature(self, row: np.ndarray, unit: str, name: str) -> float:
        return row[self._index[f"{unit}.{name}"]]

    def _unit_action(self, row: np.ndarray, i: int) -> int:
        def f(name: str) -> float:
            return self._feature(row, f"attacker_{i}", name)

        actions = self._actions[i]
        if "TAG" in actions and self._defender_close(row, f("objective_dx"), f("objective_dy")):
            return actions.index("TAG")
        if np.hypot(f("objective_dx"), f("objective_dy")) < self._hold_radius:
            return actions.index("STOP")
        route = np.array([f("route_x"), f("route_y")])
        move = self._move_names[int(np.argmax(self._directions @ route))]
        return actions.index(move) if move in actions else actions.index("STOP")

    def _defender_close(self, row: np.ndarray, to_objective_x: float, to_objective_y: float) -> bool:
        for d in range(self._n_defenders):
            unit = f"defender_{d}"
            if self._feature(row, unit, "alive") == 0.0 or self._feature(row, unit, "freshness") < 0.9:
                continue
            # Both positions are relative to the objective: the attacker is at -objective_d{x,y}.
            dx = self._feature(row, unit, "rel_x") + to_objective_x
            dy = self._feature(row, unit, "rel_y") + to_objective_y
            if np.hypot(dx, dy) < TAG_RANGE_NORMALIZED:
                return True
        return False
