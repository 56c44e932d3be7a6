"""Motion for one physics tick: a low-level controller turns and accelerates each unit toward its commanded
heading and speed within its rate limits; ground units then slide out of obstacles; all stay in the arena."""

import numpy as np
from mission_gym.sim.jit import jit, jit_inline

from mission_gym.sim.geometry import signed_distance
from mission_gym.sim.layout import (
    OBSTACLE_CELL_M,
    OB_BOUND, OB_X, OB_Y, P_DEGRADE, P_DT, P_HEIGHT, P_MOB_THR, P_WIDTH, UP_AIR, UP_INTEGRITY, UP_MAX_ACCEL,
    UP_RADIUS, UP_TURN_COS, UP_TURN_RATE, UP_TURN_SIN, US_CMD_COS, US_CMD_HEADING, US_CMD_SIN, US_CMD_SPEED,
    US_COLLIDED, US_COS, US_HEADING, US_INTEGRITY, US_SIN, US_SPEED, US_X, US_Y,
)

_PUSH_PASSES = 3


@jit_inline
def wrap_angle(angle: float) -> float:
    """Angle folded into (-pi, pi]. Inputs are sums of a few folded angles, so a couple of turns at most
    (and this avoids fmod, a hot spot of the tick)."""
    while angle > np.pi:
        angle -= 2.0 * np.pi
    while angle <= -np.pi:
        angle += 2.0 * np.pi
    return angle


@jit_inline
def set_heading(unit: np.ndarray, heading: float) -> None:
    """Set a unit's heading and its cached cosine and sine."""
    unit[US_HEADING] = heading
    unit[US_COS] = np.cos(heading)
    unit[US_SIN] = np.sin(heading)


@jit_inline
def command_heading(unit: np.ndarray, heading: float, cos_h: float, sin_h: float) -> None:
    """Command a heading, given with its cosine and sine (the controller then turns without trigonometry)."""
    unit[US_CMD_HEADING] = wrap_angle(heading)
    unit[US_CMD_COS], unit[US_CMD_SIN] = cos_h, sin_h


@jit_inline
def move_unit(unit: np.ndarray, params: np.ndarray, scalars: np.ndarray, obstacles: np.ndarray,
              cell_starts: np.ndarray, cell_items: np.ndarray) -> None:
    """Advance one live unit (a row of the unit state) by one tick.

    `cell_starts`/`cell_items` is the obstacle spatial hash (geometry.obstacle_cells) over OBSTACLE_CELL_M cells.
    """
    dt = scalars[P_DT]
    target = unit[US_CMD_SPEED] * _turn(unit, params, params[UP_TURN_RATE] * dt)
    if unit[US_INTEGRITY] < scalars[P_MOB_THR] * params[UP_INTEGRITY]:
        target *= scalars[P_DEGRADE]
    step = params[UP_MAX_ACCEL] * dt
    unit[US_SPEED] += min(max(target - unit[US_SPEED], -2.0 * step), step)  # brakes twice as hard
    old_x, old_y = unit[US_X], unit[US_Y]
    x = old_x + unit[US_SPEED] * unit[US_COS] * dt
    y = old_y + unit[US_SPEED] * unit[US_SIN] * dt
    radius = params[UP_RADIUS]
    x, y, hit = _clamp_to_arena(x, y, radius, scalars[P_WIDTH], scalars[P_HEIGHT])
    if params[UP_AIR] == 0.0:
        cell = _cell_of(x, y, scalars[P_WIDTH], scalars[P_HEIGHT])
        first, last = cell_starts[cell], cell_starts[cell + 1]
        x, y, pushed = _slide_out(x, y, radius, obstacles, cell_items, first, last)
        if pushed:
            # A push can carry the unit back over the edge (an obstacle near the edge pushes toward it): clamp
            # again, and if that puts it back into the obstacle it is wedged; stay where it was (a free spot
            # inside the arena). Unpushed moves are free by construction.
            x, y, _ = _clamp_to_arena(x, y, radius, scalars[P_WIDTH], scalars[P_HEIGHT])
            if _overlaps(x, y, radius, obstacles, cell_items, first, last):
                x, y, unit[US_SPEED] = old_x, old_y, 0.0
        hit = hit or pushed
    unit[US_X], unit[US_Y] = x, y
    if hit:
        unit[US_COLLIDED] = 1.0


