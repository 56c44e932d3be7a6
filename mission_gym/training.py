"""Train PPO on the batched VecEnv into a run folder, fresh or branched from a parent checkpoint.

`plan_run` checks everything that can be wrong (config, names, parent checkpoint, its integrity, space
compatibility, hyperparameters a branch cannot change) before anything is created; `train` then creates
`runs/<name>/` and trains. A branch continues the parent's global timestep counter.
"""

import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecMonitor

from mission_gym.config import CONFIG_FILES, MissionConfig, load_config
from mission_gym.entity_policy import EntityPolicy, entity_layout
from mission_gym.errors import MissionGymError
from mission_gym.guards import TerminationRequested, stop_signals
from mission_gym.imitation import EPOCHS as IMITATION_EPOCHS, imitate, record_baseline
from mission_gym.policy import MissionPolicy
from mission_gym.ppo import LARGE_MINIBATCH, MissionPPO, load_model
from mission_gym.progress import (
    COMPILING_NOTE, ProgressDisplay, TrainingProgress, kernels_compiled, training_summary,
)
from mission_gym.run_tracker import RunTracker
from mission_gym.runs.checkpoints import check_model_archive, resolve_checkpoint, sweep_temp_files, verify_checkpoint
from mission_gym.runs.compat import CompatReport, check_compatible
from mission_gym.runs.layout import RunPaths
from mission_gym.runs.naming import new_run_name, reserve_run_dir
from mission_gym.runs.record import (
    ConfigRef, ParentCheckpoint, RunRecord, Spaces, Timesteps, Transfer, git_info, load_record,
    process_start_time, save_record, utc_now,
)
from mission_gym.spaces import space_signature
from mission_gym.train_settings import (
    LEGACY_DEFAULTS, MAX_SAMPLES, NETWORK, PPO_HYPERPARAMETERS, PPOHyperparameters, TrainSettings,
)
from mission_gym.vec_env import MissionVecEnv, ScaledRewards
from mission_gym.yaml_io import describe_validation_error


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
    for key in NETWORK:
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


def _summary(tracker: RunTracker, plan: RunPlan) -> str:
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
    ppo_args = hp.model_dump(exclude={*NETWORK, "reward_scale"})
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
