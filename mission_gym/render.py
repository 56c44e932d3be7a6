"""Top-down picture of one arena with a HUD strip below it.

The map shows the arena border, obstacles (grey blocks sight, green does not), the capture zone, attackers
(blue) and defenders (red); a disabled unit is a hollow ring of its team's colour with a dark cross, so it
never reads as an obstacle. A unit that tagged during the last decision gets a magenta line to its target; a
unit that scanned gets a cyan ring as far as its scan reaches. Defenders' sensor cones are drawn on request.
The HUD gives the decision, game time, outcome, a labelled capture bar and a legend.
"""

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mission_gym.sim.core import BatchedSim, Outcome
from mission_gym.sim.layout import (
    AS_CAPTURE, AS_DECISIONS, AS_OBJ_X, AS_OBJ_Y, AS_TICK, P_DT, P_REPEAT, P_SCAN_MULT, P_TAG_CD, P_TAG_RANGE,
    UP_SENSOR_REACH, US_ALIVE, US_HEADING, US_SCANNING, US_TAG_CD, US_X, US_Y,
)

BACKGROUND, OBSTACLE, SEE_THROUGH = (236, 233, 222), (96, 96, 104), (74, 122, 74)
ZONE, ZONE_FILL = (214, 160, 20), (246, 226, 160)
ATTACKER, DEFENDER = (30, 90, 200), (200, 40, 40)
DISABLED_FILL, DISABLED_MARK = (255, 255, 255), (20, 20, 20)
BORDER = (40, 40, 48)
TAG, SCAN = (220, 0, 200), (0, 170, 210)
CONE = (200, 40, 40, 48)  # translucent: the map stays readable under overlapping cones
HUD_BG, HUD_TEXT, BAR_BG = (32, 34, 40), (235, 235, 235), (80, 82, 90)
OUTCOME_COLOURS = {Outcome.RUNNING: (110, 112, 120), Outcome.CAPTURED: (40, 160, 70),
                   Outcome.ALL_DISABLED: (190, 40, 40), Outcome.TIMEOUT: (200, 120, 20), Outcome.STALLED: (200, 120, 20)}
HUD_HEIGHT = 48
BORDER_WIDTH = 3
_FONT = ImageFont.load_default()


def render_frame(sim: BatchedSim, arena: int = 0, size: int = 480, sensor_cones: bool = False) -> np.ndarray:
    """An RGB frame (uint8, ``size + HUD_HEIGHT`` rows by ``size`` columns) of `arena`'s current state.

    The map fills the top ``size`` x ``size`` square (a non-square arena leaves a margin), the HUD the rest.
    `sensor_cones` also draws every live defender's sensor coverage.
    """
    world = sim.config.world
    scale = size / max(world.arena.width, world.arena.height)
    image = Image.new("RGB", (size, size + HUD_HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)

    def px(x: float, y: float) -> tuple[float, float]:
        return x * scale, size - y * scale  # y grows upward in the game, downward in images

    _obstacles(draw, sim, px, scale)
    (zx, zy), zr = px(sim.arena[arena, AS_OBJ_X], sim.arena[arena, AS_OBJ_Y]), sim.config.scenario.objective.radius * scale
    draw.ellipse([zx - zr, zy - zr, zx + zr, zy + zr], fill=ZONE_FILL, outline=ZONE, width=2)
    if sensor_cones:
        image = _sensor_cones(image, sim, arena, px, scale)
        draw = ImageDraw.Draw(image)
    _scans(draw, sim, arena, px, scale)
    _units(draw, sim, arena, px, scale)
    _tags(draw, sim, arena, px, _unit_radius(scale) + 5)
    width, height = world.arena.width * scale, world.arena.height * scale
    draw.rectangle([0, size - height, width - 1, size - 1], outline=BORDER, width=BORDER_WIDTH)
    _hud(draw, sim, arena, size)
    return np.asarray(image)


def _obstacles(draw: ImageDraw.ImageDraw, sim: BatchedSim, px, scale: float) -> None:
    for ob in sim.config.world.obstacles:
        colour = OBSTACLE if ob.blocks_sight else SEE_THROUGH
        if ob.kind == "circle":
            (cx, cy), r = px(ob.x, ob.y), ob.radius * scale
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        else:
            a = math.radians(ob.angle_deg)
            corners = [(sx * ob.width / 2, sy * ob.height / 2) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
            draw.polygon([px(ob.x + u * math.cos(a) - v * math.sin(a), ob.y + u * math.sin(a) + v * math.cos(a))
                          for u, v in corners], fill=colour)


def _unit_radius(scale: float) -> float:
    return max(4.0, 2.5 * scale)


def _units(draw: ImageDraw.ImageDraw, sim: BatchedSim, arena: int, px, scale: float) -> None:
    r = _unit_radius(scale)
    for u in range(sim.units.shape[1]):
        unit = sim.units[arena, u]
        team = ATTACKER if u < sim.n_attackers else DEFENDER
        x, y = px(unit[US_X], unit[US_Y])
        if unit[US_ALIVE]:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=team)
            hx, hy = math.cos(unit[US_HEADING]), -math.sin(unit[US_HEADING])
            draw.line([x, y, x + 2 * r * hx, y + 2 * r * hy], fill=team, width=2)
        else:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=DISABLED_FILL, outline=team, width=2)
            k = r * 0.6
            draw.line([x - k, y - k, x + k, y + k], fill=DISABLED_MARK, width=2)
            draw.line([x - k, y + k, x + k, y - k], fill=DISABLED_MARK, width=2)


