"""Evaluate a checkpoint on fixed seeds, beside the scripted baseline and the parent checkpoint on the same
seeds (so comparisons are paired), and write the report into the run folder.

Every seed runs one episode in its own arena of one batched VecEnv, so an evaluation is one vectorized pass.
"""

import hashlib
import math
import pickle
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image
from stable_baselines3 import PPO

from mission_gym.baseline import ScriptedAttackerPolicy
from mission_gym.config import MissionConfig, load_config, read_seeds_file
from mission_gym.env import MissionGymEnv
from mission_gym.errors import CompatibilityError, MissionGymError
from mission_gym.ppo import load_model
from mission_gym.runs.checkpoints import check_model_archive, relative_to_runs, resolve_checkpoint, verify_checkpoint
from mission_gym.runs.compat import check_compatible
from mission_gym.runs.layout import EVALUATIONS_DIR, RUN_RECORD_FILE, RunPaths
from mission_gym.runs.reports import report_key
from mission_gym.runs.record import RunRecord, atomic_write_bytes, atomic_write_json, atomic_write_text, load_record
from mission_gym.sequential import paired_difference_interval, paired_verdict
from mission_gym.spaces import action_space, observation_space, space_signature
from mission_gym.vec_env import MissionVecEnv

BOOTSTRAP_SAMPLES = 2000
Z_95 = 1.959963984540054
GIF_FRAME_MS = 100
GIF_FINAL_FRAME_MS = 2000


class Policy(Protocol):
    """Anything with SB3's ``predict``: a PPO model or the scripted baseline."""

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]: ...


@dataclass(frozen=True)
class EpisodeResult:
    """One evaluation episode."""

    seed: int
    outcome: str
    episode_return: float
    length: int
    components: dict[str, float]


def run_episodes(policy: Policy, config: MissionConfig, seeds: tuple[int, ...] | list[int],
                 deterministic: bool = True) -> list[EpisodeResult]:
    """Play one episode per seed (arena i seeded with seeds[i]) and return the results in seed order."""
    env = MissionVecEnv(len(seeds), config)
    env.seed_arenas(seeds)
    observations = env.reset()
    results: dict[int, EpisodeResult] = {}
    returns = np.zeros(len(seeds))
    while len(results) < len(seeds):
        actions, _ = policy.predict(observations, deterministic=deterministic)
        observations, rewards, dones, infos = env.step(actions)
        returns += rewards
        for i in np.flatnonzero(dones):
            if i not in results:
                info = infos[i]
                results[i] = EpisodeResult(seed=int(seeds[i]), outcome=info["outcome"], episode_return=float(returns[i]),
                                           length=int(info["episode_metrics"]["decisions"]),
                                           components=info["episode_reward_components"])
        returns[dones] = 0.0
    return [results[i] for i in range(len(seeds))]


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (sound near 0 and 1, unlike the normal interval)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean (fixed resampling seed: reports are reproducible)."""
    if len(values) == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(samples, len(values)), replace=True).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def summarize(results: list[EpisodeResult]) -> dict[str, Any]:
    """Capture rate with its Wilson interval, mean return with its bootstrap interval, outcomes, lengths,
    per-component reward means."""
    captures = sum(r.outcome == "captured" for r in results)
    returns = np.array([r.episode_return for r in results])
    lengths = np.array([r.length for r in results])
    components = {name: float(np.mean([r.components[name] for r in results])) for name in results[0].components}
    return {
        "episodes": len(results),
        "capture_rate": captures / len(results),
        "capture_rate_ci": list(wilson_interval(captures, len(results))),
        "mean_return": float(returns.mean()),
        "mean_return_ci": list(bootstrap_interval(returns)),
        "outcomes": dict(Counter(r.outcome for r in results)),
        "episode_length_mean": float(lengths.mean()),
        "episode_length_median": float(np.median(lengths)),
        "reward_components_mean": components,
    }


def paired_comparison(ours: list[EpisodeResult], theirs: list[EpisodeResult]) -> dict[str, Any]:
    """Per-seed comparison: seeds only we capture, only they capture, the paired difference of capture rates with
    its interval and what it says ("better" when the whole interval is above zero, "worse" below, else
    "no clear difference"), and the mean return difference."""
    diff = np.array([a.episode_return - b.episode_return for a, b in zip(ours, theirs)])
    only_ours = sum(a.outcome == "captured" and b.outcome != "captured" for a, b in zip(ours, theirs))
    only_theirs = sum(b.outcome == "captured" and a.outcome != "captured" for a, b in zip(ours, theirs))
    low, high = paired_difference_interval(only_ours, only_theirs, len(ours))
    return {
        "only_ours_captured": only_ours,
        "only_theirs_captured": only_theirs,
        "capture_rate_difference": (only_ours - only_theirs) / len(ours),
        "capture_rate_difference_ci": [low, high],
        "verdict": "better" if low > 0 else "worse" if high < 0 else "no clear difference",
        "mean_return_difference": float(diff.mean()),
        "mean_return_difference_ci": list(bootstrap_interval(diff)),
    }


def seeds_hash(seeds: tuple[int, ...] | list[int]) -> str:
    """SHA-256 of the seed list (one seed per line), so reports say exactly which seeds they used."""
    return hashlib.sha256("\n".join(map(str, seeds)).encode()).hexdigest()


@dataclass(frozen=True)
class EvaluationTarget:
    """A model file, the run it belongs to and the config it is evaluated on."""

    model_path: Path
    run_dir: Path
    record: RunRecord
    config_dir: Path
    config: MissionConfig


def locate(model: str | Path, config_dir: str | Path | None, runs_root: Path) -> EvaluationTarget:
    """Resolve the model and choose the config: its run's snapshot unless `config_dir` is given."""
    path = resolve_checkpoint(model, runs_root)
    paths = RunPaths.of_model(path)
    if not paths.record.is_file():
        # Its report would have no run folder to go into, and writing beside an arbitrary file is no place for it.
        raise MissionGymError(
            f"{path} is not inside a run folder (no {RUN_RECORD_FILE} beside it): reports are written into the "
            f"evaluated checkpoint's run folder ({runs_root}/<run>/{EVALUATIONS_DIR}/), so nothing was evaluated; "
            f"evaluate a checkpoint of a run under {runs_root} (a run name or its checkpoint path)")
    record = load_record(paths.root)
    verify_checkpoint(path, paths.root.parent)  # a report must describe the checkpoint the run wrote
    if config_dir is None:
        config_dir = paths.config_snapshot
    config = load_config(config_dir)
    if record is not None:
        try:
            check_compatible(record.spaces, space_signature(config), parent_run=record.run_name, config_dir=config_dir,
                             policy=record.policy)
        except CompatibilityError as error:
            raise CompatibilityError(f"{path} cannot be evaluated on {config_dir}:\n{error}") from None
    return EvaluationTarget(path, paths.root, record, Path(config_dir), config)


