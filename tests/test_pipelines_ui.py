"""The real UI: `dagster dev` with workspace.yaml and dagster_home/dagster.yaml on 127.0.0.1, driven through
its GraphQL API the way the launchpad does: train two runs (the second waits for the GPU pool), branch one,
read the partitions and the lineage metadata back, stop the server by its PID."""

import time
from pathlib import Path
from typing import Any

import pytest
from dagster_server import REPO_ROOT, DagsterServer, running_dagster
from pipelines_support import REPO_CONFIGS, TINY_TRAINING

from mission_gym_pipelines.reported import TRAINING_RUN_TAG
from mission_gym_pipelines.training import ensure_gpu_pool

pytestmark = pytest.mark.slow  # end to end: a real dagster dev server

LAUNCH = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }
"""
RUN = """
query($id: ID!) { runOrError(runId: $id) { ... on Run { status startTime endTime tags { key value } } } }
"""
CHECKPOINT = """
query($partitions: [String!]) { assetNodeOrError(assetKey: {path: ["checkpoint"]}) { ... on AssetNode {
  partitionKeysByDimension { partitionKeys }
  assetMaterializations(partitions: $partitions) { partition metadataEntries {
    label ... on UrlMetadataEntry { url } ... on IntMetadataEntry { intValue } } }
  assetObservations(partitions: $partitions) { partition metadataEntries {
    label ... on UrlMetadataEntry { url } } } } } }
"""
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def _launch(server: DagsterServer, **config: Any) -> str:
    params = {"selector": {"repositoryLocationName": "mission_gym", "repositoryName": "__repository__",
                           "jobName": "train_run"},
              "runConfigData": {"ops": {"train_new_run": {"config": {**TINY_TRAINING, **config}}}}}
    result = server.graphql(LAUNCH, {"params": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def _run(server: DagsterServer, run_id: str) -> dict[str, Any]:
    run = server.graphql(RUN, {"id": run_id})["runOrError"]
    return {**run, "tags": {tag["key"]: tag["value"] for tag in run["tags"]}}


def _wait(server: DagsterServer, run_ids: list[str], timeout_s: float = 240) -> list[dict[str, Any]]:
    """The runs once all have finished."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = [_run(server, run_id) for run_id in run_ids]
        if all(run["status"] in FINISHED for run in runs):
            return runs
        time.sleep(0.5)
    raise TimeoutError(f"runs {run_ids} unfinished after {timeout_s} s:\n{server.log_tail()}")


def _urls(entries: list[dict[str, Any]]) -> dict[str, str]:
    return {entry["label"]: entry["url"] for entry in entries if "url" in entry}


def test_train_and_branch_from_the_ui(tmp_path: Path):
    runs_root = tmp_path / "runs"
    env = {"MISSION_GYM_RUNS_ROOT": str(runs_root), "MISSION_GYM_CONFIG_DIR": str(REPO_CONFIGS)}
    with running_dagster(REPO_ROOT / "dagster_home" / "dagster.yaml", env, prepare=ensure_gpu_pool) as server:
        first, second = _wait(server, [_launch(server, run_name="ui-first"), _launch(server, run_name="ui-second")])
        assert first["status"] == second["status"] == "SUCCESS", server.log_tail()
        # The "gpu" pool let one training run start only after the other ended.
        earlier, later = sorted([first, second], key=lambda run: run["startTime"])
        assert later["startTime"] >= earlier["endTime"]
        parent = first["tags"][TRAINING_RUN_TAG]

        branch_id = _launch(server, parent_checkpoint=parent, branch_name="ui-branch")
        [branch_run] = _wait(server, [branch_id])
        assert branch_run["status"] == "SUCCESS", server.log_tail()
        branch = branch_run["tags"][TRAINING_RUN_TAG]

        node = server.graphql(CHECKPOINT, {"partitions": [branch, parent]})["assetNodeOrError"]
        assert {parent, branch} <= set(node["partitionKeysByDimension"][0]["partitionKeys"])
        [child_materialization] = [m for m in node["assetMaterializations"] if m["partition"] == branch]
        assert _urls(child_materialization["metadataEntries"])["parent_run"] == (
            f"/assets/checkpoint?view=partitions&partition={parent}")
        [backlink] = [o for o in node["assetObservations"] if o["partition"] == parent]
        assert _urls(backlink["metadataEntries"])["child_run"].endswith(f"partition={branch}")
        assert (runs_root / branch / "run.json").is_file()
