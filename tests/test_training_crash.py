"""Training killed at a random moment (SIGKILL), interrupted (Ctrl-C, SIGTERM) or diverged, and checkpoint
retention while a run is training: nothing half-written, the run resumable from its latest checkpoint,
retention keeping the newest checkpoints plus the one another run branched from, no non-finite model saved."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback
from test_training_support import (
    CHECKPOINT_NAME, PYTHON, ROLLOUT, TINY, TRAIN_MODULE, checkpoint_path, checkpoint_steps, load_model,
    make_workdir, only_new_run, record, run_dirs, sha256, strict_json, subprocess_env, train_main,
)

from mission_gym import ppo as ppo_module
from mission_gym import run_tracker as tracker_module
from mission_gym.errors import MissionGymError
from mission_gym.guards import DivergedError, stop_signals
from mission_gym.runs.checkpoints import resolve_checkpoint
from mission_gym.runs.record import load_record
from mission_gym.training import TrainSettings, train

pytestmark = pytest.mark.slow  # end to end: PPO training in subprocesses, killed

FREQ = 512
KEEP = 2
WAIT_S = 240


def start_training(work: Path, name: str, *extra: str) -> subprocess.Popen:
    """A long training run in its own process (far more timesteps than the test lets it train)."""
    log = open(work / f"{name}.log", "w")
    return subprocess.Popen([PYTHON, "-m", TRAIN_MODULE, "--timesteps", "500000", *TINY, "--no-tensorboard",
                             "--checkpoint-freq", str(FREQ), "--run-name", name, "--seed", "5", *extra],
                            cwd=work, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=subprocess_env(), preexec_fn=_interruptible)


def _interruptible() -> None:
    # A test runner started in the background (CI, nohup) inherits SIGINT ignored, and Python then installs no
    # Ctrl-C handler in the trainer; a person's terminal delivers Ctrl-C with the default disposition.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition, process: subprocess.Popen, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            raise AssertionError(f"training exited with {process.returncode} before {what}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"timed out waiting for {what}")


def the_run(work: Path, name: str) -> Path | None:
    found = [p for p in run_dirs(work / "runs") if p.name.startswith(f"{name}-")]
    return found[0] if found else None


def steps_on_disk(run: Path | None) -> list[int]:
    return checkpoint_steps(run) if run is not None and (run / "checkpoints").is_dir() else []


def test_sigkill_leaves_loadable_checkpoints_and_a_resumable_run(tmp_path, monkeypatch):
    work = make_workdir(tmp_path / "project")
    monkeypatch.chdir(work)
    process = start_training(work, "crashy", "--keep-checkpoints", str(KEEP))
    try:
        run = wait_for(lambda: the_run(work, "crashy") if steps_on_disk(the_run(work, "crashy")) else None,
                       process, "the first checkpoint")
        # Freeze the trainer the moment its first checkpoint appears and branch from that checkpoint: from
        # now on the trainer's retention must keep it, beside its newest KEEP checkpoints.
        os.kill(process.pid, signal.SIGSTOP)
        first = steps_on_disk(run)[0]
        before = run_dirs(work / "runs")
        code, _, err = train_main(["--parent-checkpoint", f"runs/{run.name}/checkpoints/ppo_mission_{first}_steps",
                                   "--branch-name", "keeper", "--timesteps", str(ROLLOUT), "--n-envs", "4",
                                   "--no-progress", "--no-tensorboard"])
        assert code == 0, err
        keeper = only_new_run(work / "runs", before)
        os.kill(process.pid, signal.SIGCONT)
        target = first + (KEEP + 3) * FREQ
        wait_for(lambda: steps_on_disk(run) and steps_on_disk(run)[-1] >= target, process, f"checkpoint {target}")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
            process.wait()

    # Every checkpoint on disk is complete: it loads, at the step its name says.
    steps = steps_on_disk(run)
    for step in steps:
        assert load_model(checkpoint_path(run, step)).num_timesteps == step
    leftovers = [p.name for p in (run / "checkpoints").iterdir() if not CHECKPOINT_NAME.match(p.name)]
    assert all(name.startswith(".") and name.endswith(".tmp") for name in leftovers), leftovers

    # The record is valid JSON, still says running (nobody could mark the death), and its hashes hold.
    rec_json = strict_json(run / "run.json")
    assert rec_json["status"] == "running" and rec_json["pid"] == process.pid
    rec = load_record(run)
    for entry in rec.checkpoints:
        if (work / "runs" / entry.file).exists():
            assert sha256(work / "runs" / entry.file) == entry.sha256, entry.file
    latest = steps[-1]
    assert rec.timesteps.current - latest <= FREQ, "at most one checkpoint interval is lost"

    # Retention: the newest KEEP checkpoints (one more if the kill came between a save and its pruning),
    # plus the one the keeper branch started from; everything in between is gone.
    assert first in steps, "a checkpoint another run branched from must be kept"
    newest = [s for s in steps if s != first]
    assert KEEP <= len(newest) <= KEEP + 1, steps
    assert newest == list(range(latest - (len(newest) - 1) * FREQ, latest + 1, FREQ)), steps
    assert record(keeper)["parent_checkpoint"]["path"] == f"{run.name}/checkpoints/ppo_mission_{first}_steps.zip"

    # Branching from the crashed run by name resumes from its latest recorded checkpoint: a kill between a file
    # landing and the record naming it leaves one newer file whose integrity nothing vouches for.
    recorded = {entry.step for entry in rec.checkpoints if CHECKPOINT_NAME.match(Path(entry.file).name)
                and (work / "runs" / entry.file).exists()}
    assert latest - max(recorded) in (0, FREQ), (latest, sorted(recorded))
    before = run_dirs(work / "runs")
    code, _, err = train_main(["--parent-checkpoint", run.name, "--branch-name", "resumed", "--timesteps", str(ROLLOUT),
                               "--n-envs", "4", "--no-progress", "--no-tensorboard"])
    assert code == 0, err
    resumed = only_new_run(work / "runs", before)
    resumed_rec = record(resumed)
    assert resumed_rec["parent_checkpoint"]["step"] == max(recorded)
    assert resumed_rec["timesteps"]["start"] == latest and resumed_rec["status"] == "finished"
    assert checkpoint_steps(resumed) == [latest + ROLLOUT]


def test_keep_checkpoints_keeps_the_newest(tmp_path, monkeypatch):
    work = make_workdir(tmp_path / "project")
    monkeypatch.chdir(work)
    code, _, err = train_main(["--timesteps", "1536", *TINY, "--no-tensorboard", "--checkpoint-freq", "256",
                               "--keep-checkpoints", "2", "--seed", "4"])
    assert code == 0, err
    (run,) = run_dirs(work / "runs")
    assert checkpoint_steps(run) == [1280, 1536]
    files = [e["file"] for e in record(run)["checkpoints"]]
    assert files == [f"{run.name}/checkpoints/ppo_mission_{s}_steps.zip" for s in (1280, 1536)] + \
        [f"{run.name}/final_model.zip"], "the record lists the model files that exist, no pruned ones"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_saves_a_final_checkpoint_and_marks_the_run_interrupted(tmp_path, sig, code):
    """Ctrl-C, and SIGTERM as schedulers send it (SIGHUP: the fault test), lose nothing."""
    work = make_workdir(tmp_path / "project")
    process = start_training(work, "interrupted", "--keep-checkpoints", "0")
    try:
        run = wait_for(lambda: the_run(work, "interrupted") if steps_on_disk(the_run(work, "interrupted")) else None,
                       process, "the first checkpoint")
        metrics = run / "metrics.jsonl"
        wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 3, process, "three rollouts")
        process.send_signal(sig)
        exit_code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = (work / "interrupted.log").read_text()
    assert exit_code == code, output
    assert "Traceback" not in output, output
    rec = record(run)
    assert rec["status"] == "interrupted" and rec["error"] == sig.name
    resume = next(line for line in output.splitlines() if line.startswith("Resume:"))
    assert (f"--parent-checkpoint {run.name} --branch-name resumed "
            f"--timesteps {rec['timesteps']['target'] - rec['timesteps']['current']}") in resume
    step = rec["timesteps"]["current"]
    assert step >= 3 * ROLLOUT
    assert f"step {step:,}" in output
    assert checkpoint_steps(run)[-1] == step
    entries = {e["file"]: e for e in rec["checkpoints"]}
    saved = entries[f"{run.name}/checkpoints/ppo_mission_{step}_steps.zip"]
    assert saved["step"] == step and saved["sha256"] == sha256(checkpoint_path(run, step))
    assert entries[f"{run.name}/final_model.zip"]["sha256"] == sha256(run / "final_model.zip")
    assert load_model(checkpoint_path(run, step)).num_timesteps == step
    assert load_model(run / "final_model.zip").num_timesteps == step



class PoisonAdvantages(BaseCallback):
    """From step `at` on, every rollout's advantages are NaN: the update's loss, gradients and then the
    parameters follow, as when training really diverges."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps >= self.at:
            self.model.rollout_buffer.advantages[:] = np.nan