def evaluate_model(model: str | Path, *, config_dir: str | Path | None = None, episodes: int | None = None,
                   seeds_file: str | Path | None = None, deterministic: bool = True, runs_root: str | Path = "runs",
                   gif: bool = False) -> dict[str, Any]:
    """Evaluate a checkpoint and write ``evaluations/<checkpoint>.<key>.json`` and ``.md`` (and ``.gif``) in its
    run; the key (mission_gym.runs.reports.report_key) names what was measured, so only the same measurement
    replaces a report.

    Returns the report (also written as JSON).
    """
    runs_root = Path(runs_root)
    target = locate(model, config_dir, runs_root)
    seeds = read_seeds_file(seeds_file) if seeds_file else target.config.eval_seeds
    if episodes is not None:
        if not 0 < episodes <= len(seeds):
            raise MissionGymError(f"--episodes {episodes}: the seed list has {len(seeds)} seeds; ask for 1..{len(seeds)}")
        seeds = seeds[:episodes]
    policy = load_policy(target.model_path, target.config, target.config_dir)
    ours = run_episodes(policy, target.config, seeds, deterministic)
    baseline = run_episodes(ScriptedAttackerPolicy(target.config), target.config, seeds)
    report = {
        "checkpoint": _display_path(target.model_path, runs_root),
        "step": int(policy.num_timesteps),
        "run_name": target.record.run_name,
        "config_dir": str(target.config_dir),
        "config_hash": target.config.config_hash,
        "seeds_file": str(seeds_file) if seeds_file else f"{target.config_dir}/eval_seeds.txt",
        "seeds_hash": seeds_hash(seeds),
        "deterministic": deterministic,
        **summarize(ours),
        "baseline": {**summarize(baseline), "paired": paired_comparison(ours, baseline)},
        "parent": _parent_summary(target, runs_root, seeds, deterministic, ours),
    }
    report["key"] = report_key(report["checkpoint"], report["seeds_hash"], len(seeds), deterministic,
                               report["config_hash"])
    out, model_path = RunPaths(target.run_dir), target.model_path
    out.evaluations_dir.mkdir(exist_ok=True)
    atomic_write_json(out.evaluation(model_path, report["key"], ".json"), report)
    atomic_write_text(out.evaluation(model_path, report["key"], ".md"), report_markdown(report))
    if gif:
        atomic_write_bytes(out.evaluation(model_path, report["key"], ".gif"),
                           replay_gif(policy, target.config, seeds[0], deterministic))
    report["files"] = [str(out.evaluation(model_path, report["key"], suffix))
                       for suffix in (".json", ".md", *((".gif",) if gif else ()))]
    return report


