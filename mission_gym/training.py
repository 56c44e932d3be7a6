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
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecMonitor

from mission_gym.config import CONFIG_FILES, MissionConfig, load_config
from mission_gym.entity_policy import DEFAULT_NET_ARCH as ENTITY_NET_ARCH, EntityPolicy, entity_layout
from mission_gym.errors import MissionGymError
from mission_gym.evaluation import run_episodes, summarize
from mission_gym.guards import DivergedError, TerminationRequested, check_finite, stop_signals
from mission_gym.imitation import EPOCHS as IMITATION_EPOCHS, imitate, record_baseline
from mission_gym.policy import MissionPolicy
from mission_gym.ppo import LARGE_MINIBATCH, MissionPPO, load_model
from mission_gym.progress import (
    COMPILING_NOTE, ProgressDisplay, TrainingProgress, kernels_compiled, training_summary,
)
from mission_gym.runs.checkpoints import (
    check_model_archive, prune_checkpoints, relative_to_runs, resolve_checkpoint, sweep_temp_files,
    verify_checkpoint,
)
from mission_gym.runs.compat import CompatReport, check_compatible
from mission_gym.runs.layout import RunPaths
from mission_gym.runs.naming import new_run_name, reserve_run_dir
from mission_gym.runs.record import (
    CheckpointEntry, ConfigRef, ParentCheckpoint, PolicyKind, RunRecord, Spaces, Timesteps, Transfer,
    atomic_write_bytes, git_info, load_record, process_start_time, save_record, utc_now,
)
from mission_gym.spaces import space_signature
from mission_gym.vec_env import MissionVecEnv, ScaledRewards
from mission_gym.yaml_io import describe_validation_error

RECENT_EPISODES = 100
DASHBOARD_EVERY_S = 15.0

# Bounds on what the code can hold: SB3 seeds numpy's legacy generator (seeds < 2**32), step counters are
# int64 (TensorBoard, checkpoint names), and a rollout or imitation set is held in memory at once (2**24 timesteps
# of float32 observations is a few GB).
MAX_SEED = 2**32 - 1
MAX_TIMESTEPS = 10**15
MAX_SAMPLES = 2**24

# Hyperparameters a branch inherits from its parent unless given again; the network (`policy`, `net_arch`)
# cannot change on a branch.
PPO_HYPERPARAMETERS = ("learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range",
                       "ent_coef", "vf_coef", "max_grad_norm", "net_arch", "policy", "reward_scale")
_NETWORK = ("policy", "net_arch")
DEFAULT_NET_ARCH: dict[str, list[int]] = {"mlp": [128, 128], "entity": ENTITY_NET_ARCH}
# Returns here are in the hundreds; scaled by 0.01 they are near 1 (see docs/design.md, "Learning speed").
REWARD_SCALE = 0.01
# Runs recorded before reward_scale existed learned from unscaled rewards; their branches keep doing so.
LEGACY_DEFAULTS = {"reward_scale": 1.0}


