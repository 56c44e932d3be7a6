"""Top-down picture of one arena: obstacles, the capture zone, attackers (blue) and defenders (red)."""

import math

import numpy as np
from PIL import Image, ImageDraw

from mission_gym.sim.core import BatchedSim
from mission_gym.sim.layout import AS_CAPTURE, AS_OBJ_X, AS_OBJ_Y, US_ALIVE, US_HEADING, US_X, US_Y

BACKGROUND, OBSTACLE, SEE_THROUGH = (236, 233, 222), (96, 96, 104), (74, 122, 74)
ZONE, ZONE_FILL = (214, 160, 20), (246, 226, 160)
ATTACKER, DEFENDER, DISABLED = (30, 90, 200), (200, 40, 40), (150, 150, 150)


def render_frame(sim: BatchedSim, arena: int = 0, size: int = 480) -> np.ndarray:
    """An RGB frame (size x size x 3, uint8) of `arena`'s current state."""
    world = sim.config.world
    scale = size / max(world.arena.width, world.arena.height)
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)

    def px(x: float, y: float) -> tuple[float, float]:
        return x * scale, size - y * scale  # y grows upward in the game, downward in images

    for ob in world.obstacles:
        colour = OBSTACLE if ob.blocks_sight else SEE_THROUGH
        if ob.kind == "circle":
            (cx, cy), r = px(ob.x, ob.y), ob.radius * scale
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        else:
            a = math.radians(ob.angle_deg)
            corners = [(sx * ob.width / 2, sy * ob.height / 2) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
            draw.polygon([px(ob.x + u * math.cos(a) - v * math.sin(a), ob.y + u * math.sin(a) + v * math.cos(a)) for u, v in corners], fill=colour)
    (zx, zy), zr = px(sim.arena[arena, AS_OBJ_X], sim.arena[arena, AS_OBJ_Y]), sim.config.scenario.objective.radius * scale
    draw.ellipse([zx - zr, zy - zr, zx + zr, zy + zr], fill=ZONE_FILL, outline=ZONE, width=2)
    progress = sim.arena[arena, AS_CAPTURE] / sim.config.scenario.objective.capture_seconds
    draw.rectangle([0, 0, size * min(progress, 1.0), 5], fill=ZONE)
    for u in range(sim.units.shape[1]):
        unit = sim.units[arena, u]
        colour = (ATTACKER if u < sim.n_attackers else DEFENDER) if unit[US_ALIVE] else DISABLED
        (x, y), r = px(unit[US_X], unit[US_Y]), max(3.0, 2.5 * scale)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        hx, hy = math.cos(unit[US_HEADING]), -math.sin(unit[US_HEADING])
        draw.line([x, y, x + 2 * r * hx, y + 2 * r * hy], fill=colour, width=2)
    return np.asarray(image)
