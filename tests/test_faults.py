"""Faults injected into real trainings: SIGKILL at 20 random moments of a training and its resumes, SIGTERM
(and SIGHUP) at 10, and two trainings with the same name started together x 5.

Every trainer is forked from this already-imported test process (a fresh interpreter would spend seconds of
CPU importing torch for each of the 40 trainings). What must hold: every checkpoint a record names exists
and loads at its step, the step counter continues across resumes, a SIGKILL loses at most one checkpoint
interval, a SIGTERM loses nothing, a killed run is dead at once, its temp files are swept when it is
resumed, and each trainer reports the folder it created. The figures are printed for docs/reliability.md.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from test_training_support import CHECKPOINT_NAME, TINY, checkpoint_steps, load_model, make_workdir, sha256

from mission_gym.runs.record import RunRecord, load_record
from mission_gym.training import TrainSettings, train

pytestmark = pytest.mark.slow

FREQ = 256  # one rollout of TINY (4 arenas x 64 decisions): a checkpoint after every update
KILLS, TERMS, SAME_NAME_PAIRS = 20, 10, 5
SEED = 20261201
WAIT_S = 180


def _trainer(argv: list[str], log: Path) -> None:
    """Child process body: train_ppo's main with its output in `log`."""
    for sig in (signal.SIGTERM, signal.SIGHUP):  # as a terminal delivers them, even if pytest runs under nohup
        signal.signal(sig, signal.SIG_DFL)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)
    from mission_gym.scripts import train_ppo

    code = train_ppo.main(argv)
    sys.stdout.flush()
    os._exit(code)


class Lab:
    """A work folder whose trainers are forked from this process."""

    def __init__(self, work: Path) -> None:
        self.work, self.runs = work, work / "runs"
        self.context = multiprocessing.get_context("fork")
        self.count = 0

    def start(self, *args: str, name: str = "fault") -> tuple[multiprocessing.Process, Path]:
        self.count += 1
        log = self.work / f"trainer-{self.count}.log"
        argv = ["--timesteps", "100000", *TINY, "--no-tensorboard", "--checkpoint-freq", str(FREQ),
                "--keep-checkpoints", "0", "--imitation-samples", "512", "--seed", "7", *args]
        if "--parent-checkpoint" not in args:
            argv += ["--run-name", name]
        process = self.context.Process(target=_trainer, args=(argv, log))
        process.start()
        return process, log

    def new_runs(self, before: set[str]) -> list[Path]:
        return sorted(p for p in self.runs.iterdir() if p.is_dir() and p.name not in before) if self.runs.is_dir() else []

    def names(self) -> set[str]:
        return {p.name for p in self.runs.iterdir()} if self.runs.is_dir() else set()


def _run_of(log: Path) -> str | None:
    """The run folder a trainer's `Run:` line names."""
    match = re.search(r"^Run:\s+(\S+)", log.read_text(), re.MULTILINE) if log.exists() else None
    return match.group(1) if match else None


def _check_models(run: Path, rec: RunRecord) -> None:
    """Every model file the record names exists, loads at its step and has the recorded hash."""
    for entry in rec.checkpoints:
        path = run.parent / entry.file
        assert path.is_file(), f"{rec.run_name}: the record names {entry.file}, which does not exist"
        assert sha256(path) == entry.sha256, entry.file
        assert load_model(path).num_timesteps == entry.step, entry.file


def _latest(rec: RunRecord) -> int | None:
    steps = [e.step for e in rec.checkpoints if CHECKPOINT_NAME.match(Path(e.file).name)]
    return max(steps, default=None)


def _parent_args(run: Path | None) -> tuple[str, ...]:
    return ("--parent-checkpoint", f"runs/{run.name}") if run is not None else ()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    work = make_workdir(tmp_path_factory.mktemp("faults") / "project")
    torch.set_num_threads(1)  # no OpenMP pool in the parent: forked trainers must not inherit a dead one
    cwd = os.getcwd()
    os.chdir(work)
    try:  # compile or load every kernel here once, so forked trainers start at once
        train(TrainSettings(timesteps=FREQ, n_envs=4, seed=1, runs_root=work / "warmup", tensorboard=False,
                            progress_bar=False, imitation_samples=64,
                            hyperparameters={"n_steps": 64, "batch_size": 256, "net_arch": [32, 32]}))
        yield Lab(work)
    finally:
        os.chdir(cwd)


def _wait(process: multiprocessing.Process, timeout: float = WAIT_S) -> int:
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join()
        raise AssertionError("trainer did not stop")
    return process.exitcode


