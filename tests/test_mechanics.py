"""Game mechanics, each pinned in a precise situation: configs without randomness, units placed by writing the
simulation's state columns directly (sim.units[arena, unit, US_*]) right after a reset."""

import math

import numpy as np
import pytest

import mission_gym
from mission_gym.config import load_config
from mission_gym.env import MissionGymEnv
from mission_gym.rules import ACTION_NAMES, REWARD_COMPONENTS
from mission_gym.sim.engagement import NOT_DETECTED, detection_noise
from mission_gym.sim.layout import (
    AS_OBJ_X, AS_OBJ_Y, DS_MEMORY, DS_REACTION, DS_TARGET, N_UNIT_STATE, US_ALIVE, US_CMD_SPEED, US_COS,
    US_HEADING, US_INTEGRITY, US_SCAN_CD, US_SCANNING, US_SIN, US_SPEED, US_TAG_CD, US_X, US_Y,
)
from mission_gym.sim.params import build_params

from conftest import REPO_CONFIGS, obstacle_clearances

# Expected game values come from the configs the tests run on, so retuning configs/ keeps them true.
BASE = load_config(REPO_CONFIGS)
STOP = ACTION_NAMES.index("STOP")
EAST, WEST = ACTION_NAMES.index("E"), ACTION_NAMES.index("W")
TAG = BASE.attacker_types["UGV_A"].actions.index("TAG")  # a command is an index into the unit type's own list
SCAN = BASE.attacker_types["UAV_A"].actions.index("SCAN")

# No randomness anywhere: spawns, headings, objective, defender behaviour.
QUIET = {
    "scenario_randomization.yaml": {"attacker_spawn_jitter_m": 0.0, "attacker_heading_jitter_deg": 0.0,
                                    "objective_jitter_m": 0.0},
    "defender_randomization.yaml": {"behaviour_modes": {"patrol": 1.0}, "reaction_delay_seconds": [0.0, 0.0],
                                    "random_action_prob": 0.0, "heading_jitter_deg": 0.0, "waypoint_jitter_m": 0.0,
                                    "spawn_jitter_m": 0.0},
}


def quiet(**files) -> dict:
    """QUIET plus per-file edits (file name with '.yaml' given as a keyword without it, e.g. world=...)."""
    edit = {name: dict(values) for name, values in QUIET.items()}
    for stem, values in files.items():
        edit.setdefault(f"{stem}.yaml", {}).update(values)
    return edit


def place(env: MissionGymEnv, unit: int, x: float, y: float, heading_deg: float | None = None) -> None:
    """Move unit `unit` of the env's arena to (x, y), optionally turning it to `heading_deg`."""
    units = env.unwrapped.sim.units[0, unit]
    units[US_X], units[US_Y] = x, y
    if heading_deg is not None:
        set_heading(units, math.radians(heading_deg))


def set_heading(unit: np.ndarray, heading: float) -> None:
    """Set a unit's heading and the cosine/sine the kernel keeps beside it."""
    unit[US_HEADING], unit[US_COS], unit[US_SIN] = heading, math.cos(heading), math.sin(heading)


# ----------------------------------------------------------------------------- tag: damage, cone, sight, cooldown
# A UGV_A and a UAV_A against one DEF_UGV, all nearly immobile (tiny speeds), one tick per decision so
# cooldowns can be timed to the tick. Open ground around y = 15, x = 150..195.
DUEL = quiet(
    world={"physics.action_repeat": 1},
    scenario={
        "attackers": [{"unit_type": "UGV_A", "spawn": {"x": 175.0, "y": 15.0, "heading": 180.0}},
                      {"unit_type": "UAV_A", "spawn": {"x": 190.0, "y": 190.0, "heading": 0.0}}],
        "defenders": [{"unit_type": "DEF_UGV", "spawn": {"x": 160.0, "y": 15.0, "heading": 0.0},
                       "patrol_waypoints": [[160.0, 15.0]]}],
    },
    units_attackers={"unit_types.UGV_A.max_speed": 0.001, "unit_types.UGV_A.integrity": 1000.0,
                     "unit_types.UAV_A.max_speed": 0.001},
    units_defenders={"unit_types.DEF_UGV.max_speed": 0.001, "unit_types.DEF_UGV.max_turn_rate_deg": 0.001},
)
DEFENDER = 2  # unit index: attackers first
DUEL_UGV_INTEGRITY = DUEL["units_attackers.yaml"]["unit_types.UGV_A.integrity"]


