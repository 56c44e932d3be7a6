"""Synthetic run folders for the dashboard benchmark and screenshot: real run records (the schema of
docs/design.md), metrics lines with the keys training writes, config snapshots where a branch changed
one, and evaluation reports shaped like evaluation.py's.

    from synthetic_runs import make_runs
    make_runs(Path("/tmp/runs"), count=1000, with_metrics=50)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import random
from pathlib import Path

from mission_gym.runs.record import (
    CheckpointEntry,
    ConfigRef,
    Git,
    ParentCheckpoint,
    RunRecord,
    Spaces,
    Timesteps,
    utc_now,
)

REWARD = "components:\n  win_bonus: {{weight: {win}, enabled: true}}\n  time_penalty: {{weight: -0.001, enabled: true}}\n"
_SPACES = {"observation": {"type": "Box", "shape": [67]}, "action": {"type": "MultiDiscrete", "nvec": [9] * 4},
           "counts": {"attackers": 4, "defenders": 2}}  # fmt: skip
_ADJECTIVES = ("amber", "brisk", "calm", "dusky", "eager", "fuzzy", "gentle", "hazel", "ivory", "jolly")
_ANIMALS = ("badger", "otter", "heron", "lynx", "marten", "vole", "wren", "stoat", "crane", "newt")


def make_runs(root: Path, count: int, with_metrics: int, lines: int = 400, seed: int = 0) -> list[str]:
    """`count` runs in lineages of five (a root, two branches, a branch of a branch, a sibling); the first
    `with_metrics` get metrics, configs and an evaluation. Returns the run names, roots first."""
    rng, now, names = random.Random(seed), utc_now(), []
    for i in range(count):
        family, member = divmod(i, 5)
        name = f"{_ADJECTIVES[family % 10]}-{_ANIMALS[(family // 10) % 10]}-{family:05d}-{member}"
        parent = None if member == 0 else names[i - (1 if member in (1, 3) else 2 if member == 2 else 4)]
        names.append(name)
        _make_run(root, name, parent, i < with_metrics, lines, rng, now - dt.timedelta(hours=count - i))
    return names


def _make_run(root: Path, name: str, parent: str | None, detailed: bool, lines: int, rng: random.Random,
              created: dt.datetime) -> None:  # fmt: skip
    run_dir = root / name
    (run_dir / "checkpoints").mkdir(parents=True)
    parent_record = RunRecord.model_validate_json((root / parent / "run.json").read_bytes()) if parent else None
    start = parent_record.timesteps.current if parent_record else 0
    target = start + 400_000
    lr = rng.choice((3e-4, 1e-4)) if parent_record else 3e-4
    win = rng.choice((200.0, 150.0)) if parent_record else 200.0
    reward = REWARD.format(win=win)
    checkpoints = [CheckpointEntry(file=f"{name}/checkpoints/ppo_mission_{s}_steps.zip", step=s, sha256="0" * 64)
                   for s in range(start + 100_000, target + 1, 100_000)]  # fmt: skip
    record = RunRecord(
        run_name=name, created_at=created, heartbeat_at=created + dt.timedelta(minutes=50),
        status="finished", parent_run=parent,
        parent_checkpoint=ParentCheckpoint(path=parent_record.checkpoints[-1].file, step=start, sha256="0" * 64)
        if parent_record else None,
        root_ancestor=parent_record.root_ancestor if parent_record else name,
        notes=f"{'branch' if parent else 'root'}: win bonus {win:g}, learning rate {lr:g}",
        git=Git(commit="0" * 40, dirty=False),
        config=ConfigRef(hash="c" * 64, files={"reward.yaml": hashlib.sha256(reward.encode()).hexdigest()}),
        spaces=Spaces(**_SPACES), hyperparameters={"learning_rate": lr, "n_steps": 128, "batch_size": 256},
        device="cpu", timesteps=Timesteps(start=start, target=target, current=target),
        checkpoints=checkpoints, pid=1, host="bench-host",
    )  # fmt: skip
    (run_dir / "run.json").write_text(record.model_dump_json(indent=2))
    if detailed:
        (run_dir / "configs").mkdir()
        (run_dir / "configs" / "reward.yaml").write_text(reward)
        _write_metrics(run_dir, start, target, lines, lr, rng, created)
        _write_evaluation(run_dir, target, rng)


def _write_metrics(run_dir: Path, start: int, target: int, lines: int, lr: float, rng: random.Random,
                   created: dt.datetime) -> None:  # fmt: skip
    rows, skill = [], rng.uniform(0.6, 1.2) * (1.3 if lr < 3e-4 else 1.0)
    for i in range(1, lines + 1):
        step = start + (target - start) * i // lines
        progress = 1 - math.exp(-skill * step / 600_000)
        rows.append({
            "timestep": step, "time": (created + dt.timedelta(seconds=7 * i)).isoformat(), "episodes": 20 * i,
            "fps": 3000 + rng.uniform(-200, 200), "ep_return_mean": 60 * progress + rng.gauss(0, 2),
            "ep_len_mean": 240 - 80 * progress + rng.gauss(0, 4), "capture_rate": min(1, max(0, 0.9 * progress + rng.gauss(0, 0.03))),
            "train_value_loss": 5 * (1 - progress) + rng.uniform(0, 0.5), "train_policy_gradient_loss": -0.01 * rng.random(),
            "train_entropy_loss": -8 + 3 * progress, "train_approx_kl": 0.01 * rng.random(),
            "train_clip_fraction": 0.1 * rng.random(), "train_explained_variance": progress * 0.9,
        })  # fmt: skip
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _write_evaluation(run_dir: Path, step: int, rng: random.Random) -> None:
    rate = rng.uniform(0.3, 0.8)
    half = 1.96 * math.sqrt(rate * (1 - rate) / 200)
    paired = {"only_ours_captured": rng.randint(5, 20), "only_theirs_captured": rng.randint(0, 6)}
    report = {
        "checkpoint": f"{run_dir.name}/checkpoints/ppo_mission_{step}_steps.zip", "step": step, "episodes": 200,
        "capture_rate": rate, "capture_rate_ci": [rate - half, rate + half], "mean_return": 60 * rate,
        "baseline": {"capture_rate": 0.12, "paired": paired},
        "parent": {"capture_rate": rate - 0.05, "paired": {"only_ours_captured": 9, "only_theirs_captured": 4}},
    }  # fmt: skip
    (run_dir / "evaluations").mkdir()
    stem = f"ppo_mission_{step}_steps"
    (run_dir / "evaluations" / f"{stem}.json").write_text(json.dumps(report))
    (run_dir / "evaluations" / f"{stem}.md").write_text(f"# Evaluation of {run_dir.name}\n")