@pytest.mark.parametrize(("n_envs", "batch", "compiled"), [(4, 256, True), (16, 1024, False)])
def test_a_diverged_update_fails_the_run_and_keeps_the_last_finite_checkpoint(tmp_path, monkeypatch, n_envs, batch,
                                                                              compiled):
    work = make_workdir(tmp_path / "project")
    monkeypatch.chdir(work)
    epochs = []
    real_epoch = ppo_module.kernel.ppo_epoch
    monkeypatch.setattr(ppo_module.kernel, "ppo_epoch", lambda *args: epochs.append(1) or real_epoch(*args))
    rollout = n_envs * 64
    settings = TrainSettings(timesteps=8 * rollout, n_envs=n_envs, seed=3, run_name="diverging", tensorboard=False,
                             progress_bar=False, checkpoint_freq=rollout, keep_checkpoints=None, imitation_samples=0,
                             hyperparameters={"n_steps": 64, "batch_size": batch, "net_arch": [32, 32]})
    poisoned = 2 * rollout
    with pytest.raises(DivergedError, match=f"diverged at step {poisoned}"):
        train(settings, extra_callbacks=[PoisonAdvantages(poisoned)])
    assert bool(epochs) == compiled, "the update ran through the path this case covers"
    (run,) = run_dirs(work / "runs")
    rec = record(run)
    assert rec["status"] == "failed" and f"diverged at step {poisoned}" in rec["error"]
    assert not (run / "final_model.zip").exists(), "a non-finite model is never saved"
    assert [e["step"] for e in rec["checkpoints"]] == checkpoint_steps(run) == [rollout, poisoned]
    last = load_model(checkpoint_path(run, poisoned))
    assert all(bool(torch.isfinite(p).all()) for p in last.policy.parameters())
    # A non-finite model (written by hand here: training never writes one) is refused with a clear message.
    with torch.no_grad():
        next(last.policy.parameters()).fill_(float("nan"))
    last.save(tmp_path / "nan_model.zip")
    with pytest.raises(MissionGymError, match="nan_model.zip: parameter .* is not finite"):
        ppo_module.load_model(tmp_path / "nan_model.zip")


