"""A branch search driven by Dagster: start_search writes the record, search_sensor trains each member as its own
checkpoint run (pool gpu) and launches decide_search_round once a round trained; relaunching resumes.

The sensor is evaluated directly with its context (build_sensor_context does not apply add-partition requests,
so `tick` does what the daemon would) and every run it requests is executed in process on a temporary instance.
"""

import time
from pathlib import Path

import dagster as dg
import pytest
from pipelines_support import REPO_CONFIGS, checkpoint_config
from runs_factory import make_run

from mission_gym.runs.record import load_record
from mission_gym.search import SearchSettings, load_search
from mission_gym_pipelines.definitions import defs
from mission_gym_pipelines.events import CHECKPOINT
from mission_gym_pipelines.partitions import run_partitions
from mission_gym_pipelines.pools import GPU_POOL
from mission_gym_pipelines.resources import RunsRoot
from mission_gym_pipelines.search import SEARCH_TAG, STEP_TAG, SearchConfig, finished_member_run, search_sensor

SPACE = str(REPO_CONFIGS / "search.yaml")


class SearchLab:
    """The code location's definitions on a temporary instance and runs folder."""

    def __init__(self, instance: dg.DagsterInstance, runs_root: Path) -> None:
        self.instance, self.runs_root = instance, runs_root
        self.resource = RunsRoot(runs_root=str(runs_root), config_dir=str(REPO_CONFIGS))
        self.defs = dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs,
                                   sensors=defs.sensors, resources={"runs": self.resource}, executor=defs.executor)

    def start(self, **config) -> dg.ExecuteInProcessResult:
        """Jobs -> start_search -> Launchpad -> Launch Run."""
        return self.defs.resolve_job_def("start_search").execute_in_process(
            run_config={"ops": {"start_or_resume": {"config": config}}}, instance=self.instance, raise_on_error=False)

    def tick(self) -> dg.SensorResult | dg.SkipReason:
        """One sensor evaluation, its partition requests applied as the daemon would."""
        result = search_sensor(dg.build_sensor_context(instance=self.instance, resources={"runs": self.resource}))
        for request in getattr(result, "dynamic_partitions_requests", None) or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return result

    def execute(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        """What the daemon launches for a run request."""
        return self.defs.resolve_job_def(request.job_name).execute_in_process(
            run_config=request.run_config, tags=request.tags, partition_key=request.partition_key,
            instance=self.instance, raise_on_error=False)

    def search_runs(self, name: str) -> dict[str, list[dg.DagsterRun]]:
        runs: dict[str, list[dg.DagsterRun]] = {}
        for run in self.instance.get_runs(filters=dg.RunsFilter(tags={SEARCH_TAG: name})):
            runs.setdefault(run.tags.get(STEP_TAG, "start"), []).append(run)
        return runs


def _failure(result: dg.ExecuteInProcessResult) -> str:
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return failure.step_failure_data.user_failure_data.description


@pytest.fixture()
def lab(tmp_path):
    with dg.instance_for_test() as instance:
        yield SearchLab(instance, tmp_path / "runs")


def test_the_launchpad_config_mirrors_the_search_settings():
    shared = set(SearchSettings.model_fields) - {"runs_root", "config_dir"}  # the runs resource gives those two
    assert set(SearchConfig.model_fields) == shared
    for name in shared - {"space"}:
        assert SearchConfig.model_fields[name].description == SearchSettings.model_fields[name].description
        assert SearchConfig.model_fields[name].default == SearchSettings.model_fields[name].default


@pytest.mark.parametrize("config, says", [
    ({"parent": "parent", "population": 1}, "population 1"),
    ({"parent": "nobody"}, "nobody"),
    ({"parent": "parent", "space": "missing.yaml"}, "missing.yaml"),
])
def test_bad_requests_fail_the_launch_readably(lab, config, says):
    make_run(lab.runs_root, "parent", steps=[5000])
    result = lab.start(**config)
    assert not result.success and says in _failure(result)
    assert not (lab.runs_root / "searches").exists() or not any((lab.runs_root / "searches").iterdir())
    assert isinstance(lab.tick(), dg.SkipReason)


def test_a_failed_member_is_named_and_not_relaunched_until_the_search_is(lab):
    make_run(lab.runs_root, "parent", steps=[5000])  # fake checkpoint bytes: every member's training fails
    assert lab.start(parent="parent", population=2, rounds=1, round_timesteps=512, n_envs=4, space=SPACE,
                     name="broken").success
    first = lab.tick()
    assert sorted(r.partition_key for r in first.run_requests) == ["broken-r0-m0", "broken-r0-m1"]
    assert all(not lab.execute(request).success for request in first.run_requests)
    stuck = lab.tick()
    assert isinstance(stuck, dg.SkipReason)
    assert "search broken: broken-r0-m0 failed: Dagster run" in stuck.skip_message
    assert "Launch start_search again with name broken" in stuck.skip_message
    assert isinstance(lab.tick(), dg.SkipReason)  # no loop: the same launch never retries a member
    assert lab.start(parent="parent", population=2, rounds=1, round_timesteps=512, n_envs=4, space=SPACE,
                     name="broken").success
    assert len(lab.tick().run_requests) == 2  # launching the search again retries them


def test_a_member_preempted_twice_counts_through_its_retry_children(tmp_path):
    make_run(tmp_path, "s-r0-m0", status="interrupted", steps=[256])
    make_run(tmp_path, "s-r0-m0-retry1", parent="s-r0-m0", status="interrupted", steps=[384])
    assert finished_member_run(tmp_path, "s-r0-m0") is None  # the second retry has not started yet
    make_run(tmp_path, "s-r0-m0-retry1-retry2", parent="s-r0-m0-retry1", steps=[512])
    make_run(tmp_path, "s-r0-m0-retry1x", steps=[512])  # not a retry of it
    assert finished_member_run(tmp_path, "s-r0-m0") == "s-r0-m0-retry1-retry2"
    make_run(tmp_path, "s-r0-m1", status="running", steps=[256])
    assert finished_member_run(tmp_path, "s-r0-m1") is None and finished_member_run(tmp_path, "nothing") is None


def test_a_search_the_cli_runs_is_left_to_the_cli(lab):
    from mission_gym.search import save_search, start_or_resume_search

    make_run(lab.runs_root, "parent", steps=[5000])
    record = start_or_resume_search(SearchSettings(parent="parent", space=Path(SPACE), name="cli",
                                                   runs_root=lab.runs_root))
    save_search(record, lab.runs_root)
    assert isinstance(lab.tick(), dg.SkipReason)


@pytest.mark.slow
def test_a_search_trains_each_member_as_its_own_run_and_resumes(lab):
    lab.instance.add_dynamic_partitions(run_partitions.name, ["root"])
    trained = dg.materialize(defs.assets, partition_key="root", instance=lab.instance,
                             resources={"runs": lab.resource}, run_config=checkpoint_config(),
                             selection=dg.AssetSelection.assets(CHECKPOINT))
    assert trained.success
    search = dict(parent="root", population=2, rounds=2, round_timesteps=512, n_envs=4, selection_seeds=20,
                  space=SPACE, name="s1", seed=3)
    assert lab.start(**search).success
    first = lab.tick()
    assert sorted(r.partition_key for r in first.run_requests) == ["s1-r0-m0", "s1-r0-m1"]
    assert all(lab.execute(request).success for request in first.run_requests)
    # Interrupted here and launched again: the record resumes, trained members are not trained again.
    assert lab.start(**search).success
    while not isinstance(result := lab.tick(), dg.SkipReason):
        assert all(lab.execute(request).success for request in result.run_requests)
    record = load_search(lab.runs_root, "s1")
    assert record.status == "finished" and len(record.members) == 4 and record.winner
    assert (lab.runs_root / "searches" / "s1" / "summary.md").is_file()
    runs = lab.search_runs("s1")
    member_job = lab.defs.resolve_job_def("train_search_member")
    assert member_job.graph.node_named("checkpoint").definition.pool == GPU_POOL
    for member in record.members:
        [run] = runs[member.run_name]  # its own Dagster run, launched once
        assert run.job_name == "train_search_member" and run.status == dg.DagsterRunStatus.SUCCESS
        assert "nvidia.com/gpu" in run.tags["dagster-k8s/config"]
        trained_run = load_record(lab.runs_root / member.run_name)
        assert trained_run.status == "finished" and trained_run.parent_run == member.parent_run
        assert member.origin in trained_run.notes and "search s1" in trained_run.notes
        assert trained_run.hyperparameters["learning_rate"] == pytest.approx(member.hyperparameters["learning_rate"])
    assert [len(runs[f"decide-r{r}"]) for r in (0, 1)] == [1, 1]
    assert record.winner_lineage[0] == "root" and record.winner_lineage[-1] == record.winner
    assert lab.start(**search).success  # a finished search launched again stays finished; nothing is launched
    assert isinstance(lab.tick(), dg.SkipReason)


SEARCH_RUNS = """
query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs { results {
  runId jobName status startTime endTime tags { key value } } } } }
"""


@pytest.mark.slow
def test_the_ui_launches_a_search_and_the_daemon_carries_it_to_the_end(tmp_path):
    """Jobs -> start_search -> Launchpad -> Launch Run on a real `dagster dev`; the sensor daemon does the rest."""
    from dagster_server import LAUNCH, REPO_ROOT, REPOSITORY, materialize, running_dagster, wait_for_runs

    from mission_gym_pipelines.pools import ensure_pools

    runs_root = tmp_path / "runs"
    env = {"MISSION_GYM_RUNS_ROOT": str(runs_root), "MISSION_GYM_CONFIG_DIR": str(REPO_CONFIGS)}
    with running_dagster(REPO_ROOT / "dagster_home" / "dagster.yaml", env, prepare=ensure_pools) as server:
        [root] = wait_for_runs(server, [materialize(server, "root")])
        assert root["status"] == "SUCCESS", server.log_tail()
        config = dict(parent="root", population=2, rounds=1, round_timesteps=512, n_envs=4, selection_seeds=20,
                      space=SPACE, name="ui")
        params = {"selector": {**REPOSITORY, "jobName": "start_search"},
                  "runConfigData": {"ops": {"start_or_resume": {"config": config}}}}
        launched = server.graphql(LAUNCH, {"params": params})
        assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
        deadline = time.monotonic() + 480
        while time.monotonic() < deadline and not (runs_root / "searches" / "ui" / "summary.md").is_file():
            time.sleep(1)
        record = load_search(runs_root, "ui")
        assert record.status == "finished", server.log_tail()
        runs = server.graphql(SEARCH_RUNS, {"tags": [{"key": SEARCH_TAG, "value": "ui"}]})["runsOrError"]["results"]
        members = sorted((r for r in runs if r["jobName"] == "train_search_member"), key=lambda r: r["startTime"])
        steps = sorted(next(t["value"] for t in r["tags"] if t["key"] == STEP_TAG) for r in members)
        assert steps == ["ui-r0-m0", "ui-r0-m1"] and all(r["status"] == "SUCCESS" for r in members)
        assert members[1]["startTime"] >= members[0]["endTime"]  # the gpu pool (size 1) ran one member at a time
        assert sorted(m.run_name for m in record.members) == steps
