"""The game's vocabulary: actions, move headings, reward components, ring radii, defender modes, outcomes.

One home for the names the config files, the simulation, the scripted baseline and the environments share.
It imports nothing of the project and no numba: the simulation derives its array columns from these names
(``mission_gym.sim.layout``), and the compiled kernels freeze them as constants, which is why the kernel cache
is keyed on this file's source too (``mission_gym.sim.cache``).
"""

import enum

# The commanded heading of each compass move, degrees counter-clockwise from east (+x).
MOVE_HEADINGS_DEG = {"N": 90.0, "NE": 45.0, "E": 0.0, "SE": -45.0, "S": -90.0, "SW": -135.0, "W": 180.0, "NW": 135.0}
MOVE_ACTIONS = ("STOP", *MOVE_HEADINGS_DEG)  # STOP has no heading
ACTION_NAMES = (*MOVE_ACTIONS, "TAG", "SCAN")

BEHAVIOUR_MODES = ("patrol", "guard_objective", "intercept")

# Order matters: it is the column order of the reward breakdown and of `info["reward_components"]`.
REWARD_COMPONENTS = (
    "capture_progress",  # per second of capture progress gained
    "win_bonus",  # once, on capture
    "zone_entry_bonus",  # once per attacker, on its first entry into the zone
    "zone_time",  # per attacker-second inside the zone
    "min_dist_potential",  # per metre the closest live attacker gets nearer the objective
    "ring_bonus",  # once per ring (RING_RADII) the closest attacker first crosses
    "spread",  # per second, times the mean distance (m, capped at 20) of live attackers from their centroid
    "tag_hit_bonus",  # per tag an attacker lands
    "defender_disabled_bonus",  # per defender disabled
    "time_penalty",  # per decision
    "collision_penalty",  # per collision: an attacker touching an obstacle or the arena edge after a free decision
    "integrity_loss_penalty",  # per integrity point attackers lose
    "unit_disabled_penalty",  # per attacker disabled
    "detected_penalty",  # per attacker per decision in which a defender detects it
    "stalled_penalty",  # once, when the episode ends by stagnation
    "timeout_penalty",  # once, at the time limit
    "all_disabled_penalty",  # once, when every attacker is disabled
)
RING_RADII = (80.0, 60.0, 40.0, 25.0, 15.0)  # metres from the objective


class Outcome(enum.IntEnum):
    """How an episode ended (RUNNING while it has not); the value is the code the simulation stores."""

    RUNNING = 0
    CAPTURED = 1
    ALL_DISABLED = 2
    TIMEOUT = 3
    STALLED = 4

    @property
    def label(self) -> str:
        """The name used in `info["outcome"]` and reports: captured, all_disabled, timeout, stalled."""
        return self.name.lower()

    @property
    def terminated(self) -> bool:
        """Whether the episode ended in a state of the game (capture, all attackers disabled); the other ends
        (time limit, stagnation) cut it short: gymnasium's ``truncated``."""
        return self in (Outcome.CAPTURED, Outcome.ALL_DISABLED)

    @property
    def truncated(self) -> bool:
        """Whether the episode was cut short (time limit, stagnation) rather than ended by the game."""
        return self is not Outcome.RUNNING and not self.terminated
