"""Array layout of the simulation: column indices of every state and parameter array, and the builder that
turns a :class:`~mission_gym.config.MissionConfig` into parameter arrays.

The kernel takes a handful of 2-D/3-D float arrays rather than many small ones because numba's cost per
call grows with the number of arguments; the column constants below are compile-time globals for numba.
"""

import math
from typing import NamedTuple

import numpy as np

from mission_gym.config import ACTION_NAMES, BEHAVIOUR_MODES, REWARD_COMPONENTS, MissionConfig

# Unit state, per (arena, unit): attackers first, then defenders.
US_X, US_Y, US_HEADING, US_SPEED, US_INTEGRITY, US_TAG_CD, US_SCAN_CD, US_ALIVE = range(8)
US_CMD_HEADING, US_CMD_SPEED, US_SCANNING, US_TAG_REQUEST, US_ENTERED, US_COLLIDED, US_DETECTED = range(8, 15)
US_COS, US_SIN = range(15, 17)  # cos/sin of US_HEADING, kept in step with it (trigonometry is a hot spot)
US_WAS_COLLIDING = 17  # US_COLLIDED of the previous decision: a collision is penalized when contact begins
US_CMD_COS, US_CMD_SIN = 18, 19  # cos/sin of US_CMD_HEADING, set with it once per decision
US_GAP = 20  # distance to the nearest live opponent when this decision began (INF without one)
N_UNIT_STATE = 21

# Arena state, per arena.
AS_OBJ_X, AS_OBJ_Y, AS_CAPTURE, AS_TICK, AS_MIN_DIST, AS_BEST_DIST = range(6)
AS_STALL_T, AS_STALL_REF_DIST, AS_STALL_REF_CAPTURE, AS_OUTCOME, AS_DECISIONS = range(6, 11)
AS_TRAVEL = 11  # no unit has moved farther than this during the current decision
N_ARENA_STATE = 12

# Defender brain, per (arena, defender).
DS_MODE, DS_WAYPOINT, DS_LAST_X, DS_LAST_Y, DS_MEMORY, DS_REACTION, DS_TARGET, DS_GUARD_PHASE = range(8)
N_DEFENDER_STATE = 8

# What the attackers know of each defender, per (arena, defender).
KN_X, KN_Y, KN_SEEN_T = range(3)
N_KNOWN_STATE = 3

# Unit parameters, per unit slot.
UP_MAX_SPEED, UP_MAX_ACCEL, UP_TURN_RATE, UP_INTEGRITY, UP_RADIUS, UP_AIR, UP_TAG_CLOSE, UP_TAG_FAR = range(8)
UP_CAN_TAG, UP_CAN_SCAN, UP_SPAWN_X, UP_SPAWN_Y, UP_SPAWN_HEADING, UP_ATTACKER = range(8, 14)
UP_SENSOR_REACH = 14  # the longest range among the unit's sensors (0 without any)
UP_TURN_COS, UP_TURN_SIN = 15, 16  # cos/sin of the largest turn in one tick (UP_TURN_RATE x P_DT)
N_UNIT_PARAMS = 17

# Obstacles: kind 0 = circle, 1 = rotated rectangle.
OB_KIND, OB_X, OB_Y, OB_RADIUS, OB_HALF_W, OB_HALF_H, OB_COS, OB_SIN, OB_BOUND, OB_SIGHT = range(10)
N_OBSTACLE_PARAMS = 10

SE_RANGE, SE_COS_HALF_FOV, SE_LOS, SE_NOISE = range(4)
N_SENSOR_PARAMS = 4

