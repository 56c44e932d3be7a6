"""The two instance configs: the embedded SQLite one (dagster_home/) and the PostgreSQL one, tested against a
real PostgreSQL 15 server this test starts itself."""

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
import yaml
from pg import postgres_available, running_postgres
from pipelines_support import REPO_CONFIGS, latest_materialization_metadata, train_run_config

from mission_gym_pipelines.events import CHECKPOINT
from mission_gym_pipelines.partitions import run_partitions
from mission_gym_pipelines.resources import RunsRoot
from mission_gym_pipelines.assets import evaluation_report
from mission_gym_pipelines.pools import GPU_K8S_TAGS, POOLS, ensure_pools
from mission_gym_pipelines.training import checkpoint, train_new_run, train_run

pytestmark = pytest.mark.slow  # end to end: Dagster instances, a real PostgreSQL

REPO_ROOT = Path(__file__).resolve().parent.parent
SQLITE_YAML = REPO_ROOT / "dagster_home" / "dagster.yaml"
POSTGRES_YAML = REPO_ROOT / "dagster_home_postgres" / "dagster.yaml"


def _instance(yaml_path: Path, home: Path) -> dg.DagsterInstance:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(yaml_path, home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def _assert_gpu_pool_holds_whole_runs(instance: dg.DagsterInstance) -> None:
    pools = instance.get_concurrency_config().pool_config
    assert pools.default_pool_limit == 1 and pools.pool_granularity.value == "run"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    # A preempted training run is retried (and resumes), a bounded number of times.
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 2


def test_embedded_instance_is_sqlite_with_one_gpu_run_at_a_time(tmp_path):
    instance = _instance(SQLITE_YAML, tmp_path / "home")
    _assert_gpu_pool_holds_whole_runs(instance)
    assert type(instance.run_storage).__name__ == "SqliteRunStorage"
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4


def test_postgres_config_differs_from_the_embedded_one_only_in_storage():
    sqlite, postgres = (yaml.safe_load(path.read_text()) for path in (SQLITE_YAML, POSTGRES_YAML))
    assert postgres.pop("storage")["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert sqlite == postgres


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL 15 binaries missing (scripts/install_system_deps.sh)")
def test_postgres_instance_stores_a_training_materialization(tmp_path, monkeypatch):
    with running_postgres() as server:
        for name, value in server.dagster_env().items():
            monkeypatch.setenv(name, value)
        runs = RunsRoot(runs_root=str(tmp_path / "runs"), config_dir=str(REPO_CONFIGS))
        instance = _instance(POSTGRES_YAML, tmp_path / "home")
        try:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            _assert_gpu_pool_holds_whole_runs(instance)
            result = train_run.execute_in_process(run_config=train_run_config(run_name="pg"), instance=instance,
                                                  resources={"runs": runs})
            run_name = result.output_for_node("train_new_run")
        finally:
            instance.dispose()
        # A second instance (a new connection, as another machine would open) reads it back.
        reader = _instance(POSTGRES_YAML, tmp_path / "other-home")
        try:
            assert reader.get_dynamic_partitions(run_partitions.name) == [run_name]
            assert reader.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
            assert latest_materialization_metadata(reader, CHECKPOINT, run_name)["step"] == 512
        finally:
            reader.dispose()
        # And it is in that server's tables, not in some local file.
        engine = sqlalchemy.create_engine(server.url)
        with engine.connect() as connection:
            assert connection.execute(sqlalchemy.text("SELECT count(*) FROM runs")).scalar() == 1
        engine.dispose()


def test_training_is_gpu_work_for_the_pool_and_for_kubernetes():
    for tags in (train_new_run.tags, train_run.tags):  # op tags: k8s_job_executor; run tags: K8sRunLauncher
        k8s = json.loads(tags["dagster-k8s/config"])
        assert k8s["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert train_new_run.pool == checkpoint.op.pool == "gpu"
    assert json.loads(checkpoint.op.tags["dagster-k8s/config"]) == GPU_K8S_TAGS["dagster-k8s/config"]


def test_evaluations_hold_their_own_pool_and_ensure_pools_creates_both_limits(tmp_path):
    assert evaluation_report.op.pool == "evaluation"
    instance = _instance(SQLITE_YAML, tmp_path / "home")
    ensure_pools(instance)
    # default_limit sizes every pool: one training and one evaluation at a time on this machine.
    assert {pool: instance.event_log_storage.get_concurrency_info(pool).slot_count for pool in POOLS} == {
        "gpu": 1, "evaluation": 1}
