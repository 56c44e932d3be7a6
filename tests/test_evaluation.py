"""Evaluation reports: fields and their statistics, which config is used, seeds, stochastic actions, GIF,
and the interval estimators against known values."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from test_training_support import (
    TINY, add_defender, assert_user_error, checkpoint_path, edit_yaml, evaluate_main, make_workdir, record,
    newest_report, run_dirs, strict_json, train_main, tree_state,
)

from mission_gym.config import load_config, read_seeds_file
from mission_gym.evaluation import (
    EpisodeResult, bootstrap_interval, paired_comparison, seeds_hash, summarize, wilson_interval,
)
from mission_gym.rules import REWARD_COMPONENTS
from mission_gym.sequential import paired_verdict

pytestmark = pytest.mark.slow  # end to end: trains the runs it evaluates

EVAL_SEEDS = 8


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A parent run (checkpoints 512, 1024) and a branch from its 1024 checkpoint (checkpoint 1536)."""
    folder = make_workdir(tmp_path_factory.mktemp("evaluation"), eval_seeds=EVAL_SEEDS)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        code, _, err = train_main(["--timesteps", "1024", *TINY, "--no-tensorboard", "--checkpoint-freq", "512",
                                   "--run-name", "parent", "--seed", "1", "--eval-freq", "512"])
        assert code == 0, err
        (parent,) = run_dirs(folder / "runs")
        code, _, err = train_main(["--parent-checkpoint", f"runs/{parent.name}/checkpoints/ppo_mission_1024_steps",
                                   "--branch-name", "child", "--timesteps", "512", "--n-envs", "4", "--no-progress",
                                   "--no-tensorboard",
                                   "--checkpoint-freq", "512", "--seed", "2"])
        assert code == 0, err
    finally:
        os.chdir(cwd)
    return folder


@pytest.fixture()
def runs(work, monkeypatch):
    """(parent, child) run folders; the working directory is the project folder."""
    monkeypatch.chdir(work)
    parent, child = sorted(run_dirs(work / "runs"), key=lambda p: not p.name.startswith("parent-"))
    return parent, child


@pytest.fixture()
def reward_restored(work):
    path = work / "configs" / "reward.yaml"
    original = path.read_bytes()
    yield path
    path.write_bytes(original)


def no_zip(path) -> str:
    return os.path.relpath(path).removesuffix(".zip")


def check_section(section: dict, episodes: int) -> None:
    """The statistics of one policy: counts add up, intervals are the estimators' and contain the estimate."""
    assert section["episodes"] == episodes
    assert sum(section["outcomes"].values()) == episodes
    assert set(section["outcomes"]) <= {"captured", "stalled", "all_disabled", "timeout"}
    captures = section["outcomes"].get("captured", 0)
    assert section["capture_rate"] == pytest.approx(captures / episodes)
    assert section["capture_rate_ci"] == pytest.approx(list(wilson_interval(captures, episodes)))
    low, high = section["mean_return_ci"]
    assert low <= section["mean_return"] <= high
    assert list(section["reward_components_mean"]) == list(REWARD_COMPONENTS)
    # Returns are the weighted components, so their means add up to the mean return.
    assert sum(section["reward_components_mean"].values()) == pytest.approx(section["mean_return"], abs=1e-3)
    assert 0 < section["episode_length_mean"] and 0 < section["episode_length_median"]


def test_branch_report_has_every_section(runs, work):
    parent, child = runs
    code, out, err = evaluate_main(["--model", no_zip(checkpoint_path(child, 1536))])
    assert code == 0, err
    report = strict_json(newest_report(child / "evaluations" / "ppo_mission_1536_steps.json"))
    markdown = newest_report(child / "evaluations" / "ppo_mission_1536_steps.md").read_text()
    seeds = load_config(child / "configs").eval_seeds
    assert report["checkpoint"] == f"{child.name}/checkpoints/ppo_mission_1536_steps.zip"
    assert report["step"] == 1536 and report["run_name"] == child.name and report["deterministic"] is True
    assert report["seeds_hash"] == hashlib.sha256("\n".join(map(str, seeds)).encode()).hexdigest()
    check_section(report, EVAL_SEEDS)
    check_section(report["baseline"], EVAL_SEEDS)
    paired = report["baseline"]["paired"]
    assert set(paired) == {"only_ours_captured", "only_theirs_captured", "capture_rate_difference",
                           "capture_rate_difference_ci", "verdict", "mean_return_difference", "mean_return_difference_ci"}
    assert paired["mean_return_difference"] == pytest.approx(report["mean_return"] - report["baseline"]["mean_return"])
    assert report["parent"]["checkpoint"] == f"{parent.name}/checkpoints/ppo_mission_1024_steps.zip"
    assert report["parent"]["step"] == 1024
    check_section(report["parent"], EVAL_SEEDS)
    assert report["parent"]["paired"]["mean_return_difference"] == pytest.approx(
        report["mean_return"] - report["parent"]["mean_return"])
    for text in ("scripted baseline", "parent", "95% CI", report["seeds_hash"][:12], "capture_progress"):
        assert text in markdown, text
    assert "Report written to" in out


