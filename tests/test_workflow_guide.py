"""The users' guide (docs/guide.md) end to end: every command in its bash and python blocks is run as it is
written, in a fresh folder holding only configs/: train -> find the latest checkpoint -> branch -> resume ->
evaluate (run snapshot, then --config-dir configs/) -> lineage dashboard -> cleanup dry runs -> cleanup.

Only the sizes differ from the guide (tiny runs: later flags override the guide's timesteps, arenas and
network), placeholders (RUN, N) are filled in, and the cleanup gets `--yes` because a test has no terminal to
answer its prompt. The guide's commands are those of the older system's workflow guide, so those keep working.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from test_training_support import (
    CHECKPOINT_NAME, PYTHON, REPO, TIMESTAMP, TRAIN_MODULE, checkpoint_steps, load_model, make_workdir, record,
    run_dirs, sha256, strict_json, subprocess_env, tree_state,
)

from mission_gym.config import CONFIG_FILES, load_config
from mission_gym.runs.record import git_info
from mission_gym.sim.observation import feature_names

pytestmark = pytest.mark.slow

GUIDE = REPO / "docs" / "guide.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SMALL = ["--n-steps", "64", "--batch-size", "256", "--net-arch", "32,32", "--no-progress", "--seed", "11"]
RUN_FILES = {"run.json", "configs", "checkpoints", "final_model.zip", "metrics.jsonl", "tensorboard"}


def guide_commands() -> list[str]:
    """The guide's commands in order: each line of a bash block (comments and blank lines left out), and each
    python block as a whole."""
    commands = []
    for language, body in BLOCK.findall(GUIDE.read_text()):
        if language == "python":
            commands.append(body.strip())
            continue
        lines = (line.strip() for line in body.replace("\\\n", " ").splitlines())
        commands += [line for line in lines if line and not line.startswith("#")]
    return commands


class Guide:
    """Runs the guide's commands in `work`, placeholders filled and flags appended; remembers which ran."""

    def __init__(self, work: Path) -> None:
        self.work, self.commands, self.ran = work, guide_commands(), set()

    def command(self, *needles: str) -> str:
        """The one guide command containing every needle."""
        matches = [c for c in self.commands if all(n in c for n in needles)]
        assert len(matches) == 1, f"docs/guide.md has {len(matches)} commands with {needles}: {matches}"
        return matches[0]

    def run(self, command: str, fill: Mapping[str, object] | None = None,
            extra: Sequence[str] = ()) -> subprocess.CompletedProcess:
        """Run one guide command with placeholders (whole upper-case tokens) replaced by `fill`'s values and
        `extra` appended; a python block runs through `python -c`, a pipeline through the shell."""
        self.ran.add(command)
        text = command
        for key, value in (fill or {}).items():
            text = re.sub(rf"(?<![A-Za-z0-9]){key}(?![A-Za-z0-9])", str(value), text)
        if text.startswith(("from ", "import ")):  # a python block
            argv: list[str] | str = [PYTHON, "-c", text]
        elif "|" in text:
            argv = text
        else:
            program, *args = shlex.split(text)
            args = [str(REPO / a) if a.endswith(".py") else a for a in args]  # scripts at the repository root
            argv = [PYTHON if program == "python" else str(Path(PYTHON).parent / program), *args, *extra]
        done = subprocess.run(argv, shell=isinstance(argv, str), cwd=self.work, capture_output=True, text=True,
                              timeout=600, env=subprocess_env(), stdin=subprocess.DEVNULL)
        return ok(done)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_guide_shows_commands_for_every_workflow_step():
    commands = guide_commands()
    for needles in (("train_ppo", "--run-name"), ("ls -lht",), ("--parent-checkpoint runs/",),
                    ("--parent-checkpoint RUN ",), ("evaluate --model",), ("--config-dir",), ("dashboard",),
                    ("generate_unified_dashboard",), ("cleanup_runs.py", "--dry-run")):
        assert any(all(n in c for n in needles) for c in commands), needles