# Scalars.
(
    P_WIDTH, P_HEIGHT, P_DT, P_REPEAT, P_MAX_TICKS, P_OBJ_X, P_OBJ_Y, P_OBJ_R, P_CAPTURE_S,
    P_TAG_ENABLED, P_TAG_RANGE, P_TAG_COS, P_TAG_CD, P_TAG_LOS, P_TAG_CLOSE_RANGE,
    P_SCAN_ENABLED, P_SCAN_MULT, P_SCAN_CD, P_MOB_THR, P_SENS_THR, P_DEGRADE,
    P_MODE_CDF0, P_MODE_CDF1, P_REACT_LO, P_REACT_HI, P_RANDOM_PROB, P_HEADING_JITTER, P_WP_JITTER,
    P_DEF_SPAWN_JITTER, P_MEMORY_S, P_GUARD_R, P_ATT_SPAWN_JITTER, P_ATT_HEADING_JITTER, P_OBJ_JITTER,
    P_STALL_S, P_STALL_IMPROVE, P_STALL_CAPTURE, P_N_ATT, P_N_DEF, P_GRID_CELL, P_NAV_INFLATE, P_LIDAR_RANGE,
    P_ATT_SENSE_REACH,
) = range(43)
N_SCALARS = 43

# Action codes: 0 STOP, 1..8 the compass moves, then TAG and SCAN (ACTION_NAMES order).
ACT_STOP, ACT_TAG, ACT_SCAN = 0, ACTION_NAMES.index("TAG"), ACTION_NAMES.index("SCAN")
MOVE_HEADINGS_DEG = (0.0, 90.0, 45.0, 0.0, -45.0, -90.0, -135.0, 180.0, 135.0)  # index = action code

# Raw reward quantities, one column per REWARD_COMPONENTS entry.
(
    R_CAPTURE, R_WIN, R_ENTRY, R_ZONE_TIME, R_POTENTIAL, R_RING, R_SPREAD, R_TAG_HIT, R_DEF_DISABLED,
    R_TIME, R_COLLISION, R_INTEGRITY, R_UNIT_DISABLED, R_DETECTED, R_STALLED, R_TIMEOUT, R_ALL_DISABLED,
) = range(len(REWARD_COMPONENTS))
N_REWARD = len(REWARD_COMPONENTS)

# Episode outcomes (AS_OUTCOME).
OUT_RUNNING, OUT_CAPTURED, OUT_ALL_DISABLED, OUT_TIMEOUT, OUT_STALLED = range(5)

OBSTACLE_CELL_M = 10.0
LIDAR_RAYS = 8
GRID_CELL_M = 2.0
NAV_MARGIN_M = 0.5
UNSEEN_T = -1.0e9


class SimParams(NamedTuple):
    """Constant arrays the kernel reads; built once per config."""

    scalars: np.ndarray  # (N_SCALARS,)
    units: np.ndarray  # (U, N_UNIT_PARAMS)
    obstacles: np.ndarray  # (O, N_OBSTACLE_PARAMS)
    sensors: np.ndarray  # (S, N_SENSOR_PARAMS)
    unit_sensors: np.ndarray  # (U, S) 1.0 where the unit carries the sensor
    action_codes: np.ndarray  # (A, max actions) int64 code of each action index
    waypoints: np.ndarray  # (D, max waypoints, 2)
    waypoint_counts: np.ndarray  # (D,) int64
    reward_weights: np.ndarray  # (N_REWARD,) 0 where a component is disabled
    cell_starts: np.ndarray  # obstacle spatial hash (geometry.obstacle_cells), CSR starts
    cell_items: np.ndarray  # ... and obstacle indices


