"""Scripted defenders: once per decision each one perceives, picks a goal (chase what it saw, else follow its
behaviour mode) and commands a heading; tags happen every tick in kernel.py."""

import numpy as np
from mission_gym.sim.jit import jit_inline

from mission_gym.sim.dynamics import command_heading
from mission_gym.sim.engagement import NOT_DETECTED, OUT_OF_SIGHT, detection_noise, sensing_scale
from mission_gym.sim.geometry import free_distance, norm
from mission_gym.sim.layout import (
    AS_OBJ_X, AS_OBJ_Y, DS_GUARD_PHASE, DS_LAST_X, DS_LAST_Y, DS_MEMORY, DS_MODE,
    DS_REACTION, DS_TARGET, DS_WAYPOINT, MODE_GUARD, MODE_INTERCEPT, MODE_PATROL, P_GUARD_R, P_HEADING_JITTER, P_MEMORY_S,
    P_N_ATT, P_RANDOM_PROB, P_REACT_HI, P_REACT_LO, UP_MAX_SPEED, UP_RADIUS, UP_SENSOR_REACH, UP_SPAWN_X, UP_SPAWN_Y,
    US_ALIVE, US_CMD_SPEED, US_DETECTED, US_GAP, US_X, US_Y,
)
from mission_gym.sim.rng import normal, uniform, uniform_range

WAYPOINT_REACHED_M = 3.0
GOAL_REACHED_M = 1.5
AVOID_LOOKAHEAD_M = 6.0
GUARD_TURN_RAD = 0.05  # per decision: guards circle the objective slowly
TIMER_EPSILON_S = 1e-9  # far below a tick, far above the rounding of summed ticks
AVOID_OFFSETS = (0.5236, -0.5236, 1.0472, -1.0472, 1.5708, -1.5708, 2.0944, -2.0944)


@jit_inline
def think(b: int, units: np.ndarray, brains: np.ndarray, arena: np.ndarray, waypoints: np.ndarray,
          waypoint_counts: np.ndarray, rng: np.ndarray, params: np.ndarray, sensors: np.ndarray,
          unit_sensors: np.ndarray, scalars: np.ndarray, obstacles: np.ndarray) -> None:
    """One decision of every live defender of arena b."""
    n_att = int(scalars[P_N_ATT])
    for d in range(brains.shape[1]):
        u = n_att + d
        if units[b, u, US_ALIVE] == 0.0:
            continue
        # Nothing to perceive when the nearest attacker (US_GAP, kept by the kernel) is beyond every sensor.
        reach = params[u, UP_SENSOR_REACH] * sensing_scale(units[b], params, scalars, u) * OUT_OF_SIGHT
        if units[b, u, US_GAP] <= reach:
            _perceive(b, u, d, units, brains, arena, rng, params, sensors, unit_sensors, scalars, obstacles)
        gx, gy = _goal(b, u, d, units, brains, arena, waypoints, waypoint_counts, params, scalars)
        _command(b, u, gx, gy, units, rng, params, scalars, obstacles)


@jit_inline
def count_down(timer: float, dt: float) -> float:
    """A timer (s) one tick of `dt` later, snapped to 0 once it is within rounding of it.

    Without the snap, 3.0 - 60 x 0.05 leaves ~1e-15 in floating point and a 3 s cooldown lasts 61 ticks.
    """
    left = timer - dt
    return left if left > TIMER_EPSILON_S else 0.0


@jit_inline
def tick_timers(b: int, brains: np.ndarray, dt: float) -> None:
    """Advance the defenders' memory and reaction timers by one physics tick."""
    for d in range(brains.shape[1]):
        brains[b, d, DS_MEMORY] = count_down(brains[b, d, DS_MEMORY], dt)
        brains[b, d, DS_REACTION] = count_down(brains[b, d, DS_REACTION], dt)
        if brains[b, d, DS_MEMORY] == 0.0:
            brains[b, d, DS_TARGET] = -1.0


