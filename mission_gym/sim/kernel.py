"""The two compiled entry points: reset an arena, and advance every arena by one decision.

One decision = `action_repeat` physics ticks. Per tick: move, tick timers, tag, capture, termination checks.
Raw reward quantities (one column per REWARD_COMPONENTS entry) are accumulated per decision, then weighted
by reward.yaml's weights (0 for a disabled component) and summed at its end.
"""

import numpy as np
from mission_gym.sim.geometry import INF, norm
from mission_gym.sim.jit import jit, jit_inline

from mission_gym.rules import RING_RADII
from mission_gym.sim.defenders import count_down, think, tick_timers
from mission_gym.sim.dynamics import clear_of_obstacles, command_heading, move_unit, set_heading, wrap_angle
from mission_gym.sim.engagement import NOT_DETECTED, OUT_OF_SIGHT, apply_tag, detection_noise, tag_target
from mission_gym.sim.layout import (
    ACT_SCAN, ACT_STOP, ACT_TAG, AS_BEST_DIST, AS_CAPTURE, AS_DECISIONS, AS_MIN_DIST, AS_OBJ_X, AS_OBJ_Y,
    AS_OUTCOME, AS_STALL_REF_CAPTURE, AS_STALL_REF_DIST, AS_STALL_T, AS_TICK, AS_TRAVEL, DS_GUARD_PHASE, DS_MODE,
    DS_TARGET, DS_WAYPOINT, KN_SEEN_T, KN_X, KN_Y, MODE_GUARD, MODE_INTERCEPT, MODE_PATROL, MOVE_CODE_HEADINGS_DEG,
    OUT_ALL_DISABLED, OUT_CAPTURED,
    OUT_RUNNING, OUT_STALLED, OUT_TIMEOUT, P_ATT_HEADING_JITTER, P_ATT_SENSE_REACH, P_ATT_SPAWN_JITTER, P_CAPTURE_S,
    P_DEF_SPAWN_JITTER, P_DT, P_HEIGHT, P_MAX_TICKS, P_MODE_CDF0, P_MODE_CDF1, P_N_ATT, P_OBJ_JITTER,
    P_OBJ_R, P_OBJ_X, P_OBJ_Y, P_REPEAT, P_SCAN_CD, P_SCAN_ENABLED, P_STALL_CAPTURE, P_STALL_IMPROVE, P_STALL_S,
    P_TAG_ENABLED, P_TAG_RANGE, P_WIDTH, P_WP_JITTER, R_ALL_DISABLED, R_CAPTURE, R_COLLISION, R_DEF_DISABLED, R_DETECTED,
    R_ENTRY, R_INTEGRITY, R_POTENTIAL, R_RING, R_SPREAD, R_STALLED, R_TAG_HIT, R_TIME, R_TIMEOUT,
    R_UNIT_DISABLED, R_WIN, R_ZONE_TIME, UNSEEN_T, UP_AIR, UP_CAN_SCAN, UP_CAN_TAG, UP_INTEGRITY, UP_MAX_SPEED,
    UP_RADIUS, UP_SPAWN_HEADING, UP_SPAWN_X, UP_SPAWN_Y, US_ALIVE, US_CMD_SPEED, US_COLLIDED, US_COS,
    US_DETECTED, US_ENTERED, US_GAP, US_HEADING, US_INTEGRITY, US_SCAN_CD, US_SCANNING, US_SIN, US_TAG_CD,
    US_TAG_REQUEST, US_WAS_COLLIDING, US_X, US_Y,
)
from mission_gym.sim.observation import write_observation
from mission_gym.sim.rng import normal, uniform, uniform_range

_RINGS = np.array(RING_RADII)
_MOVE_HEADINGS = np.radians(np.array(MOVE_CODE_HEADINGS_DEG))
_MOVE_COS, _MOVE_SIN = np.cos(_MOVE_HEADINGS), np.sin(_MOVE_HEADINGS)
SPREAD_CAP_M = 20.0


