"""The sequential paired test: its error rates on players of known skill, and its bookkeeping."""

import numpy as np
import pytest

from mission_gym.errors import MissionGymError
from mission_gym.sequential import (
    SequentialDesign, decide, paired_difference_interval, sequential_compare, sequential_markdown,
)

REPETITIONS = 4000


def simulate(p_ours: float, p_theirs: float, seeds: int, design: SequentialDesign,
             repetitions: int = REPETITIONS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Decisions and episodes used by `repetitions` independent tests of two players that capture a seed with
    probabilities p_ours and p_theirs; the test runs group by group, exactly as `sequential_compare` does."""
    rng = np.random.default_rng(seed)
    ours = rng.random((repetitions, seeds)) < p_ours
    theirs = rng.random((repetitions, seeds)) < p_theirs
    looks = np.arange(design.group, seeds + design.group, design.group).clip(max=seeds)
    only_ours = np.cumsum(ours & ~theirs, axis=1)[:, looks - 1]
    only_theirs = np.cumsum(theirs & ~ours, axis=1)[:, looks - 1]
    decisions = decide(only_ours, only_theirs, design)
    stopped = decisions != ""
    first = np.where(stopped.any(axis=1), stopped.argmax(axis=1), len(looks) - 1)
    final = decisions[np.arange(repetitions), first]
    return np.where(final == "", "undecided", final), looks[first]


def players(p_ours: float, p_theirs: float, seed: int = 1):
    rng = np.random.default_rng(seed)

    def play(group):
        return list(rng.random(len(group)) < p_ours), list(rng.random(len(group)) < p_theirs)

    return play


DESIGN = SequentialDesign()


@pytest.mark.parametrize("skill", [0.2, 0.6, 0.9])
def test_equal_players_rarely_differ(skill):
    decisions, _ = simulate(skill, skill, 2000, DESIGN)
    # Monte-Carlo slack of three standard errors over alpha.
    slack = 3 * np.sqrt(DESIGN.alpha * (1 - DESIGN.alpha) / REPETITIONS)
    assert np.mean((decisions == "better") | (decisions == "worse")) <= DESIGN.alpha + slack
    assert np.mean(decisions == "no difference") > 0.9


def test_a_better_player_at_the_margin_is_found_with_power_one_minus_beta():
    # Independent players whose discordant share is exactly 1/2 + margin: p_o (1 - p_t) / (p_o + p_t - 2 p_o p_t).
    p_theirs = 0.5
    p_ours = 0.5 + DESIGN.margin  # with p_theirs = 1/2 the discordant share equals p_ours
    decisions, _ = simulate(p_ours, p_theirs, 5000, DESIGN)
    slack = 3 * np.sqrt(DESIGN.beta * (1 - DESIGN.beta) / REPETITIONS)
    assert np.mean(decisions != "better") <= DESIGN.beta + slack
    decisions, _ = simulate(p_theirs, p_ours, 5000, DESIGN, seed=7)
    assert np.mean(decisions != "worse") <= DESIGN.beta + slack


def test_clear_cases_need_far_fewer_than_100_episodes():
    decisions, episodes = simulate(0.8, 0.4, 100, DESIGN)
    assert np.mean(decisions == "better") > 0.9
    assert episodes.mean() < 50


def test_sequential_compare_matches_the_vectorized_rule_and_stops_early():
    result = sequential_compare(players(0.9, 0.2), list(range(100)), DESIGN)
    assert result.decision == "better"
    assert result.episodes < 100 and result.episodes % DESIGN.group == 0
    assert result.episodes_saved == 100 - result.episodes
    assert result.both_captured + result.only_ours + result.only_theirs + result.neither == result.episodes
    assert decide(result.only_ours, result.only_theirs, DESIGN) == "better"
    low, high = result.capture_rate_difference_ci
    assert 0 < low < result.capture_rate_difference < high


def test_running_out_of_seeds_is_undecided():
    result = sequential_compare(players(0.6, 0.5), list(range(10)), DESIGN)
    assert result.decision == "undecided" and result.episodes == 10 and result.episodes_saved == 0
    assert "undecided" in sequential_markdown(result, "child", "parent")


def test_report_states_design_and_evidence():
    result = sequential_compare(players(0.2, 0.9), list(range(100)), DESIGN)
    assert result.decision == "worse"
    text = sequential_markdown(result, "child", "parent")
    assert "child is worse than parent" in text and "alpha = 0.05" in text and "p = 0.7" in text
    as_dict = result.to_dict()
    assert as_dict["hypotheses"] and as_dict["episodes_saved"] == result.episodes_saved


def test_paired_interval_contains_zero_for_a_tie():
    low, high = paired_difference_interval(5, 5, 40)
    assert low < 0 < high


@pytest.mark.parametrize("field, value", [("alpha", 0), ("beta", 1.2), ("margin", 0.5), ("group", 0)])
def test_bad_design_is_refused(field, value):
    with pytest.raises(MissionGymError, match=field):
        SequentialDesign(**{field: value})
