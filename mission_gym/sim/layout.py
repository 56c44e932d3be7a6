"""Array layout of the simulation: column indices of every state and parameter array.

The kernel takes a handful of 2-D/3-D float arrays rather than many small ones because numba's cost per
call grows with the number of arguments; the column constants below are compile-time globals for numba.
"""

from mission_gym.rules import ACTION_NAMES, BEHAVIOUR_MODES, MOVE_ACTIONS, MOVE_HEADINGS_DEG, REWARD_COMPONENTS, Outcome

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

# Action codes: an action's index in ACTION_NAMES (STOP, the compass moves, then TAG and SCAN).
ACT_STOP, ACT_TAG, ACT_SCAN = (ACTION_NAMES.index(name) for name in ("STOP", "TAG", "SCAN"))
# The commanded heading of each move, indexed by action code; STOP has none (0 fills its slot).
MOVE_CODE_HEADINGS_DEG = tuple(MOVE_HEADINGS_DEG.get(name, 0.0) for name in MOVE_ACTIONS)

# Raw reward quantities: the column of a component is its index in REWARD_COMPONENTS.
(
    R_CAPTURE, R_WIN, R_ENTRY, R_ZONE_TIME, R_POTENTIAL, R_RING, R_SPREAD, R_TAG_HIT, R_DEF_DISABLED,
    R_TIME, R_COLLISION, R_INTEGRITY, R_UNIT_DISABLED, R_DETECTED, R_STALLED, R_TIMEOUT, R_ALL_DISABLED,
) = (REWARD_COMPONENTS.index(name) for name in (
    "capture_progress", "win_bonus", "zone_entry_bonus", "zone_time", "min_dist_potential", "ring_bonus", "spread",
    "tag_hit_bonus", "defender_disabled_bonus", "time_penalty", "collision_penalty", "integrity_loss_penalty",
    "unit_disabled_penalty", "detected_penalty", "stalled_penalty", "timeout_penalty", "all_disabled_penalty",
))
N_REWARD = len(REWARD_COMPONENTS)

# Episode outcome codes (AS_OUTCOME), as plain ints: numba freezes them as constants.
OUT_RUNNING, OUT_CAPTURED, OUT_ALL_DISABLED, OUT_TIMEOUT, OUT_STALLED = (
    int(o) for o in (Outcome.RUNNING, Outcome.CAPTURED, Outcome.ALL_DISABLED, Outcome.TIMEOUT, Outcome.STALLED)
)

# Defender behaviour modes (DS_MODE): a mode's index in BEHAVIOUR_MODES.
MODE_PATROL, MODE_GUARD, MODE_INTERCEPT = (BEHAVIOUR_MODES.index(m) for m in ("patrol", "guard_objective", "intercept"))

OBSTACLE_CELL_M = 10.0
LIDAR_RAYS = 8
GRID_CELL_M = 2.0
NAV_MARGIN_M = 0.5
UNSEEN_T = -1.0e9