class PPOHyperparameters(BaseModel):
    """PPO settings. Defaults are tuned for throughput on 2 CPU cores: many arenas, large minibatches, few
    epochs (SB3's default minibatch of 64 spends most of its time in per-batch overhead)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    learning_rate: float = Field(3e-4, gt=0, description="Adam learning rate")
    n_steps: int = Field(64, gt=0, le=MAX_SAMPLES, description="decisions per arena per rollout")
    batch_size: int = Field(4096, gt=1, description="minibatch size")
    n_epochs: int = Field(4, gt=0, le=10_000, description="passes over each rollout")
    gamma: float = Field(0.99, gt=0, le=1, description="discount factor")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    clip_range: float = Field(0.2, gt=0, description="PPO clip range")
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus coefficient (0: the imitation warm start already explores; a bonus diffuses it)")
    vf_coef: float = Field(0.5, ge=0, description="value loss coefficient")
    max_grad_norm: float = Field(0.5, gt=0, description="gradient clipping norm")
    net_arch: list[Annotated[int, Field(gt=0, le=65_536)]] | None = Field(None, min_length=1, description="hidden layer sizes (mlp: actor and critic "
                                       "each, 128,128 by default; entity: the per-attacker and value heads, 64)")
    policy: PolicyKind = Field("mlp", description="mlp: one network over the whole observation; entity: weights "
                               "shared per unit kind, so a branch may change the unit counts")
    reward_scale: float = Field(REWARD_SCALE, gt=0, le=1e6, allow_inf_nan=False,
                                description="factor on the rewards PPO learns from (episode returns are logged "
                                "unscaled); keeps value targets near 1 so the value loss does not own the clipped "
                                "gradient")

    @model_validator(mode="after")
    def _default_network(self) -> "PPOHyperparameters":
        if self.net_arch is None:
            self.net_arch = list(DEFAULT_NET_ARCH[self.policy])
        return self


class TrainSettings(BaseModel):
    """Everything one training run needs. Hyperparameters left as None take the default for a fresh run and
    the parent's value for a branch."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    timesteps: int = Field(2_000_000, gt=0, le=MAX_TIMESTEPS, description="timesteps this run trains (a branch adds them to the parent's)")
    n_envs: int = Field(256, gt=0, le=4096, description="arenas stepped together")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="seed of the arenas and of PPO (random when not given)")
    run_name: str | None = Field(None, description="name of a fresh run (a timestamp is appended)")
    notes: str = Field("", description="free text stored with the run")
    parent_checkpoint: str | None = Field(None, description="checkpoint path (.zip optional) or run name to branch from")
    branch_name: str | None = Field(None, description="name of the branch (a timestamp is appended)")
    config_dir: Path = Field(Path("configs"), description="config directory to train on")
    runs_root: Path = Field(Path("runs"), description="folder holding every run")
    checkpoint_freq: int = Field(100_000, gt=0, le=MAX_TIMESTEPS, description="timesteps between checkpoints")
    keep_checkpoints: int | None = Field(5, ge=1, le=MAX_TIMESTEPS, description="newest checkpoints kept (plus any a child branched from); None keeps all")
    eval_freq: int | None = Field(None, gt=0, le=MAX_TIMESTEPS, description="timesteps between evaluations on the eval seeds (None: off)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="torch device; auto picks CUDA when present")
    torch_threads: int | None = Field(None, gt=0, le=1024, description="torch CPU threads for updates (default: every core "
                                      "for minibatches of 1024+, else 1, which is faster for small batches)")
    imitation_samples: int = Field(131_072, ge=0, le=MAX_SAMPLES, description="scripted-baseline decisions a fresh policy imitates "
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
    compat: CompatReport | None = None

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
    parent_path = parent = parent_record = compat = None
    if settings.parent_checkpoint is not None:
        parent_path = resolve_checkpoint(settings.parent_checkpoint, settings.runs_root)
        entry = verify_checkpoint(parent_path, settings.runs_root)
        parent_record = load_record(settings.runs_root / entry.file.split("/", 1)[0])
        compat = check_compatible(parent_record.spaces, spaces, parent_run=parent_record.run_name,
                                  config_dir=settings.config_dir, policy=parent_record.policy)
        parent = ParentCheckpoint(path=entry.file, step=entry.step, sha256=entry.sha256)
    run_name = new_run_name(settings.runs_root, run_name=settings.run_name, branch_name=settings.branch_name,
                            is_branch=parent is not None)
    hyperparameters = _hyperparameters(settings, parent_record)
    if settings.n_envs * hyperparameters.n_steps < 2:  # SB3 asserts this only once the run folder exists
        raise MissionGymError(f"--n-envs {settings.n_envs} x --n-steps {hyperparameters.n_steps} gives rollouts of "
                              "1 timestep; PPO needs at least 2: raise --n-envs or --n-steps")
    if parent_path is not None:
        check_model_archive(parent_path)  # last: reading the whole archive costs more than every check above
    return RunPlan(settings=settings, run_name=run_name, config=config, spaces=spaces,
                   hyperparameters=hyperparameters, device=_device(settings.device),
                   parent_path=parent_path, parent=parent, parent_record=parent_record, compat=compat)


def _hyperparameters(settings: TrainSettings, parent: RunRecord | None) -> PPOHyperparameters:
    unknown = sorted(set(settings.hyperparameters) - set(PPO_HYPERPARAMETERS))
    if unknown:
        raise MissionGymError(f"unknown PPO hyperparameter(s) {unknown}; known: {list(PPO_HYPERPARAMETERS)}")
    recorded = {**LEGACY_DEFAULTS, **parent.hyperparameters} if parent else {}
    inherited = {k: v for k, v in recorded.items() if k in PPO_HYPERPARAMETERS}
    if parent:
        inherited["policy"] = parent.policy
    given = settings.hyperparameters
    for key in _NETWORK:
        if parent and key in given and key in inherited and given[key] != inherited[key]:
            flag = "--" + key.replace("_", "-")
            raise MissionGymError(
                f"{flag} {given[key]} differs from the parent's {inherited[key]} (run {parent.run_name}); a branch "
                f"keeps its parent's network: drop {flag}, or train from scratch"
            )
    try:
        chosen = PPOHyperparameters(**{**inherited, **given})
    except ValidationError as error:
        raise MissionGymError(f"invalid PPO hyperparameters: {describe_validation_error(error)}") from None
    rollout = settings.n_envs * chosen.n_steps
    if rollout > MAX_SAMPLES:
        raise MissionGymError(f"--n-envs {settings.n_envs} x --n-steps {chosen.n_steps} gives rollouts of {rollout:,} "
                              f"timesteps, more than the {MAX_SAMPLES:,} held in memory at once; lower either")
    if "batch_size" in given and chosen.batch_size > rollout:
        raise MissionGymError(f"--batch-size {chosen.batch_size} is larger than the rollout: --n-envs {settings.n_envs} x "
                              f"--n-steps {chosen.n_steps} = {rollout} timesteps; give --batch-size {rollout} or less")
    if chosen.batch_size > rollout:
        # A default or inherited minibatch larger than the rollout (e.g. --n-envs 16) becomes the whole rollout;
        # the value used is recorded and printed. One given explicitly is refused above: it cannot be honoured.
        chosen = chosen.model_copy(update={"batch_size": rollout})
    return chosen


def _device(requested: str) -> Literal["cpu", "cuda"]:
    if requested == "cuda" and not torch.cuda.is_available():
        raise MissionGymError("--device cuda was requested but torch sees no CUDA device; use --device auto or cpu")
    return "cuda" if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()) else "cpu"


def train(settings: TrainSettings, plan: RunPlan | None = None,
          extra_callbacks: list[BaseCallback] | None = None,
          on_created: Callable[[Path], None] | None = None) -> RunRecord:
    """Create the run folder and train; returns the final run record (status finished or interrupted).

    `on_created(run_dir)` is called once the folder exists: its name may differ from the plan's when another
    run took that name in the same second. Ctrl-C, SIGTERM and SIGHUP end the current update, save a
    checkpoint at the current step, write final_model.zip and mark the run interrupted with the signal's name
    as its `error`; they return the record. Any other interruption (an orchestrator cancelling a thread)
    does the same and re-raises. An error, a diverged model included, marks the run failed and re-raises.
    """
    plan = plan or plan_run(settings)
    if plan.parent_record is not None and not plan.parent_record.is_live():
        sweep_temp_files(settings.runs_root / plan.parent_record.run_name)  # resuming a dead run: its leftovers
    run_dir = reserve_run_dir(settings.runs_root, plan.run_name)
    paths = RunPaths(run_dir)
    tracker = RunTracker(run_dir, _initial_record(plan, run_dir.name), settings)
    display = ProgressDisplay(bars=settings.progress_bar)
    progress = TrainingProgress(display, plan.start_step, plan.start_step + settings.timesteps, tracker)
    with stop_signals(tracker.request_stop):
        try:
            shutil.copytree(settings.config_dir, paths.config_snapshot, ignore=_only_config_files)
            paths.checkpoints_dir.mkdir()
            save_record(run_dir, tracker.record)
            if on_created is not None:
                on_created(run_dir)
            if not kernels_compiled():
                display.note(COMPILING_NOTE)
            model = _build_model(plan, run_dir, display)
            try:
                model.learn(total_timesteps=settings.timesteps, callback=[tracker, progress, *(extra_callbacks or [])],
                            reset_num_timesteps=False)
            finally:
                progress.close()  # before any message: the bar owns the terminal's last lines
            tracker.finish(model, "interrupted" if tracker.stop_reason else "finished")
        except Exception as error:
            tracker.fail(error)
            raise
        except BaseException as interruption:  # Ctrl-C, or an orchestrator terminating the run: keep what was learned
            tracker.stop_reason = tracker.stop_reason or _signal_name(interruption)
            tracker.finish(getattr(tracker, "model", None), "interrupted")
            display.note(_summary(tracker, plan))
            if not isinstance(interruption, KeyboardInterrupt):
                raise
            return tracker.record
    display.note(_summary(tracker, plan))
    return tracker.record


def _signal_name(interruption: BaseException) -> str | None:
    if isinstance(interruption, TerminationRequested):
        return interruption.signal_name
    return "SIGINT" if isinstance(interruption, KeyboardInterrupt) else None


def _summary(tracker: "RunTracker", plan: RunPlan) -> str:
    capture = float(np.mean(tracker.captures)) if tracker.captures else None
    s = plan.settings
    return training_summary(tracker.record, s.runs_root, capture, s.config_dir, s.n_envs)


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
        spaces=Spaces(**plan.spaces), device=plan.device, transfer=_transfer(plan),
        hyperparameters={**plan.hyperparameters.model_dump(),
                         "imitation_samples": 0 if plan.parent else min(plan.settings.imitation_samples, plan.settings.timesteps)},
        timesteps=Timesteps(start=plan.start_step, target=plan.start_step + plan.settings.timesteps, current=plan.start_step),
        pid=os.getpid(), host=socket.gethostname(), process_started_at=process_start_time(os.getpid()),
    )