@pytest.fixture(scope="module")
def duel(config_dir):
    env = MissionGymEnv(config_dir=config_dir(DUEL))
    yield env
    env.close()


def falloff(tag, distance: float, close: float) -> float:
    """Tag damage at `distance`: `close` up to the close range, then falling linearly to the far value at full
    range; the far value scales with `close` (a unit's own tag_damage replaces damage_close)."""
    far = close * tag.damage_far / tag.damage_close
    if distance <= tag.close_range:
        return close
    return close + (far - close) * (distance - tag.close_range) / (tag.range - tag.close_range)


def weights(config) -> dict[str, float]:
    return {name: term.weight for name, term in config.reward.components.items()}


@pytest.mark.parametrize("share", [0.15, 0.4, 0.55, 0.7, 0.875, 1.0])  # of the tag range (8 m is 0.4 of 20 m)
def test_tag_damage_falls_off_linearly_and_respects_unit_override(duel, share):
    tag, defender_type = duel.config.engagement.tag, duel.config.defender_types["DEF_UGV"]
    distance = share * tag.range
    duel.reset(seed=0)
    place(duel, 0, 160.0 + distance, 15.0, heading_deg=180.0)  # facing the defender, which faces it
    _, reward, _, _, info = duel.step(np.array([TAG, STOP]))
    units = duel.sim.units[0]
    # The attacker's tag: engagement's damage_close, falling to damage_far at full range.
    lost = defender_type.integrity - units[DEFENDER, US_INTEGRITY]
    assert lost == pytest.approx(falloff(tag, distance, tag.damage_close), abs=1e-3)
    # The defender's: DEF_UGV's tag_damage replaces damage_close, and the far value scales with it.
    defender_damage = falloff(tag, distance, defender_type.tag_damage or tag.damage_close)
    assert DUEL_UGV_INTEGRITY - units[0, US_INTEGRITY] == pytest.approx(defender_damage, abs=1e-3)
    components, weight = info["reward_components"], weights(duel.config)
    assert components["tag_hit_bonus"] == pytest.approx(weight["tag_hit_bonus"])
    assert components["integrity_loss_penalty"] == pytest.approx(weight["integrity_loss_penalty"] * defender_damage,
                                                                 abs=1e-3)
    assert reward == pytest.approx(sum(components.values()))


def at(distance: float, bearing_deg: float) -> tuple[float, float]:
    """The point `distance` from the duel's defender at `bearing_deg` from its heading (east)."""
    return 160.0 + distance * math.cos(math.radians(bearing_deg)), 15.0 + distance * math.sin(math.radians(bearing_deg))


TAG_RULES = BASE.engagement.tag  # the duel leaves engagement.yaml as configs/ has it


@pytest.mark.parametrize(("where", "hits"), [
    (at(TAG_RULES.range + 1.0, 0.0), False),  # just out of range
    (at(10.0, TAG_RULES.cone_half_angle_deg + 10.0), False),  # outside the cone
    (at(10.0, TAG_RULES.cone_half_angle_deg - 5.0), True),  # inside the cone
    ((150.0, 15.0), False),  # behind the defender
])
def test_defender_tags_only_in_range_and_cone(duel, where, hits):
    duel.reset(seed=0)
    place(duel, 0, *where)
    duel.step(np.array([STOP, STOP]))
    assert (duel.sim.units[0, 0, US_INTEGRITY] < DUEL_UGV_INTEGRITY) == hits


def test_tag_needs_line_of_sight_between_ground_units_but_not_to_air_units(duel):
    # barrier_south: a 20 x 2 wall centred on (100, 78). The defender below it faces north across it.
    for attacker, blocked in ((0, True), (1, False)):
        duel.reset(seed=0)
        place(duel, DEFENDER, 100.0, 72.0, heading_deg=90.0)
        place(duel, 0, 190.0, 190.0)
        place(duel, 1, 190.0, 170.0)
        place(duel, attacker, 100.0, 84.0)  # 12 m away, behind the wall
        initial = duel.sim.units[0, attacker, US_INTEGRITY]
        duel.step(np.array([STOP, STOP]))
        assert (duel.sim.units[0, attacker, US_INTEGRITY] == initial) == blocked, attacker


