"""Shapes against points, rays and segments: circles and rotated rectangles (obstacle rows of layout.py)."""

import numpy as np
from mission_gym.sim.jit import jit, jit_alloc, jit_inline

from mission_gym.sim.layout import (
    OB_BOUND, OB_COS, OB_HALF_H, OB_HALF_W, OB_KIND, OB_RADIUS, OB_SIGHT, OB_SIN, OB_X, OB_Y,
)

INF = 1.0e18


@jit_inline
def norm(dx: float, dy: float) -> float:
    """Length of (dx, dy). libm's hypot guards against overflow we cannot reach and costs ~5x more."""
    return np.sqrt(dx * dx + dy * dy)


@jit_inline
def beyond(dx: float, dy: float, reach: float) -> bool:
    """True if (dx, dy) is certainly longer than `reach`, decided without a square root.

    The relative margin dwarfs the rounding of both sides, so `norm(dx, dy) > reach` holds wherever this
    does; callers keep their exact test for the rest, which keeps results bit-identical.
    """
    return dx * dx + dy * dy > reach * reach * (1.0 + 1e-9)


@jit_inline
def signed_distance(ob: np.ndarray, x: float, y: float) -> tuple[float, float, float]:
    """Distance from (x, y) to the obstacle's boundary (negative inside) and the outward unit normal."""
    dx, dy = x - ob[OB_X], y - ob[OB_Y]
    if ob[OB_KIND] == 0.0:
        d = norm(dx, dy)
        if d < 1e-12:
            return -ob[OB_RADIUS], 1.0, 0.0
        return d - ob[OB_RADIUS], dx / d, dy / d
    c, s = ob[OB_COS], ob[OB_SIN]
    lx, ly = dx * c + dy * s, -dx * s + dy * c
    qx, qy = abs(lx) - ob[OB_HALF_W], abs(ly) - ob[OB_HALF_H]
    if qx > 0.0 or qy > 0.0:
        ox, oy = max(qx, 0.0), max(qy, 0.0)
        d = norm(ox, oy)
        nlx, nly = np.sign(lx) * ox / d, np.sign(ly) * oy / d
    elif qx > qy:  # inside: leave through the nearest face
        d, nlx, nly = qx, np.sign(lx) if lx != 0.0 else 1.0, 0.0
    else:
        d, nlx, nly = qy, 0.0, np.sign(ly) if ly != 0.0 else 1.0
    return d, nlx * c - nly * s, nlx * s + nly * c


@jit_inline
def ray_hit(ob: np.ndarray, ox: float, oy: float, dx: float, dy: float) -> float:
    """Smallest t >= 0 where origin + t * (dx, dy) enters the obstacle; 0 if the origin is inside; INF if never."""
    px, py = ox - ob[OB_X], oy - ob[OB_Y]
    if ob[OB_KIND] == 0.0:
        return _circle_hit(px, py, dx, dy, ob[OB_RADIUS])
    cs, sn = ob[OB_COS], ob[OB_SIN]
    return _box_hit(px * cs + py * sn, -px * sn + py * cs, dx * cs + dy * sn, -dx * sn + dy * cs,
                    ob[OB_HALF_W], ob[OB_HALF_H])


@jit_inline
def grown_hit(ob: np.ndarray, ox: float, oy: float, dx: float, dy: float, grow: float) -> float:
    """`ray_hit` against the obstacle grown by `grow` all around (where a disc of that radius would touch it).

    A grown rectangle is the union of two boxes, one widened and one heightened, and four corner discs: the ray
    enters the union where it first enters one of them.
    """
    px, py = ox - ob[OB_X], oy - ob[OB_Y]
    if ob[OB_KIND] == 0.0:
        return _circle_hit(px, py, dx, dy, ob[OB_RADIUS] + grow)
    cs, sn = ob[OB_COS], ob[OB_SIN]
    lx, ly, ldx, ldy = px * cs + py * sn, -px * sn + py * cs, dx * cs + dy * sn, -dx * sn + dy * cs
    half_w, half_h = ob[OB_HALF_W], ob[OB_HALF_H]
    t = min(_box_hit(lx, ly, ldx, ldy, half_w + grow, half_h), _box_hit(lx, ly, ldx, ldy, half_w, half_h + grow))
    for cx, cy in ((half_w, half_h), (-half_w, half_h), (half_w, -half_h), (-half_w, -half_h)):
        t = min(t, _circle_hit(lx - cx, ly - cy, ldx, ldy, grow))
    return t


@jit_inline
def _circle_hit(px: float, py: float, dx: float, dy: float, r: float) -> float:
    # Origin at (px, py) from the centre of a circle of radius r.
    a = dx * dx + dy * dy
    b = px * dx + py * dy
    c = px * px + py * py - r * r
    if c <= 0.0:
        return 0.0
    disc = b * b - a * c
    if disc < 0.0 or b > 0.0 or a == 0.0:
        return INF
    return (-b - np.sqrt(disc)) / a