def build_params(config: MissionConfig) -> SimParams:
    """Compile a validated config into the constant arrays of the kernel."""
    slots = [config.attacker_unit(i) for i in range(len(config.scenario.attackers))]
    slots += [config.defender_unit(i) for i in range(len(config.scenario.defenders))]
    spawns = [s.spawn for s in config.scenario.attackers] + [s.spawn for s in config.scenario.defenders]
    waypoints, waypoint_counts = _waypoints(config)
    from mission_gym.sim.geometry import obstacle_cells  # geometry reads this module's constants

    obstacles = _obstacles(config)
    margin = max(unit.radius for unit in slots) + 1.0  # a unit's reach from any point of its cell
    cell_starts, cell_items = obstacle_cells(obstacles, config.world.arena.width, config.world.arena.height,
                                             OBSTACLE_CELL_M, margin)
    return SimParams(
        scalars=_scalars(config),
        units=np.array([_unit_row(config, u, s, i < len(config.scenario.attackers)) for i, (u, s) in enumerate(zip(slots, spawns))]),
        obstacles=obstacles,
        sensors=np.array([[s.range, math.cos(math.radians(min(s.fov_deg, 359.999) / 2)), float(s.requires_los), s.noise_std] for s in config.sensors.values()]),
        unit_sensors=np.array([[float(name in u.sensors) for name in config.sensors] for u in slots]).reshape(len(slots), len(config.sensors)),
        action_codes=_action_codes(config),
        waypoints=waypoints,
        waypoint_counts=waypoint_counts,
        reward_weights=np.array(config.reward.weights(), dtype=np.float64),
        cell_starts=cell_starts,
        cell_items=cell_items,
    )


def _scalars(config: MissionConfig) -> np.ndarray:
    world, tag, scan = config.world, config.engagement.tag, config.engagement.scan
    deg, dr, sr = config.engagement.degradation, config.defender_randomization, config.scenario_randomization
    probs = dr.mode_probabilities()
    ground = [config.attacker_unit(i).radius for i in range(len(config.scenario.attackers)) if config.attacker_unit(i).category == "ground"]
    lidar = config.sensors.get("lidar")
    values = {
        P_WIDTH: world.arena.width, P_HEIGHT: world.arena.height, P_DT: 1.0 / world.physics.tick_hz,
        P_REPEAT: world.physics.action_repeat,
        P_MAX_TICKS: round(world.physics.max_episode_seconds * world.physics.tick_hz),
        P_OBJ_X: config.scenario.objective.x, P_OBJ_Y: config.scenario.objective.y,
        P_OBJ_R: config.scenario.objective.radius, P_CAPTURE_S: config.scenario.objective.capture_seconds,
        P_TAG_ENABLED: float(tag.enabled), P_TAG_RANGE: tag.range,
        P_TAG_COS: math.cos(math.radians(tag.cone_half_angle_deg)), P_TAG_CD: tag.cooldown_seconds,
        P_TAG_LOS: float(tag.requires_los), P_TAG_CLOSE_RANGE: tag.close_range,
        P_SCAN_ENABLED: float(scan.enabled), P_SCAN_MULT: scan.range_multiplier, P_SCAN_CD: scan.cooldown_seconds,
        P_MOB_THR: deg.mobility_threshold, P_SENS_THR: deg.sensing_threshold, P_DEGRADE: deg.factor,
        P_MODE_CDF0: probs[0], P_MODE_CDF1: probs[0] + probs[1],
        P_REACT_LO: dr.reaction_delay_seconds[0], P_REACT_HI: dr.reaction_delay_seconds[1],
        P_RANDOM_PROB: dr.random_action_prob, P_HEADING_JITTER: math.radians(dr.heading_jitter_deg),
        P_WP_JITTER: dr.waypoint_jitter_m, P_DEF_SPAWN_JITTER: dr.spawn_jitter_m,
        P_MEMORY_S: dr.chase_memory_seconds, P_GUARD_R: dr.guard_radius_m,
        P_ATT_SPAWN_JITTER: sr.attacker_spawn_jitter_m,
        P_ATT_HEADING_JITTER: math.radians(sr.attacker_heading_jitter_deg), P_OBJ_JITTER: sr.objective_jitter_m,
        P_STALL_S: world.termination.stagnation_seconds,
        P_STALL_IMPROVE: world.termination.stagnation_min_improvement_m,
        P_STALL_CAPTURE: world.termination.stagnation_min_capture_seconds,
        P_N_ATT: len(config.scenario.attackers), P_N_DEF: len(config.scenario.defenders),
        P_GRID_CELL: GRID_CELL_M, P_NAV_INFLATE: (max(ground) if ground else 0.0) + NAV_MARGIN_M,
        P_LIDAR_RANGE: lidar.range if lidar else 30.0,
        # The farthest any attacker can sense (scanning): no attacker sees a defender farther from all of them.
        P_ATT_SENSE_REACH: scan.range_multiplier * max(
            (_sensor_reach(config, config.attacker_unit(i)) for i in range(len(config.scenario.attackers))),
            default=0.0),
    }
    scalars = np.zeros(N_SCALARS)
    for index, value in values.items():
        scalars[index] = value
    return scalars