def test_guide_workflow_end_to_end(tmp_path):
    work = make_workdir(tmp_path / "project", eval_seeds=6)
    runs, guide = work / "runs", Guide(work)

    # An older, unrelated experiment (no --run-name: adjective-animal-<timestamp>), trained by a copy of the code
    # outside any git checkout: its record says the commit is unknown.
    unrelated = train_outside_git(tmp_path / "code-without-git", work)
    assert re.fullmatch(rf"[a-z]+-[a-z]+-{TIMESTAMP}", unrelated.name), unrelated.name
    assert record(unrelated)["git"] == {"commit": "unknown", "dirty": None}

    # Train from scratch.
    done = guide.run(guide.command("train_ppo", "--run-name"),
                     extra=["--timesteps", "2048", "--n-envs", "4", "--checkpoint-freq", "1024", *SMALL])
    (parent,) = [p for p in run_dirs(runs) if p != unrelated]
    assert re.fullmatch(rf"2-defenders-experiment-{TIMESTAMP}", parent.name), parent.name
    assert f"runs/{parent.name}" in done.stdout

    # The run folder: its own files only, a config snapshot identical to configs/, checkpoints by global step.
    assert {p.name for p in parent.iterdir()} == RUN_FILES
    assert not (parent / "runs").exists() and len(list(parent.rglob("run.json"))) == 1
    for name in CONFIG_FILES:
        assert (parent / "configs" / name).read_bytes() == (work / "configs" / name).read_bytes(), name
    assert checkpoint_steps(parent) == [1024, 2048]
    for step in (1024, 2048):
        assert load_model(parent / "checkpoints" / f"ppo_mission_{step}_steps.zip").num_timesteps == step
    assert load_model(parent / "final_model.zip").num_timesteps == 2048
    assert list((parent / "tensorboard").rglob("events.out.tfevents.*"))

    text = (parent / "run.json").read_text()
    assert str(tmp_path) not in text, "run.json must not hold absolute paths"
    rec = record(parent)
    config = load_config(work / "configs")
    assert rec["run_name"] == parent.name and rec["root_ancestor"] == parent.name
    assert rec["parent_run"] is None and rec["parent_checkpoint"] is None and rec["branch_name"] is None
    assert rec["notes"] == "Added second UGV defender to increase difficulty" and rec["status"] == "finished"
    assert rec["created_at"] and rec["heartbeat_at"] >= rec["created_at"]
    # The code trained from this checkout: its commit, 40 hex digits inside a git checkout.
    assert rec["git"] == git_info(REPO).model_dump()
    assert re.fullmatch(r"[0-9a-f]{40}", rec["git"]["commit"]) or not (REPO / ".git").exists()
    assert rec["config"]["hash"] == config.config_hash
    assert rec["config"]["files"] == {name: sha256(work / "configs" / name) for name in CONFIG_FILES}
    obs, act = rec["spaces"]["observation"], rec["spaces"]["action"]
    assert obs["shape"] == [len(feature_names(config))] and obs["feature_names"] == feature_names(config)
    assert act["type"] == "MultiDiscrete" and len(act["nvec"]) == len(config.scenario.attackers)
    assert [len(names) for names in act["action_names"]] == act["nvec"]
    assert rec["spaces"]["counts"]["defenders"] == len(config.scenario.defenders)
    assert rec["hyperparameters"]["net_arch"] == [32, 32] and rec["hyperparameters"]["n_steps"] == 64
    assert rec["timesteps"] == {"start": 0, "target": 2048, "current": 2048}
    assert [(c["file"], c["step"]) for c in rec["checkpoints"]] == [
        *((f"{parent.name}/checkpoints/ppo_mission_{s}_steps.zip", s) for s in (1024, 2048)),
        (f"{parent.name}/final_model.zip", 2048)]
    for entry in rec["checkpoints"]:
        assert entry["sha256"] == sha256(runs / entry["file"])
    metrics = [strict_json_line(line) for line in (parent / "metrics.jsonl").read_text().splitlines()]
    steps = [row["timestep"] for row in metrics]
    assert steps == sorted(steps) and steps[-1] == 2048
    assert any("ep_return_mean" in row for row in metrics), "episode returns must be logged"
    assert (runs / "dashboard.html").is_file()

    # Find the latest checkpoint.
    latest = guide.run(guide.command("ls -lht"), {"RUN": parent.name}).stdout.split()[-1]
    assert latest == f"runs/{parent.name}/checkpoints/ppo_mission_2048_steps.zip"

    # Branch from it; the .zip extension is left out, as the guide says.
    step = int(CHECKPOINT_NAME.match(Path(latest).name).group(1))
    guide.run(guide.command("--parent-checkpoint runs/"), {"RUN": parent.name, "N": step},
              extra=["--timesteps", "1024", "--n-envs", "4", "--checkpoint-freq", "512", "--no-progress",
                     "--seed", "12"])
    (child,) = [p for p in run_dirs(runs) if p not in (unrelated, parent)]
    assert re.fullmatch(rf"continued-training-{TIMESTAMP}", child.name), child.name
    child_rec = record(child)
    assert child_rec["parent_run"] == parent.name and child_rec["root_ancestor"] == parent.name
    assert child_rec["branch_name"] == "continued-training"
    assert child_rec["parent_checkpoint"] == {
        "path": f"{parent.name}/checkpoints/ppo_mission_2048_steps.zip", "step": 2048,
        "sha256": sha256(runs / parent.name / "checkpoints" / "ppo_mission_2048_steps.zip")}
    assert child_rec["timesteps"] == {"start": 2048, "target": 3072, "current": 3072}
    assert checkpoint_steps(child) == [2560, 3072]
    # Hyperparameters not given on the branch command line are the parent's, not the defaults.
    # PPO settings are inherited; the imitation warm start is for fresh policies only.
    assert {k: v for k, v in child_rec["hyperparameters"].items() if k != "imitation_samples"} == \
        {k: v for k, v in rec["hyperparameters"].items() if k != "imitation_samples"}
    assert rec["hyperparameters"]["imitation_samples"] > 0 and child_rec["hyperparameters"]["imitation_samples"] == 0
    assert {p.name for p in child.iterdir()} == RUN_FILES
    assert len(list(child.rglob("run.json"))) == 1, "no copies of the ancestors inside a run"

    # Resume: a run name as parent means its latest checkpoint.
    guide.run(guide.command("--parent-checkpoint RUN "), {"RUN": child.name},
              extra=["--timesteps", "512", "--n-envs", "4", "--checkpoint-freq", "512", "--no-progress"])
    (resumed,) = [p for p in run_dirs(runs) if p not in (unrelated, parent, child)]
    resumed_rec = record(resumed)
    assert re.fullmatch(rf"resumed-{TIMESTAMP}", resumed.name), resumed.name
    assert resumed_rec["parent_checkpoint"]["path"] == f"{child.name}/checkpoints/ppo_mission_3072_steps.zip"
    assert resumed_rec["timesteps"] == {"start": 3072, "target": 3584, "current": 3584}

    # Evaluate with the run's config snapshot, then with configs/.
    fill = {"RUN": child.name, "N": 3072}
    local = guide.command("evaluate --model", "--config-dir")
    (snapshot,) = [c for c in guide.commands if "evaluate --model" in c and c != local]
    done = guide.run(snapshot, fill)
    assert "config snapshot" in done.stdout
    report_path = child / "evaluations" / "ppo_mission_3072_steps.json"
    report = strict_json(report_path)
    assert (child / "evaluations" / "ppo_mission_3072_steps.md").is_file()
    assert report["step"] == 3072 and report["run_name"] == child.name and report["episodes"] == 6
    assert report["config_hash"] == child_rec["config"]["hash"]
    assert report["parent"]["checkpoint"] == child_rec["parent_checkpoint"]["path"]
    assert report["baseline"]["episodes"] == 6
    done = guide.run(local, fill)
    assert "--config-dir" in done.stdout
    assert strict_json(report_path)["config_dir"].rstrip("/") == "configs"

    # The lineage-filtered dashboard, from the command line and from Python.
    for command in (guide.command("mission-gym dashboard"), guide.command("generate_unified_dashboard")):
        (runs / "dashboard.html").unlink()
        guide.run(command)
        page = (runs / "dashboard.html").read_text()
        assert all(run.name in page for run in (parent, child, resumed)) and "↳" in page
        assert unrelated.name not in page

    # Cleanup: dry runs first (they delete nothing), then for real.
    before = tree_state(runs)
    done = guide.run(guide.command("--keep-active-lineage --dry-run"))
    assert unrelated.name in done.stdout and "nothing was deleted" in done.stdout
    assert re.search(rf"↳ {re.escape(child.name)}", done.stdout)
    done = guide.run(guide.command("--keep-lineage RUN --dry-run"), {"RUN": parent.name})
    assert unrelated.name in done.stdout and "nothing was deleted" in done.stdout
    guide.run(guide.command("--delete-failed --dry-run"))
    assert tree_state(runs) == before
    (delete,) = [c for c in guide.commands if c.endswith("cleanup_runs.py --keep-active-lineage")]
    guide.run(delete, extra=["--yes"])
    assert not unrelated.exists()
    assert set(run_dirs(runs)) == {parent, child, resumed}
    for kept in (parent, child, resumed):
        assert all(CHECKPOINT_NAME.match(p.name) for p in (kept / "checkpoints").iterdir())
    assert checkpoint_steps(parent) == [1024, 2048] and checkpoint_steps(child) == [2560, 3072]

    # Every command the guide shows ran.
    never_run = set(guide.commands) - guide.ran
    assert not never_run, f"docs/guide.md shows commands this test never ran: {never_run}"


def train_outside_git(code: Path, work: Path) -> Path:
    """Train a tiny run in `work` with a copy of the package in `code` (no .git anywhere); its run folder."""
    shutil.copytree(REPO / "mission_gym", code / "mission_gym", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**subprocess_env(), "PYTHONPATH": str(code)}
    ok(subprocess.run([PYTHON, "-m", TRAIN_MODULE, "--timesteps", "512", "--n-envs", "4", *SMALL,
                       "--no-tensorboard", "--notes", "unrelated lineage"], cwd=work, capture_output=True, text=True,
                      timeout=600, env=env, stdin=subprocess.DEVNULL))
    (run,) = run_dirs(work / "runs")
    return run


def strict_json_line(line: str):
    def refuse(name: str):
        raise AssertionError(f"non-standard JSON constant {name} in metrics.jsonl")

    return json.loads(line, parse_constant=refuse)
