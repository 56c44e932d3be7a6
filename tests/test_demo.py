"""`make demo` (python -m mission_gym_pipelines.demo), as README.md's first command runs it, with tiny runs:
every step runs through Dagster and prints what a new user reads (capture rates with intervals, the paired
verdicts against the baseline and the parent, where the files are)."""

from __future__ import annotations

import json
import subprocess

import dagster as dg
import pytest
from test_training_support import PYTHON, REPO, make_workdir, subprocess_env

pytestmark = pytest.mark.slow


def run_demo(tmp_path, *flags: str) -> subprocess.CompletedProcess:
    """The demo on the embedded defaults, as `make demo` runs it: the relative `runs` and `configs` folders of
    the working directory (here a copy of the repository's configs, with 8 held-out seeds)."""
    make_workdir(tmp_path)
    env = {**subprocess_env(), "DAGSTER_HOME": str(tmp_path / "dagster_home"), "PYTHONPATH": str(REPO)}
    for name in ("MISSION_GYM_RUNS_ROOT", "MISSION_GYM_CONFIG_DIR"):
        env.pop(name, None)
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    return subprocess.run([PYTHON, "-m", "mission_gym_pipelines.demo", *flags], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)


def test_demo_trains_branches_evaluates_and_says_what_the_paired_tests_found(tmp_path):
    result = run_demo(tmp_path, "--root-timesteps", "4096", "--branch-timesteps", "2048")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    [root] = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("demo-") and "branch" not in p.name]
    [branch] = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("demo-branch-")]
    for run in (root, branch):
        assert json.loads((run / "run.json").read_text())["status"] == "finished"
        assert f"Evaluating {run.name} on the held-out seeds" in out
    assert json.loads((branch / "run.json").read_text())["parent_run"] == root.name
    assert out.count("capture rate ") >= 2 and "(95% CI " in out
    assert "vs the scripted baseline (" in out and "paired on the same seeds: " in out
    assert "vs the parent (" in out and "captured where the other did not on " in out
    verdict = out.strip().splitlines()
    summary = next(line for line in verdict if line.startswith("Done in "))
    for words in ("The trained policy vs the scripted baseline: ", "the branch vs its parent: "):
        assert words in summary
    assert any(v in summary for v in ("better", "worse", "no clear difference"))
    assert (tmp_path / "runs" / "dashboard.html").is_file()
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        jobs = {run.job_name for run in instance.get_runs()}
    assert {"train_run", "evaluate_runs"} <= jobs


@pytest.mark.parametrize("flags, words", [
    (["--root-timesteps", "0"], "'0' must be above zero"),
    (["--branch-timesteps", "many"], "'many' is not a whole number"),
])
def test_demo_refuses_bad_sizes_in_one_line(tmp_path, flags, words):
    result = run_demo(tmp_path, *flags)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert words in result.stderr and result.stderr.startswith("error: ")
    assert not (tmp_path / "runs").exists()