def _transfer(plan: RunPlan) -> Transfer | None:
    """What a branch across unit counts records: the change, and the parent's signature beside its own."""
    if plan.compat is None or not plan.compat.by_transfer or plan.parent_record is None:
        return None
    parent_spaces = plan.parent_record.spaces
    return Transfer(policy="entity", changes=list(plan.compat.transfer_changes),
                    from_counts=_unit_counts(parent_spaces.counts), to_counts=_unit_counts(plan.spaces["counts"]),
                    parent_spaces=parent_spaces)


def _unit_counts(counts: dict[str, Any]) -> dict[str, Any]:
    return {side: counts.get(side) for side in ("attackers", "defenders")}


def _update_threads(requested: int | None, batch_size: int) -> int:
    """Measured on 2 cores: a second OpenMP thread makes a 64-row forward pass ~10x slower but a 2048-row
    update ~5 % faster, so extra threads only pay for large minibatches."""
    return requested or ((os.cpu_count() or 1) if batch_size >= LARGE_MINIBATCH else 1)


def _build_model(plan: RunPlan, run_dir: Path, display: ProgressDisplay) -> PPO:
    settings, hp = plan.settings, plan.hyperparameters
    torch.set_num_threads(_update_threads(settings.torch_threads, hp.batch_size))
    # The policy's distributions come from network outputs, valid by construction; checking their arguments
    # on every construction cost a quarter of a small-minibatch update here (measured).
    torch.distributions.Distribution.set_default_validate_args(False)
    env = ScaledRewards(VecMonitor(MissionVecEnv(settings.n_envs, plan.config, seed=settings.seed)), hp.reward_scale)
    ppo_args = hp.model_dump(exclude={*_NETWORK, "reward_scale"})
    if plan.parent_path is not None:
        # Loading with keyword arguments replaces the saved hyperparameters and rebuilds the rollout buffer and
        # learning-rate schedule, so new values given for the branch take effect; num_timesteps carries over.
        # An entity policy is rebuilt for this config's units (a transfer branch) with the parent's weights.
        model = load_model(plan.parent_path, plan.config, env=env, device=plan.device, seed=settings.seed, **ppo_args)
        model.num_timesteps = plan.start_step
        return _log_to_tensorboard(model, run_dir, settings.tensorboard)
    # A fused Adam updates every parameter in one kernel instead of one small op per tensor.
    policy_kwargs: dict[str, Any] = {"net_arch": list(hp.net_arch or []), "optimizer_kwargs": {"fused": True}}
    if hp.policy == "entity":
        policy_kwargs["layout"] = entity_layout(plan.config)
    model = MissionPPO(EntityPolicy if hp.policy == "entity" else MissionPolicy, env, device=plan.device,
                       seed=settings.seed, policy_kwargs=policy_kwargs, verbose=0, **ppo_args)
    samples = min(settings.imitation_samples, settings.timesteps)
    if samples:
        # One unit of the bar per pass: the recording, then each epoch of fitting.
        with display.task(f"imitating the scripted baseline: {samples:,} decisions", 1 + IMITATION_EPOCHS) as advance:
            demos = record_baseline(plan.config, samples, settings.n_envs, hp.gamma, settings.seed,
                                    hp.reward_scale, progress=advance)
            imitate(model, demos, seed=settings.seed or 0, progress=advance)
    return _log_to_tensorboard(model, run_dir, settings.tensorboard)


