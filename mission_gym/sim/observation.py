"""The observation vector: what it holds, in which order, and its feature names (same order).

Per attacker: own state, the objective and the shortest route to it, and 8 lidar distances.
Per defender: its last known position relative to the objective, how fresh that sighting is, integrity, alive.
Then the objective's position, capture progress and time remaining. Every feature lies in [-1, 1].
"""

import numpy as np
from mission_gym.sim.jit import jit_inline

from mission_gym.config import MissionConfig
from mission_gym.sim.geometry import norm, ray_fan, wall_distance
from mission_gym.sim.layout import (
    AS_CAPTURE, AS_OBJ_X, AS_OBJ_Y, AS_TICK, KN_SEEN_T, KN_X, KN_Y, LIDAR_RAYS, P_CAPTURE_S, P_DT, P_GRID_CELL,
    P_HEIGHT, P_LIDAR_RANGE, P_MAX_TICKS, P_N_ATT, P_OBJ_R, P_SCAN_CD, P_TAG_CD, P_WIDTH, UP_AIR, UP_INTEGRITY,
    UP_MAX_SPEED, US_ALIVE, US_COS, US_INTEGRITY, US_SCAN_CD, US_SIN, US_SPEED, US_TAG_CD, US_X, US_Y,
)
from mission_gym.sim.navigation import route_direction

ATTACKER_FEATURES = (
    "x", "y", "heading_cos", "heading_sin", "speed", "integrity", "tag_cooldown", "scan_cooldown", "airborne",
    "alive", "objective_dx", "objective_dy", "route_x", "route_y", "in_zone",
    *(f"lidar_{k * 360 // LIDAR_RAYS}" for k in range(LIDAR_RAYS)),
)
DEFENDER_FEATURES = ("rel_x", "rel_y", "freshness", "integrity", "alive")
GLOBAL_FEATURES = ("objective.x", "objective.y", "capture_progress", "time_remaining")
SIGHTING_MEMORY_S = 10.0  # a sighting's freshness falls from 1 to 0 over this long
_RAYS = np.array([[np.cos(2 * np.pi * r / LIDAR_RAYS), np.sin(2 * np.pi * r / LIDAR_RAYS)] for r in range(LIDAR_RAYS)])


def feature_names(config: MissionConfig) -> list[str]:
    """Names of the observation's features, in vector order (e.g. ``attacker_0.x``, ``defender_1.alive``)."""
    names = [f"attacker_{i}.{f}" for i in range(len(config.scenario.attackers)) for f in ATTACKER_FEATURES]
    names += [f"defender_{i}.{f}" for i in range(len(config.scenario.defenders)) for f in DEFENDER_FEATURES]
    return names + list(GLOBAL_FEATURES)


@jit_inline
def _clip(value: float) -> float:
    return min(1.0, max(-1.0, value))


@jit_inline
def write_observation(out: np.ndarray, b: int, units: np.ndarray, known: np.ndarray, arena: np.ndarray,
                      field: np.ndarray, params: np.ndarray, scalars: np.ndarray, obstacles: np.ndarray) -> None:
    """Fill `out` (one row of the observation buffer) for arena b; `field` is its route field."""
    width, height = scalars[P_WIDTH], scalars[P_HEIGHT]
    ox, oy = arena[b, AS_OBJ_X], arena[b, AS_OBJ_Y]
    n_att = int(scalars[P_N_ATT])
    k = 0
    for a in range(n_att):
        k = _write_attacker(out, k, units[b, a], params[a], field, ox, oy, scalars, obstacles)
    t = arena[b, AS_TICK] * scalars[P_DT]
    for d in range(known.shape[1]):
        unit = units[b, n_att + d]
        out[k] = _clip((known[b, d, KN_X] - ox) / width)
        out[k + 1] = _clip((known[b, d, KN_Y] - oy) / height)
        out[k + 2] = max(0.0, 1.0 - (t - known[b, d, KN_SEEN_T]) / SIGHTING_MEMORY_S)
        out[k + 3] = unit[US_INTEGRITY] / params[n_att + d, UP_INTEGRITY]
        out[k + 4] = unit[US_ALIVE]
        k += 5
    out[k] = _clip(2.0 * ox / width - 1.0)
    out[k + 1] = _clip(2.0 * oy / height - 1.0)
    out[k + 2] = min(1.0, arena[b, AS_CAPTURE] / scalars[P_CAPTURE_S])
    out[k + 3] = max(0.0, 1.0 - arena[b, AS_TICK] / scalars[P_MAX_TICKS])


@jit_inline
def _write_attacker(out, k, unit, params, field, ox, oy, scalars, obstacles) -> int:
    width, height = scalars[P_WIDTH], scalars[P_HEIGHT]
    x, y = unit[US_X], unit[US_Y]
    out[k] = 2.0 * x / width - 1.0
    out[k + 1] = 2.0 * y / height - 1.0
    out[k + 2] = unit[US_COS]
    out[k + 3] = unit[US_SIN]
    out[k + 4] = min(1.0, unit[US_SPEED] / params[UP_MAX_SPEED])
    out[k + 5] = unit[US_INTEGRITY] / params[UP_INTEGRITY]
    out[k + 6] = unit[US_TAG_CD] / scalars[P_TAG_CD] if scalars[P_TAG_CD] > 0.0 else 0.0
    out[k + 7] = unit[US_SCAN_CD] / scalars[P_SCAN_CD] if scalars[P_SCAN_CD] > 0.0 else 0.0
    out[k + 8] = params[UP_AIR]
    out[k + 9] = unit[US_ALIVE]
    out[k + 10] = _clip((ox - x) / width)
    out[k + 11] = _clip((oy - y) / height)
    if params[UP_AIR] != 0.0:
        dx, dy = ox - x, oy - y
        length = max(norm(dx, dy), 1e-9)
        rx, ry = dx / length, dy / length
    else:
        rx, ry = route_direction(field, scalars[P_GRID_CELL], x, y, ox, oy)
    out[k + 12], out[k + 13] = rx, ry
    out[k + 14] = 1.0 if norm(ox - x, oy - y) <= scalars[P_OBJ_R] else 0.0
    reach = scalars[P_LIDAR_RANGE]
    lidar = out[k + 15: k + 15 + LIDAR_RAYS]
    for r in range(LIDAR_RAYS):
        lidar[r] = min(reach, wall_distance(x, y, _RAYS[r, 0], _RAYS[r, 1], width, height))
    if params[UP_AIR] == 0.0:  # air units fly over obstacles: only the arena edge limits them
        ray_fan(obstacles, x, y, _RAYS, lidar)
    for r in range(LIDAR_RAYS):
        lidar[r] /= reach
    return k + 15 + LIDAR_RAYS
