"""A distance-to-objective field on a grid, for ground units: it gives each attacker the direction of the
shortest obstacle-free route (an observation feature, and what the scripted baseline follows)."""

import numpy as np
from mission_gym.sim.jit import jit_alloc, jit_inline

from mission_gym.sim.geometry import norm, signed_distance

UNREACHABLE = np.float32(1.0e9)
_STEPS = ((1, 0, 1.0), (-1, 0, 1.0), (0, 1, 1.0), (0, -1, 1.0),
          (1, 1, 1.4142135), (1, -1, 1.4142135), (-1, 1, 1.4142135), (-1, -1, 1.4142135))


@jit_alloc
def blocked_cells(obstacles: np.ndarray, width: float, height: float, cell: float, inflate: float) -> np.ndarray:
    """(rows, cols) mask of grid cells whose centre is within `inflate` of an obstacle."""
    rows, cols = int(np.ceil(height / cell)), int(np.ceil(width / cell))
    mask = np.zeros((rows, cols), dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            x, y = (c + 0.5) * cell, (r + 0.5) * cell
            for k in range(obstacles.shape[0]):
                if signed_distance(obstacles[k], x, y)[0] < inflate:
                    mask[r, c] = 1
                    break
    return mask


@jit_alloc
def fill_distance_field(field: np.ndarray, blocked: np.ndarray, cell: float, gx: float, gy: float,
                        goal_radius: float, queue: np.ndarray) -> None:
    """Write into `field` the route length (m) from every cell to the goal disc; UNREACHABLE where none."""
    rows, cols = blocked.shape
    field[:, :] = UNREACHABLE
    in_queue = np.zeros((rows, cols), dtype=np.uint8)
    head, tail, size = 0, 0, queue.shape[0]
    for r in range(rows):
        for c in range(cols):
            if blocked[r, c] == 0 and norm((c + 0.5) * cell - gx, (r + 0.5) * cell - gy) <= goal_radius:
                field[r, c] = 0.0
                queue[tail % size] = r * cols + c
                tail += 1
                in_queue[r, c] = 1
    # Label-correcting search: cheaper to write than a heap, and converges in a few passes on open maps.
    while head != tail:
        index = queue[head % size]
        head += 1
        r, c = index // cols, index % cols
        in_queue[r, c] = 0
        for dr, dc, cost in _STEPS:
            nr, nc = r + dr, c + dc
            if nr < 0 or nr >= rows or nc < 0 or nc >= cols or blocked[nr, nc] != 0:
                continue
            if dr != 0 and dc != 0 and (blocked[r, nc] != 0 or blocked[nr, c] != 0):
                continue  # no cutting corners past an obstacle
            candidate = field[r, c] + cost * cell
            if candidate < field[nr, nc]:
                field[nr, nc] = candidate
                if in_queue[nr, nc] == 0:
                    queue[tail % size] = nr * cols + nc
                    tail += 1
                    in_queue[nr, nc] = 1


@jit_inline
def route_direction(field: np.ndarray, cell: float, x: float, y: float, gx: float, gy: float) -> tuple[float, float]:
    """Unit vector along the shortest route from (x, y) to the goal; straight at the goal where no route is known."""
    rows, cols = field.shape
    r, c = min(max(int(y / cell), 0), rows - 1), min(max(int(x / cell), 0), cols - 1)
    best, best_r, best_c = field[r, c], r, c
    for dr, dc, _cost in _STEPS:
        nr, nc = r + dr, c + dc
        if 0 <= nr < rows and 0 <= nc < cols and field[nr, nc] < best:
            best, best_r, best_c = field[nr, nc], nr, nc
    if best >= UNREACHABLE or (best_r == r and best_c == c):
        dx, dy = gx - x, gy - y
    else:
        dx, dy = (best_c + 0.5) * cell - x, (best_r + 0.5) * cell - y
    length = norm(dx, dy)
    if length < 1e-9:
        return 0.0, 0.0
    return dx / length, dy / length