def _log_to_tensorboard(model: PPO, run_dir: Path, enabled: bool) -> PPO:
    """Write TensorBoard events straight into the run's folder: `tensorboard --logdir runs` then names each
    run after its folder (SB3's own logger would add a `ppo_1` level under it)."""
    if enabled:
        model.set_logger(configure(str(RunPaths(run_dir).tensorboard), ["tensorboard"]))
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
        self.stop_reason: str | None = None  # the signal that asked training to stop
        self._learning = False

    def request_stop(self, signal_name: str) -> None:
        """A termination signal arrived: once PPO is learning, stop at the next timestep (the update under
        way completes, nothing is lost); before that there is nothing to keep, so stop at once."""
        self.stop_reason = signal_name
        if not self._learning:
            raise TerminationRequested(signal_name)

    def _on_training_start(self) -> None:
        self._learning = True

    def _on_rollout_start(self) -> None:
        check_finite(self.model, int(self.num_timesteps))  # after each update, before a checkpoint can save it
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
        return self.stop_reason is None

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
        """Write a model file atomically, then record it (with the SHA-256 of its bytes) in the run record.

        The file comes first, so the record only ever names files that exist: a crash in between leaves a
        checkpoint the record does not list, which a run name never resolves to (see `run_model`). A model
        holding a non-finite number is never written (DivergedError).
        """
        check_finite(model, step)
        buffer = io.BytesIO()
        model.save(buffer)
        data = buffer.getvalue()
        entry = CheckpointEntry(file=relative_to_runs(path, self.settings.runs_root), step=step,
                                sha256=hashlib.sha256(data).hexdigest())
        atomic_write_bytes(path, data)
        entries = [e for e in self.record.checkpoints if e.file != entry.file] + [entry]
        self.record = self.record.model_copy(update={"checkpoints": entries})
        save_record(self.run_dir, self.record)

    def _prune(self) -> None:
        prune_checkpoints(self.run_dir, self.settings.keep_checkpoints, self.settings.runs_root,
                          before_delete=self._forget)

    def _forget(self, doomed: list[Path]) -> None:
        """Drop files about to be deleted from the record (first, so it never names a missing file)."""
        gone = {relative_to_runs(p, self.settings.runs_root) for p in doomed}
        kept = [e for e in self.record.checkpoints if e.file not in gone]
        self.record = self.record.model_copy(update={"checkpoints": kept})
        save_record(self.run_dir, self.record)

    def finish(self, model: PPO | None, status: Literal["finished", "interrupted"]) -> None:
        """Save the last checkpoint and final model, and close the record with `status` (an interrupted
        run's `error` names the signal). A diverged model is never saved: the run is closed failed instead
        and DivergedError raised."""
        if model is not None:
            step = int(model.num_timesteps)
            try:
                check_finite(model, step)
            except DivergedError as error:
                self.fail(error)
                raise
            if not self.paths.checkpoint(step).is_file():
                self._save_checkpoint(model)
            self._save_model(model, self.paths.final_model, step)
        self._close(status, error=self.stop_reason if status == "interrupted" else None)

    def fail(self, error: BaseException) -> None:
        """Mark the run failed with the error's message."""
        self._close("failed", error=f"{type(error).__name__}: {error}")

    def _close(self, status: str, error: str | None = None) -> None:
        if self.record.status != "running":  # closed already (a diverged model found while finishing)
            return
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