def test_tag_lands_on_the_tick_an_opponent_closes_to_range_within_a_long_decision(config_dir):
    # The UGV_A drives at the defender from 30 m. The kernel skips tag checks for units whose nearest opponent
    # was too far at the start of a decision to close to range during it: the defender's tag must land on the same
    # tick with 20 ticks per decision as with one.
    def hits(repeat: int) -> tuple[int, float]:
        edit = {**DUEL, "world.yaml": {**DUEL["world.yaml"], "physics.action_repeat": repeat},
                "units_attackers.yaml": {**DUEL["units_attackers.yaml"], "unit_types.UGV_A.max_speed": 8.0}}
        env = MissionGymEnv(config_dir=config_dir(edit))
        env.reset(seed=0)
        place(env, 0, 190.0, 15.0, heading_deg=180.0)
        for decision in range(1, 120 // repeat + 1):
            env.step(np.array([WEST, STOP]))
            if env.sim.units[0, 0, US_INTEGRITY] < DUEL_UGV_INTEGRITY:
                return decision * repeat, float(env.sim.units[0, 0, US_X])
        raise AssertionError("no tag")

    tick, x = hits(1)
    assert 30 < tick < 80 and x >= 160.0 + 17.0  # a tag from near the end of the range, well into the drive
    long_tick, long_x = hits(20)
    assert long_tick == 20 * math.ceil(tick / 20) and long_x <= x  # hit during that decision


def _hit_ticks(integrity: np.ndarray) -> list[int]:
    return [int(t) for t in np.flatnonzero(np.diff(integrity) < 0) + 1]


def test_tag_cooldown_no_second_hit_before_the_cooldown(duel):
    duel.reset(seed=0)
    place(duel, 0, 165.0, 15.0, heading_deg=180.0)
    attacker, defender = [duel.sim.units[0, 0, US_INTEGRITY]], [duel.sim.units[0, DEFENDER, US_INTEGRITY]]
    for _ in range(200):  # 10 s at one tick per decision; the attacker asks to tag every tick
        duel.step(np.array([TAG, STOP]))
        attacker.append(duel.sim.units[0, 0, US_INTEGRITY])
        defender.append(duel.sim.units[0, DEFENDER, US_INTEGRITY])
    dt, cooldown = 1.0 / duel.config.world.physics.tick_hz, duel.config.engagement.tag.cooldown_seconds
    for integrity in (attacker, defender):
        ticks = _hit_ticks(np.array(integrity))
        assert ticks[0] == 1  # the first tag lands on the first tick
        assert len(ticks) == 1 + int(199 * dt / cooldown + 1e-9)  # 3 s cooldown: t = 0.05, 3.05, 6.05, 9.05
        gaps = np.diff(ticks) * dt
        # Never before the cooldown, and again as soon as it allows (not a tick late from rounding).
        np.testing.assert_allclose(gaps, cooldown, atol=1e-9)


# ----------------------------------------------------------------------------- engagement disabled
@pytest.fixture(scope="module")
def duel_no_engagement(config_dir):
    edit = {name: dict(values) for name, values in DUEL.items()}
    edit["engagement.yaml"] = {"tag.enabled": False, "scan.enabled": False}
    return MissionGymEnv(config_dir=config_dir(edit))


def test_tag_and_scan_disabled_keep_the_action_space_and_do_nothing(duel, duel_no_engagement):
    assert list(duel_no_engagement.action_space.nvec) == list(duel.action_space.nvec) == [10, 10]
    results = {}
    for name, env in (("enabled", duel), ("disabled", duel_no_engagement)):
        env.reset(seed=0)
        place(env, 0, 165.0, 15.0, heading_deg=180.0)
        place(env, 1, 100.0, 150.0)
        for _ in range(4):
            _, _, _, _, info = env.step(np.array([TAG, SCAN]))
        units = env.sim.units[0]
        results[name] = (units[0, US_INTEGRITY], units[DEFENDER, US_INTEGRITY], units[0, US_TAG_CD],
                         units[1, US_SCAN_CD], info["reward_components"])
    attacker, defender, tag_cd, scan_cd, _ = results["enabled"]
    full = (DUEL_UGV_INTEGRITY, duel.config.defender_types["DEF_UGV"].integrity)
    assert attacker < full[0] and defender < full[1] and tag_cd > 0.0 and scan_cd > 0.0  # the actions do act...
    attacker, defender, tag_cd, scan_cd, components = results["disabled"]
    assert (attacker, defender, tag_cd, scan_cd) == (*full, 0.0, 0.0)  # ...and here do nothing
    assert duel_no_engagement.sim.units[0, 1, US_SCANNING] == 0.0
    assert components["tag_hit_bonus"] == 0.0 and components["integrity_loss_penalty"] == 0.0


def test_disabled_tag_acts_as_stop(duel_no_engagement):
    env = duel_no_engagement
    env.reset(seed=0)
    env.step(np.array([WEST, WEST]))
    assert env.sim.units[0, 0, US_CMD_SPEED] > 0.0
    env.step(np.array([TAG, TAG]))
    assert env.sim.units[0, 0, US_CMD_SPEED] == 0.0 and env.sim.units[0, 1, US_CMD_SPEED] == 0.0


# ----------------------------------------------------------------------------- capture and episode ends
def solo(x: float, y: float, unit: str = "UAV_A", heading: float = 0.0, **files) -> dict:
    """One attacker at (x, y), no defenders, objective at (100, 100) r 15, no randomness."""
    edit = quiet(**files)
    edit["scenario.yaml"] = {**edit.get("scenario.yaml", {}), "defenders": [],
                             "attackers": [{"unit_type": unit, "spawn": {"x": x, "y": y, "heading": heading}}]}
    return edit


def run_until_done(env: MissionGymEnv, action, limit: int = 10_000) -> list[tuple]:
    steps = []
    for _ in range(limit):
        _, reward, terminated, truncated, info = env.step(np.array(action))
        steps.append((reward, terminated, truncated, info))
        if terminated or truncated:
            return steps
    raise AssertionError("episode did not end")


def test_capture_after_fifteen_seconds_terminates_with_win_bonus(config_dir):
    env = MissionGymEnv(config_dir=config_dir(solo(100.0, 100.0)))
    env.reset(seed=0)
    steps = run_until_done(env, [STOP])
    physics, weight = env.config.world.physics, weights(env.config)
    capture_s = env.config.scenario.objective.capture_seconds
    decision_s = physics.action_repeat / physics.tick_hz
    assert len(steps) == math.ceil(capture_s / decision_s - 1e-9)  # capture_seconds of presence (15 s = 60 decisions)
    assert all(info["outcome"] == "running" and not (te or tr) for _, te, tr, info in steps[:-1])
    reward, terminated, truncated, info = steps[-1]
    assert (terminated, truncated, info["outcome"]) == (True, False, "captured")
    assert info["reward_components"]["win_bonus"] == weight["win_bonus"]
    assert info["episode_metrics"]["capture_progress"] == pytest.approx(1.0)
    totals = info["episode_reward_components"]
    assert totals["capture_progress"] == pytest.approx(weight["capture_progress"] * capture_s)
    assert totals["zone_time"] == pytest.approx(weight["zone_time"] * capture_s)
    assert totals["zone_entry_bonus"] == pytest.approx(weight["zone_entry_bonus"])  # once, not per decision
    assert sum(r for r, *_ in steps) == pytest.approx(sum(totals.values()))


def test_capture_progress_is_cumulative_across_visits(config_dir):
    env = MissionGymEnv(config_dir=config_dir(solo(100.0, 100.0)))
    env.reset(seed=0)
    for _ in range(20):  # 5 s in the zone
        env.step(np.array([STOP]))
    place(env, 0, 150.0, 150.0)
    for _ in range(8):  # 2 s away: progress is kept
        env.step(np.array([STOP]))
    place(env, 0, 100.0, 100.0)
    steps = run_until_done(env, [STOP])
    assert len(steps) == 40 and steps[-1][3]["outcome"] == "captured"


def test_timeout_is_truncated_with_its_penalty(config_dir):
    env = MissionGymEnv(config_dir=config_dir(solo(150.0, 150.0, world={"physics.max_episode_seconds": 5.0})))
    env.reset(seed=0)
    steps = run_until_done(env, [STOP])
    reward, terminated, truncated, info = steps[-1]
    assert len(steps) == 20
    assert (terminated, truncated, info["outcome"]) == (False, True, "timeout")
    assert info["reward_components"]["timeout_penalty"] == -20.0


STALL_FAST = {"termination.stagnation_seconds": 5.0, "termination.stagnation_min_capture_seconds": 100.0,
              "physics.max_episode_seconds": 20.0}


def test_stagnation_is_truncated_with_its_penalty(config_dir):
    env = MissionGymEnv(config_dir=config_dir(solo(150.0, 150.0, world=STALL_FAST)))
    env.reset(seed=0)
    steps = run_until_done(env, [STOP])
    reward, terminated, truncated, info = steps[-1]
    assert len(steps) == 20  # 5 s without progress
    assert (terminated, truncated, info["outcome"]) == (False, True, "stalled")
    assert info["reward_components"]["stalled_penalty"] == -50.0


def test_stagnation_clock_is_paused_while_in_the_zone(config_dir):
    # Capture would take 1000 s and capture progress never counts as progress (min 100 s): only the pause
    # keeps an attacker parked in the zone from stalling.
    edit = solo(100.0, 100.0, world=STALL_FAST, scenario={})
    edit["scenario.yaml"]["objective"] = {"x": 100.0, "y": 100.0, "radius": 15.0, "capture_seconds": 1000.0}
    env = MissionGymEnv(config_dir=config_dir(edit))
    env.reset(seed=0)
    steps = run_until_done(env, [STOP])
    assert len(steps) == 80 and steps[-1][3]["outcome"] == "timeout"


def test_progress_toward_the_objective_resets_the_stagnation_clock(config_dir):
    env = MissionGymEnv(config_dir=config_dir(solo(180.0, 180.0, heading=-135.0, world=STALL_FAST)))
    env.reset(seed=0)
    for _ in range(16):  # 4 s parked
        env.step(np.array([STOP]))
    for _ in range(8):  # then 2 s toward the objective (SW): the clock restarts
        _, _, terminated, truncated, _ = env.step(np.array([ACTION_NAMES.index("SW")]))
        assert not (terminated or truncated)
    steps = run_until_done(env, [STOP])
    assert steps[-1][3]["outcome"] == "stalled" and len(steps) >= 16


def test_all_attackers_disabled_is_terminated_not_truncated(duel):
    duel.reset(seed=0)
    place(duel, 0, 165.0, 15.0)
    duel.sim.units[0, 0, US_INTEGRITY] = 1.0
    duel.sim.units[0, 1, US_ALIVE] = 0.0  # the UAV is already out
    _, _, terminated, truncated, info = duel.step(np.array([STOP, STOP]))
    assert (terminated, truncated, info["outcome"]) == (True, False, "all_disabled")
    components = info["reward_components"]
    assert components["all_disabled_penalty"] == -100.0
    assert components["unit_disabled_penalty"] == -20.0
    assert components["integrity_loss_penalty"] == pytest.approx(-0.1)  # it only had 1 point left to lose
    assert info["episode_metrics"]["attackers_alive"] == 0


def test_flags_match_outcomes_over_random_episodes():
    vec = mission_gym.make_vec_env(8, config_dir=REPO_CONFIGS, seed=11)
    vec.reset()
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(400):
        _, _, dones, infos = vec.step(rng.integers(0, vec.action_space.nvec, size=(8, 4)))
        for i in np.flatnonzero(dones):
            outcome = infos[i]["outcome"]
            seen.add(outcome)
            assert infos[i]["TimeLimit.truncated"] == (outcome in ("timeout", "stalled"))
    assert "stalled" in seen


# ----------------------------------------------------------------------------- rewards
def test_collision_penalty_counts_at_most_once_per_decision(config_dir):
    # A UGV driving into the west edge of the arena, then into a building: once in contact, every tick of
    # the decision collides. The older system charged the penalty per tick (5x per decision).
    env = MissionGymEnv(config_dir=config_dir(solo(6.0, 100.0, unit="UGV_A", heading=180.0)))
    env.reset(seed=0)
    collisions = [env.step(np.array([WEST]))[4]["reward_components"]["collision_penalty"] for _ in range(12)]
    assert collisions[0] == 0.0  # not there yet
    assert env.sim.units[0, 0, US_X] == pytest.approx(2.5)
    assert min(collisions) == -0.5  # the contact was charged, once: not -0.5 x 5 ticks
    assert set(collisions) <= {0.0, -0.5}
    for _ in range(8):  # at rest against the wall: no contact, no penalty
        env.step(np.array([STOP]))
    assert env.step(np.array([STOP]))[4]["reward_components"]["collision_penalty"] == 0.0
    # Into building_a's west face (x = 40) from (30, 40), driving east.
    place(env, 0, 30.0, 40.0, heading_deg=0.0)
    env.sim.units[0, 0, US_SPEED] = 0.0
    collisions = [env.step(np.array([EAST]))[4]["reward_components"]["collision_penalty"] for _ in range(12)]
    assert env.sim.units[0, 0, US_X] == pytest.approx(40.0 - 2.5, abs=1e-3)
    assert min(collisions) == -0.5 and set(collisions) <= {0.0, -0.5}


def test_reward_toggles_and_weights_are_honoured(config_dir):
    def scaled(data):
        for k, name in enumerate(REWARD_COMPONENTS):
            term = data["components"][name]
            if k % 2:
                term["weight"] *= 3.0
            else:
                term["enabled"] = False

    plain = MissionGymEnv(config_dir=config_dir())
    edited = MissionGymEnv(config_dir=config_dir({"reward.yaml": scaled}))
    plain.reset(seed=4)
    edited.reset(seed=4)
    rng = np.random.default_rng(0)
    totals = dict.fromkeys(REWARD_COMPONENTS, 0.0)
    for _ in range(400):
        action = rng.integers(0, plain.action_space.nvec)
        a = plain.step(action)
        b = edited.step(action)
        np.testing.assert_array_equal(a[0], b[0])  # rewards never change the game
        for k, name in enumerate(REWARD_COMPONENTS):
            expected = 3.0 * a[4]["reward_components"][name] if k % 2 else 0.0
            assert b[4]["reward_components"][name] == pytest.approx(expected), name
            totals[name] += abs(a[4]["reward_components"][name])
        assert b[1] == pytest.approx(sum(b[4]["reward_components"].values()))
        if a[2] or a[3]:
            plain.reset()
            edited.reset()
    # The run exercised both an enabled and a disabled component.
    assert totals["time_penalty"] > 0 and totals["min_dist_potential"] > 0 and totals["spread"] > 0


def test_everything_disabled_gives_zero_reward(config_dir):
    def off(data):
        for term in data["components"].values():
            term["enabled"] = False

    env = MissionGymEnv(config_dir=config_dir({"reward.yaml": off}))
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(150):
        _, reward, *_ = env.step(rng.integers(0, env.action_space.nvec))
        assert reward == 0.0
    assert np.abs(env.sim.raw_rewards).sum() > 0  # raw quantities still flow, with weight 0


def test_reward_components_sum_to_reward_single_and_vec():
    env = MissionGymEnv(config_dir=REPO_CONFIGS)
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(300):
        _, reward, terminated, truncated, info = env.step(rng.integers(0, env.action_space.nvec))
        assert set(info["reward_components"]) == set(REWARD_COMPONENTS)
        assert reward == pytest.approx(sum(info["reward_components"].values()), abs=1e-9)
        if terminated or truncated:
            env.reset()
    vec = mission_gym.make_vec_env(4, config_dir=REPO_CONFIGS, seed=3)
    vec.reset()
    for _ in range(300):
        _, rewards, _, _ = vec.step(rng.integers(0, vec.action_space.nvec, size=(4, 4)))
        np.testing.assert_allclose(rewards, vec.last_reward_components.sum(axis=1), rtol=1e-6, atol=1e-6)


def test_shaping_uses_the_jittered_objective():
    env = MissionGymEnv(config_dir=REPO_CONFIGS)
    env.reset(seed=5)
    sim = env.sim
    objective = sim.arena[0, [AS_OBJ_X, AS_OBJ_Y]].copy()
    nominal = np.array([100.0, 100.0])
    assert np.hypot(*(objective - nominal)) > 3.0  # the jitter moved it
    features = dict(zip(env.feature_names, sim.observations[0]))
    assert features["objective.x"] == pytest.approx(2 * objective[0] / 200 - 1, abs=1e-6)

    def closest(target):
        alive = sim.units[0, :4, US_ALIVE] > 0
        return np.hypot(*(sim.units[0, :4, :2][alive] - target).T).min()

    gains, nominal_gains, shaped = [], [], []
    for action in [[2, 2, 2, 2]] * 30:  # NE, toward the objective
        before, nominal_before = closest(objective), closest(nominal)
        _, _, _, _, info = env.step(np.array(action))
        gains.append(before - closest(objective))
        nominal_gains.append(nominal_before - closest(nominal))
        shaped.append(info["reward_components"]["min_dist_potential"])
    np.testing.assert_allclose(shaped, 0.5 * np.array(gains), atol=1e-9)
    assert not np.allclose(shaped, 0.5 * np.array(nominal_gains), atol=1e-3)


def test_defender_timers_advance_by_game_time(config_dir):
    # Default config: 5 ticks per decision. Defenders start ~100 m from the attackers, out of sensor range.
    env = MissionGymEnv(config_dir=config_dir(quiet()))
    env.reset(seed=0)
    brains = env.sim.brains[0]
    brains[:, DS_MEMORY], brains[:, DS_REACTION], brains[:, DS_TARGET] = 4.0, 0.4, 0.0
    env.step(np.zeros(4, dtype=np.int64))
    seconds = env.config.decision_seconds
    np.testing.assert_allclose(brains[:, DS_MEMORY], 4.0 - seconds, atol=1e-9)
    np.testing.assert_allclose(brains[:, DS_REACTION], 0.4 - seconds, atol=1e-9)
    for _ in range(15):  # 4 s in all: memory runs out (on time, not a tick late), the target is forgotten
        env.step(np.zeros(4, dtype=np.int64))
    assert np.all(brains[:, DS_MEMORY] == 0.0) and np.all(brains[:, DS_TARGET] == -1.0)


# ----------------------------------------------------------------------------- degradation
def test_mobility_degradation_is_relative_to_each_units_own_integrity(config_dir):
    # Threshold 0.5 of the unit's own initial integrity: a UGV_A (100) at 40 is slowed, a UAV_A (30) at 20
    # is not, though 20 is below half of the UGV's.
    edit = quiet()
    edit["scenario.yaml"] = {"defenders": [], "attackers": [
        {"unit_type": "UGV_A", "spawn": {"x": 20.0, "y": 15.0, "heading": 0.0}},
        {"unit_type": "UAV_A", "spawn": {"x": 20.0, "y": 190.0, "heading": 0.0}},
        {"unit_type": "UGV_A", "spawn": {"x": 180.0, "y": 5.0, "heading": 180.0}},  # full integrity, westward
    ]}
    env = MissionGymEnv(config_dir=config_dir(edit))
    env.reset(seed=0)
    env.sim.units[0, 0, US_INTEGRITY] = 40.0
    env.sim.units[0, 1, US_INTEGRITY] = 20.0
    top = np.zeros(3)
    for _ in range(24):  # 6 s: every unit reaches its top speed
        env.step(np.array([EAST, EAST, WEST]))
        top = np.maximum(top, env.sim.units[0, :3, US_SPEED])
    assert top[0] == pytest.approx(0.5 * 8.0, abs=1e-6)
    assert top[1] == pytest.approx(12.0, abs=1e-6)
    assert top[2] == pytest.approx(8.0, abs=1e-6)


def test_sensing_degradation_is_relative_to_each_units_own_integrity():
    config = load_config(REPO_CONFIGS)
    params = build_params(config)
    units = np.zeros((6, N_UNIT_STATE))
    uav, target = 2, 4  # UAV_A (integrity 30; camera 40 m / 90 deg, radar 60 m) looking east at a defender
    units[uav, US_X], units[uav, US_Y], units[uav, US_INTEGRITY] = 100.0, 150.0, 30.0
    set_heading(units[uav], 0.0)
    units[target, US_X], units[target, US_Y] = 145.0, 150.0  # 45 m: radar range only

    def sees(integrity):
        units[uav, US_INTEGRITY] = integrity
        return detection_noise(units, params.units, params.sensors, params.unit_sensors, params.scalars,
                               params.obstacles, uav, target) != NOT_DETECTED

    assert sees(30.0)
    assert sees(10.0)  # 10 >= 0.3 x 30
    assert not sees(8.0)  # below: ranges halved (radar 30 m)


def test_scanning_attacker_sights_a_defender_beyond_its_plain_sensor_range(duel):
    # UAV_A's longest sensor is radar, 60 m; scanning reaches 1.5 x that. The defender is 80 m south of it.
    freshness = duel.feature_names.index("defender_0.freshness")
    for action, sighted in ((STOP, False), (SCAN, True)):
        duel.reset(seed=0)
        place(duel, 0, 10.0, 190.0)  # the UGV_A far out of the way
        place(duel, 1, 160.0, 95.0)
        observation, *_ = duel.step(np.array([STOP, action]))
        assert (observation[freshness] == 1.0) == sighted, action


# ----------------------------------------------------------------------------- physics invariants
def _check_invariants(config, units: np.ndarray) -> float:
    """Assert every unit inside the arena and every ground unit clear of obstacles; return min slack."""
    radii = np.array([config.attacker_unit(i).radius for i in range(len(config.scenario.attackers))]
                     + [config.defender_unit(i).radius for i in range(len(config.scenario.defenders))])
    ground = np.array([config.attacker_unit(i).category == "ground" for i in range(len(config.scenario.attackers))]
                      + [config.defender_unit(i).category == "ground" for i in range(len(config.scenario.defenders))])
    x, y = units[..., US_X], units[..., US_Y]
    width, height = config.world.arena.width, config.world.arena.height
    assert np.all(x >= radii - 1e-9) and np.all(x <= width - radii + 1e-9), x
    assert np.all(y >= radii - 1e-9) and np.all(y <= height - radii + 1e-9), y
    clearance = obstacle_clearances(config.world.obstacles, x[:, ground], y[:, ground]).min(axis=-1)
    slack = clearance - radii[ground]
    assert np.all(slack >= -1e-5), (slack.min(), np.argwhere(slack < -1e-5))
    return float(slack.min())


def test_ground_units_never_enter_obstacles_and_all_stay_in_the_arena():
    n = 32
    vec = mission_gym.make_vec_env(n, config_dir=REPO_CONFIGS, seed=100)
    config = vec.config
    vec.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, vec.action_space.nvec, size=(n, 4))
    closest = math.inf
    for _ in range(400):  # 12,800 decisions, 64,000 ticks
        change = rng.random((n, 4)) < 0.06  # sticky random commands, so units travel and hit things
        actions = np.where(change, rng.integers(0, vec.action_space.nvec, size=(n, 4)), actions)
        vec.step(actions)
        closest = min(closest, _check_invariants(config, vec.sim.units))
    assert closest < 0.05  # units did press against obstacles