def _tagged_this_decision(sim: BatchedSim, arena: int) -> list[int]:
    """Units whose tag cooldown restarted during the last decision: the kernel records no tag event, but a
    tag sets the cooldown to its full length and ticks only count it down by dt."""
    scalars = sim.params.scalars
    decision = scalars[P_REPEAT] * scalars[P_DT]
    full = scalars[P_TAG_CD]
    if full <= 0.0:
        return []
    return [u for u in range(sim.units.shape[1]) if sim.units[arena, u, US_TAG_CD] > full - decision + 1e-9]


def _tags(draw: ImageDraw.ImageDraw, sim: BatchedSim, arena: int, px, ring: float) -> None:
    units, reach = sim.units[arena], sim.params.scalars[P_TAG_RANGE] * 1.5  # the target may have moved since
    for u in _tagged_this_decision(sim, arena):
        opponents = range(sim.n_attackers, len(units)) if u < sim.n_attackers else range(sim.n_attackers)
        distances = {j: math.hypot(units[j, US_X] - units[u, US_X], units[j, US_Y] - units[u, US_Y]) for j in opponents}
        target = min(distances, key=distances.get, default=None)
        x, y = px(units[u, US_X], units[u, US_Y])
        draw.ellipse([x - ring, y - ring, x + ring, y + ring], outline=TAG, width=2)  # around, not over, the unit
        if target is not None and distances[target] <= reach:
            tx, ty = px(units[target, US_X], units[target, US_Y])
            draw.line([x, y, tx, ty], fill=TAG, width=3)
            draw.ellipse([tx - ring, ty - ring, tx + ring, ty + ring], outline=TAG, width=2)


def _scans(draw: ImageDraw.ImageDraw, sim: BatchedSim, arena: int, px, scale: float) -> None:
    multiplier = sim.params.scalars[P_SCAN_MULT]
    for u in range(sim.units.shape[1]):
        unit = sim.units[arena, u]
        if unit[US_SCANNING] and unit[US_ALIVE]:
            (x, y), r = px(unit[US_X], unit[US_Y]), sim.params.units[u, UP_SENSOR_REACH] * multiplier * scale
            draw.ellipse([x - r, y - r, x + r, y + r], outline=SCAN, width=2)


def _sensor_cones(image: Image.Image, sim: BatchedSim, arena: int, px, scale: float) -> Image.Image:
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    config = sim.config
    for d in range(sim.n_defenders):
        unit = sim.units[arena, sim.n_attackers + d]
        if not unit[US_ALIVE]:
            continue
        x, y = px(unit[US_X], unit[US_Y])
        heading = -math.degrees(unit[US_HEADING])  # image angles turn clockwise
        for name in config.defender_unit(d).sensors:
            sensor = config.sensors[name]
            r = sensor.range * scale
            box = [x - r, y - r, x + r, y + r]
            if sensor.fov_deg >= 360.0:
                draw.ellipse(box, fill=CONE)
            else:
                draw.pieslice(box, heading - sensor.fov_deg / 2, heading + sensor.fov_deg / 2, fill=CONE)
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")


def _hud(draw: ImageDraw.ImageDraw, sim: BatchedSim, arena: int, size: int) -> None:
    row = sim.arena[arena]
    top = size
    draw.rectangle([0, top, size - 1, top + HUD_HEIGHT - 1], fill=HUD_BG)
    outcome = sim.outcome(arena)
    seconds = row[AS_TICK] * sim.params.scalars[P_DT]
    alive = sim.units[arena, :, US_ALIVE]
    badge = [size - 112, top + 4, size - 4, top + 20]
    draw.rectangle(badge, fill=OUTCOME_COLOURS[outcome])
    draw.text((badge[0] + 6, top + 6), outcome.label.upper().replace("_", " "), fill=HUD_TEXT, font=_FONT)
    draw.text((6, top + 6), f"step {int(row[AS_DECISIONS])}   t {seconds:5.1f} s   attackers "
              f"{int(alive[:sim.n_attackers].sum())}/{sim.n_attackers}   defenders "
              f"{int(alive[sim.n_attackers:].sum())}/{sim.n_defenders}", fill=HUD_TEXT, font=_FONT)
    progress = min(1.0, row[AS_CAPTURE] / sim.config.scenario.objective.capture_seconds)
    draw.text((6, top + 27), f"capture {progress:4.0%}", fill=HUD_TEXT, font=_FONT)
    bar = [86, top + 28, 226, top + 38]
    draw.rectangle(bar, fill=BAR_BG)
    if progress > 0:
        draw.rectangle([bar[0], bar[1], bar[0] + (bar[2] - bar[0]) * progress, bar[3]], fill=ZONE)
    _legend(draw, 238, top + 26)


def _legend(draw: ImageDraw.ImageDraw, x: float, y: float) -> None:
    for label, colour in (("att", ATTACKER), ("def", DEFENDER), ("disabled", DISABLED_FILL), ("tag", TAG), ("scan", SCAN)):
        draw.rectangle([x, y + 3, x + 9, y + 12], fill=colour)
        draw.text((x + 13, y + 2), label, fill=HUD_TEXT, font=_FONT)
        x += 18 + 7 * len(label)