@jit
def reset_arena(b, units, brains, known, arena, waypoints, rng, scalars, params, base_waypoints, waypoint_counts,
                obstacles) -> None:
    """Start a new episode in arena b, drawing its randomization from the arena's own generator.

    The caller then attaches the route field for the new objective and writes the first observation.
    """
    n_att = int(scalars[P_N_ATT])
    width, height = scalars[P_WIDTH], scalars[P_HEIGHT]
    jitter = scalars[P_OBJ_JITTER]
    arena[b, :] = 0.0
    arena[b, AS_OBJ_X] = min(max(scalars[P_OBJ_X] + uniform_range(rng, b, -jitter, jitter), 0.0), width)
    arena[b, AS_OBJ_Y] = min(max(scalars[P_OBJ_Y] + uniform_range(rng, b, -jitter, jitter), 0.0), height)
    for u in range(units.shape[1]):
        spread = scalars[P_ATT_SPAWN_JITTER] if u < n_att else scalars[P_DEF_SPAWN_JITTER]
        _spawn(units[b, u], params[u], rng, b, spread, scalars[P_ATT_HEADING_JITTER] if u < n_att else 0.0, obstacles,
               width, height)
    for d in range(brains.shape[1]):
        _reset_defender(b, d, brains, known, waypoints, rng, scalars, params[n_att + d], base_waypoints,
                        waypoint_counts, obstacles)
    closest = _closest_distance(b, units, arena, n_att)
    arena[b, AS_MIN_DIST] = closest
    arena[b, AS_BEST_DIST] = closest
    arena[b, AS_STALL_REF_DIST] = closest


@jit
def _spawn(unit, params, rng, b, spread, heading_jitter, obstacles, width, height) -> None:
    unit[:] = 0.0
    # The loader only checks spawns lie in the arena: jitter (or a spawn on the edge) may put a unit's body,
    # or its centre and so its observed position, outside. Clamp like a physics tick would.
    r = params[UP_RADIUS]
    x = min(max(params[UP_SPAWN_X] + uniform_range(rng, b, -spread, spread), r), width - r)
    y = min(max(params[UP_SPAWN_Y] + uniform_range(rng, b, -spread, spread), r), height - r)
    if params[UP_AIR] == 0.0 and not clear_of_obstacles(x, y, r, obstacles):
        # The configured spawn, validated clear of obstacles by the config loader.
        x = min(max(params[UP_SPAWN_X], r), width - r)
        y = min(max(params[UP_SPAWN_Y], r), height - r)
    unit[US_X], unit[US_Y] = x, y
    set_heading(unit, wrap_angle(params[UP_SPAWN_HEADING] + uniform_range(rng, b, -heading_jitter, heading_jitter)))
    command_heading(unit, unit[US_HEADING], unit[US_COS], unit[US_SIN])
    unit[US_INTEGRITY] = params[UP_INTEGRITY]
    unit[US_ALIVE] = 1.0


@jit
def _reset_defender(b, d, brains, known, waypoints, rng, scalars, params, base_waypoints, waypoint_counts,
                    obstacles) -> None:
    brains[b, d, :] = 0.0
    draw = uniform(rng, b)
    mode = MODE_PATROL if draw < scalars[P_MODE_CDF0] else (MODE_GUARD if draw < scalars[P_MODE_CDF1] else MODE_INTERCEPT)
    brains[b, d, DS_MODE] = mode
    brains[b, d, DS_TARGET] = -1.0
    brains[b, d, DS_GUARD_PHASE] = uniform_range(rng, b, -np.pi, np.pi)
    jitter = scalars[P_WP_JITTER]
    for k in range(waypoint_counts[d]):
        x = min(max(base_waypoints[d, k, 0] + uniform_range(rng, b, -jitter, jitter), 0.0), scalars[P_WIDTH])
        y = min(max(base_waypoints[d, k, 1] + uniform_range(rng, b, -jitter, jitter), 0.0), scalars[P_HEIGHT])
        if params[UP_AIR] == 0.0 and not clear_of_obstacles(x, y, params[UP_RADIUS], obstacles):
            x, y = base_waypoints[d, k, 0], base_waypoints[d, k, 1]
        waypoints[b, d, k, 0], waypoints[b, d, k, 1] = x, y
    brains[b, d, DS_WAYPOINT] = 0.0
    # Attackers start with the briefed (unjittered) defender positions, never sighted yet.
    known[b, d, KN_X], known[b, d, KN_Y], known[b, d, KN_SEEN_T] = params[UP_SPAWN_X], params[UP_SPAWN_Y], UNSEEN_T