@jit_inline
def _perceive(b, u, d, units, brains, arena, rng, params, sensors, unit_sensors, scalars, obstacles):
    n_att = int(scalars[P_N_ATT])
    guard = brains[b, d, DS_MODE] == MODE_GUARD
    best, best_distance, best_noise = -1, 1.0e18, 0.0
    for a in range(n_att):
        if units[b, a, US_ALIVE] == 0.0:
            continue
        noise = detection_noise(units[b], params, sensors, unit_sensors, scalars, obstacles, u, a)
        if noise == NOT_DETECTED:
            continue
        units[b, a, US_DETECTED] = 1.0
        distance = norm(units[b, a, US_X] - units[b, u, US_X], units[b, a, US_Y] - units[b, u, US_Y])
        from_objective = norm(units[b, a, US_X] - arena[b, AS_OBJ_X], units[b, a, US_Y] - arena[b, AS_OBJ_Y])
        if guard and from_objective > 1.5 * scalars[P_GUARD_R]:
            continue  # guards do not leave the objective for far-away attackers
        if distance < best_distance:
            best, best_distance, best_noise = a, distance, noise
    if best < 0:
        return
    if brains[b, d, DS_TARGET] < 0.0:
        brains[b, d, DS_REACTION] = uniform_range(rng, b, scalars[P_REACT_LO], scalars[P_REACT_HI])
    brains[b, d, DS_TARGET] = best
    brains[b, d, DS_LAST_X] = units[b, best, US_X] + best_noise * normal(rng, b)
    brains[b, d, DS_LAST_Y] = units[b, best, US_Y] + best_noise * normal(rng, b)
    memory = scalars[P_MEMORY_S] * (2.0 if brains[b, d, DS_MODE] == MODE_INTERCEPT else 1.0)
    brains[b, d, DS_MEMORY] = memory


@jit_inline
def _goal(b, u, d, units, brains, arena, waypoints, waypoint_counts, params, scalars):
    brain = brains[b, d]
    if brain[DS_TARGET] >= 0.0 and brain[DS_REACTION] == 0.0:
        return brain[DS_LAST_X], brain[DS_LAST_Y]
    ox, oy = arena[b, AS_OBJ_X], arena[b, AS_OBJ_Y]
    if brain[DS_MODE] == MODE_PATROL:
        k = int(brain[DS_WAYPOINT])
        wx, wy = waypoints[b, d, k, 0], waypoints[b, d, k, 1]
        if norm(wx - units[b, u, US_X], wy - units[b, u, US_Y]) < WAYPOINT_REACHED_M:
            brain[DS_WAYPOINT] = (k + 1) % waypoint_counts[d]
        return wx, wy
    if brain[DS_MODE] == MODE_GUARD:
        brain[DS_GUARD_PHASE] += GUARD_TURN_RAD
        radius = 0.5 * scalars[P_GUARD_R]
        return ox + radius * np.cos(brain[DS_GUARD_PHASE]), oy + radius * np.sin(brain[DS_GUARD_PHASE])
    # Intercept: hold a forward post between the objective and the attackers' spawn area.
    n_att = int(scalars[P_N_ATT])
    sx, sy = 0.0, 0.0
    for a in range(n_att):
        sx += params[a, UP_SPAWN_X] / n_att
        sy += params[a, UP_SPAWN_Y] / n_att
    dx, dy = sx - ox, sy - oy
    length = max(norm(dx, dy), 1e-9)
    reach = min(1.5 * scalars[P_GUARD_R], length)
    return ox + dx / length * reach, oy + dy / length * reach


@jit_inline
def _command(b, u, gx, gy, units, rng, params, scalars, obstacles):
    unit = units[b, u]
    dx, dy = gx - unit[US_X], gy - unit[US_Y]
    distance = norm(dx, dy)
    heading = np.arctan2(dy, dx) + scalars[P_HEADING_JITTER] * normal(rng, b)
    heading, cos_h, sin_h = _avoid(unit[US_X], unit[US_Y], heading, min(AVOID_LOOKAHEAD_M, distance),
                                   params[u, UP_RADIUS], obstacles)
    if uniform(rng, b) < scalars[P_RANDOM_PROB]:  # a random action, for this one decision
        heading = uniform_range(rng, b, -np.pi, np.pi)
        command_heading(unit, heading, np.cos(heading), np.sin(heading))
        unit[US_CMD_SPEED] = params[u, UP_MAX_SPEED]
        return
    command_heading(unit, heading, cos_h, sin_h)
    unit[US_CMD_SPEED] = params[u, UP_MAX_SPEED] if distance > GOAL_REACHED_M else 0.0


@jit_inline
def _avoid(x: float, y: float, heading: float, lookahead: float, radius: float,
           obstacles: np.ndarray) -> tuple[float, float, float]:
    """The commanded heading, or the nearest offset from it whose next few metres are free, with its cosine and
    sine."""
    cos_h, sin_h = np.cos(heading), np.sin(heading)
    if lookahead <= 0.0 or free_distance(obstacles, x, y, cos_h, sin_h, lookahead, radius) >= lookahead:
        return heading, cos_h, sin_h
    for offset in AVOID_OFFSETS:
        h = heading + offset
        cos_o, sin_o = np.cos(h), np.sin(h)
        if free_distance(obstacles, x, y, cos_o, sin_o, lookahead, radius) >= lookahead:
            return h, cos_o, sin_o
    return heading, cos_h, sin_h