def test_heading_controller_turns_at_the_rate_limit_and_lands_on_the_command(config_dir):
    # A UAV_A (180 deg/s, so 9 degrees per 20 Hz tick) facing east is told to fly west: a half turn.
    env = MissionGymEnv(config_dir=config_dir(solo(100.0, 40.0, world={"physics.action_repeat": 1})))
    env.reset(seed=0)
    unit = env.sim.units[0, 0]
    headings, speeds = [0.0], []
    for _ in range(30):
        env.step(np.array([WEST]))
        headings.append(float(unit[US_HEADING]))
        speeds.append(float(unit[US_SPEED]))
        # The kernel rotates the cached cosine and sine rather than recomputing them: they must follow.
        assert unit[US_COS] == pytest.approx(math.cos(unit[US_HEADING]), abs=1e-12)
        assert unit[US_SIN] == pytest.approx(math.sin(unit[US_HEADING]), abs=1e-12)
    turned = np.angle(np.exp(1j * np.diff(headings)))  # wrapped into (-pi, pi]
    landed = headings.index(math.pi)  # exactly the commanded heading, with its exact cosine and sine
    assert landed in (20, 21) and unit[US_COS] == math.cos(math.pi) and unit[US_SIN] == math.sin(math.pi)
    assert np.allclose(turned[:landed - 1], math.radians(9.0), rtol=0.0, atol=1e-12)  # the rate limit
    assert abs(turned[landed - 1]) <= math.radians(9.0) + 1e-12 and headings[landed:] == [math.pi] * (31 - landed)
    # Units turn before they run: no speed while more than a right angle off the commanded heading.
    off = np.abs(np.angle(np.exp(1j * (math.pi - np.array(headings[1:])))))
    assert all(speed == 0.0 for speed, angle in zip(speeds, off) if angle > math.pi / 2)
    assert speeds[landed] > 0.0 and speeds[-1] > speeds[landed]