@jit
def step_arenas(actions, units, brains, known, arena, waypoints, rng, fields, field_slots, raw, components,
                episode_components, rewards, obs, scalars, params, sensors, unit_sensors, action_codes, waypoint_counts,
                obstacles, cell_starts, cell_items, reward_weights) -> None:
    """Advance every arena by one decision. `raw` receives this decision's raw reward quantities, `components`
    them weighted (also added to `episode_components`), and `rewards` their sum."""
    for b in range(units.shape[0]):
        raw[b, :] = 0.0
        _apply_actions(b, actions, units, params, action_codes, scalars)
        _opponent_gaps(b, units, arena, int(scalars[P_N_ATT]))
        think(b, units, brains, arena, waypoints, waypoint_counts, rng, params, sensors, unit_sensors, scalars, obstacles)
        closest_before = arena[b, AS_MIN_DIST]
        for _ in range(int(scalars[P_REPEAT])):
            _tick(b, units, brains, arena, raw, scalars, params, obstacles, cell_starts, cell_items)
            if arena[b, AS_OUTCOME] != OUT_RUNNING:
                break
        raw[b, R_POTENTIAL] = closest_before - arena[b, AS_MIN_DIST]
        _end_decision(b, units, known, arena, raw, rng, scalars, params, sensors, unit_sensors, obstacles)
        _weigh_rewards(b, raw, reward_weights, components, episode_components, rewards)
        write_observation(obs[b], b, units, known, arena, fields[field_slots[b]], params, scalars, obstacles)


@jit_inline
def _weigh_rewards(b, raw, weights, components, episode_components, rewards) -> None:
    total = 0.0
    for c in range(raw.shape[1]):
        value = raw[b, c] * weights[c]
        components[b, c] = value
        episode_components[b, c] += value
        total += value
    rewards[b] = total


@jit_inline
def _apply_actions(b, actions, units, params, action_codes, scalars) -> None:
    for a in range(int(scalars[P_N_ATT])):
        unit = units[b, a]
        unit[US_WAS_COLLIDING] = unit[US_COLLIDED]
        unit[US_SCANNING], unit[US_TAG_REQUEST], unit[US_COLLIDED], unit[US_DETECTED] = 0.0, 0.0, 0.0, 0.0
        if unit[US_ALIVE] == 0.0:
            continue
        code = action_codes[a, actions[b, a]]
        unit[US_CMD_SPEED] = 0.0
        if ACT_STOP < code < ACT_TAG:
            command_heading(unit, _MOVE_HEADINGS[code], _MOVE_COS[code], _MOVE_SIN[code])
            unit[US_CMD_SPEED] = params[a, UP_MAX_SPEED]
        elif code == ACT_TAG and scalars[P_TAG_ENABLED] != 0.0 and params[a, UP_CAN_TAG] != 0.0:
            unit[US_TAG_REQUEST] = 1.0
        elif code == ACT_SCAN and scalars[P_SCAN_ENABLED] != 0.0 and params[a, UP_CAN_SCAN] != 0.0:
            if unit[US_SCAN_CD] == 0.0:
                unit[US_SCANNING] = 1.0
                unit[US_SCAN_CD] = scalars[P_SCAN_CD]
    for u in range(int(scalars[P_N_ATT]), units.shape[1]):
        units[b, u, US_COLLIDED] = 0.0


@jit_inline
def _tick(b, units, brains, arena, raw, scalars, params, obstacles, cell_starts, cell_items) -> None:
    dt = scalars[P_DT]
    n_att, n_units = int(scalars[P_N_ATT]), units.shape[1]
    moved = 0.0
    for u in range(n_units):
        unit = units[b, u]
        unit[US_TAG_CD] = count_down(unit[US_TAG_CD], dt)
        unit[US_SCAN_CD] = count_down(unit[US_SCAN_CD], dt)
        if unit[US_ALIVE] != 0.0:
            x, y = unit[US_X], unit[US_Y]
            move_unit(unit, params[u], scalars, obstacles, cell_starts, cell_items)
            moved = max(moved, abs(unit[US_X] - x) + abs(unit[US_Y] - y))  # at least the distance moved
    arena[b, AS_TRAVEL] += moved
    tick_timers(b, brains, dt)
    if scalars[P_TAG_ENABLED] != 0.0:
        _tags(b, units, raw, scalars, params, obstacles, n_att, n_units, arena[b, AS_TRAVEL])
    arena[b, AS_TICK] += 1.0
    closest = _capture(b, units, arena, raw, scalars, n_att)
    _progress(b, arena, raw, scalars, closest)
    _check_end(b, units, arena, raw, scalars, n_att)


