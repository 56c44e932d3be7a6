"""Shared helpers for the training, evaluation, workflow and CLI tests (no tests in here).

Every test works in its own folder holding a copy of the repository's configs/ (the CLIs default to
./configs and ./runs), trains tiny runs and reads what they wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TRAIN_MODULE = "mission_gym.scripts.train_ppo"
EVALUATE_MODULE = "mission_gym.scripts.evaluate"
# A tiny, fast PPO setup: 4 arenas x 64 decisions = 256 timesteps per rollout.
TINY = ["--n-envs", "4", "--n-steps", "64", "--batch-size", "256", "--net-arch", "32,32", "--no-progress"]
ROLLOUT = 256
CHECKPOINT_NAME = re.compile(r"^ppo_mission_(\d+)_steps\.zip$")
TIMESTAMP = r"\d{8}-\d{6}"


def make_workdir(path: Path, eval_seeds: int | None = 8) -> Path:
    """`path` with a copy of the repository's configs/; eval_seeds.txt cut to its first `eval_seeds` seeds."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "configs", path / "configs")
    if eval_seeds is not None:
        seeds_file = path / "configs" / "eval_seeds.txt"
        seeds = [line for line in seeds_file.read_text().splitlines() if line.strip() and not line.startswith("#")]
        seeds_file.write_text("# held-out seeds (cut for the tests)\n" + "\n".join(seeds[:eval_seeds]) + "\n")
    return path


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(args: Sequence[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python ARGS` in `cwd` with this interpreter (the project's venv), output captured as text."""
    return subprocess.run([PYTHON, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=subprocess_env(), stdin=subprocess.DEVNULL)


def call_main(main: Callable[[Sequence[str]], int], argv: Sequence[str]) -> tuple[int, str, str]:
    """Run a CLI's `main(argv)` in this process; returns (exit status, stdout, stderr).

    Any exception other than SystemExit propagates and fails the test: a CLI must never end in a traceback.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse errors and --help
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def train_main(argv: Sequence[str]) -> tuple[int, str, str]:
    from mission_gym.scripts import train_ppo

    return call_main(train_ppo.main, argv)


def evaluate_main(argv: Sequence[str]) -> tuple[int, str, str]:
    from mission_gym.scripts import evaluate

    return call_main(evaluate.main, argv)


def assert_user_error(code: int, stderr: str, *needles: str) -> None:
    """Exit 2, one `error: ...` message on stderr (no traceback), containing every needle."""
    assert code == 2, f"exit {code}, stderr:\n{stderr}"
    assert stderr.lstrip().startswith("error:") or "\nerror:" in stderr or ": error:" in stderr, stderr
    assert "Traceback" not in stderr, stderr
    for needle in needles:
        assert needle in stderr, f"{needle!r} not in:\n{stderr}"


def tree_state(root: Path) -> dict[str, tuple[int, int] | str]:
    """Every file (size, mtime) and folder under `root`: equal states mean nothing was created or changed."""
    state: dict[str, tuple[int, int] | str] = {}
    for item in sorted(root.rglob("*")):
        rel = item.relative_to(root).as_posix()
        if item.is_dir():
            state[rel] = "dir"
        else:
            st = item.stat()
            state[rel] = (st.st_size, st.st_mtime_ns)
    return state


def run_dirs(runs: Path) -> list[Path]:
    """Run folders under `runs`, sorted by name."""
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def only_new_run(runs: Path, before: Sequence[Path]) -> Path:
    new = [p for p in run_dirs(runs) if p not in set(before)]
    assert len(new) == 1, f"expected one new run folder, got {new}"
    return new[0]


def strict_json(path: Path) -> Any:
    """Parse JSON refusing NaN/Infinity (not JSON, yet Python's json accepts them by default)."""
    def refuse(name: str) -> Any:
        raise AssertionError(f"{path}: non-standard JSON constant {name}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def newest_report(plain: Path) -> Path:
    """The most recently written keyed report `<model>.<key><suffix>` for a plain name `<model><suffix>`."""
    written = list(plain.parent.glob(f"{plain.stem}.????????????{plain.suffix}"))
    assert written, f"no report like {plain.stem}.<key>{plain.suffix} in {plain.parent}"
    return max(written, key=lambda p: p.stat().st_mtime_ns)


def record(run_dir: Path) -> dict[str, Any]:
    return strict_json(run_dir / "run.json")


def checkpoint_steps(run_dir: Path) -> list[int]:
    """Steps of the checkpoint files in the run's checkpoints/ folder, ascending."""
    folder = run_dir / "checkpoints"
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := CHECKPOINT_NAME.match(p.name)))


def checkpoint_path(run_dir: Path, step: int, zip_suffix: bool = True) -> Path:
    return run_dir / "checkpoints" / f"ppo_mission_{step}_steps{'.zip' if zip_suffix else ''}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edit_yaml(path: Path, change: Callable[[Any], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def add_defender(configs: Path) -> None:
    """One more DEF_UGV patrolling at the objective (a valid config with a larger observation)."""
    edit_yaml(configs / "scenario.yaml", lambda d: d["defenders"].append({
        "unit_type": "DEF_UGV", "spawn": {"x": 100.0, "y": 100.0, "heading": 0.0},
        "patrol_waypoints": [[95.0, 95.0], [105.0, 95.0], [105.0, 105.0], [95.0, 105.0]],
    }))


def add_attacker(configs: Path) -> None:
    """One more attacker of the first attacker's type, near the others' spawn."""
    def change(data: Any) -> None:
        data["attackers"].append({"unit_type": data["attackers"][0]["unit_type"],
                                  "spawn": {"x": 20.0, "y": 20.0, "heading": 45.0}})
    edit_yaml(configs / "scenario.yaml", change)


def load_model(path: Path):
    from stable_baselines3 import PPO

    return PPO.load(path, device="cpu")
