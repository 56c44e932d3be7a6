"""The simulation's parameter arrays: :class:`SimParams` and :func:`build_params`, which compiles a validated
:class:`~mission_gym.config.MissionConfig` into the constant arrays the kernel reads (columns in
:mod:`mission_gym.sim.layout`).
"""

import math
from typing import NamedTuple

import numpy as np

from mission_gym.config import MissionConfig
from mission_gym.rules import ACTION_NAMES, BEHAVIOUR_MODES
from mission_gym.sim.geometry import obstacle_cells
from mission_gym.sim.layout import (
    GRID_CELL_M, NAV_MARGIN_M, N_OBSTACLE_PARAMS, N_SCALARS, N_UNIT_PARAMS,
    OBSTACLE_CELL_M, OB_BOUND, OB_COS, OB_HALF_H, OB_HALF_W, OB_KIND, OB_RADIUS, OB_SIGHT, OB_SIN, OB_X, OB_Y,
    P_ATT_HEADING_JITTER, P_ATT_SENSE_REACH, P_ATT_SPAWN_JITTER, P_CAPTURE_S, P_DEF_SPAWN_JITTER, P_DEGRADE, P_DT,
    P_GRID_CELL, P_GUARD_R, P_HEADING_JITTER, P_HEIGHT, P_LIDAR_RANGE, P_MAX_TICKS, P_MEMORY_S, P_MOB_THR,
    P_MODE_CDF0, P_MODE_CDF1, P_NAV_INFLATE, P_N_ATT, P_N_DEF, P_OBJ_JITTER, P_OBJ_R, P_OBJ_X, P_OBJ_Y,
    P_RANDOM_PROB, P_REACT_HI, P_REACT_LO, P_REPEAT, P_SCAN_CD, P_SCAN_ENABLED, P_SCAN_MULT, P_SENS_THR,
    P_STALL_CAPTURE, P_STALL_IMPROVE, P_STALL_S, P_TAG_CD, P_TAG_CLOSE_RANGE, P_TAG_COS, P_TAG_ENABLED, P_TAG_LOS,
    P_TAG_RANGE, P_WIDTH, P_WP_JITTER, UP_AIR, UP_ATTACKER, UP_CAN_SCAN, UP_CAN_TAG, UP_INTEGRITY, UP_MAX_ACCEL,
    UP_MAX_SPEED, UP_RADIUS, UP_SENSOR_REACH, UP_SPAWN_HEADING, UP_SPAWN_X, UP_SPAWN_Y, UP_TAG_CLOSE, UP_TAG_FAR,
    UP_TURN_COS, UP_TURN_RATE, UP_TURN_SIN,
)


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
    probs = dict(zip(BEHAVIOUR_MODES, dr.mode_probabilities()))
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
        P_MODE_CDF0: probs["patrol"], P_MODE_CDF1: probs["patrol"] + probs["guard_objective"],
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