@jit_inline
def _opponent_gaps(b, units, arena, n_att) -> None:
    """Start a decision's bookkeeping: each unit's distance to its nearest live opponent, and no travel yet.

    Two units close by at most twice the farthest any unit has moved (AS_TRAVEL), so a pair that began farther
    apart than that beyond some range is still out of it: tags and sightings skip such units without a look."""
    n_units = units.shape[1]
    for u in range(n_att, n_units):
        units[b, u, US_GAP] = INF
    for a in range(n_att):
        nearest = INF  # squared distances until the square roots below
        if units[b, a, US_ALIVE] != 0.0:
            for u in range(n_att, n_units):
                if units[b, u, US_ALIVE] != 0.0:
                    dx, dy = units[b, u, US_X] - units[b, a, US_X], units[b, u, US_Y] - units[b, a, US_Y]
                    gap = dx * dx + dy * dy
                    nearest = min(nearest, gap)
                    units[b, u, US_GAP] = min(units[b, u, US_GAP], gap)
        units[b, a, US_GAP] = nearest
    for u in range(n_units):
        units[b, u, US_GAP] = np.sqrt(units[b, u, US_GAP])
    arena[b, AS_TRAVEL] = 0.0


@jit_inline
def _tags(b, units, raw, scalars, params, obstacles, n_att, n_units, travel) -> None:
    # Most units on most ticks have nobody within reach (see _opponent_gaps).
    out_of_reach = scalars[P_TAG_RANGE] + 2.0 * travel + 1e-6
    for u in range(n_units):
        unit = units[b, u]
        if unit[US_ALIVE] == 0.0 or unit[US_TAG_CD] > 0.0 or params[u, UP_CAN_TAG] == 0.0:
            continue
        if unit[US_GAP] > out_of_reach:
            continue
        attacker = u < n_att
        if attacker and unit[US_TAG_REQUEST] == 0.0:
            continue
        target = tag_target(units[b], params, scalars, obstacles, u, n_att if attacker else 0, n_units if attacker else n_att)
        if target < 0:
            continue
        lost, disabled = apply_tag(units[b], params, scalars, u, target)
        if attacker:
            unit[US_TAG_REQUEST] = 0.0
            raw[b, R_TAG_HIT] += 1.0
            if disabled:
                raw[b, R_DEF_DISABLED] += 1.0
        else:
            raw[b, R_INTEGRITY] += lost
            if disabled:
                raw[b, R_UNIT_DISABLED] += 1.0


@jit_inline
def _capture(b, units, arena, raw, scalars, n_att) -> float:
    """Advance the capture by one tick; returns the closest live attacker's distance to the objective (INF
    when none is left), which _progress needs too: one square root per tick."""
    dt = scalars[P_DT]
    inside = 0
    closest = INF
    zone = scalars[P_OBJ_R] * scalars[P_OBJ_R]
    for a in range(n_att):
        unit = units[b, a]
        if unit[US_ALIVE] == 0.0:
            continue
        dx, dy = unit[US_X] - arena[b, AS_OBJ_X], unit[US_Y] - arena[b, AS_OBJ_Y]
        squared = dx * dx + dy * dy
        closest = min(closest, squared)
        if squared <= zone:
            inside += 1
            if unit[US_ENTERED] == 0.0:
                unit[US_ENTERED] = 1.0
                raw[b, R_ENTRY] += 1.0
    if inside > 0:
        gained = min(dt, scalars[P_CAPTURE_S] - arena[b, AS_CAPTURE])
        arena[b, AS_CAPTURE] += gained
        raw[b, R_CAPTURE] += gained
        raw[b, R_ZONE_TIME] += inside * dt
    else:
        arena[b, AS_STALL_T] += dt  # the stagnation clock is paused while any attacker holds the zone
    return np.sqrt(closest) if closest < INF else INF


@jit_inline
def _progress(b, arena, raw, scalars, closest) -> None:
    if closest >= INF:
        return  # nobody left to make progress
    best = arena[b, AS_BEST_DIST]
    if closest < best:
        for radius in _RINGS:
            if best > radius >= closest:
                raw[b, R_RING] += 1.0
        arena[b, AS_BEST_DIST] = closest
    arena[b, AS_MIN_DIST] = closest
    if arena[b, AS_BEST_DIST] < arena[b, AS_STALL_REF_DIST] - scalars[P_STALL_IMPROVE]:
        arena[b, AS_STALL_REF_DIST] = arena[b, AS_BEST_DIST]
        arena[b, AS_STALL_T] = 0.0
    if arena[b, AS_CAPTURE] >= arena[b, AS_STALL_REF_CAPTURE] + scalars[P_STALL_CAPTURE]:
        arena[b, AS_STALL_REF_CAPTURE] = arena[b, AS_CAPTURE]
        arena[b, AS_STALL_T] = 0.0


