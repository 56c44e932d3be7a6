"""Line-of-sight and obstacle geometry of the kernel: circles and rotated rectangles, checked against exact
hand-worked cases and against brute-force sampling."""

import math

import numpy as np
import pytest

from mission_gym.config import load_config, obstacle_clearance
from mission_gym.sim.engagement import line_of_sight
from mission_gym.sim.geometry import INF, free_distance, grown_hit, ray_hit, sight_blocked, signed_distance
from mission_gym.sim.layout import (
    N_OBSTACLE_PARAMS, N_UNIT_PARAMS, N_UNIT_STATE, OB_BOUND, OB_COS, OB_HALF_H, OB_HALF_W, OB_KIND, OB_RADIUS,
    OB_SIGHT, OB_SIN, OB_X, OB_Y, UP_AIR, US_X, US_Y,
)
from mission_gym.sim.params import build_params

from conftest import REPO_CONFIGS, obstacle_clearances


def circle(x: float, y: float, r: float, sight: bool = True) -> np.ndarray:
    row = np.zeros(N_OBSTACLE_PARAMS)
    row[OB_KIND], row[OB_X], row[OB_Y], row[OB_RADIUS], row[OB_BOUND], row[OB_SIGHT] = 0.0, x, y, r, r, float(sight)
    return row


def rect(x: float, y: float, w: float, h: float, angle_deg: float = 0.0, sight: bool = True) -> np.ndarray:
    row = np.zeros(N_OBSTACLE_PARAMS)
    a = math.radians(angle_deg)
    row[OB_KIND], row[OB_X], row[OB_Y], row[OB_HALF_W], row[OB_HALF_H] = 1.0, x, y, w / 2, h / 2
    row[OB_COS], row[OB_SIN], row[OB_BOUND], row[OB_SIGHT] = math.cos(a), math.sin(a), math.hypot(w, h) / 2, float(sight)
    return row


# A 10 x 2 bar turned 45 degrees about (0, 0): its long axis runs along y = x.
BAR = rect(0.0, 0.0, 10.0, 2.0, 45.0)


@pytest.mark.parametrize(("ob", "point", "expected"), [
    (circle(0, 0, 3), (5, 0), 2.0),
    (circle(0, 0, 3), (0, -1), -2.0),
    (circle(2, 2, 1), (2, 2), -1.0),
    (rect(0, 0, 4, 2), (5, 0), 3.0),
    (rect(0, 0, 4, 2), (0, 0.5), -0.5),
    (rect(0, 0, 4, 2), (5, 5), math.hypot(3, 4)),  # nearest point is the corner (2, 1)
    (BAR, (1, 1), -1.0),  # on the long axis, 1 m from either long face
    (BAR, (3, 3), 3 * math.sqrt(2) - 5),  # on the long axis, nearer the end cap
    (BAR, (3, -3), math.hypot(3, 3) - 1.0),  # straight off the long face
    (BAR, (6 / math.sqrt(2), 6 / math.sqrt(2)), 1.0),  # past the end cap
])
def test_signed_distance(ob, point, expected):
    d, nx, ny = signed_distance(ob, *point)
    assert d == pytest.approx(expected, abs=1e-9)
    assert math.hypot(nx, ny) == pytest.approx(1.0)
    # The normal points outward: a small step along it increases the distance.
    assert signed_distance(ob, point[0] + 1e-3 * nx, point[1] + 1e-3 * ny)[0] > d


def test_signed_distance_matches_config_clearance_on_default_obstacles():
    config = load_config(REPO_CONFIGS)
    rows = build_params(config).obstacles
    rng = np.random.default_rng(0)
    for ob_config, ob in zip(config.world.obstacles, rows):
        for x, y in rng.uniform(-15, 15, size=(40, 2)) + (ob_config.x, ob_config.y):
            assert signed_distance(ob, x, y)[0] == pytest.approx(obstacle_clearance(ob_config, (x, y)), abs=1e-9)


@pytest.mark.parametrize(("ob", "origin", "direction", "expected"), [
    (circle(10, 0, 2), (0, 0), (1, 0), 8.0),
    (circle(10, 0, 2), (0, 0), (2, 0), 4.0),  # t is in units of the direction vector
    (circle(10, 0, 2), (0, 0), (-1, 0), INF),  # behind the origin
    (circle(10, 5, 2), (0, 0), (1, 0), INF),  # passes beside it
    (circle(0, 0, 2), (0, 1), (1, 0), 0.0),  # origin inside
    (rect(10, 0, 4, 2), (0, 0), (1, 0), 8.0),
    (rect(10, 0, 4, 2, 90), (0, 0), (1, 0), 9.0),  # turned: now 2 wide along x
    (BAR, (-10, 10), (1, -1), 10 - 1 / math.sqrt(2)),  # hits the long face head on, 1 m before the axis
    (BAR, (-10, -10), (1, 1), 10 - 5 / math.sqrt(2)),  # along the long axis: hits the end cap
])
def test_ray_hit(ob, origin, direction, expected):
    assert ray_hit(ob, *origin, *direction) == pytest.approx(expected, abs=1e-9)


