"""The rgb_array picture, checked from its pixels: border, HUD, disabled units, TAG and SCAN markers, sensor
cones, and a replay GIF that ends on the episode's final frame."""

import io

import numpy as np
import pytest
from PIL import Image

from mission_gym import render
from mission_gym.baseline import ScriptedAttackerPolicy
from mission_gym.env import MissionGymEnv
from mission_gym.evaluation import replay_gif
from mission_gym.render import HUD_HEIGHT, render_frame
from mission_gym.sim.layout import US_ALIVE, US_COS, US_HEADING, US_SIN, US_X, US_Y

from conftest import REPO_CONFIGS

SIZE = 480
TAG_ACTION = SCAN_ACTION = 9  # last entry of UGV_A's and UAV_A's action lists (units_attackers.yaml)


@pytest.fixture()
def env():
    made = MissionGymEnv(REPO_CONFIGS, render_mode="rgb_array")
    made.reset(seed=3)
    return made


def colours(pixels: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(int(v) for v in c) for c in pixels.reshape(-1, 3)}


def unit_pixel(env: MissionGymEnv, frame: np.ndarray, u: int) -> tuple[int, ...]:
    scale = SIZE / env.config.world.arena.width
    x, y = env.sim.units[0, u, US_X] * scale, SIZE - env.sim.units[0, u, US_Y] * scale
    return tuple(int(v) for v in frame[round(y), round(x)])


def test_frame_has_a_map_and_a_hud_strip(env):
    frame = env.render()
    assert frame.shape == (SIZE + HUD_HEIGHT, SIZE, 3) and frame.dtype == np.uint8
    hud = frame[SIZE:]
    assert render.HUD_BG in colours(hud)
    assert (hud[:, :200].min(axis=2) > 180).sum() > 100  # light text (antialiased) on the dark strip
    assert render.OUTCOME_COLOURS[render.Outcome.RUNNING] in colours(hud)


def test_arena_border_is_drawn_all_round(env):
    frame = env.render()
    for edge in (frame[0, :], frame[SIZE - 1, :], frame[:SIZE, 0], frame[:SIZE, SIZE - 1]):
        assert colours(edge) == {render.BORDER}


def test_disabled_unit_differs_from_obstacles_and_from_a_live_unit(env):
    live = unit_pixel(env, env.render(), 1)
    assert live == render.ATTACKER
    env.sim.units[0, 1, US_ALIVE] = 0.0
    disabled = unit_pixel(env, env.render(), 1)
    assert disabled not in (render.OBSTACLE, render.SEE_THROUGH, render.ATTACKER, render.BACKGROUND)
    assert disabled == render.DISABLED_MARK


def test_a_tag_is_marked_in_the_frame_after_it(env):
    sim, defender = env.sim, env.sim.n_attackers
    assert render.TAG not in colours(env.render()[:SIZE])
    units = sim.units[0]
    # Attacker 0 (UGV_A, can tag) 10 m west of a defender, facing it: its TAG lands this decision.
    units[0, US_X], units[0, US_Y] = units[defender, US_X] - 10.0, units[defender, US_Y]
    units[0, US_HEADING], units[0, US_COS], units[0, US_SIN] = 0.0, 1.0, 0.0
    actions = np.zeros(sim.n_attackers, dtype=np.int64)
    actions[0] = TAG_ACTION
    env.step(actions)
    assert render.TAG in colours(env.render()[:SIZE])
    for _ in range(2):  # the cooldown keeps running, but the marker shows only the decision of the tag
        env.step(np.zeros(sim.n_attackers, dtype=np.int64))
    assert render.TAG not in colours(env.render()[:SIZE])


def test_a_scan_is_marked_for_the_decision_it_happens(env):
    assert render.SCAN not in colours(env.render()[:SIZE])
    actions = np.zeros(env.sim.n_attackers, dtype=np.int64)
    actions[2] = SCAN_ACTION  # UAV_A
    env.step(actions)
    assert render.SCAN in colours(env.render()[:SIZE])
    env.step(np.zeros(env.sim.n_attackers, dtype=np.int64))
    assert render.SCAN not in colours(env.render()[:SIZE])


def test_sensor_cones_are_optional(env):
    plain = render_frame(env.sim, 0)
    coned = render_frame(env.sim, 0, sensor_cones=True)
    changed = np.any(plain != coned, axis=2)
    assert changed[:SIZE].sum() > 1000  # a 40 m camera cone covers thousands of pixels
    assert not changed[SIZE:].any()  # the HUD does not move
    with_option = MissionGymEnv(REPO_CONFIGS, render_mode="rgb_array", sensor_cones=True)
    with_option.reset(seed=3)
    assert np.array_equal(with_option.render(), coned)


def test_replay_gif_ends_on_the_final_frame_with_its_outcome():
    env = MissionGymEnv(REPO_CONFIGS)
    policy = ScriptedAttackerPolicy(env.config)
    with Image.open(io.BytesIO(replay_gif(policy, env.config, seed=0))) as gif:
        gif.seek(gif.n_frames // 2)
        middle = np.asarray(gif.convert("RGB"))
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"))
        assert gif.info["duration"] > 1000  # the final frame is held
    badge = (slice(SIZE + 6, SIZE + 18), slice(SIZE - 111, SIZE - 107))  # the outcome badge, left of its text
    assert not np.array_equal(middle[badge], last[badge])
    ended = [c for o, c in render.OUTCOME_COLOURS.items() if o is not render.Outcome.RUNNING]
    assert min(np.abs(last[badge].astype(int) - c).max() for c in ended) < 16
    assert np.abs(middle[badge].astype(int) - render.OUTCOME_COLOURS[render.Outcome.RUNNING]).max() < 16