@jit_inline
def _check_end(b, units, arena, raw, scalars, n_att) -> None:
    alive = 0
    for a in range(n_att):
        alive += units[b, a, US_ALIVE] != 0.0
    if arena[b, AS_CAPTURE] >= scalars[P_CAPTURE_S] - 1e-9:
        arena[b, AS_OUTCOME], raw[b, R_WIN] = OUT_CAPTURED, 1.0
    elif alive == 0:
        arena[b, AS_OUTCOME], raw[b, R_ALL_DISABLED] = OUT_ALL_DISABLED, 1.0
    elif arena[b, AS_STALL_T] >= scalars[P_STALL_S] - 1e-9:
        arena[b, AS_OUTCOME], raw[b, R_STALLED] = OUT_STALLED, 1.0
    elif arena[b, AS_TICK] >= scalars[P_MAX_TICKS]:
        arena[b, AS_OUTCOME], raw[b, R_TIMEOUT] = OUT_TIMEOUT, 1.0


@jit_inline
def _end_decision(b, units, known, arena, raw, rng, scalars, params, sensors, unit_sensors, obstacles) -> None:
    n_att = int(scalars[P_N_ATT])
    previous = arena[b, AS_DECISIONS]
    arena[b, AS_DECISIONS] = previous + 1.0
    raw[b, R_TIME] = 1.0
    cx, cy, alive = 0.0, 0.0, 0
    for a in range(n_att):
        unit = units[b, a]
        # One penalty per collision, not per decision spent sliding along a wall: contact that began now.
        raw[b, R_COLLISION] += unit[US_COLLIDED] * (1.0 - unit[US_WAS_COLLIDING])
        raw[b, R_DETECTED] += unit[US_DETECTED]
        if unit[US_ALIVE] != 0.0:
            cx, cy, alive = cx + unit[US_X], cy + unit[US_Y], alive + 1
    if alive > 1:
        cx, cy = cx / alive, cy / alive
        spread = 0.0
        for a in range(n_att):
            if units[b, a, US_ALIVE] != 0.0:
                spread += norm(units[b, a, US_X] - cx, units[b, a, US_Y] - cy) / alive
        raw[b, R_SPREAD] = min(spread, SPREAD_CAP_M) * scalars[P_REPEAT] * scalars[P_DT]
    _sight_defenders(b, units, known, arena, rng, scalars, params, sensors, unit_sensors, obstacles, n_att)


@jit_inline
def _sight_defenders(b, units, known, arena, rng, scalars, params, sensors, unit_sensors, obstacles, n_att) -> None:
    t = arena[b, AS_TICK] * scalars[P_DT]
    out_of_sight = scalars[P_ATT_SENSE_REACH] * OUT_OF_SIGHT + 2.0 * arena[b, AS_TRAVEL]  # see _opponent_gaps
    for d in range(known.shape[1]):
        u = n_att + d
        if units[b, u, US_ALIVE] == 0.0 or units[b, u, US_GAP] > out_of_sight:
            continue
        best = NOT_DETECTED
        for a in range(n_att):
            if units[b, a, US_ALIVE] == 0.0:
                continue
            noise = detection_noise(units[b], params, sensors, unit_sensors, scalars, obstacles, a, u)
            if noise != NOT_DETECTED and (best == NOT_DETECTED or noise < best):
                best = noise
        if best != NOT_DETECTED:
            known[b, d, KN_X] = units[b, u, US_X] + best * normal(rng, b)
            known[b, d, KN_Y] = units[b, u, US_Y] + best * normal(rng, b)
            known[b, d, KN_SEEN_T] = t


@jit_inline
def _closest_distance(b, units, arena, n_att) -> float:
    best = INF
    for a in range(n_att):
        if units[b, a, US_ALIVE] != 0.0:
            best = min(best, norm(units[b, a, US_X] - arena[b, AS_OBJ_X], units[b, a, US_Y] - arena[b, AS_OBJ_Y]))
    return best