def _sensor_reach(config: MissionConfig, unit) -> float:
    """The longest range among a unit type's sensors (0 without any)."""
    return max((config.sensors[name].range for name in unit.sensors), default=0.0)


def _unit_row(config: MissionConfig, unit, spawn, attacker: bool) -> list[float]:
    tag = config.engagement.tag
    close = unit.tag_damage if unit.tag_damage is not None else tag.damage_close
    row = [0.0] * N_UNIT_PARAMS
    row[UP_MAX_SPEED], row[UP_MAX_ACCEL] = unit.max_speed, unit.max_accel
    row[UP_TURN_RATE], row[UP_INTEGRITY] = math.radians(unit.max_turn_rate_deg), unit.integrity
    row[UP_RADIUS], row[UP_AIR] = unit.radius, float(unit.category == "air")
    row[UP_TAG_CLOSE], row[UP_TAG_FAR] = close, tag.damage_far * close / tag.damage_close
    row[UP_CAN_TAG], row[UP_CAN_SCAN] = float("TAG" in unit.actions), float("SCAN" in unit.actions)
    row[UP_SPAWN_X], row[UP_SPAWN_Y], row[UP_SPAWN_HEADING] = spawn.x, spawn.y, math.radians(spawn.heading)
    row[UP_ATTACKER] = float(attacker)
    row[UP_SENSOR_REACH] = _sensor_reach(config, unit)
    max_turn = row[UP_TURN_RATE] * (1.0 / config.world.physics.tick_hz)  # as the kernel computes it
    row[UP_TURN_COS], row[UP_TURN_SIN] = math.cos(max_turn), math.sin(max_turn)
    return row


def _obstacles(config: MissionConfig) -> np.ndarray:
    rows = np.zeros((len(config.world.obstacles), N_OBSTACLE_PARAMS))
    for row, ob in zip(rows, config.world.obstacles):
        row[OB_X], row[OB_Y], row[OB_SIGHT] = ob.x, ob.y, float(ob.blocks_sight)
        if ob.kind == "circle":
            row[OB_KIND], row[OB_RADIUS], row[OB_BOUND] = 0.0, ob.radius, ob.radius
        else:
            angle = math.radians(ob.angle_deg)
            row[OB_KIND], row[OB_HALF_W], row[OB_HALF_H] = 1.0, ob.width / 2, ob.height / 2
            row[OB_COS], row[OB_SIN] = math.cos(angle), math.sin(angle)
            row[OB_BOUND] = math.hypot(ob.width / 2, ob.height / 2)
    return rows


def _action_codes(config: MissionConfig) -> np.ndarray:
    lists = [config.attacker_unit(i).actions for i in range(len(config.scenario.attackers))]
    codes = np.zeros((len(lists), max(len(a) for a in lists)), dtype=np.int64)
    for row, actions in zip(codes, lists):
        row[: len(actions)] = [ACTION_NAMES.index(a) for a in actions]
    return codes


def _waypoints(config: MissionConfig) -> tuple[np.ndarray, np.ndarray]:
    defenders = config.scenario.defenders
    most = max((len(d.patrol_waypoints) for d in defenders), default=1)
    points = np.zeros((len(defenders), most, 2))
    counts = np.zeros(len(defenders), dtype=np.int64)
    for i, slot in enumerate(defenders):
        counts[i] = len(slot.patrol_waypoints)
        points[i, : counts[i]] = slot.patrol_waypoints
    return points, counts


assert BEHAVIOUR_MODES == ("patrol", "guard_objective", "intercept")  # P_MODE_CDF* assume this order