def test_unit_pressed_between_obstacle_and_arena_edge_stays_inside(config_dir):
    # A rock 0.5 m off the south edge: a UGV driving east along the edge is pushed by the rock toward the edge.
    def add_rock(data):
        data["obstacles"].append({"name": "edge_rock", "kind": "circle", "x": 100.0, "y": 4.5, "radius": 2.0})

    edit = solo(85.0, 2.5, unit="UGV_A", heading=0.0)
    edit["world.yaml"] = add_rock
    env = MissionGymEnv(config_dir=config_dir(edit))
    env.reset(seed=0)
    for _ in range(40):
        env.step(np.array([EAST]))
        _check_invariants(env.config, env.sim.units)
        assert np.all(np.abs(env.sim.observations[0]) <= 1.0)


def test_spawns_near_the_edge_are_clamped_into_the_arena(config_dir):
    # Spawns validated inside the arena, but within spawn jitter (5 m) of its corner.
    edit = {"scenario.yaml": {"attackers[2].spawn": {"x": 1.0, "y": 1.0, "heading": 0.0},
                              "attackers[3].spawn": {"x": 199.0, "y": 199.0, "heading": 0.0}}}
    env = MissionGymEnv(config_dir=config_dir(edit))
    for seed in range(20):
        observation, _ = env.reset(seed=seed)
        _check_invariants(env.config, env.sim.units)
        assert env.observation_space.contains(observation)