def test_fresh_run_report_has_no_parent_and_a_run_name_means_its_latest_checkpoint(runs):
    parent, _ = runs
    code, _, err = evaluate_main(["--model", parent.name, "--episodes", "2"])
    assert code == 0, err
    report = strict_json(newest_report(parent / "evaluations" / "ppo_mission_1024_steps.json"))
    assert report["parent"] is None and report["step"] == 1024 and report["episodes"] == 2


def test_uses_the_run_snapshot_unless_config_dir_is_given(runs, work, reward_restored):
    _, child = runs
    def heavier_time_penalty(data):
        data["components"]["time_penalty"]["weight"] = -1.0
    edit_yaml(reward_restored, heavier_time_penalty)
    snapshot_hash = record(child)["config"]["hash"]
    local_hash = load_config(work / "configs").config_hash
    assert local_hash != snapshot_hash
    model = no_zip(checkpoint_path(child, 1536))
    report_file = child / "evaluations" / "ppo_mission_1536_steps.json"

    code, out, err = evaluate_main(["--model", model, "--episodes", "3"])
    assert code == 0, err
    assert "config snapshot" in out
    by_snapshot = strict_json(newest_report(report_file))
    assert by_snapshot["config_hash"] == snapshot_hash
    assert os.path.samefile(by_snapshot["config_dir"], child / "configs")

    code, out, err = evaluate_main(["--model", model, "--episodes", "3", "--config-dir", "configs"])
    assert code == 0, err
    assert "--config-dir" in out
    by_local = strict_json(newest_report(report_file))
    assert by_local["config_hash"] == local_hash
    # The heavier time penalty is visible in the numbers, on the same seeds.
    assert by_local["seeds_hash"] == by_snapshot["seeds_hash"]
    weight_ratio = -1.0 / load_config(child / "configs").reward.components["time_penalty"].weight
    assert by_local["reward_components_mean"]["time_penalty"] == pytest.approx(
        weight_ratio * by_snapshot["reward_components_mean"]["time_penalty"], rel=1e-6)
    assert by_local["reward_components_mean"]["time_penalty"] != by_snapshot["reward_components_mean"]["time_penalty"]


def test_episodes_and_seeds_file(runs, work, tmp_path):
    _, child = runs
    model = no_zip(checkpoint_path(child, 1536))
    report_file = child / "evaluations" / "ppo_mission_1536_steps.json"
    code, _, err = evaluate_main(["--model", model, "--episodes", "3"])
    assert code == 0, err
    report = strict_json(newest_report(report_file))
    first_three = load_config(child / "configs").eval_seeds[:3]
    assert report["episodes"] == 3 and report["seeds_hash"] == seeds_hash(first_three)

    seeds = tmp_path / "my_seeds.txt"
    seeds.write_text("# mine\n11\n\n22  # comment\n33\n")
    code, _, err = evaluate_main(["--model", model, "--seeds-file", str(seeds)])
    assert code == 0, err
    report = strict_json(newest_report(report_file))
    assert report["episodes"] == 3 and report["seeds_hash"] == seeds_hash([11, 22, 33])
    assert report["seeds_file"] == str(seeds)


@pytest.mark.parametrize("argv, needles", [
    (["--seeds-file", "{bad}"], ["{bad}", "line 3", "12x"]),
    (["--seeds-file", "{missing}"], ["{missing}", "not found"]),
    (["--episodes", "0"], ["--episodes 0"]),
    (["--episodes", str(EVAL_SEEDS + 1)], [f"--episodes {EVAL_SEEDS + 1}", f"{EVAL_SEEDS} seeds"]),
])
def test_bad_evaluation_options_fail_cleanly(runs, work, tmp_path, argv, needles):
    _, child = runs
    bad = tmp_path / "seeds.txt"
    bad.write_text("1\n2\n12x\n4\n")
    names = {"bad": str(bad), "missing": str(tmp_path / "nope.txt")}
    argv = [a.format(**names) for a in argv]
    state = tree_state(work)
    code, _, err = evaluate_main(["--model", no_zip(checkpoint_path(child, 1536)), *argv])
    assert_user_error(code, err, *(n.format(**names) for n in needles))
    assert tree_state(work) == state


