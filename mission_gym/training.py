"""Train PPO on the batched VecEnv into a run folder, fresh or branched from a parent checkpoint.

`plan_run` checks everything that can be wrong (config, names, parent checkpoint, its integrity, space
compatibility, hyperparameters a branch cannot change) before anything is created; `train` then creates
`runs/<name>/` and trains. A branch continues the parent's global timestep counter.
"""

import hashlib
import io
import json
import math
import os
import shutil
import socket
import time
import warnings
from collections import deque
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor

from mission_gym.config import CONFIG_FILES, MissionConfig, load_config
from mission_gym.errors import MissionGymError
from mission_gym.evaluation import run_episodes, summarize
from mission_gym.imitation import imitate, record_baseline
from mission_gym.policy import MissionPolicy
from mission_gym.ppo import LARGE_MINIBATCH, MissionPPO, load_model
from mission_gym.runs.checkpoints import prune_checkpoints, relative_to_runs, resolve_checkpoint, verify_checkpoint
from mission_gym.runs.compat import check_compatible
from mission_gym.runs.layout import RunPaths
from mission_gym.runs.naming import new_run_name, reserve_run_dir
from mission_gym.runs.record import (
    CheckpointEntry, ConfigRef, ParentCheckpoint, RunRecord, Spaces, Timesteps,
    atomic_write_bytes, git_info, load_record, save_record, utc_now,
)
from mission_gym.spaces import space_signature
from mission_gym.vec_env import MissionVecEnv, ScaledRewards

RECENT_EPISODES = 100
DASHBOARD_EVERY_S = 15.0

# Hyperparameters a branch inherits from its parent unless given again; `net_arch` cannot change on a branch.
PPO_HYPERPARAMETERS = ("learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range",
                       "ent_coef", "vf_coef", "max_grad_norm", "net_arch", "reward_scale")
# Returns here are in the hundreds; scaled by 0.01 they are near 1 (see docs/design.md, "Learning speed").
REWARD_SCALE = 0.01
# Runs recorded before reward_scale existed learned from unscaled rewards; their branches keep doing so.
LEGACY_DEFAULTS = {"reward_scale": 1.0}


