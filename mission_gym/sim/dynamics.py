"""Motion for one physics tick: a low-level controller turns and accelerates each unit toward its commanded
heading and speed within its rate limits; ground units then slide out of obstacles; all stay in the arena."""

import numpy as np
from mission_gym.sim.jit import jit, jit_inline

from mission_gym.sim.geometry import signed_distance
from mission_gym.sim.layout import (
    OBSTACLE_CELL_M,
    OB_BOUND, OB_X, OB_Y, P_DEGRADE, P_DT, P_HEIGHT, P_MOB_THR, P_WIDTH, UP_AIR, UP_INTEGRITY, UP_MAX_ACCEL,
    UP_RADIUS, UP_TURN_RATE, US_CMD_HEADING, US_COS, US_SIN, US_CMD_SPEED, US_COLLIDED, US_HEADING, US_INTEGRITY, US_SPEED, US_X,
    US_Y,
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
def move_unit(unit: np.ndarray, params: np.ndarray, scalars: np.ndarray, obstacles: np.ndarray,
              cell_starts: np.ndarray, cell_items: np.ndarray) -> None:
    """Advance one live unit (a row of the unit state) by one tick.

    `cell_starts`/`cell_items` is the obstacle spatial hash (geometry.obstacle_cells) over OBSTACLE_CELL_M cells.
    """
    dt = scalars[P_DT]
    error = wrap_angle(unit[US_CMD_HEADING] - unit[US_HEADING])
    max_turn = params[UP_TURN_RATE] * dt
    turn = min(max(error, -max_turn), max_turn)
    if turn != 0.0:
        set_heading(unit, wrap_angle(unit[US_HEADING] + turn))
    # Slow down while still facing away from the commanded heading, so units turn before they run.
    target = unit[US_CMD_SPEED]
    if target != 0.0:
        target *= _alignment(error - turn)
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
        x, y, pushed = _slide_out(x, y, radius, obstacles, cell_items[first:last])
        if pushed:
            # A push can carry the unit back over the edge (an obstacle near the edge pushes toward it): clamp
            # again, and if that puts it back into the obstacle it is wedged; stay where it was (a free spot
            # inside the arena). Unpushed moves are free by construction.
            x, y, _ = _clamp_to_arena(x, y, radius, scalars[P_WIDTH], scalars[P_HEIGHT])
            if _overlaps(x, y, radius, obstacles, cell_items[first:last]):
                x, y, unit[US_SPEED] = old_x, old_y, 0.0
        hit = hit or pushed
    unit[US_X], unit[US_Y] = x, y
    if hit:
        unit[US_COLLIDED] = 1.0


@jit_inline
def _alignment(remaining: float) -> float:
    """max(0, cos(remaining)): the share of its commanded speed a unit may use while `remaining` off heading.

    The cosine is a hot spot of the tick: skip it where the answer is known. Beyond a right angle (strictly
    above pi/2 rounded down) the cosine is negative, so the share is exactly 0 as with the call.
    """
    if remaining == 0.0:
        return 1.0
    if abs(remaining) > 0.5 * np.pi:
        return 0.0
    return max(0.0, np.cos(remaining))


@jit_inline
def _clamp_to_arena(x: float, y: float, r: float, width: float, height: float) -> tuple[float, float, bool]:
    cx, cy = min(max(x, r), width - r), min(max(y, r), height - r)
    return cx, cy, cx != x or cy != y


@jit_inline
def _slide_out(x: float, y: float, r: float, obstacles: np.ndarray, nearby: np.ndarray) -> tuple[float, float, bool]:
    pushed = False
    for _ in range(_PUSH_PASSES):
        moved = False
        for k in nearby:
            ob = obstacles[k]
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
def _overlaps(x: float, y: float, r: float, obstacles: np.ndarray, nearby: np.ndarray) -> bool:
    for k in nearby:
        if _overlaps_obstacle(x, y, r, obstacles[k]):
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