def test_deterministic_is_reproducible_and_stochastic_differs(runs):
    parent, _ = runs  # a fresh run: no parent checkpoint to evaluate as well
    model = no_zip(checkpoint_path(parent, 512))
    report_file = parent / "evaluations" / "ppo_mission_512_steps.json"
    reports = []
    for extra in ([], [], ["--stochastic"]):
        code, out, err = evaluate_main(["--model", model, "--episodes", "2", *extra])
        assert code == 0, err
        reports.append(strict_json(newest_report(report_file)))
    first, again, stochastic = reports
    # The same measurement overwrites its own report; a different one (stochastic) gets its own file.
    keyed = sorted(p.name for p in report_file.parent.glob("ppo_mission_512_steps.*.json"))
    assert keyed == sorted({f"ppo_mission_512_steps.{r['key']}.json" for r in (first, stochastic)})
    assert first["key"] == again["key"] != stochastic["key"] and len(keyed) == 2
    assert first["deterministic"] is True and stochastic["deterministic"] is False
    assert first["mean_return"] == again["mean_return"] and first["outcomes"] == again["outcomes"]
    assert stochastic["mean_return"] != first["mean_return"]
    assert "stochastic" in out


def test_gif_replay_is_an_animated_gif(runs):
    _, child = runs
    code, _, err = evaluate_main(["--model", no_zip(checkpoint_path(child, 1536)), "--episodes", "1", "--gif"])
    assert code == 0, err
    gif = newest_report(child / "evaluations" / "ppo_mission_1536_steps.gif")
    with Image.open(gif) as image:
        assert image.format == "GIF"
        assert image.is_animated and image.n_frames > 10
        assert image.size[0] > 100 and image.size[1] > 100
        image.seek(image.n_frames - 1)  # every frame decodes


def test_model_outside_a_run_is_refused_and_nothing_is_written_beside_it(runs, work, tmp_path):
    _, child = runs
    elsewhere = tmp_path / "exported"
    elsewhere.mkdir()
    shutil.copyfile(checkpoint_path(child, 1536), elsewhere / "policy.zip")
    state, beside = tree_state(work), tree_state(elsewhere)
    for extra in ([], ["--config-dir", "configs", "--episodes", "2"]):
        code, _, err = evaluate_main(["--model", str(elsewhere / "policy"), *extra])
        assert_user_error(code, err, "not inside a run folder", "runs/<run>/evaluations/")
    assert tree_state(work) == state and tree_state(elsewhere) == beside


def test_config_dir_with_other_unit_counts_is_refused(runs, work, tmp_path):
    _, child = runs
    other = tmp_path / "configs_3_defenders"
    shutil.copytree(work / "configs", other)
    add_defender(other)
    state = tree_state(work)
    code, _, err = evaluate_main(["--model", no_zip(checkpoint_path(child, 1536)), "--config-dir", str(other)])
    assert_user_error(code, err, "cannot be evaluated", "Observation space mismatch!", "Number of defenders")
    assert tree_state(work) == state


def test_eval_freq_logs_held_out_results_during_training(runs):
    parent, _ = runs
    rows = [json.loads(line) for line in (parent / "metrics.jsonl").read_text().splitlines()]
    evaluated = [row for row in rows if "eval_capture_rate" in row]
    assert [row["timestep"] for row in evaluated] == [512, 1024]
    for row in evaluated:
        assert 0.0 <= row["eval_capture_rate"] <= 1.0 and math.isfinite(row["eval_mean_return"])
    # The same numbers as an evaluation of that checkpoint on the run's held-out seeds.
    code, _, err = evaluate_main(["--model", no_zip(checkpoint_path(parent, 1024))])
    assert code == 0, err
    report = strict_json(newest_report(parent / "evaluations" / "ppo_mission_1024_steps.json"))
    assert evaluated[-1]["eval_mean_return"] == pytest.approx(report["mean_return"], rel=1e-6)
    assert evaluated[-1]["eval_capture_rate"] == report["capture_rate"]


# --- the estimators ----------------------------------------------------------------------------------


@pytest.mark.parametrize("successes, trials, expected", [
    (0, 10, (0.0, 0.27753)),
    (10, 10, (0.72247, 1.0)),
    (5, 10, (0.23659, 0.76341)),
    (1, 20, (0.00888, 0.23613)),
    (81, 263, (0.25529, 0.36621)),
])
def test_wilson_interval_known_values(successes, trials, expected):
    # Expected: the roots of (k/n - p)^2 = z^2 p (1 - p) / n, found by bisection (the interval's definition).
    low, high = wilson_interval(successes, trials)
    assert low == pytest.approx(expected[0], abs=5e-5) and high == pytest.approx(expected[1], abs=5e-5)


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(3, 7)
    mirror = wilson_interval(4, 7)
    assert low == pytest.approx(1 - mirror[1]) and high == pytest.approx(1 - mirror[0])