@jit_inline
def _turn(unit: np.ndarray, params: np.ndarray, max_turn: float) -> float:
    """Turn toward the commanded heading by at most `max_turn`; return max(0, cos(heading still to turn)), the
    share of its commanded speed the unit may use, so units turn before they run.

    Sines and cosines were the hot spot of a tick: a full-rate turn rotates the cached (cos, sin) by the unit's
    precomputed one-tick turn, and the last, partial one lands on the commanded heading's cached (cos, sin).
    """
    error = wrap_angle(unit[US_CMD_HEADING] - unit[US_HEADING])
    if error == 0.0:
        return 1.0
    if -max_turn <= error <= max_turn:
        unit[US_HEADING], unit[US_COS], unit[US_SIN] = unit[US_CMD_HEADING], unit[US_CMD_COS], unit[US_CMD_SIN]
        return 1.0
    c, s = params[UP_TURN_COS], params[UP_TURN_SIN]
    if error < 0.0:
        s, max_turn = -s, -max_turn
    cos_h, sin_h = unit[US_COS], unit[US_SIN]
    unit[US_COS], unit[US_SIN] = cos_h * c - sin_h * s, sin_h * c + cos_h * s
    unit[US_HEADING] = wrap_angle(unit[US_HEADING] + max_turn)
    return max(0.0, unit[US_CMD_COS] * unit[US_COS] + unit[US_CMD_SIN] * unit[US_SIN])


@jit_inline
def _clamp_to_arena(x: float, y: float, r: float, width: float, height: float) -> tuple[float, float, bool]:
    cx, cy = min(max(x, r), width - r), min(max(y, r), height - r)
    return cx, cy, cx != x or cy != y


@jit_inline
def _slide_out(x: float, y: float, r: float, obstacles: np.ndarray, cell_items: np.ndarray, first: int,
               last: int) -> tuple[float, float, bool]:
    # The nearby obstacles are cell_items[first:last], walked by index (a slice costs bounds arithmetic).
    pushed = False
    for _ in range(_PUSH_PASSES):
        moved = False
        for i in range(first, last):
            ob = obstacles[cell_items[i]]
            dx, dy, reach = x - ob[OB_X], y - ob[OB_Y], ob[OB_BOUND] + r
            if dx * dx + dy * dy >= reach * reach:
                continue
            d, nx, ny = signed_distance(ob, x, y)
            if d < r:
                x += (r - d + 1e-6) * nx
                y += (r - d + 1e-6) * ny
                moved = True
        if not moved:
            break
        pushed = True
    return x, y, pushed


@jit_inline
def _overlaps(x: float, y: float, r: float, obstacles: np.ndarray, cell_items: np.ndarray, first: int,
              last: int) -> bool:
    for i in range(first, last):
        if _overlaps_obstacle(x, y, r, obstacles[cell_items[i]]):
            return True
    return False


@jit
def clear_of_obstacles(x: float, y: float, r: float, obstacles: np.ndarray) -> bool:
    """True if a ground unit of radius r at (x, y) overlaps no obstacle."""
    for k in range(obstacles.shape[0]):
        if _overlaps_obstacle(x, y, r, obstacles[k]):
            return False
    return True


@jit_inline
def _overlaps_obstacle(x: float, y: float, r: float, ob: np.ndarray) -> bool:
    dx, dy, reach = x - ob[OB_X], y - ob[OB_Y], ob[OB_BOUND] + r
    return dx * dx + dy * dy < reach * reach and signed_distance(ob, x, y)[0] < r - 1e-6


@jit_inline
def _cell_of(x: float, y: float, width: float, height: float) -> int:
    # The grid of geometry.obstacle_cells, sized from the arena like there (an integer division by the
    # column count would cost more than the rest of the lookup).
    cols, rows = int(np.ceil(width / OBSTACLE_CELL_M)), int(np.ceil(height / OBSTACLE_CELL_M))
    row = min(int(y / OBSTACLE_CELL_M), rows - 1)
    return row * cols + min(int(x / OBSTACLE_CELL_M), cols - 1)
