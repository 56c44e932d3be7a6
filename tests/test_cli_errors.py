"""Every bad input to `train_ppo`, `evaluate` and `mission-gym` ends in one `error: ...` line on stderr,
exit status 2, no traceback, and no file created or changed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from runs_factory import make_broken_run, make_run
from test_training_support import (
    EVALUATE_MODULE, TINY, TRAIN_MODULE, add_defender, assert_user_error, call_main, edit_yaml, evaluate_main,
    make_workdir, run_cli, subprocess_env, train_main, tree_state,
)

from mission_gym import cli
from mission_gym.config import load_config
from mission_gym.spaces import space_signature

pytestmark = pytest.mark.slow  # end to end: the commands in subprocesses, with training

PARENT = "parent-20260101-000000"


@pytest.fixture()
def work(tmp_path, monkeypatch):
    """A project folder with configs/ and one recorded (fake) run whose spaces match the configs."""
    folder = make_workdir(tmp_path / "project")
    monkeypatch.chdir(folder)
    make_run(folder / "runs", PARENT, steps=[1000, 2000], spaces=space_signature(load_config(folder / "configs")))
    return folder


TRAIN_ERRORS = [
    (["--timesteps", "0"], ["--timesteps 0"]),
    (["--n-envs", "0"], ["--n-envs 0"]),
    (["--n-envs", "5000"], ["--n-envs 5000"]),
    (["--checkpoint-freq", "0"], ["--checkpoint-freq 0"]),
    (["--keep-checkpoints", "-1"], ["--keep-checkpoints -1"]),
    (["--eval-freq", "-5"], ["--eval-freq -5"]),
    (["--seed", "-1"], ["--seed -1"]),
    (["--torch-threads", "0"], ["--torch-threads 0"]),
    (["--learning-rate", "-0.1"], ["--learning-rate -0.1", "greater than 0"]),
    (["--learning-rate", "inf"], ["--learning-rate", "'inf' is not a finite number"]),
    (["--clip-range", "nan"], ["--clip-range", "'nan' is not a finite number"]),
    (["--seed", "99999999999999999999999"], ["--seed 99999999999999999999999", "4294967295"]),
    (["--batch-size", "1"], ["--batch-size 1"]),
    (["--batch-size", "512"], ["--batch-size 512", "rollout", "= 256 timesteps"]),
    (["--gamma", "1.5"], ["--gamma 1.5"]),
    (["--net-arch", "abc"], ["--net-arch 'abc'"]),
    (["--net-arch", "0,32"], ["--net-arch '0,32'"]),
    (["--n-envs", "1", "--n-steps", "1"], ["--n-envs 1", "--n-steps 1"]),
    (["--config-dir", "no-such-configs"], ["no-such-configs", "not found"]),
    (["--timesteps", "abc"], ["invalid int value"]),
    (["--device", "tpu"], ["invalid choice"]),
    (["--bogus-flag"], ["unrecognized arguments"]),
    (["--parent-checkpoint", ""], ["empty checkpoint path"]),
    (["--parent-checkpoint", "runs/no-such-run/checkpoints/ppo_mission_5_steps"], ["checkpoint not found", "Tried:"]),
    (["--parent-checkpoint", f"runs/{PARENT}/run.json"], ["not a model file"]),
]


@pytest.mark.parametrize("argv, needles", TRAIN_ERRORS, ids=[" ".join(a) or "empty" for a, _ in TRAIN_ERRORS])
def test_train_bad_input(work, argv, needles):
    state = tree_state(work)
    code, _, err = train_main([*TINY, "--timesteps", "256", *argv])
    assert_user_error(code, err, *needles)
    assert tree_state(work) == state


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_train_cuda_without_cuda(work):
    state = tree_state(work)
    code, _, err = train_main([*TINY, "--timesteps", "256", "--device", "cuda"])
    assert_user_error(code, err, "--device cuda")
    assert tree_state(work) == state


def test_train_refuses_an_unknown_unit_type_in_the_config(work):
    edit_yaml(work / "configs" / "scenario.yaml", lambda d: d["attackers"][0].update(unit_type="UGV_Z"))
    state = tree_state(work)
    code, _, err = train_main([*TINY, "--timesteps", "256"])
    assert_user_error(code, err, "UGV_Z", "scenario.yaml")
    assert tree_state(work) == state


def test_train_refuses_a_typo_in_the_held_out_seeds(work):
    seeds = work / "configs" / "eval_seeds.txt"
    lines = seeds.read_text().splitlines()
    lines[2] = lines[2] + "o"
    seeds.write_text("\n".join(lines) + "\n")
    state = tree_state(work)
    code, _, err = train_main([*TINY, "--timesteps", "256"])
    assert_user_error(code, err, "eval_seeds.txt", "line 3")
    assert tree_state(work) == state


@pytest.mark.parametrize("damage", ["missing", "invalid_json", "infinity"])
def test_train_refuses_a_parent_without_a_valid_record(work, damage):
    run = work / "runs" / PARENT
    text = (run / "run.json").read_text()
    if damage == "missing":
        (run / "run.json").unlink()
    elif damage == "invalid_json":
        (run / "run.json").write_text(text[: len(text) // 2])
    else:
        (run / "run.json").write_text(text.replace('"step": 2000', '"step": Infinity', 1))
    state = tree_state(work)
    code, _, err = train_main([*TINY, "--timesteps", "256", "--parent-checkpoint",
                               f"runs/{PARENT}/checkpoints/ppo_mission_2000_steps"])
    assert_user_error(code, err, "run.json")
    assert tree_state(work) == state


def test_train_bad_input_in_a_real_process(work):
    """The same through `python -m`, where a traceback would really reach the user."""
    state = tree_state(work)
    for argv in (["--timesteps", "0"], ["--run-name", "../up"], ["--n-envs", "1", "--n-steps", "1", "--no-progress"]):
        done = run_cli(["-m", TRAIN_MODULE, *argv], cwd=work)
        assert_user_error(done.returncode, done.stderr)
        assert done.stderr.count("\n") <= 3, done.stderr
    assert tree_state(work) == state


EVALUATE_ERRORS = [
    (["--model", "runs/no-such-run/checkpoints/ppo_mission_5_steps"], ["checkpoint not found", "Tried:"]),
    (["--model", ""], ["empty checkpoint path"]),
    (["--model", f"runs/{PARENT}/checkpoints/ppo_mission_2000_steps", "--config-dir", "no-such-configs"],
     ["no-such-configs"]),
    (["--model", f"runs/{PARENT}/checkpoints/ppo_mission_2000_steps"], [f"{PARENT}/configs", "not found"]),
    (["--model", f"runs/{PARENT}/checkpoints/ppo_mission_2000_steps", "--config-dir", "configs"],
     ["the checkpoint archive is damaged"]),
    (["--episodes", "3"], ["the following arguments are required: --model"]),
    (["--model", PARENT, "--episodes", "x"], ["invalid int value"]),
]


@pytest.mark.parametrize("argv, needles", EVALUATE_ERRORS, ids=[" ".join(a) for a, _ in EVALUATE_ERRORS])
def test_evaluate_bad_input(work, argv, needles):
    state = tree_state(work)
    code, _, err = evaluate_main(argv)
    assert_user_error(code, err, *needles)
    assert tree_state(work) == state


def test_evaluate_model_outside_a_run_is_refused_saying_where_reports_go(work, tmp_path):
    """No run folder to write the report into: refused before anything is evaluated or written."""
    code, _, err = train_main([*TINY, "--timesteps", "256", "--no-tensorboard", "--run-name", "small"])
    assert code == 0, err
    (small,) = [p for p in (work / "runs").iterdir() if p.name.startswith("small-")]
    exported = tmp_path / "exported"
    exported.mkdir()
    shutil.copyfile(small / "final_model.zip", exported / "policy.zip")
    other = tmp_path / "other-configs"
    shutil.copytree(work / "configs", other)
    add_defender(other)
    state = tree_state(tmp_path)
    code, _, err = evaluate_main(["--model", str(exported / "policy"), "--config-dir", str(other)])
    assert_user_error(code, err, "not inside a run folder", "runs/<run>/evaluations/")
    assert tree_state(tmp_path) == state


def test_evaluate_bad_input_in_a_real_process(work):
    state = tree_state(work)
    done = run_cli(["-m", EVALUATE_MODULE, "--model", f"runs/{PARENT}/checkpoints/ppo_mission_2000_steps",
                    "--config-dir", "configs"], cwd=work)
    assert_user_error(done.returncode, done.stderr, "the checkpoint archive is damaged")
    assert tree_state(work) == state


def test_mission_gym_dispatch(work, capsys):
    assert cli.main([]) == 2 and "usage: mission-gym" in capsys.readouterr().err
    assert cli.main(["fly"]) == 2 and "usage: mission-gym" in capsys.readouterr().err
    code, out, _ = call_main(cli.main, ["train", "--help"])
    assert code == 0 and "--parent-checkpoint" in out and "--keep-checkpoints" in out
    code, out, _ = call_main(cli.main, ["evaluate", "--help"])
    assert code == 0 and "--seeds-file" in out and "--stochastic" in out
    state = tree_state(work)
    code, _, err = call_main(cli.main, ["train", "--timesteps", "0"])
    assert_user_error(code, err, "--timesteps 0")
    code, _, err = call_main(cli.main, ["evaluate", "--model", "nowhere"])
    assert_user_error(code, err, "checkpoint not found")
    assert tree_state(work) == state


def test_mission_gym_console_script(work):
    script = Path(sys.executable).parent / "mission-gym"  # installed beside the venv's python
    assert script.exists(), script
    done = subprocess.run([str(script), "evaluate", "--model", "nowhere"], cwd=work, capture_output=True, text=True,
                          timeout=300, env=subprocess_env())
    assert_user_error(done.returncode, done.stderr, "checkpoint not found")


def test_corrupt_run_folders_do_not_break_a_fresh_run(work):
    """A broken neighbour in runs/ is reported by the tools that read it, but never blocks training."""
    make_broken_run(work / "runs", "broken-run", run_json="{not json")
    code, _, err = train_main([*TINY, "--timesteps", "256", "--no-tensorboard", "--run-name", "fine"])
    assert code == 0, err
    assert any(p.name.startswith("fine-") for p in (work / "runs").iterdir())