def test_sigkill_at_random_moments_loses_at_most_one_checkpoint_interval(lab):
    rng = random.Random(SEED)
    parent: Path | None = None
    lost, temp_left, resumes = [], 0, 0
    for _ in range(KILLS):
        before = lab.names()
        process, log = lab.start(*_parent_args(parent))
        time.sleep(rng.uniform(0.3, 4.0))
        os.kill(process.pid, signal.SIGKILL)
        assert _wait(process) == -signal.SIGKILL
        created = lab.new_runs(before)
        if not created:  # killed before its folder existed: nothing to lose
            continue
        (run,) = created
        if parent is not None:
            assert not any(p.name.endswith(".tmp") for p in [*parent.iterdir(), *(parent / "checkpoints").iterdir()]), \
                "resuming a killed run sweeps its temp files"
        rec = load_record(run)
        assert not rec.is_live(), "a killed run on this host is dead at once"
        _check_models(run, rec)
        temp_left += sum(p.name.endswith(".tmp") for p in [*run.iterdir(), *(run / "checkpoints").iterdir()])
        latest = _latest(rec)
        if latest is None:  # killed before its first checkpoint: resume the previous run again
            assert rec.timesteps.current - rec.timesteps.start <= FREQ
            lost.append(rec.timesteps.current - rec.timesteps.start)
            continue
        # The furthest the run is known to have come: its last heartbeat, or a checkpoint that landed just
        # before the kill without being recorded yet (never resumed from: nothing vouches for it).
        reached = max([rec.timesteps.current, *checkpoint_steps(run)])
        assert reached - latest <= FREQ, "at most one checkpoint interval is lost"
        lost.append(reached - latest)
        if parent is not None:
            assert rec.timesteps.start == _latest(load_record(parent)), "the step counter continues"
            assert rec.parent_checkpoint is not None and rec.parent_checkpoint.step == rec.timesteps.start
        assert checkpoint_steps(run) and min(checkpoint_steps(run)) > rec.timesteps.start
        resumes += parent is not None
        parent = run
    figures = {"sigkill_cases": KILLS, "runs_killed_with_a_folder": len(lost), "resumes": resumes,
               "timesteps_lost_max": max(lost), "timesteps_lost_total": sum(lost), "checkpoint_interval": FREQ,
               "temp_files_left_by_kills": temp_left}
    print("FAULT FIGURES", json.dumps(figures))


def test_sigterm_and_sighup_lose_nothing(lab):
    rng = random.Random(SEED + 1)
    parent: Path | None = None
    signals = [signal.SIGTERM] * TERMS + [signal.SIGHUP]
    stopped_early = 0
    for sig in signals:
        before = lab.names()
        process, log = lab.start(*_parent_args(parent))
        time.sleep(rng.uniform(0.3, 4.0))
        os.kill(process.pid, sig)
        code = _wait(process)
        output = log.read_text()
        created = lab.new_runs(before)
        if not created:  # stopped before it created anything (default action: nothing to save)
            assert code == -sig.value, output
            stopped_early += 1
            continue
        assert code == 128 + sig.value, output
        assert "Traceback" not in output, output
        (run,) = created
        rec = load_record(run)
        assert rec.status == "interrupted" and rec.error == sig.name
        _check_models(run, rec)
        latest = _latest(rec)
        if latest is None:  # stopped before training began (config, imitation): no model to keep
            stopped_early += 1
            assert rec.timesteps.current == rec.timesteps.start
            continue
        assert _run_of(log) == run.name
        assert latest == rec.timesteps.current, "nothing is lost: the final checkpoint is at the step reached"
        assert load_model(run / "final_model.zip").num_timesteps == latest
        assert "Resume:" in output
        if parent is not None:
            assert rec.timesteps.start == _latest(load_record(parent)), "the step counter continues"
        parent = run
    print("FAULT FIGURES", json.dumps({"sigterm_cases": TERMS, "sighup_cases": 1, "timesteps_lost": 0,
                                       "stopped_before_training": stopped_early}))


def test_two_trainings_with_the_same_name_each_report_their_own_folder(lab):
    collisions = 0
    for pair in range(SAME_NAME_PAIRS):
        time.sleep(1.05 - time.time() % 1)  # start together just after a second begins: the same timestamp
        before = lab.names()
        started = [lab.start("--timesteps", str(FREQ), name=f"twin{pair}") for _ in range(2)]
        codes = [_wait(process) for process, _ in started]
        assert codes == [0, 0], [log.read_text() for _, log in started]
        created = lab.new_runs(before)
        assert len(created) == 2
        reported = [_run_of(log) for _, log in started]
        assert sorted(reported) == [p.name for p in created], "each trainer names the folder it created"
        for (process, _), name in zip(started, reported):
            rec = load_record(lab.runs / name)
            assert rec.pid == process.pid and rec.status == "finished"
            _check_models(lab.runs / name, rec)
        collisions += any(name.endswith("-2") for name in reported)
    print("FAULT FIGURES", json.dumps({"same_name_pairs": SAME_NAME_PAIRS, "same_second_collisions": collisions}))