def test_bootstrap_interval_matches_the_normal_approximation_of_the_mean():
    values = np.random.default_rng(42).normal(10.0, 2.0, size=2000)
    low, high = bootstrap_interval(values)
    half = 1.959964 * values.std(ddof=1) / math.sqrt(len(values))
    assert low == pytest.approx(values.mean() - half, abs=0.08 * half)
    assert high == pytest.approx(values.mean() + half, abs=0.08 * half)
    assert bootstrap_interval(values) == (low, high), "fixed resampling seed: reports are reproducible"


def test_bootstrap_interval_edges():
    assert bootstrap_interval(np.full(30, 4.5)) == pytest.approx((4.5, 4.5))
    assert bootstrap_interval(np.array([])) == (0.0, 0.0)
    assert bootstrap_interval(np.array([7.0])) == pytest.approx((7.0, 7.0))


def episode(seed: int, outcome: str, ret: float, length: int = 100) -> EpisodeResult:
    components = {name: 0.0 for name in REWARD_COMPONENTS}
    components["win_bonus"] = ret
    return EpisodeResult(seed=seed, outcome=outcome, episode_return=ret, length=length, components=components)


def test_summarize_and_paired_comparison():
    ours = [episode(1, "captured", 10.0, 50), episode(2, "captured", 8.0, 70), episode(3, "stalled", -5.0, 120),
            episode(4, "timeout", -1.0, 1200)]
    theirs = [episode(1, "captured", 9.0), episode(2, "stalled", -3.0), episode(3, "captured", 4.0),
              episode(4, "timeout", -1.0)]
    summary = summarize(ours)
    assert summary["capture_rate"] == 0.5 and summary["capture_rate_ci"] == pytest.approx(list(wilson_interval(2, 4)))
    assert summary["mean_return"] == pytest.approx(3.0)
    assert summary["outcomes"] == {"captured": 2, "stalled": 1, "timeout": 1}
    assert summary["episode_length_mean"] == pytest.approx(360.0) and summary["episode_length_median"] == 95.0
    assert summary["reward_components_mean"]["win_bonus"] == pytest.approx(3.0)
    paired = paired_comparison(ours, theirs)
    assert paired["only_ours_captured"] == 1 and paired["only_theirs_captured"] == 1
    assert paired["mean_return_difference"] == pytest.approx((1.0 + 11.0 - 9.0 + 0.0) / 4)
    assert paired["capture_rate_difference"] == 0 and paired["verdict"] == "no clear difference"
    assert "no clear difference: captured where the other did not on 1 seeds, the reverse on 1" in paired_verdict(paired)


def test_paired_verdict_needs_the_whole_interval_on_one_side():
    def outcomes(captured: list[bool]) -> list[EpisodeResult]:
        return [episode(i, "captured" if c else "timeout", 1.0) for i, c in enumerate(captured)]

    clear = paired_comparison(outcomes([True] * 60 + [False] * 40), outcomes([True] * 30 + [False] * 70))
    assert clear["verdict"] == "better" and clear["capture_rate_difference"] == pytest.approx(0.3)
    low, high = clear["capture_rate_difference_ci"]
    assert 0 < low < 0.3 < high
    reverse = paired_comparison(outcomes([True] * 30 + [False] * 70), outcomes([True] * 60 + [False] * 40))
    assert reverse["verdict"] == "worse"
    close = paired_comparison(outcomes([True] * 33 + [False] * 67), outcomes([True] * 30 + [False] * 70))
    assert close["verdict"] == "no clear difference"
    assert paired_verdict(clear).startswith("better: captured where the other did not on 30 seeds, the reverse on 0")


def test_seeds_hash_depends_on_order_and_content(tmp_path):
    assert seeds_hash([1, 2, 3]) != seeds_hash([3, 2, 1]) != seeds_hash([1, 2])
    seeds = tmp_path / "s.txt"
    seeds.write_text("5\n6\n")
    assert read_seeds_file(seeds) == (5, 6)


def test_a_checkpoint_changed_after_its_run_wrote_it_is_not_evaluated(runs, work):
    parent, _ = runs
    checkpoint = checkpoint_path(parent, 512)
    original = checkpoint.read_bytes()
    try:
        checkpoint.write_bytes(original + b"tampered")
        state = tree_state(work)
        code, _, err = evaluate_main(["--model", no_zip(checkpoint), "--episodes", "2"])
        assert_user_error(code, err, "SHA-256", checkpoint.name)
        assert tree_state(work) == state
    finally:
        checkpoint.write_bytes(original)
