"""Sensing and tagging between units: range, field of view, line of sight, damage falloff, cooldown."""

import numpy as np
from mission_gym.sim.jit import jit_inline

from mission_gym.sim.geometry import beyond, norm, sight_blocked
from mission_gym.sim.layout import (
    P_DEGRADE, P_SCAN_MULT, P_SENS_THR, P_TAG_CD, P_TAG_CLOSE_RANGE, P_TAG_COS, P_TAG_LOS, P_TAG_RANGE,
    SE_COS_HALF_FOV, SE_LOS, SE_NOISE, SE_RANGE, UP_AIR, UP_INTEGRITY, UP_SENSOR_REACH, UP_TAG_CLOSE, UP_TAG_FAR,
    US_ALIVE, US_COS, US_INTEGRITY, US_SCANNING, US_SIN, US_SPEED, US_TAG_CD, US_X, US_Y,
)

NOT_DETECTED = -1.0
# A unit farther than (sensor reach x this) is beyond every sensor: the margin dwarfs rounding, as in
# geometry.beyond, so skipping such pairs never changes a result.
OUT_OF_SIGHT = 1.0 + 1e-6


@jit_inline
def line_of_sight(units: np.ndarray, params: np.ndarray, obstacles: np.ndarray, i: int, j: int) -> bool:
    """Sight between units i and j: obstacles block it only between two ground units."""
    if params[i, UP_AIR] != 0.0 or params[j, UP_AIR] != 0.0:
        return True
    return not sight_blocked(obstacles, units[i, US_X], units[i, US_Y], units[j, US_X], units[j, US_Y])


@jit_inline
def sensing_scale(units: np.ndarray, params: np.ndarray, scalars: np.ndarray, i: int) -> float:
    """How far unit i's sensors reach now, as a multiple of their ranges: scanning extends them, damage shortens."""
    scale = scalars[P_SCAN_MULT] if units[i, US_SCANNING] != 0.0 else 1.0
    if units[i, US_INTEGRITY] < scalars[P_SENS_THR] * params[i, UP_INTEGRITY]:
        scale *= scalars[P_DEGRADE]
    return scale


@jit_inline
def detection_noise(units: np.ndarray, params: np.ndarray, sensors: np.ndarray, unit_sensors: np.ndarray,
                    scalars: np.ndarray, obstacles: np.ndarray, i: int, j: int) -> float:
    """Position noise (m) with which unit i's sensors detect unit j, or NOT_DETECTED.

    A scanning unit sees all around and `range_multiplier` further; a unit below the sensing threshold of its
    own initial integrity sees `factor` as far.
    """
    dx, dy = units[j, US_X] - units[i, US_X], units[j, US_Y] - units[i, US_Y]
    scale = sensing_scale(units, params, scalars, i)
    if beyond(dx, dy, params[i, UP_SENSOR_REACH] * scale):
        return NOT_DETECTED  # most pairs: out of every sensor's range
    distance = norm(dx, dy)
    facing = 1.0 if distance < 1e-9 else (dx * units[i, US_COS] + dy * units[i, US_SIN]) / distance
    best = NOT_DETECTED
    sight_known, sight = False, False
    for s in range(sensors.shape[0]):
        if unit_sensors[i, s] == 0.0 or distance > sensors[s, SE_RANGE] * scale:
            continue
        if units[i, US_SCANNING] == 0.0 and facing < sensors[s, SE_COS_HALF_FOV]:
            continue
        if sensors[s, SE_LOS] != 0.0:
            if not sight_known:
                sight, sight_known = line_of_sight(units, params, obstacles, i, j), True
            if not sight:
                continue
        if best == NOT_DETECTED or sensors[s, SE_NOISE] < best:
            best = sensors[s, SE_NOISE]
    return best


@jit_inline
def tag_target(units: np.ndarray, params: np.ndarray, scalars: np.ndarray, obstacles: np.ndarray, i: int,
               first: int, last: int) -> int:
    """Nearest live unit in [first, last) that unit i can tag now (range, cone, sight), or -1."""
    best, best_distance = -1, scalars[P_TAG_RANGE]
    cos_h, sin_h = units[i, US_COS], units[i, US_SIN]
    for j in range(first, last):
        if units[j, US_ALIVE] == 0.0:
            continue
        dx, dy = units[j, US_X] - units[i, US_X], units[j, US_Y] - units[i, US_Y]
        if beyond(dx, dy, best_distance):
            continue  # most pairs: out of reach, known without the square root
        distance = norm(dx, dy)
        if distance > best_distance or distance < 1e-9:
            continue
        if (dx * cos_h + dy * sin_h) / distance < scalars[P_TAG_COS]:
            continue
        if scalars[P_TAG_LOS] != 0.0 and not line_of_sight(units, params, obstacles, i, j):
            continue
        best, best_distance = j, distance
    return best


@jit_inline
def tag_damage(params: np.ndarray, scalars: np.ndarray, i: int, distance: float) -> float:
    """Damage of unit i's tag at `distance`: full inside close_range, falling linearly to the far value at range."""
    close, far = params[i, UP_TAG_CLOSE], params[i, UP_TAG_FAR]
    inner, outer = scalars[P_TAG_CLOSE_RANGE], scalars[P_TAG_RANGE]
    if distance <= inner or outer <= inner:
        return close
    return close + (far - close) * min(1.0, (distance - inner) / (outer - inner))


@jit_inline
def apply_tag(units: np.ndarray, params: np.ndarray, scalars: np.ndarray, i: int, j: int) -> tuple[float, bool]:
    """Unit i tags unit j: start i's cooldown, damage j. Returns (integrity j lost, whether j was disabled)."""
    units[i, US_TAG_CD] = scalars[P_TAG_CD]
    distance = norm(units[j, US_X] - units[i, US_X], units[j, US_Y] - units[i, US_Y])
    lost = min(tag_damage(params, scalars, i, distance), units[j, US_INTEGRITY])
    units[j, US_INTEGRITY] -= lost
    if units[j, US_INTEGRITY] <= 0.0:
        units[j, US_INTEGRITY] = 0.0
        units[j, US_ALIVE] = 0.0
        units[j, US_SPEED] = 0.0
        return lost, True
    return lost, False
