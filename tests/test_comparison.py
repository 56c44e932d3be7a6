"""`evaluate --against parent|baseline|RUN --sequential` on real (tiny) checkpoints: the report's decision,
evidence and place on disk, and the refusals. The test's error rates are pinned in test_sequential.py."""

from __future__ import annotations

import json

import pytest
from test_training_support import TINY, assert_user_error, evaluate_main, make_workdir, train_main

from mission_gym.runs.reports import latest_report_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    folder = make_workdir(tmp_path_factory.mktemp("comparison"), eval_seeds=30)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for argv in (["--run-name", "root", "--imitation-samples", "0"],
                     ["--parent-checkpoint", "ROOT", "--branch-name", "child"]):
            root = next((p.name for p in (folder / "runs").glob("root*")), None)
            argv = [a.replace("ROOT", str(root)) for a in argv]
            code, _, err = train_main(["--timesteps", "512", *TINY, "--seed", "1", *argv])
            assert code == 0, err
    return folder


def run_named(work, prefix):
    return next(p.name for p in (work / "runs").glob(f"{prefix}*"))


@pytest.mark.parametrize("against, slug", [("parent", "parent"), ("baseline", "baseline"), ("ROOT", "ROOT-")])
def test_sequential_comparison_reports_decision_and_evidence(work, monkeypatch, against, slug):
    monkeypatch.chdir(work)
    root, child = run_named(work, "root"), run_named(work, "child")
    code, out, err = evaluate_main(["--model", child, "--against", against.replace("ROOT", root), "--sequential"])
    assert code == 0, err
    reports = list((work / "runs" / child / "evaluations" / "comparisons").glob(f"*.vs-{slug.replace('ROOT', root)}*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert report["decision"] in ("better", "worse", "no difference", "undecided")
    assert report["episodes"] % 10 == 0 or report["episodes"] == 30
    assert report["both_captured"] + report["only_ours"] + report["only_theirs"] + report["neither"] == report["episodes"]
    assert "alpha = 0.05" in report["hypotheses"]
    assert "Sequential paired test" in out and report["decision"].split()[0] in out
    # A comparison is never taken for the run's evaluation report.
    assert latest_report_path(work / "runs" / child) is None or "comparisons" not in str(latest_report_path(work / "runs" / child))


def test_against_parent_of_a_fresh_run_is_refused(work, monkeypatch):
    monkeypatch.chdir(work)
    code, _, err = evaluate_main(["--model", run_named(work, "root"), "--against", "parent", "--sequential"])
    assert_user_error(code, err, "--against parent", "no parent")


@pytest.mark.parametrize("argv, says", [
    (["--against", "baseline"], "--against and --sequential go together"),
    (["--sequential"], "--against and --sequential go together"),
    (["--against", "baseline", "--sequential", "--episodes", "5"], "drop --episodes"),
    (["--against", "baseline", "--sequential", "--margin", "0.6"], "margin=0.6"),
    (["--against", "nobody-here", "--sequential"], "nobody-here"),
])
def test_bad_comparison_flags_are_named(work, monkeypatch, argv, says):
    monkeypatch.chdir(work)
    code, _, err = evaluate_main(["--model", run_named(work, "child"), *argv])
    assert_user_error(code, err, says)
