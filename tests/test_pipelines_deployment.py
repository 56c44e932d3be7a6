"""The deployment users scale to, on this machine: a real PostgreSQL server (loopback), `dagster-webserver` and
`dagster-daemon run` as separate processes (not `dagster dev`), the queued run coordinator with the "gpu" pool
at 2, the runs folder from MISSION_GYM_RUNS_ROOT. Four trainings launched through GraphQL train at most two at
a time and all succeed; a webserver restart loses nothing; a branch after it links to its parent. Then the
partition listing with 10,000 runs is timed (PostgreSQL here, SQLite in the second test).

The measured numbers are printed (run with -s to see them)."""

import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_server import (
    REPO_ROOT,
    DagsterServer,
    materialize,
    run_status,
    running_dagster,
    running_deployment,
    wait_for_runs,
)
from pg import postgres_available, running_postgres
from pipelines_support import REPO_CONFIGS

from mission_gym.runs.record import load_record
from mission_gym_pipelines.partitions import run_partitions
from mission_gym_pipelines.pools import GPU_POOL, ensure_pools

POSTGRES_YAML = REPO_ROOT / "dagster_home_postgres" / "dagster.yaml"
SQLITE_YAML = REPO_ROOT / "dagster_home" / "dagster.yaml"
GPU_SLOTS = 2
pytestmark = pytest.mark.slow  # end to end: PostgreSQL, separate webserver and daemon processes
MANY_RUNS = 10_000
TIMED_LOGS = """
query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
  ... on MessageEvent { message timestamp } } } } }
"""
PARTITIONS = """
query { assetNodeOrError(assetKey: {path: ["checkpoint"]}) { ... on AssetNode {
  partitionKeysByDimension { partitionKeys }
  assetPartitionStatuses { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } } } }
"""


def _two_gpu_slots(instance: dg.DagsterInstance) -> None:
    ensure_pools(instance)
    instance.event_log_storage.set_concurrency_slots(GPU_POOL, GPU_SLOTS)


def _most_at_once(runs: list[dict[str, Any]]) -> int:
    """The largest number of runs whose [startTime, endTime) intervals overlap."""
    edges = sorted([(run["startTime"], 1) for run in runs] + [(run["endTime"], -1) for run in runs])
    running = most = 0
    for _, change in edges:  # an end sorts before a start at the same instant
        running += change
        most = max(most, running)
    return most


def _launch_to_training_s(server: DagsterServer, run_id: str, launched_at: float) -> float:
    events = server.graphql(TIMED_LOGS, {"id": run_id})["logsForRun"]["events"]
    [started] = [e for e in events if (e.get("message") or "").startswith("Training ")]
    return float(started["timestamp"]) / 1000 - launched_at


def _time_listing(server: DagsterServer) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    node = server.graphql(PARTITIONS)["assetNodeOrError"]
    return time.perf_counter() - started, node


def _add_many_runs(instance: dg.DagsterInstance) -> float:
    started = time.perf_counter()
    instance.add_dynamic_partitions(run_partitions.name, [f"many-{i:05d}" for i in range(MANY_RUNS)])
    return time.perf_counter() - started


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL 15 binaries missing (scripts/install_system_deps.sh)")
def test_postgres_webserver_and_daemon_as_services_train_four_runs_two_at_a_time(tmp_path: Path, monkeypatch):
    runs_root = tmp_path / "runs"
    with running_postgres() as postgres:
        for name, value in postgres.dagster_env().items():  # this process opens the instance too
            monkeypatch.setenv(name, value)
        env = {**postgres.dagster_env(), "MISSION_GYM_RUNS_ROOT": str(runs_root),
               "MISSION_GYM_CONFIG_DIR": str(REPO_CONFIGS)}
        with running_deployment(POSTGRES_YAML, env, prepare=_two_gpu_slots) as deployment:
            server = deployment.server
            names = ["dep-a", "dep-b", "dep-c", "dep-d"]
            # Long enough (15-30 s each) to overlap while the daemon launches the next ones (about 4 s apart here).
            launched = {name: (time.time(), materialize(server, name, seed=i, timesteps=16384, checkpoint_freq=4096))
                        for i, name in enumerate(names)}
            runs = wait_for_runs(server, [run_id for _, run_id in launched.values()], timeout_s=600)
            assert [run["status"] for run in runs] == ["SUCCESS"] * 4, server.log_tail()
            assert _most_at_once(runs) == GPU_SLOTS  # two trained together, never three
            delays = sorted(_launch_to_training_s(server, run_id, at) for at, run_id in launched.values())
            print(f"\nlaunch to training start (PostgreSQL, separate daemon): {', '.join(f'{d:.1f}' for d in delays)}"
                  " s")

            deployment.restart_webserver()
            assert [run_status(server, run_id)["status"] for _, run_id in launched.values()] == ["SUCCESS"] * 4
            _, node = _time_listing(server)
            assert set(names) <= set(node["assetPartitionStatuses"]["materializedPartitions"])

            [branch] = wait_for_runs(server, [materialize(server, "dep-branch", parent_checkpoint="dep-a")])
            assert branch["status"] == "SUCCESS", server.log_tail()
            assert load_record(runs_root / "dep-branch").parent_run == "dep-a"
            assert {load_record(runs_root / name).root_ancestor for name in names} == set(names)

            with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
                added_s = _add_many_runs(instance)
                started = time.perf_counter()
                assert len(instance.get_dynamic_partitions(run_partitions.name)) == MANY_RUNS + 5
                instance_s = time.perf_counter() - started
            graphql_s, node = _time_listing(server)
            assert len(node["partitionKeysByDimension"][0]["partitionKeys"]) == MANY_RUNS + 5
            print(f"{MANY_RUNS:,} runs on PostgreSQL: adding {added_s:.2f} s, listing {instance_s:.3f} s (instance), "
                  f"{graphql_s:.2f} s (GraphQL keys and statuses)")
            assert graphql_s <= 2.0


def test_listing_ten_thousand_runs_on_sqlite(tmp_path: Path):
    timings: dict[str, float] = {}

    def many_runs(instance: dg.DagsterInstance) -> None:
        timings["adding"] = _add_many_runs(instance)

    env = {"MISSION_GYM_RUNS_ROOT": str(tmp_path / "runs"), "MISSION_GYM_CONFIG_DIR": str(REPO_CONFIGS)}
    with running_dagster(SQLITE_YAML, env, prepare=many_runs) as server:
        graphql_s, node = _time_listing(server)
        assert len(node["partitionKeysByDimension"][0]["partitionKeys"]) == MANY_RUNS
        with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
            started = time.perf_counter()
            assert len(instance.get_dynamic_partitions(run_partitions.name)) == MANY_RUNS
            instance_s = time.perf_counter() - started
    print(f"\n{MANY_RUNS:,} runs on SQLite: adding {timings['adding']:.2f} s, listing {instance_s:.3f} s (instance), "
          f"{graphql_s:.2f} s (GraphQL keys and statuses)")
    assert graphql_s <= 2.0
