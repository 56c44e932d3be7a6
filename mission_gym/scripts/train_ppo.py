"""`python -m mission_gym.scripts.train_ppo`: train a fresh run, or branch from a checkpoint.

    python -m mission_gym.scripts.train_ppo --timesteps 50000000 --n-envs 16 --run-name X --notes "..."
    python -m mission_gym.scripts.train_ppo --parent-checkpoint runs/R/checkpoints/ppo_mission_N_steps \\
        --branch-name continued --notes "..."
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from mission_gym.errors import MissionGymError
from mission_gym.guards import signal_exit_status
from mission_gym.runs.layout import dashboard_file
from mission_gym.scripts.cli_support import CommandParser, finite_float, run_cli, runs_folder
from mission_gym.train_settings import PolicyKind, PPOHyperparameters, TrainSettings
from mission_gym.training import RunPlan, plan_run, train

INTERRUPTED_EXIT = 130


def build_parser() -> argparse.ArgumentParser:
    """The command line (hyperparameters default to None: a fresh run then takes PPOHyperparameters' defaults
    and a branch its parent's values)."""
    defaults = TrainSettings()
    parser = CommandParser(prog="train_ppo", description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=defaults.timesteps, help="timesteps to train in this run (default: %(default)s)")
    parser.add_argument("--n-envs", type=int, default=defaults.n_envs, help="arenas simulated together (default: %(default)s)")
    parser.add_argument("--run-name", help="name of a fresh run; a timestamp is appended (default: a random adjective-animal pair)")
    parser.add_argument("--notes", default="", help="free text stored with the run and shown on the dashboard (default: none)")
    parser.add_argument("--parent-checkpoint", help="checkpoint to branch from (path, .zip optional) or a run name (its latest checkpoint) "
                        "(default: none, a fresh run)")
    parser.add_argument("--branch-name", help="name of the branch; a timestamp is appended (default: branch)")
    parser.add_argument("--seed", type=int, help="seed of the arenas and of PPO (default: random)")
    parser.add_argument("--config-dir", type=Path, default=defaults.config_dir, help="config directory (default: %(default)s)")
    parser.add_argument("--runs-dir", type=Path, default=defaults.runs_root, help="runs folder (default: %(default)s)")
    parser.add_argument("--checkpoint-freq", type=int, default=defaults.checkpoint_freq, help="timesteps between checkpoints (default: %(default)s)")
    parser.add_argument("--keep-checkpoints", type=int, default=defaults.keep_checkpoints,
                        help="newest checkpoints to keep, plus any a child branched from; 0 keeps all (default: %(default)s)")
    parser.add_argument("--eval-freq", type=int, help="timesteps between evaluations on the eval seeds (default: off)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="torch device (default: auto)")
    parser.add_argument("--torch-threads", type=int, help="torch CPU threads for updates (default: every core for minibatches of 1024+, else 1)")
    parser.add_argument("--imitation-samples", type=int, default=defaults.imitation_samples,
                        help="scripted-baseline decisions a fresh policy imitates before PPO, at most --timesteps; "
                             "0 turns the warm start off (default: %(default)s)")
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    ppo = parser.add_argument_group("PPO hyperparameters (a branch inherits its parent's unless given)")
    for name, field in PPOHyperparameters.model_fields.items():
        flag = "--" + name.replace("_", "-")
        if name == "net_arch":
            ppo.add_argument(flag, help=f"{field.description}, comma-separated")
        elif name == "policy":
            ppo.add_argument(flag, choices=get_args(PolicyKind), help=f"{field.description} (default: {field.default})")
        else:
            kind = finite_float if field.annotation is float else field.annotation
            ppo.add_argument(flag, type=kind, help=f"{field.description} (default: {field.default})")
    return parser


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    """TrainSettings from parsed arguments; only hyperparameters given on the command line are recorded as given."""
    given = {name: getattr(args, name) for name in PPOHyperparameters.model_fields if getattr(args, name) is not None}
    if "net_arch" in given:
        given["net_arch"] = _layers(given["net_arch"])
    _check_flags(PPOHyperparameters, given)
    runs_folder("--runs-dir", args.runs_dir, must_exist=False)
    if args.keep_checkpoints is not None and args.keep_checkpoints < 0:
        raise MissionGymError(f"--keep-checkpoints {args.keep_checkpoints}: give a positive count, or 0 to keep every checkpoint")
    settings = dict(
        timesteps=args.timesteps, n_envs=args.n_envs, seed=args.seed, run_name=args.run_name, notes=args.notes,
        parent_checkpoint=args.parent_checkpoint, branch_name=args.branch_name, config_dir=args.config_dir,
        runs_root=args.runs_dir, checkpoint_freq=args.checkpoint_freq,
        keep_checkpoints=args.keep_checkpoints or None, eval_freq=args.eval_freq, device=args.device,
        torch_threads=args.torch_threads, tensorboard=not args.no_tensorboard, progress_bar=not args.no_progress,
        imitation_samples=args.imitation_samples,
        hyperparameters=given,
    )
    return _check_flags(TrainSettings, settings)


def _check_flags(model: type[BaseModel], values: dict[str, Any]) -> Any:
    """`model(**values)`, with a value out of range (e.g. --timesteps 0) reported by its flag, no traceback."""
    try:
        return model(**values)
    except ValidationError as error:
        problems = "; ".join(f"{_flag(str(e['loc'][0]))} {_shown(e['input'])}: {_plain(e['msg'])}"
                             for e in error.errors())
        raise MissionGymError(f"invalid option: {problems}") from None


def _flag(field: str) -> str:
    """The command-line flag of a TrainSettings or PPOHyperparameters field."""
    return "--runs-dir" if field == "runs_root" else "--" + field.replace("_", "-")


def _shown(value: Any) -> str:
    """A flag's value as the user typed it: `0.5`, `128,128`, `abc`."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _plain(message: str) -> str:
    """pydantic's message in the user's terms: `Input should be greater than 0` -> `should be greater than 0`."""
    return message.removeprefix("Value error, ").replace("Input should", "should")


def _layers(text: str) -> list[int]:
    try:
        layers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise MissionGymError(f"--net-arch {text!r}: give layer sizes as comma-separated integers, e.g. 256,256") from None
    if not layers or min(layers) < 1:
        raise MissionGymError(f"--net-arch {text!r}: give at least one positive layer size, e.g. 256,256")
    return layers


def describe_plan(plan: RunPlan, run_dir: Path | None = None) -> str:
    """What is about to happen, in a few lines; `run_dir` is the folder the run actually got (its name may
    differ from the plan's when another run took that name in the same second)."""
    s = plan.settings
    run_dir = run_dir or s.runs_root / plan.run_name
    lines = [f"Run:        {run_dir.name}  ({run_dir})",
             f"Config:     {s.config_dir}  (hash {plan.config.config_hash[:12]})",
             f"Device:     {plan.device}    arenas: {s.n_envs}    timesteps: {plan.start_step:,} -> {plan.start_step + s.timesteps:,}"]
    if plan.parent:
        lines.append(f"Parent:     {plan.parent.path}  (step {plan.parent.step:,})")
    if plan.compat is not None and plan.compat.by_transfer:
        lines.append(f"Transfer:   {plan.compat.text()}")
    hp = plan.hyperparameters
    lines.append(f"PPO:        {hp.policy} policy, lr {hp.learning_rate:g}, n_steps {hp.n_steps}, batch {hp.batch_size}, epochs {hp.n_epochs}, "
                 f"gamma {hp.gamma:g}, net {hp.net_arch}, reward scale {hp.reward_scale:g}")
    return "\n".join(lines)


def _train(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    plan = plan_run(settings)
    # train() prints the closing summary (and, after an interruption, the command that resumes the run).
    record = train(settings, plan, on_created=lambda run_dir: print(describe_plan(plan, run_dir), flush=True))
    print(f"Dashboard: {dashboard_file(settings.runs_root).resolve().as_uri()}")
    return 0 if record.status != "interrupted" else signal_exit_status(record.error, INTERRUPTED_EXIT)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, plan (all checks before anything is created), train; returns the exit status."""
    return run_cli(build_parser(), argv, _train)


if __name__ == "__main__":
    sys.exit(main())