class PPOHyperparameters(BaseModel):
    """PPO settings. Defaults are tuned for throughput on 2 CPU cores: many arenas, large minibatches, few
    epochs (SB3's default minibatch of 64 spends most of its time in per-batch overhead)."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(3e-4, gt=0, description="Adam learning rate")
    n_steps: int = Field(64, gt=0, description="decisions per arena per rollout")
    batch_size: int = Field(4096, gt=1, description="minibatch size")
    n_epochs: int = Field(4, gt=0, description="passes over each rollout")
    gamma: float = Field(0.99, gt=0, le=1, description="discount factor")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    clip_range: float = Field(0.2, gt=0, description="PPO clip range")
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus coefficient (0: the imitation warm start already explores; a bonus diffuses it)")
    vf_coef: float = Field(0.5, ge=0, description="value loss coefficient")
    max_grad_norm: float = Field(0.5, gt=0, description="gradient clipping norm")
    net_arch: list[int] = Field(default_factory=lambda: [128, 128], min_length=1, description="hidden layer sizes (actor and critic each)")
    reward_scale: float = Field(REWARD_SCALE, gt=0, description="factor on the rewards PPO learns from (episode "
                                "returns are logged unscaled); keeps value targets near 1 so the value loss does "
                                "not own the clipped gradient")


class TrainSettings(BaseModel):
    """Everything one training run needs. Hyperparameters left as None take the default for a fresh run and
    the parent's value for a branch."""

    model_config = ConfigDict(extra="forbid")

    timesteps: int = Field(2_000_000, gt=0, description="timesteps this run trains (a branch adds them to the parent's)")
    n_envs: int = Field(256, gt=0, le=4096, description="arenas stepped together")
    seed: int | None = Field(None, ge=0, description="seed of the arenas and of PPO (random when not given)")
    run_name: str | None = Field(None, description="name of a fresh run (a timestamp is appended)")
    notes: str = Field("", description="free text stored with the run")
    parent_checkpoint: str | None = Field(None, description="checkpoint path (.zip optional) or run name to branch from")
    branch_name: str | None = Field(None, description="name of the branch (a timestamp is appended)")
    config_dir: Path = Field(Path("configs"), description="config directory to train on")
    runs_root: Path = Field(Path("runs"), description="folder holding every run")
    checkpoint_freq: int = Field(100_000, gt=0, description="timesteps between checkpoints")
    keep_checkpoints: int | None = Field(5, ge=1, description="newest checkpoints kept (plus any a child branched from); None keeps all")
    eval_freq: int | None = Field(None, gt=0, description="timesteps between evaluations on the eval seeds (None: off)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="torch device; auto picks CUDA when present")
    torch_threads: int | None = Field(None, gt=0, description="torch CPU threads for updates (default: every core "
                                      "for minibatches of 1024+, else 1, which is faster for small batches)")
    imitation_samples: int = Field(131_072, ge=0, description="scripted-baseline decisions a fresh policy imitates "
                                   "before PPO (at most --timesteps; 0: off; branches start from their parent)")
    tensorboard: bool = Field(True, description="write TensorBoard logs into the run folder")
    progress_bar: bool = Field(True, description="show a progress bar")
    hyperparameters: dict[str, Any] = Field(default_factory=dict, description="PPO settings given explicitly (see PPOHyperparameters)")


class RunPlan(BaseModel):
    """A checked plan: what `train` will create. Building it creates nothing."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    settings: TrainSettings
    run_name: str
    config: MissionConfig
    spaces: dict[str, Any]
    hyperparameters: PPOHyperparameters
    device: Literal["cpu", "cuda"]
    parent_path: Path | None = None
    parent: ParentCheckpoint | None = None
    parent_record: RunRecord | None = None

    @property
    def run_dir(self) -> Path:
        """Where the run will live (a numeric suffix is added if the name is taken when it starts)."""
        return self.settings.runs_root / self.run_name

    @property
    def start_step(self) -> int:
        """Global timestep the run starts from (the parent checkpoint's step, or 0)."""
        return self.parent.step if self.parent else 0


def plan_run(settings: TrainSettings) -> RunPlan:
    """Check a training request and decide its name, parent and hyperparameters; create nothing.

    Raises:
        MissionGymError: bad config (ConfigError), bad name (RunNameError), missing parent
            (CheckpointNotFoundError), changed parent (CheckpointIntegrityError), incompatible spaces
            (CompatibilityError), or hyperparameters a branch cannot change.
    """
    config = load_config(settings.config_dir)
    spaces = space_signature(config)
    parent_path = parent = parent_record = None
    if settings.parent_checkpoint is not None:
        parent_path = resolve_checkpoint(settings.parent_checkpoint, settings.runs_root)
        entry = verify_checkpoint(parent_path, settings.runs_root)
        parent_record = load_record(settings.runs_root / entry.file.split("/", 1)[0])
        check_compatible(parent_record.spaces, spaces, parent_run=parent_record.run_name)
        parent = ParentCheckpoint(path=entry.file, step=entry.step, sha256=entry.sha256)
    run_name = new_run_name(settings.runs_root, run_name=settings.run_name, branch_name=settings.branch_name,
                            is_branch=parent is not None)
    hyperparameters = _hyperparameters(settings, parent_record)
    if settings.n_envs * hyperparameters.n_steps < 2:  # SB3 asserts this only once the run folder exists
        raise MissionGymError(f"--n-envs {settings.n_envs} x --n-steps {hyperparameters.n_steps} gives rollouts of "
                              "1 timestep; PPO needs at least 2: raise --n-envs or --n-steps")
    return RunPlan(settings=settings, run_name=run_name, config=config, spaces=spaces,
                   hyperparameters=hyperparameters, device=_device(settings.device),
                   parent_path=parent_path, parent=parent, parent_record=parent_record)


def _hyperparameters(settings: TrainSettings, parent: RunRecord | None) -> PPOHyperparameters:
    unknown = sorted(set(settings.hyperparameters) - set(PPO_HYPERPARAMETERS))
    if unknown:
        raise MissionGymError(f"unknown PPO hyperparameter(s) {unknown}; known: {list(PPO_HYPERPARAMETERS)}")
    recorded = {**LEGACY_DEFAULTS, **parent.hyperparameters} if parent else {}
    inherited = {k: v for k, v in recorded.items() if k in PPO_HYPERPARAMETERS}
    given = settings.hyperparameters
    if parent and "net_arch" in given and "net_arch" in inherited and list(given["net_arch"]) != inherited["net_arch"]:
        raise MissionGymError(
            f"--net-arch {given['net_arch']} differs from the parent's network {inherited['net_arch']} "
            f"(run {parent.run_name}); a branch keeps its parent's network: drop --net-arch, or train from scratch"
        )
    try:
        chosen = PPOHyperparameters(**{**inherited, **given})
    except ValueError as error:
        raise MissionGymError(f"invalid PPO hyperparameters: {error}") from None
    rollout = settings.n_envs * chosen.n_steps
    if "batch_size" not in given and chosen.batch_size > rollout:
        # A default or inherited minibatch larger than the rollout (e.g. --n-envs 16) becomes the whole rollout;
        # the value used is recorded and printed. One given explicitly is kept, as the user asked.
        chosen = chosen.model_copy(update={"batch_size": rollout})
    return chosen


def _device(requested: str) -> Literal["cpu", "cuda"]:
    if requested == "cuda" and not torch.cuda.is_available():
        raise MissionGymError("--device cuda was requested but torch sees no CUDA device; use --device auto or cpu")
    return "cuda" if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()) else "cpu"


def train(settings: TrainSettings, plan: RunPlan | None = None,
          extra_callbacks: list[BaseCallback] | None = None) -> RunRecord:
    """Create the run folder and train; returns the final run record (status finished or interrupted).

    Ctrl-C (or any other interruption that is not an error, such as an orchestrator terminating the run)
    saves a checkpoint at the current step and marks the run interrupted; an error marks it failed. Both
    re-raise, except Ctrl-C, which returns the interrupted record.
    """
    plan = plan or plan_run(settings)
    run_dir = reserve_run_dir(settings.runs_root, plan.run_name)
    record = _initial_record(plan, run_dir.name)
    paths = RunPaths(run_dir)
    shutil.copytree(settings.config_dir, paths.config_snapshot, ignore=_only_config_files)
    paths.checkpoints_dir.mkdir()
    save_record(run_dir, record)
    tracker = RunTracker(run_dir, record, settings)
    try:
        model = _build_model(plan, run_dir)
        model.learn(total_timesteps=settings.timesteps, callback=[tracker, *(extra_callbacks or [])], reset_num_timesteps=False,
                    progress_bar=settings.progress_bar, tb_log_name="ppo")
        tracker.finish(model, "finished")
    except Exception as error:
        tracker.fail(error)
        raise
    except BaseException as interruption:  # Ctrl-C, or an orchestrator terminating the run: keep what was learned
        tracker.finish(getattr(tracker, "model", None), "interrupted")
        if not isinstance(interruption, KeyboardInterrupt):
            raise
    return tracker.record


def _only_config_files(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n not in CONFIG_FILES]


def _initial_record(plan: RunPlan, run_name: str) -> RunRecord:
    now = utc_now()
    parent_record = plan.parent_record
    return RunRecord(
        run_name=run_name, created_at=now, heartbeat_at=now, status="running",
        parent_run=parent_record.run_name if parent_record else None, parent_checkpoint=plan.parent,
        root_ancestor=parent_record.root_ancestor if parent_record else run_name,
        branch_name=plan.settings.branch_name, notes=plan.settings.notes,
        git=git_info(Path(__file__).resolve().parent.parent),
        config=ConfigRef(hash=plan.config.config_hash, files=plan.config.file_checksums),
        spaces=Spaces(**plan.spaces), device=plan.device,
        hyperparameters={**plan.hyperparameters.model_dump(),
                         "imitation_samples": 0 if plan.parent else min(plan.settings.imitation_samples, plan.settings.timesteps)},
        timesteps=Timesteps(start=plan.start_step, target=plan.start_step + plan.settings.timesteps, current=plan.start_step),
        pid=os.getpid(), host=socket.gethostname(),
    )


def _update_threads(requested: int | None, batch_size: int) -> int:
    """Measured on 2 cores: a second OpenMP thread makes a 64-row forward pass ~10x slower but a 2048-row
    update ~5 % faster, so extra threads only pay for large minibatches."""
    return requested or ((os.cpu_count() or 1) if batch_size >= LARGE_MINIBATCH else 1)


def _build_model(plan: RunPlan, run_dir: Path) -> PPO:
    settings, hp = plan.settings, plan.hyperparameters
    torch.set_num_threads(_update_threads(settings.torch_threads, hp.batch_size))
    # The policy's distributions come from network outputs, valid by construction; checking their arguments
    # on every construction cost a quarter of a small-minibatch update here (measured).
    torch.distributions.Distribution.set_default_validate_args(False)
    env = ScaledRewards(VecMonitor(MissionVecEnv(settings.n_envs, plan.config, seed=settings.seed)), hp.reward_scale)
    tensorboard = str(RunPaths(run_dir).tensorboard) if settings.tensorboard else None
    ppo_args = hp.model_dump(exclude={"net_arch", "reward_scale"})
    if plan.parent_path is not None:
        # Loading with keyword arguments replaces the saved hyperparameters and rebuilds the rollout buffer and
        # learning-rate schedule, so new values given for the branch take effect; num_timesteps carries over.
        model = load_model(plan.parent_path, env=env, device=plan.device, tensorboard_log=tensorboard,
                           seed=settings.seed, **ppo_args)
        model.num_timesteps = plan.start_step
        return model
    # A fused Adam updates every parameter in one kernel instead of one small op per tensor.
    model = MissionPPO(MissionPolicy, env, device=plan.device, tensorboard_log=tensorboard, seed=settings.seed,
                       policy_kwargs={"net_arch": list(hp.net_arch), "optimizer_kwargs": {"fused": True}},
                       verbose=0, **ppo_args)
    samples = min(settings.imitation_samples, settings.timesteps)
    if samples:
        demos = record_baseline(plan.config, samples, settings.n_envs, hp.gamma, settings.seed, hp.reward_scale)
        imitate(model, demos, seed=settings.seed or 0)
    return model


class RunTracker(BaseCallback):
    """Keeps the run folder true while PPO learns: episode statistics (metrics.jsonl and TensorBoard),
    heartbeat, atomic checkpoints with their SHA-256 in the run record, retention, and the dashboard."""

    def __init__(self, run_dir: Path, record: RunRecord, settings: TrainSettings) -> None:
        super().__init__()
        self.run_dir, self.record, self.settings = run_dir, record, settings
        self.paths = RunPaths(run_dir)
        self.returns: deque[float] = deque(maxlen=RECENT_EPISODES)
        self.lengths: deque[int] = deque(maxlen=RECENT_EPISODES)
        self.captures: deque[float] = deque(maxlen=RECENT_EPISODES)
        self.episodes = 0
        self._next_checkpoint = record.timesteps.start + settings.checkpoint_freq
        self._next_eval = record.timesteps.start + (settings.eval_freq or 0)
        self._last_dashboard = 0.0
        self._started = time.monotonic()
        self._metrics = self.paths.metrics.open("a", encoding="utf-8")
        self._update_threads = torch.get_num_threads()

    def _on_rollout_start(self) -> None:
        # Stepping arenas feeds the policy small batches, where a second OpenMP thread costs ~10x more than it
        # saves (measured: 2.8 ms vs 0.3 ms per 64-row forward on 2 cores); updates use every thread.
        self._update_threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.episodes += 1
                self.returns.append(float(info["episode"]["r"]))
                self.lengths.append(int(info["episode"]["l"]))
                self.captures.append(1.0 if info["outcome"] == "captured" else 0.0)
        if self.num_timesteps >= self._next_checkpoint:
            self._save_checkpoint()
            self._next_checkpoint = (self.num_timesteps // self.settings.checkpoint_freq + 1) * self.settings.checkpoint_freq
        return True

    def _on_rollout_end(self) -> None:
        torch.set_num_threads(self._update_threads)
        row = self._metrics_row()
        if self.settings.eval_freq and self.num_timesteps >= self._next_eval:
            row.update(self._evaluate())
            self._next_eval = self.num_timesteps + self.settings.eval_freq
        for key, value in row.items():
            if key.startswith(("ep_", "capture_rate", "eval_")):
                self.logger.record(f"mission/{key}", value)
        self._metrics.write(_json_line(row))
        self._metrics.flush()
        self._heartbeat()

    def _metrics_row(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self._started
        row: dict[str, Any] = {
            "timestep": int(self.num_timesteps), "time": utc_now().isoformat(), "episodes": self.episodes,
            "fps": (self.num_timesteps - self.record.timesteps.start) / max(elapsed, 1e-9),
        }
        if self.returns:
            row.update(ep_return_mean=float(np.mean(self.returns)), ep_len_mean=float(np.mean(self.lengths)),
                       capture_rate=float(np.mean(self.captures)))
        for key, value in self.logger.name_to_value.items():
            if key.startswith("train/"):
                row[key.replace("/", "_")] = float(value)
        return row

    def _evaluate(self) -> dict[str, float]:
        config = load_config(self.paths.config_snapshot)
        results = run_episodes(self.model, config, config.eval_seeds, deterministic=True)
        summary = summarize(results)
        return {"eval_capture_rate": summary["capture_rate"], "eval_mean_return": summary["mean_return"]}

    def _heartbeat(self) -> None:
        self.record = self.record.model_copy(update={
            "heartbeat_at": utc_now(),
            "timesteps": self.record.timesteps.model_copy(update={"current": int(self.num_timesteps)}),
        })
        save_record(self.run_dir, self.record)
        if time.monotonic() - self._last_dashboard >= DASHBOARD_EVERY_S:
            self._refresh_dashboard()

    def _refresh_dashboard(self) -> None:
        from mission_gym.dashboard import generate_unified_dashboard  # the dashboard reads run records

        self._last_dashboard = time.monotonic()
        try:
            generate_unified_dashboard(self.settings.runs_root)
        except (OSError, MissionGymError) as error:  # the page is a view: it must never stop training
            warnings.warn(f"dashboard not refreshed: {error}", stacklevel=1)

    def _save_checkpoint(self, model: PPO | None = None) -> None:
        model = model or self.model
        step = int(model.num_timesteps)
        self._save_model(model, self.paths.checkpoint(step), step)
        if self.settings.keep_checkpoints is not None:
            self._prune()

    def _save_model(self, model: PPO, path: Path, step: int) -> None:
        """Record a model file (with the SHA-256 of its bytes) in the run record, then write it atomically.

        The record comes first: a crash in between leaves an entry whose file never appeared (branching by
        run name then takes the previous checkpoint), never a checkpoint file the record does not list,
        which branching would refuse as unverifiable.
        """
        buffer = io.BytesIO()
        model.save(buffer)
        data = buffer.getvalue()
        entry = CheckpointEntry(file=relative_to_runs(path, self.settings.runs_root), step=step,
                                sha256=hashlib.sha256(data).hexdigest())
        entries = [e for e in self.record.checkpoints if e.file != entry.file] + [entry]
        self.record = self.record.model_copy(update={"checkpoints": entries})
        save_record(self.run_dir, self.record)
        atomic_write_bytes(path, data)

    def _prune(self) -> None:
        deleted = {relative_to_runs(p, self.settings.runs_root) for p in
                   prune_checkpoints(self.run_dir, self.settings.keep_checkpoints, self.settings.runs_root)}
        if deleted:
            kept = [e for e in self.record.checkpoints if e.file not in deleted]
            self.record = self.record.model_copy(update={"checkpoints": kept})
            save_record(self.run_dir, self.record)

    def finish(self, model: PPO | None, status: Literal["finished", "interrupted"]) -> None:
        """Save the last checkpoint and final model, and close the record with `status`."""
        if model is not None:
            step = int(model.num_timesteps)
            if not self.paths.checkpoint(step).is_file():
                self._save_checkpoint(model)
            self._save_model(model, self.paths.final_model, step)
        self._close(status)

    def fail(self, error: BaseException) -> None:
        """Mark the run failed with the error's message."""
        self._close("failed", error=f"{type(error).__name__}: {error}")

    def _close(self, status: str, error: str | None = None) -> None:
        self._metrics.close()
        model = getattr(self, "model", None)
        current = int(model.num_timesteps) if model is not None else self.record.timesteps.current
        self.record = self.record.model_copy(update={
            "status": status, "error": error, "heartbeat_at": utc_now(),
            "timesteps": self.record.timesteps.model_copy(update={"current": current}),
        })
        save_record(self.run_dir, self.record)
        self._refresh_dashboard()


def _json_line(row: dict[str, Any]) -> str:
    """One metrics line; a non-finite number (a diverged loss) is written as null, keeping the file valid JSON."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
    return json.dumps(clean, allow_nan=False, separators=(",", ":")) + "\n"