def test_sight_blocked_hand_cases():
    obstacles = np.stack([circle(0, 0, 2), BAR + 0])
    obstacles[1, OB_X] = 20.0
    assert sight_blocked(obstacles, -5, 0, 5, 0)  # through the circle
    assert not sight_blocked(obstacles, -5, 3, 5, 3)  # above it
    assert not sight_blocked(obstacles, -5, 0, -2.5, 0)  # stops short of it
    assert sight_blocked(obstacles, 15, 5, 25, -5)  # across the turned bar
    assert not sight_blocked(obstacles, 14, 6, 26, 6)  # beyond the bar's end cap
    for offset, blocked in ((2.0, False), (0.5, True), (-0.5, True), (-2.0, False)):
        # Parallel to the bar's long axis (y = x - 20), `offset` metres off it; the bar is 1 m either side.
        ox, oy = -offset / math.sqrt(2), offset / math.sqrt(2)
        assert sight_blocked(obstacles, 15 + ox, -5 + oy, 25 + ox, 5 + oy) == blocked, offset
    see_through = obstacles.copy()
    see_through[:, OB_SIGHT] = 0.0
    assert not sight_blocked(see_through, -5, 0, 5, 0)


def test_sight_blocked_matches_sampling():
    config = load_config(REPO_CONFIGS)
    obstacles = build_params(config).obstacles
    rng = np.random.default_rng(1)
    segments = rng.uniform(0, 200, size=(400, 4))
    t = np.linspace(0.0, 1.0, 400)
    xs = segments[:, :1] + t * (segments[:, 2:3] - segments[:, :1])
    ys = segments[:, 1:2] + t * (segments[:, 3:4] - segments[:, 1:2])
    deepest = obstacle_clearances(config.world.obstacles, xs, ys).min(axis=(1, 2))  # brute force, per segment
    decided = np.abs(deepest) > 0.05  # grazing a corner: sampling cannot decide
    kernel = np.array([sight_blocked(obstacles, *segment) for segment in segments])
    np.testing.assert_array_equal(kernel[decided], deepest[decided] < 0.0)
    assert 40 < (deepest[decided] < 0).sum() < 360  # both kinds of segments were exercised
    assert decided.sum() > 350


def test_free_distance_stops_at_grown_obstacle():
    obstacles = np.stack([circle(10, 0, 2), rect(0, 10, 4, 2)])
    assert free_distance(obstacles, 0, 0, 1, 0, 30.0, 0.0) == pytest.approx(8.0)
    assert free_distance(obstacles, 0, 0, 1, 0, 30.0, 1.0) == pytest.approx(7.0, abs=1e-9)  # grown by the radius
    assert free_distance(obstacles, 2.5, 0, 0, 1, 30.0, 1.0) == pytest.approx(9.0 - math.sqrt(0.75), abs=1e-9)  # corner
    assert free_distance(obstacles, 0, 0, 0, 1, 30.0, 0.0) == pytest.approx(9.0)
    assert free_distance(obstacles, 0, 0, -1, 0, 30.0, 0.0) == pytest.approx(30.0)  # nothing that way
    assert free_distance(obstacles, 0, 0, 1, 0, 5.0, 0.0) == pytest.approx(5.0)  # capped at the reach


@pytest.mark.parametrize("ob", [rect(0, 0, 8, 4, 30), circle(0, 0, 3)])
def test_grown_hit_is_where_the_ray_first_comes_within_the_growth(ob):
    # Against fine sampling of the shape's clearance along random rays (rounded corners included).
    rng = np.random.default_rng(2)
    step = 1e-3
    s = np.arange(0.0, 30.0, step)
    hits = 0
    for _ in range(300):
        origin, angle, grow = rng.uniform(-12, 12, 2), rng.uniform(-math.pi, math.pi), rng.uniform(0.2, 3.0)
        direction = np.array([math.cos(angle), math.sin(angle)])
        x, y = origin[0] + s * direction[0] - ob[OB_X], origin[1] + s * direction[1] - ob[OB_Y]
        if ob[OB_KIND] == 0.0:
            clearance = np.hypot(x, y) - ob[OB_RADIUS]
        else:
            lx, ly = x * ob[OB_COS] + y * ob[OB_SIN], -x * ob[OB_SIN] + y * ob[OB_COS]
            qx, qy = np.abs(lx) - ob[OB_HALF_W], np.abs(ly) - ob[OB_HALF_H]
            clearance = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
        within = np.flatnonzero(clearance <= grow)
        t = grown_hit(ob, *origin, *direction, grow)
        if len(within) == 0:
            assert t > s[-1] - step
        else:
            assert s[within[0]] - step <= t <= s[within[0]] + 1e-9
            hits += within[0] > 0
    assert hits > 30  # rays that start outside and hit were exercised


def test_air_units_are_not_blocked_by_obstacles():
    obstacles = np.stack([rect(50, 50, 10, 10)])
    units = np.zeros((3, N_UNIT_STATE))
    params = np.zeros((3, N_UNIT_PARAMS))
    units[0, US_X], units[0, US_Y] = 40, 50  # ground, west of the block
    units[1, US_X], units[1, US_Y] = 60, 50  # ground, east of it
    units[2, US_X], units[2, US_Y] = 60, 50  # air, east of it
    params[2, UP_AIR] = 1.0
    assert not line_of_sight(units, params, obstacles, 0, 1)
    assert not line_of_sight(units, params, obstacles, 1, 0)
    assert line_of_sight(units, params, obstacles, 0, 2)
    assert line_of_sight(units, params, obstacles, 2, 0)
    units[1, US_Y] = 60  # ground again, but around the corner: clear
    assert line_of_sight(units, params, obstacles, 0, 1) == (not sight_blocked(obstacles, 40, 50, 60, 60))
