"""The real UI: `dagster dev` with workspace.yaml and dagster_home/dagster.yaml on 127.0.0.1, driven through
its GraphQL API along the README's click-path: Assets -> checkpoint -> Materialize -> add a partition (the
run's name) -> launchpad config -> Launch. Two trainings (the second waits for the GPU pool), a branch of
one, the refusal of an existing run, the partitions, progress and lineage read back; stopped by its PID."""

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from dagster_server import REPO_ROOT, DagsterServer, materialize, run_messages, running_dagster, wait_for_runs
from pipelines_support import REPO_CONFIGS, TINY_TRAINING

from mission_gym.runs.record import load_record
from mission_gym_pipelines.pools import ensure_pools

pytestmark = pytest.mark.slow  # end to end: a real dagster dev server

CHECKPOINT = """
query($partitions: [String!]) { assetNodeOrError(assetKey: {path: ["checkpoint"]}) { ... on AssetNode {
  partitionKeysByDimension { partitionKeys }
  assetMaterializations(partitions: $partitions) { partition runId metadataEntries {
    label ... on MarkdownMetadataEntry { mdStr } ... on IntMetadataEntry { intValue } } }
  assetObservations(partitions: $partitions) { partition runId metadataEntries {
    label ... on MarkdownMetadataEntry { mdStr } ... on IntMetadataEntry { intValue } } } } } }
"""


def _entries(event: dict[str, Any]) -> dict[str, Any]:
    return {e["label"]: e.get("mdStr", e.get("intValue")) for e in event["metadataEntries"]}


def test_the_readme_click_path_trains_branches_and_refuses_an_existing_run(tmp_path: Path):
    runs_root = tmp_path / "runs"
    env = {"MISSION_GYM_RUNS_ROOT": str(runs_root), "MISSION_GYM_CONFIG_DIR": str(REPO_CONFIGS)}
    with running_dagster(REPO_ROOT / "dagster_home" / "dagster.yaml", env, prepare=ensure_pools) as server:
        first, second = wait_for_runs(server, [materialize(server, "ui-first"), materialize(server, "ui-second")])
        assert first["status"] == second["status"] == "SUCCESS", server.log_tail()
        # The "gpu" pool let one training run start only after the other ended.
        earlier, later = sorted([first, second], key=lambda run: run["startTime"])
        assert later["startTime"] >= earlier["endTime"]

        [branch] = wait_for_runs(server, [branch_id := materialize(server, "ui-branch", parent_checkpoint="ui-first")])
        assert branch["status"] == "SUCCESS", server.log_tail()
        assert any(m.startswith("progress step=768 ") for m in run_messages(server, branch_id))

        node = server.graphql(CHECKPOINT, {"partitions": ["ui-branch", "ui-first"]})["assetNodeOrError"]
        assert {"ui-first", "ui-second", "ui-branch"} <= set(node["partitionKeysByDimension"][0]["partitionKeys"])
        [child] = [m for m in node["assetMaterializations"] if m["partition"] == "ui-branch"]
        assert _entries(child)["parent_run"] == "[ui-first](/assets/checkpoint?view=partitions&partition=ui-first)"
        assert _entries(child)["step"] == 1024  # the parent's 512 steps, continued
        parent_events = [_entries(o) for o in node["assetObservations"] if o["partition"] == "ui-first"]
        assert "[ui-branch](/assets/checkpoint?view=partitions&partition=ui-branch)" in [
            e.get("child_run") for e in parent_events]
        assert sorted(e["step"] for e in parent_events if "step" in e) == [256, 512]  # seen while it trained
        assert (runs_root / "ui-branch" / "run.json").is_file()

        # Materializing an existing run again is refused, and says how to continue it instead.
        before = _trained_files(runs_root / "ui-first")
        [again] = wait_for_runs(server, [again_id := materialize(server, "ui-first", add=False)])
        assert again["status"] == "FAILURE"
        assert any("Run ui-first already exists" in m and "parent_checkpoint: ui-first" in m
                   for m in run_messages(server, again_id))
        assert _trained_files(runs_root / "ui-first") == before


def _trained_files(run_dir: Path) -> dict[str, int]:
    """What training wrote (evaluations/ may grow meanwhile: the evaluation sensor evaluates new checkpoints)."""
    return {str(p.relative_to(run_dir)): p.stat().st_mtime_ns for p in run_dir.rglob("*")
            if p.is_file() and "evaluations" not in p.parts}


def _wait_for(condition: Any, server: DagsterServer, what: str, timeout_s: float = 180) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"{what} not seen after {timeout_s} s:\n{server.log_tail()}")


RUNS = """
query { runsOrError { ... on Runs { results { runId status tags { key value } } } } }
"""


def test_a_sigterm_during_training_is_retried_and_the_retry_finishes_the_run(tmp_path: Path):
    TARGET = 32_768
    runs_root = tmp_path / "runs"
    env = {"MISSION_GYM_RUNS_ROOT": str(runs_root), "MISSION_GYM_CONFIG_DIR": str(REPO_CONFIGS)}
    with running_dagster(REPO_ROOT / "dagster_home" / "dagster.yaml", env, prepare=ensure_pools) as server:
        # Long enough that the SIGTERM below always lands mid-training, even on an idle machine.
        first_id = materialize(server, "preempted", timesteps=TARGET, checkpoint_freq=512)
        run_json = runs_root / "preempted" / "run.json"
        # Preempt it once it has saved a checkpoint: SIGTERM its run worker (the process training it).
        _wait_for(lambda: run_json.is_file() and load_record(runs_root / "preempted").checkpoints, server,
                  "a first checkpoint")
        os.kill(load_record(runs_root / "preempted").pid, signal.SIGTERM)
        [first] = wait_for_runs(server, [first_id])
        assert first["status"] == "FAILURE"
        stopped = load_record(runs_root / "preempted")
        assert stopped.status == "interrupted", stopped

        def retry_run() -> dict[str, Any] | None:
            runs = server.graphql(RUNS)["runsOrError"]["results"]
            return next((r for r in runs if {"key": "dagster/parent_run_id", "value": first_id} in r["tags"]), None)

        retry_id = _wait_for(retry_run, server, "Dagster's automatic retry")["runId"]
        [retry] = wait_for_runs(server, [retry_id])
        assert retry["status"] == "SUCCESS", server.log_tail()
        child = load_record(runs_root / "preempted-retry1")
        assert child.parent_run == "preempted" and child.status == "finished"
        # The requested timesteps, finished: PPO trains whole rollouts (4 arenas x 64), and SIGTERM stops the
        # run at the next timestep, mid-rollout, so the child may end up to one rollout past the target.
        rollout = TINY_TRAINING["n_envs"] * TINY_TRAINING["n_steps"]
        assert child.timesteps.target == TARGET and TARGET <= child.timesteps.current < TARGET + rollout
        # Resumed from the stopped run's latest checkpoint: at most one checkpoint interval is trained again.
        assert stopped.timesteps.current - child.timesteps.start <= 512
