"""`BatchedSim`: N arenas of one config, their state arrays, and the two kernel calls (reset, step)."""

import numpy as np

from mission_gym.config import MissionConfig
from mission_gym.rules import Outcome
from mission_gym.sim import kernel
from mission_gym.sim.layout import (
    AS_CAPTURE, AS_DECISIONS, AS_OBJ_X, AS_OBJ_Y, AS_OUTCOME, AS_TICK, GRID_CELL_M, N_ARENA_STATE, N_DEFENDER_STATE,
    N_KNOWN_STATE, N_REWARD, N_UNIT_STATE, OUT_RUNNING, P_CAPTURE_S, P_DT, P_HEIGHT, P_NAV_INFLATE, P_OBJ_R,
    P_WIDTH, US_ALIVE,
)
from mission_gym.sim.navigation import blocked_cells, fill_distance_field
from mission_gym.sim.observation import feature_names
from mission_gym.sim.params import SimParams, build_params
from mission_gym.sim.rng import seed_state


_OUTCOMES = tuple(Outcome)  # indexed by outcome code: Outcome(code) costs ~1 us per call


class BatchedSim:
    """`n_arenas` independent arenas of one config, stepped together by the compiled kernel.

    Arena `b` draws all its randomness from its own generator, so its trajectory depends only on its seed
    and its actions, never on the other arenas.
    """

    def __init__(self, config: MissionConfig, n_arenas: int) -> None:
        if n_arenas < 1:
            raise ValueError(f"n_arenas must be at least 1, got {n_arenas}")
        self.config = config
        self.n_arenas = n_arenas
        self.params: SimParams = build_params(config)
        self.feature_names = feature_names(config)
        self.n_attackers = len(config.scenario.attackers)
        self.n_defenders = len(config.scenario.defenders)
        n_units = self.n_attackers + self.n_defenders
        scalars = self.params.scalars
        self.blocked = blocked_cells(self.params.obstacles, scalars[P_WIDTH], scalars[P_HEIGHT], GRID_CELL_M,
                                     scalars[P_NAV_INFLATE])
        self.units = np.zeros((n_arenas, n_units, N_UNIT_STATE))
        self.brains = np.zeros((n_arenas, self.n_defenders, N_DEFENDER_STATE))
        self.known = np.zeros((n_arenas, self.n_defenders, N_KNOWN_STATE))
        self.arena = np.zeros((n_arenas, N_ARENA_STATE))
        self.waypoints = np.zeros((n_arenas, *self.params.waypoints.shape))
        self.rng = np.zeros(n_arenas, dtype=np.uint64)
        self.route_fields = _RouteFields(self.blocked, scalars[P_OBJ_R])
        self.field_slots = np.zeros(n_arenas, dtype=np.int64)
        self.raw_rewards = np.zeros((n_arenas, N_REWARD))
        self.reward_components = np.zeros((n_arenas, N_REWARD))  # weighted: raw x reward.yaml's weights
        self.episode_reward_components = np.zeros((n_arenas, N_REWARD))
        self.rewards = np.zeros(n_arenas)  # the components' sum
        self.observations = np.zeros((n_arenas, len(self.feature_names)), dtype=np.float32)
        self._actions = np.zeros((n_arenas, self.n_attackers), dtype=np.int64)

    def seed(self, arena: int, seed: int) -> None:
        """Restart arena `arena`'s generator from `seed`."""
        self.rng[arena] = seed_state(seed)

    def reset(self, arena: int) -> None:
        """Start a new episode in one arena (its generator continues unless re-seeded first)."""
        p = self.params
        kernel.reset_arena(arena, self.units, self.brains, self.known, self.arena, self.waypoints, self.rng,
                           p.scalars, p.units, p.waypoints, p.waypoint_counts, p.obstacles)
        self.episode_reward_components[arena] = 0.0
        self.field_slots[arena] = self.route_fields.slot(self.arena[arena, AS_OBJ_X], self.arena[arena, AS_OBJ_Y])
        kernel.write_observation(self.observations[arena], arena, self.units, self.known, self.arena,
                                 self.route_fields.fields[self.field_slots[arena]], p.units, p.scalars, p.obstacles)

    def step(self, actions: np.ndarray) -> None:
        """Advance every arena by one decision; results land in `observations`, `rewards` (with their
        `reward_components`, `raw_rewards` and `episode_reward_components`) and `finished`."""
        np.copyto(self._actions, actions, casting="unsafe")
        p = self.params
        kernel.step_arenas(self._actions, self.units, self.brains, self.known, self.arena, self.waypoints, self.rng,
                           self.route_fields.fields, self.field_slots, self.raw_rewards, self.reward_components,
                           self.episode_reward_components, self.rewards, self.observations, p.scalars, p.units,
                           p.sensors, p.unit_sensors, p.action_codes, p.waypoint_counts, p.obstacles, p.cell_starts,
                           p.cell_items, p.reward_weights)

    def outcome(self, arena: int) -> Outcome:
        """How one arena's episode stands."""
        return _OUTCOMES[int(self.arena[arena, AS_OUTCOME])]

    @property
    def finished(self) -> np.ndarray:
        """True for each arena whose episode has ended."""
        return self.arena[:, AS_OUTCOME] != OUT_RUNNING

    def episode_metrics(self, arena: int) -> dict[str, float | int | str]:
        """Summary numbers of one arena's current episode."""
        row = self.arena[arena]
        alive = self.units[arena, :, US_ALIVE].tolist()
        return {
            "outcome": _OUTCOMES[int(row[AS_OUTCOME])].label,
            "decisions": int(row[AS_DECISIONS]),
            "seconds": float(row[AS_TICK] * self.params.scalars[P_DT]),
            "capture_progress": float(row[AS_CAPTURE] / self.params.scalars[P_CAPTURE_S]),
            "attackers_alive": int(sum(alive[:self.n_attackers])),
            "defenders_alive": int(sum(alive[self.n_attackers:])),
        }


class _RouteFields:
    """Route fields per objective grid cell, computed once and shared by every arena whose objective lands in
    that cell (a field costs ~0.5 ms; the objective jitters over a few hundred cells at most)."""

    def __init__(self, blocked: np.ndarray, objective_radius: float) -> None:
        self._blocked = blocked
        self._goal_radius = 0.5 * objective_radius
        self._queue = np.zeros(blocked.size * 8, dtype=np.int64)
        self._slots: dict[tuple[int, int], int] = {}
        self.fields = np.zeros((4, *blocked.shape), dtype=np.float32)

    def slot(self, x: float, y: float) -> int:
        """Index in `fields` of the field toward the objective at (x, y), computing it on first use."""
        cell = (int(x // GRID_CELL_M), int(y // GRID_CELL_M))
        if cell not in self._slots:
            if len(self._slots) == len(self.fields):
                self.fields = np.concatenate([self.fields, np.zeros_like(self.fields)])
            index = len(self._slots)
            centre_x, centre_y = (cell[0] + 0.5) * GRID_CELL_M, (cell[1] + 0.5) * GRID_CELL_M
            fill_distance_field(self.fields[index], self._blocked, GRID_CELL_M, centre_x, centre_y,
                                self._goal_radius, self._queue)
            self._slots[cell] = index
        return self._slots[cell]