@jit_inline
def _box_hit(lx: float, ly: float, ldx: float, ldy: float, half_w: float, half_h: float) -> float:
    # Slab test in the box's own frame: origin (lx, ly), direction (ldx, ldy).
    t_enter, t_exit = 0.0, INF
    for origin, direction, half in ((lx, ldx, half_w), (ly, ldy, half_h)):
        if abs(direction) < 1e-12:
            if abs(origin) > half:
                return INF
        else:
            t1, t2 = (-half - origin) / direction, (half - origin) / direction
            if t1 > t2:
                t1, t2 = t2, t1
            t_enter, t_exit = max(t_enter, t1), min(t_exit, t2)
            if t_enter > t_exit:
                return INF
    return t_enter


@jit
def sight_blocked(obstacles: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> bool:
    """True if a sight-blocking obstacle cuts the segment (x0, y0)-(x1, y1)."""
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    inverse = 0.0 if length2 == 0.0 else 1.0 / length2
    low_x, high_x, low_y, high_y = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
    for k in range(obstacles.shape[0]):
        ob = obstacles[k]
        bound = ob[OB_BOUND]
        # Quick rejects, cheapest first: outside the segment's box grown by the bound, then farther from the
        # segment than the bound.
        if ob[OB_SIGHT] == 0.0 or ob[OB_X] + bound < low_x or ob[OB_X] - bound > high_x:
            continue
        if ob[OB_Y] + bound < low_y or ob[OB_Y] - bound > high_y:
            continue
        t = min(1.0, max(0.0, ((ob[OB_X] - x0) * dx + (ob[OB_Y] - y0) * dy) * inverse))
        ex, ey = x0 + t * dx - ob[OB_X], y0 + t * dy - ob[OB_Y]
        if ex * ex + ey * ey > bound * bound:
            continue
        if ray_hit(ob, x0, y0, dx, dy) <= 1.0:
            return True
    return False


@jit
def free_distance(obstacles: np.ndarray, x: float, y: float, ux: float, uy: float, reach: float,
                  inflate: float) -> float:
    """Distance along the unit direction (ux, uy) to the first obstacle (grown by `inflate`), at most `reach`."""
    best = reach
    for k in range(obstacles.shape[0]):
        ob = obstacles[k]
        # Quick reject: the ray's reach stays outside the (grown) bounding circle, or points away from it.
        cx, cy, grown = ob[OB_X] - x, ob[OB_Y] - y, ob[OB_BOUND] + inflate
        far = best + grown
        if cx * cx + cy * cy > far * far:
            continue
        along = cx * ux + cy * uy
        if along < -grown or (cx * cx + cy * cy) - along * along > grown * grown:
            continue
        best = min(best, grown_hit(ob, x, y, ux, uy, inflate))
    return best


@jit
def ray_fan(obstacles: np.ndarray, x: float, y: float, rays: np.ndarray, out: np.ndarray) -> None:
    """Shorten each `out[r]` (the free distance along unit direction rays[r]) to the first obstacle hit.

    Obstacles are the outer loop so each is culled once for the whole fan, not once per ray.
    """
    reach = 0.0
    for r in range(out.shape[0]):
        reach = max(reach, out[r])
    for k in range(obstacles.shape[0]):
        ob = obstacles[k]
        cx, cy = ob[OB_X] - x, ob[OB_Y] - y
        far = reach + ob[OB_BOUND]
        if cx * cx + cy * cy > far * far:
            continue
        for r in range(out.shape[0]):
            ux, uy = rays[r, 0], rays[r, 1]
            along = cx * ux + cy * uy
            if along < -ob[OB_BOUND] or (cx * cx + cy * cy) - along * along > ob[OB_BOUND] * ob[OB_BOUND]:
                continue
            out[r] = min(out[r], ray_hit(ob, x, y, ux, uy))


@jit_inline
def wall_distance(x: float, y: float, ux: float, uy: float, width: float, height: float) -> float:
    """Distance along the unit direction (ux, uy) from inside the arena to its edge."""
    best = INF
    if ux > 1e-12:
        best = min(best, (width - x) / ux)
    elif ux < -1e-12:
        best = min(best, -x / ux)
    if uy > 1e-12:
        best = min(best, (height - y) / uy)
    elif uy < -1e-12:
        best = min(best, -y / uy)
    return max(best, 0.0)


@jit_alloc
def obstacle_cells(obstacles: np.ndarray, width: float, height: float, cell: float,
                   margin: float) -> tuple[np.ndarray, np.ndarray]:
    """A static spatial hash: for each `cell`-sized square (row-major), the obstacles whose bounding circle
    comes within `margin` of it, as CSR arrays (starts, items). Collision checks then look at one short list
    instead of every obstacle."""
    cols, rows = int(np.ceil(width / cell)), int(np.ceil(height / cell))
    starts = np.zeros(rows * cols + 1, dtype=np.int64)
    items = np.zeros(rows * cols * max(obstacles.shape[0], 1), dtype=np.int64)
    n = 0
    for r in range(rows):
        for c in range(cols):
            for k in range(obstacles.shape[0]):
                # Distance from the obstacle centre to the square, against its bound plus the margin.
                qx = max(c * cell - obstacles[k, OB_X], 0.0, obstacles[k, OB_X] - (c + 1) * cell)
                qy = max(r * cell - obstacles[k, OB_Y], 0.0, obstacles[k, OB_Y] - (r + 1) * cell)
                reach = obstacles[k, OB_BOUND] + margin
                if qx * qx + qy * qy <= reach * reach:
                    items[n] = k
                    n += 1
            starts[r * cols + c + 1] = n
    return starts, items[:n].copy()