def load_policy(path: Path, config: MissionConfig, config_dir: Path) -> PPO:
    """Load a model to play `config`; MissionGymError when the file is no PPO model or its spaces differ.

    A model outside any run folder has no record to check compatibility with, so its own spaces are compared
    with the config's here (a mismatch would otherwise fail deep inside SB3's predict). An entity policy is
    built for the config's units, so its spaces always match.
    """
    check_model_archive(path)
    try:
        policy = load_model(path, config, device="cpu")
    except (ValueError, KeyError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error, pickle.UnpicklingError) as error:
        raise MissionGymError(f"{path}: cannot be loaded as a PPO model ({type(error).__name__}: {error}); pass a "
                              "checkpoint written by train_ppo") from None
    obs, act = observation_space(config), action_space(config)
    if policy.observation_space.shape != obs.shape or not np.array_equal(getattr(policy.action_space, "nvec", None), act.nvec):
        raise CompatibilityError(
            f"{path} was trained with observation shape {list(policy.observation_space.shape)} and action space "
            f"{policy.action_space}, but {config_dir} gives observation shape {list(obs.shape)} and action space {act}; "
            "evaluate it with the config directory it was trained on (--config-dir)"
        )
    return policy


def _display_path(path: Path, runs_root: Path) -> str:
    try:
        return relative_to_runs(path, runs_root)
    except MissionGymError:
        return str(path)


def _parent_summary(target: EvaluationTarget, runs_root: Path, seeds, deterministic: bool,
                    ours: list[EpisodeResult]) -> dict[str, Any] | None:
    parent = target.record.parent_checkpoint
    if parent is None:
        return None
    path = runs_root / parent.path
    if not path.is_file():
        return {"checkpoint": parent.path, "step": parent.step, "missing": True}
    theirs = run_episodes(load_policy(path, target.config, target.config_dir), target.config, seeds, deterministic)
    return {"checkpoint": parent.path, "step": parent.step, **summarize(theirs), "paired": paired_comparison(ours, theirs)}


def replay_gif(policy: Policy, config: MissionConfig, seed: int, deterministic: bool = True) -> bytes:
    """An animated GIF of one episode, from the environment's rgb_array frames, ending on the final frame
    (held for a while, so the outcome can be read).

    The Gymnasium env is used rather than the VecEnv, whose auto-reset replaces the final state before it
    could be drawn; an env reset with seed s plays exactly like a VecEnv arena seeded with s.
    """
    import io

    env = MissionGymEnv(config=config, render_mode="rgb_array")
    observation, _ = env.reset(seed=seed)
    frames = [Image.fromarray(env.render())]
    done = False
    while not done:
        action, _ = policy.predict(observation, deterministic=deterministic)
        observation, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
        frames.append(Image.fromarray(env.render()))
    durations = [GIF_FRAME_MS] * (len(frames) - 1) + [GIF_FINAL_FRAME_MS]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return buffer.getvalue()


def report_markdown(report: dict[str, Any]) -> str:
    """A readable summary of an evaluation report."""
    def rate(section: dict[str, Any]) -> str:
        low, high = section["capture_rate_ci"]
        return f"{section['capture_rate']:.1%} (95% CI {low:.1%}–{high:.1%})"

    def ret(section: dict[str, Any]) -> str:
        low, high = section["mean_return_ci"]
        return f"{section['mean_return']:.1f} (95% CI {low:.1f} to {high:.1f})"

    lines = [
        f"# Evaluation of {report['checkpoint']} (step {report['step']:,})",
        "",
        f"Config: `{report['config_dir']}` (hash {report['config_hash'][:12]}), seeds: {report['episodes']} from "
        f"`{report['seeds_file']}` (hash {report['seeds_hash'][:12]}), {'deterministic' if report['deterministic'] else 'stochastic'} actions.",
        "",
        "| policy | capture rate | mean return | mean length | outcomes |",
        "|---|---|---|---|---|",
    ]
    rows = [("this checkpoint", report), ("scripted baseline", report["baseline"])]
    if report["parent"] and not report["parent"].get("missing"):
        rows.append((f"parent ({report['parent']['checkpoint']})", report["parent"]))
    for name, section in rows:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(section["outcomes"].items()))
        lines.append(f"| {name} | {rate(section)} | {ret(section)} | {section['episode_length_mean']:.0f} | {outcomes} |")
    if report["parent"] and report["parent"].get("missing"):
        lines += ["", f"Parent checkpoint {report['parent']['checkpoint']} no longer exists; no comparison."]
    lines += ["", "Paired on the same seeds:"]
    for name, section in rows[1:]:
        paired = section["paired"]
        low, high = paired["mean_return_difference_ci"]
        lines.append(f"- vs {name}: {paired_verdict(paired)}; return difference "
                     f"{paired['mean_return_difference']:+.1f} (95% CI {low:+.1f} to {high:+.1f})")
    lines += ["", "| reward component | mean per episode |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in report["reward_components_mean"].items()]
    return "\n".join(lines) + "\n"
