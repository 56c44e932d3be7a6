"""The workflow guide (../shared/spec/WORKFLOW_GUIDE.md) end to end, through the real commands as it writes
them, in a fresh folder holding only configs/: train -> find the latest checkpoint -> branch -> evaluate
(run snapshot, then --config-dir configs/) -> lineage dashboard -> cleanup dry run -> cleanup.

Only the sizes differ from the guide (tiny runs: timesteps, arenas and network), and the cleanup gets
`--yes` because a test has no terminal to answer its prompt.
"""

from __future__ import annotations

import re
import subprocess

from test_training_support import (
    CHECKPOINT_NAME, EVALUATE_MODULE, REPO, TIMESTAMP, TRAIN_MODULE, checkpoint_steps, load_model, make_workdir,
    record, run_cli, run_dirs, sha256, strict_json, subprocess_env, tree_state,
)

from mission_gym.config import CONFIG_FILES, load_config
from mission_gym.sim.observation import feature_names

SMALL = ["--n-steps", "64", "--batch-size", "256", "--net-arch", "32,32", "--no-progress", "--seed", "11"]
RUN_FILES = {"run.json", "configs", "checkpoints", "final_model.zip", "metrics.jsonl", "tensorboard"}


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_guide_workflow_end_to_end(tmp_path):
    work = make_workdir(tmp_path / "project", eval_seeds=6)
    runs = work / "runs"

    # An older, unrelated experiment (no --run-name: adjective-animal-<timestamp>).
    ok(run_cli(["-m", TRAIN_MODULE, "--timesteps", "512", "--n-envs", "4", *SMALL, "--no-tensorboard",
                "--notes", "unrelated lineage"], cwd=work))
    (unrelated,) = run_dirs(runs)
    assert re.fullmatch(rf"[a-z]+-[a-z]+-{TIMESTAMP}", unrelated.name), unrelated.name

    # Step 3, option A: train from scratch.
    notes = "Added second UGV defender to increase difficulty"
    done = ok(run_cli(["-m", TRAIN_MODULE, "--timesteps", "2048", "--n-envs", "4",
                       "--run-name", "2-defenders-experiment", "--notes", notes, "--checkpoint-freq", "1024", *SMALL],
                      cwd=work))
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
    assert rec["notes"] == notes and rec["status"] == "finished"
    assert rec["created_at"] and rec["heartbeat_at"] >= rec["created_at"]
    assert set(rec["git"]) == {"commit", "dirty"} and re.fullmatch(r"[0-9a-f]{40}", rec["git"]["commit"])
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

    # "Find your best checkpoint", as the guide does it.
    listing = subprocess.run(f"ls -lht runs/{parent.name}/checkpoints/*.zip | head -1", shell=True, cwd=work,
                             capture_output=True, text=True, env=subprocess_env(), check=True).stdout
    latest = listing.split()[-1]
    assert latest == f"runs/{parent.name}/checkpoints/ppo_mission_2048_steps.zip"

    # Step 3, option B: branch from it; the .zip extension is left out, as the guide says.
    parent_checkpoint = latest.removesuffix(".zip")
    ok(run_cli(["-m", TRAIN_MODULE, "--timesteps", "1024", "--n-envs", "4", "--parent-checkpoint", parent_checkpoint,
                "--branch-name", "continued-training", "--notes", "Continuing from 2048 steps with refined rewards",
                "--checkpoint-freq", "512", "--no-progress", "--seed", "12"], cwd=work))
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

    # Step 5: evaluate with the run's config snapshot, then with configs/.
    model = f"runs/{child.name}/checkpoints/ppo_mission_3072_steps"
    done = ok(run_cli(["-m", EVALUATE_MODULE, "--model", model], cwd=work))
    assert "config snapshot" in done.stdout
    report_path = child / "evaluations" / "ppo_mission_3072_steps.json"
    report = strict_json(report_path)
    assert (child / "evaluations" / "ppo_mission_3072_steps.md").is_file()
    assert report["step"] == 3072 and report["run_name"] == child.name and report["episodes"] == 6
    assert report["config_hash"] == child_rec["config"]["hash"]
    assert report["parent"]["checkpoint"] == child_rec["parent_checkpoint"]["path"]
    assert report["baseline"]["episodes"] == 6
    done = ok(run_cli(["-m", EVALUATE_MODULE, "--model", model, "--config-dir", "configs/"], cwd=work))
    assert "--config-dir" in done.stdout
    assert strict_json(report_path)["config_dir"].rstrip("/") == "configs"

    # Step 4: the lineage-filtered dashboard.
    ok(run_cli(["-c", "from mission_gym.scripts.run_utils import generate_unified_dashboard; "
                      "generate_unified_dashboard(lineage_filter='active')"], cwd=work))
    page = (runs / "dashboard.html").read_text()
    assert parent.name in page and child.name in page and "↳" in page
    assert unrelated.name not in page

    # Cleanup: dry run first (deletes nothing), then for real.
    before = tree_state(runs)
    done = ok(run_cli([str(REPO / "cleanup_runs.py"), "--keep-active-lineage", "--dry-run"], cwd=work))
    assert unrelated.name in done.stdout and "nothing was deleted" in done.stdout
    assert re.search(rf"↳ {re.escape(child.name)}", done.stdout)
    assert tree_state(runs) == before
    done = ok(run_cli([str(REPO / "cleanup_runs.py"), "--keep-active-lineage", "--yes"], cwd=work))
    assert not unrelated.exists()
    assert set(run_dirs(runs)) == {parent, child}
    for kept in (parent, child):
        assert all(CHECKPOINT_NAME.match(p.name) for p in (kept / "checkpoints").iterdir())
    assert checkpoint_steps(parent) == [1024, 2048] and checkpoint_steps(child) == [2560, 3072]


def strict_json_line(line: str):
    import json

    def refuse(name: str):
        raise AssertionError(f"non-standard JSON constant {name} in metrics.jsonl")

    return json.loads(line, parse_constant=refuse)
