"""What a person sees in the terminal: plain lines off a terminal, a bar that never passes its target, the
closing summary with the resume command after an interruption, TensorBoard runs named after the run, and
complete `--help` texts."""

from __future__ import annotations

import argparse
import io
import os
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback
from conftest import REPO_CONFIGS
from test_training_support import TINY, call_main, make_workdir, run_dirs, train_main

from mission_gym import cli, progress, training
from mission_gym.config import load_config
from mission_gym.progress import ProgressDisplay, TrainingProgress, kernels_compiled, resume_command
from mission_gym.runs.record import load_record
from mission_gym.scripts import train_ppo
from mission_gym.training import TrainSettings, train
from mission_gym.vec_env import MissionVecEnv

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but \t and \n


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a person's shell is."""

    def isatty(self) -> bool:
        return True


@pytest.fixture()
def work(tmp_path):
    folder = make_workdir(tmp_path)
    cwd = os.getcwd()
    os.chdir(folder)
    yield folder
    os.chdir(cwd)


def with_bars(argv: list[str]) -> list[str]:
    return [a for a in argv if a != "--no-progress"]


def test_plain_lines_off_a_terminal_then_the_summary(work, monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)  # a line on every step: the test is short
    monkeypatch.setattr(training, "kernels_compiled", lambda: False)  # as on a first run
    code, out, err = train_main(["--timesteps", "512", *with_bars(TINY), "--run-name", "plain", "--seed", "1",
                                 "--imitation-samples", "256"])
    assert code == 0, err
    assert not CONTROL.search(out), repr(out[:400])
    assert out.index(progress.COMPILING_NOTE) < out.index("imitating the scripted baseline: 256 decisions") < out.index("step ")
    steps = [int(m.replace(",", "")) for m in re.findall(r"^step ([\d,]+)/512 ", out, re.M)]
    assert len(steps) > 2 and max(steps) == 512  # periodic lines, never past the target
    line = re.findall(r"^step .*$", out, re.M)[-1]
    assert "steps/s" in line and "ETA" in line and "return" in line and "capture" in line
    (run,) = run_dirs(work / "runs")
    assert f"Finished: {run.name} at step 512 of 512" in out
    assert f"Latest checkpoint: runs/{run.name}/checkpoints/ppo_mission_512_steps.zip" in out
    assert "Resume with" not in out


def test_the_bar_never_passes_its_target_and_shows_the_learning_numbers():
    stream = Terminal()
    stats = SimpleNamespace(returns=[], captures=[])
    bar = TrainingProgress(ProgressDisplay(stream=stream), start=1000, target=3000, stats=stats)
    bar._on_training_start()
    bar.num_timesteps = 1500
    bar.show()
    assert "no episode finished yet" in bar.learning()
    stats.returns, stats.captures = [10.0, 20.0], [1.0, 0.0]
    bar.num_timesteps = 3256  # PPO finishes its last rollout past the target
    bar.close()
    text = stream.getvalue()
    assert "2,000/2,000" in text and "2,256" not in text
    assert "return 15.0" in text and "capture 50%" in text and "steps/s" in text and "ETA" in text
    assert "\x1b[" in text  # a real bar on a terminal


def test_interrupted_run_prints_the_exact_resume_command(work, capsys):
    class CtrlC(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps >= 256:
                raise KeyboardInterrupt
            return True

    settings = TrainSettings(timesteps=2048, n_envs=4, run_name="stopped", seed=2, imitation_samples=0,
                             checkpoint_freq=10_000, tensorboard=False,
                             hyperparameters={"n_steps": 64, "batch_size": 256, "net_arch": [32, 32]})
    record = train(settings, extra_callbacks=[CtrlC()])
    assert record.status == "interrupted"
    out = capsys.readouterr().out
    command = re.search(r"^Resume: (.*)$", out, re.M).group(1)
    assert command == resume_command(record, Path("runs"), Path("configs"), 4)
    words = shlex.split(command)
    assert words[:2] == ["mission-gym", "train"]
    args = train_ppo.build_parser().parse_args(words[2:])
    resumed = train_ppo.settings_from_args(args)
    assert resumed.parent_checkpoint == record.run_name
    assert resumed.timesteps + record.timesteps.current == record.timesteps.target
    assert resumed.n_envs == 4
    # The command it prints works: the branch continues to the original target.
    code, _, err = call_main(train_ppo.main, [*words[2:], *TINY[2:], "--no-tensorboard"])
    assert code == 0, err
    branch = next(p for p in run_dirs(work / "runs") if p.name.startswith("resumed-"))
    assert load_record(branch).timesteps.current >= record.timesteps.target


def test_tensorboard_run_is_named_after_the_run(work):
    code, _, err = train_main(["--timesteps", "256", *TINY, "--run-name", "tb", "--imitation-samples", "0"])
    assert code == 0, err
    (run,) = run_dirs(work / "runs")
    board = run / "tensorboard"
    assert [p for p in board.iterdir() if p.name.startswith("events.out.tfevents")]
    assert not [p for p in board.iterdir() if p.is_dir()]  # no ppo_0 level: `--logdir runs` shows <run>/tensorboard


def test_compile_note_only_with_a_cold_cache(tmp_path, monkeypatch):
    from mission_gym.sim import kernel

    vec = MissionVecEnv(1, load_config(REPO_CONFIGS), seed=0)
    vec.step(np.zeros((1, len(vec.action_space.nvec)), dtype=np.int64))  # the kernel is compiled and cached
    cache = kernel.step_arenas._cache._cache_file
    assert kernels_compiled()
    monkeypatch.setattr(cache, "_index_path", str(tmp_path / "absent.nbi"))
    assert not kernels_compiled()


def test_top_level_help_lists_every_command():
    code, out, err = call_main(cli.main, ["--help"])
    assert code == 0 and not err
    for name in cli.COMMANDS:
        (line,) = [l for l in out.splitlines() if l.strip().startswith(name + " ")]
        assert len(line.split(name, 1)[1].strip()) > 20  # a real one-line description
    code, _, err = call_main(cli.main, ["trian"])
    assert code == 2 and "unknown command 'trian'" in err


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_option_has_help_with_its_default(command):
    import importlib

    module = importlib.import_module(cli.COMMANDS[command][0])
    code, out, _ = call_main(module.main, ["--help"])
    assert code == 0 and "usage:" in out
    for action in module.build_parser()._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{command} {action.option_strings}: no help text"
        if action.nargs != 0:  # flags taking a value say what happens without them
            assert "default" in action.help, f"{command} {action.option_strings}: help names no default"