def test_the_record_names_a_checkpoint_only_once_its_file_exists(tmp_path, monkeypatch):
    """A kill in the middle of writing a checkpoint (simulated: the write raises) leaves a record that lists
    only files that exist, so a run name resolves to the last checkpoint that landed."""
    work = make_workdir(tmp_path / "project")
    monkeypatch.chdir(work)
    real_write = tracker_module.atomic_write_bytes

    def dies_writing_the_second(path, data):
        if path.name == f"ppo_mission_{2 * ROLLOUT}_steps.zip":
            raise OSError("killed mid-write")
        real_write(path, data)

    monkeypatch.setattr(tracker_module, "atomic_write_bytes", dies_writing_the_second)
    settings = TrainSettings(timesteps=4 * ROLLOUT, n_envs=4, seed=3, run_name="midwrite", tensorboard=False,
                             progress_bar=False, checkpoint_freq=ROLLOUT, imitation_samples=0,
                             hyperparameters={"n_steps": 64, "batch_size": 256, "net_arch": [32, 32]})
    with pytest.raises(OSError, match="killed mid-write"):
        train(settings)
    (run,) = run_dirs(work / "runs")
    listed = [e["file"] for e in record(run)["checkpoints"]]
    assert listed == [f"{run.name}/checkpoints/ppo_mission_{ROLLOUT}_steps.zip"]
    assert all((work / "runs" / f).is_file() for f in listed)
    assert resolve_checkpoint(run.name, work / "runs") == checkpoint_path(run, ROLLOUT).resolve()


def test_a_stop_signal_ignored_before_training_stays_ignored():
    """`nohup` training ignores SIGHUP: closing its terminal must not stop it."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals(lambda name: pytest.fail(f"{name} reached the handler")):
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            assert callable(signal.getsignal(signal.SIGTERM))
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
    finally:
        signal.signal(signal.SIGHUP, previous)
