"""The run-folder sensor, the retention sensor with its cleanup job, the evaluation schedule and the views
automation.

Evaluated directly with their contexts on fake run folders (runs_factory): `build_sensor_context` does not
apply add-partition requests, so `_apply` does what the sensor daemon would.
"""

import datetime as dt
import json
import shutil
from pathlib import Path

import dagster as dg
import pytest
from pipelines_support import values
from runs_factory import checkpoint_entry, make_broken_run, make_run, update_record

from mission_gym.dashboard import generate_unified_dashboard
from mission_gym.runs.index import INDEX_FILE
from mission_gym.runs.lineage import list_runs
from mission_gym.runs.record import load_record
from mission_gym_pipelines.cleanup import cleanup_runs
from mission_gym_pipelines.definitions import defs
from mission_gym_pipelines.events import CHECKPOINT, CONFIG_SNAPSHOT, EVALUATION_REPORT, PARENT_CHECK
from mission_gym_pipelines.lineage import lineage_json
from mission_gym_pipelines.partitions import run_partitions
from mission_gym_pipelines.reported import TRAINING_RUN_TAG
from mission_gym_pipelines.resources import RunsRoot
from mission_gym_pipelines.schedules import evaluate_new_checkpoints, evaluate_runs
from mission_gym_pipelines.sensors import retention_sensor, run_folder_sensor

pytestmark = pytest.mark.slow  # end to end: Dagster sensors and schedules over run folders


@pytest.fixture()
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture()
def runs_root(tmp_path: Path) -> Path:
    """root ── child (branched at 2000) ── grandchild; an unrelated failed run; a folder without run.json."""
    root = tmp_path / "runs"
    make_run(root, "root-20260101-000000", steps=[1000, 2000], heartbeat_age_s=9000)
    make_run(root, "child-20260101-010000", parent="root-20260101-000000", steps=[3000], heartbeat_age_s=8000)
    make_run(root, "grandchild-20260101-020000", parent="child-20260101-010000", steps=[4000], heartbeat_age_s=7000)
    make_run(root, "crashed-20260101-030000", status="failed", heartbeat_age_s=6000)
    make_broken_run(root, "no-record")
    return root


def _sense(sensor, instance, runs_root: Path, **resource_args):
    context = dg.build_sensor_context(instance=instance, resources={"runs": RunsRoot(runs_root=str(runs_root),
                                                                                     **resource_args)})
    return sensor(context)


def _apply(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    """What the sensor daemon does with a result: report the events, then apply the partition requests."""
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def _events(result: dg.SensorResult, asset_key: dg.AssetKey, kind=dg.AssetMaterialization) -> dict[str, object]:
    return {e.partition: e for e in result.asset_events if isinstance(e, kind) and e.asset_key == asset_key}


def _write_evaluation(runs_root: Path, run_name: str, step: int, capture_rate: float, final: bool = False) -> None:
    folder = runs_root / run_name / "evaluations"
    folder.mkdir(exist_ok=True)
    model = "final_model.zip" if final else f"checkpoints/ppo_mission_{step}_steps.zip"
    report = {"checkpoint": f"{run_name}/{model}", "step": step, "capture_rate": capture_rate,
              "capture_rate_ci": [capture_rate - 0.1, capture_rate + 0.1], "mean_return": 12.5,
              "baseline": {"capture_rate": 0.4}, "parent": None, "seeds_hash": "abc"}
    (folder / f"{Path(model).stem}.json").write_text(json.dumps(report))


def test_run_folder_sensor_registers_cli_runs_and_reports_what_is_on_disk(instance, runs_root):
    # Training statistics come from the last complete metrics line (the last one may be half-written).
    (runs_root / "child-20260101-010000" / "metrics.jsonl").write_text(
        '{"timestep": 2500, "ep_return_mean": 1.5, "capture_rate": 0.25}\n'
        '{"timestep": 3000, "ep_return_mean": 2.5, "capture_rate": 0.5}\n{"timestep": 35')
    result = _sense(run_folder_sensor, instance, runs_root)
    [add] = result.dynamic_partitions_requests
    assert sorted(add.partition_keys) == ["child-20260101-010000", "crashed-20260101-030000",
                                          "grandchild-20260101-020000", "root-20260101-000000"]
    assert len(_events(result, CONFIG_SNAPSHOT)) == 4
    checkpoints = _events(result, CHECKPOINT)
    assert sorted(checkpoints) == ["child-20260101-010000", "grandchild-20260101-020000", "root-20260101-000000"]
    child = values(checkpoints["child-20260101-010000"])
    assert child["step"] == 3000 and child["parent_step"] == 2000
    root_path = "/assets/checkpoint?view=partitions&partition=root-20260101-000000"
    assert child["parent_run"] == f"[root-20260101-000000]({root_path})"
    assert "grandchild-20260101-020000" in child["children"]
    assert child["checkpoint_path"] == "child-20260101-010000/checkpoints/ppo_mission_3000_steps.zip"
    assert child["last_ep_return_mean"] == 2.5 and child["last_capture_rate"] == 0.5
    # The parent learns about its child through an observation on its own partition.
    backlinks = _events(result, CHECKPOINT, dg.AssetObservation)
    assert values(backlinks["root-20260101-000000"])["child_run"].endswith("partition=child-20260101-010000)")
    checks = {e.partition: e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)}
    assert checks["child-20260101-010000"].passed and checks["child-20260101-010000"].check_name == PARENT_CHECK

    _apply(instance, result)
    assert isinstance(_sense(run_folder_sensor, instance, runs_root), dg.SkipReason)  # nothing new: nothing reported


def test_run_folder_sensor_reports_only_news(instance, runs_root):
    _apply(instance, _sense(run_folder_sensor, instance, runs_root))
    # The CLI saves a newer checkpoint of one run, evaluates another, and a run folder is deleted.
    make_run(runs_root, "later-20260102-000000", parent="root-20260101-000000", steps=[2500], heartbeat_age_s=10)
    _write_evaluation(runs_root, "root-20260101-000000", 2000, 0.7)
    shutil.rmtree(runs_root / "crashed-20260101-030000")

    result = _sense(run_folder_sensor, instance, runs_root)
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [
        ["later-20260102-000000"], ["crashed-20260101-030000"]]
    assert sorted(_events(result, CHECKPOINT)) == ["later-20260102-000000"]
    evaluation = values(_events(result, EVALUATION_REPORT)["root-20260101-000000"])
    assert evaluation["capture_rate"] == 0.7
    assert (evaluation["capture_rate_ci95_low"], evaluation["capture_rate_ci95_high"]) == (0.6, 0.8)
    assert evaluation["baseline_capture_rate"] == 0.4 and evaluation["step"] == 2000


def test_sensor_lineage_view_and_dashboard_agree_on_the_latest_evaluation(instance, tmp_path):
    # The final model and the last checkpoint share a step; both were evaluated. Every view shows the
    # final model's report (runs/reports.py), which the dashboard and Dagster once chose differently.
    root = tmp_path / "runs"
    make_run(root, "done", steps=[1000, 2000], final_model=True)
    _write_evaluation(root, "done", 2000, 0.3)
    _write_evaluation(root, "done", 2000, 0.6, final=True)
    evaluation = values(_events(_sense(run_folder_sensor, instance, root), EVALUATION_REPORT)["done"])
    assert evaluation["checkpoint"] == "done/final_model.zip" and evaluation["capture_rate"] == 0.6
    assert [run["capture_rate"] for run in lineage_json(root, list_runs(root))["runs"]] == [0.6]
    page = generate_unified_dashboard(root).read_text()
    assert '<span class="big">60.0%</span>' in page and '<span class="big">30.0%</span>' not in page


def test_run_folder_sensor_leaves_runs_a_dagster_run_is_working_on(instance, runs_root):
    # A Dagster training run tags itself with its run name before it registers the partition; until it
    # finishes, it reports the run itself and the sensor must not report it twice.
    instance.add_run(dg.DagsterRun(job_name="train_run", status=dg.DagsterRunStatus.STARTED,
                                   tags={TRAINING_RUN_TAG: "root-20260101-000000"}))
    result = _sense(run_folder_sensor, instance, runs_root)
    assert "root-20260101-000000" not in _events(result, CHECKPOINT)
    assert "root-20260101-000000" not in _events(result, CONFIG_SNAPSHOT)
    assert "child-20260101-010000" in _events(result, CHECKPOINT)


def test_run_folder_sensor_skips_a_missing_runs_folder(instance, tmp_path):
    instance.add_dynamic_partitions(run_partitions.name, ["kept-20260101-000000"])
    result = _sense(run_folder_sensor, instance, tmp_path / "unmounted")
    assert isinstance(result, dg.SkipReason)  # an unmounted volume must not delete every partition


def test_schedule_evaluates_exactly_the_checkpoints_newer_than_their_evaluation(instance, runs_root):
    _write_evaluation(runs_root, "root-20260101-000000", 2000, 0.7)  # up to date
    _write_evaluation(runs_root, "child-20260101-010000", 3000, 0.5)
    _apply(instance, _sense(run_folder_sensor, instance, runs_root))
    # The child trains on (a newer checkpoint); the grandchild was never evaluated; the crashed run has no model.
    newer = runs_root / "child-20260101-010000" / "checkpoints" / "ppo_mission_3500_steps.zip"
    newer.write_bytes(b"newer")
    child = load_record(newer.parent.parent)
    update_record(newer.parent.parent, checkpoints=[*child.checkpoints, checkpoint_entry(newer, runs_root, 3500)])
    _apply(instance, _sense(run_folder_sensor, instance, runs_root))
    # The grandchild is deleted: its partition goes, its checkpoint materialization stays in the event log.
    shutil.rmtree(runs_root / "grandchild-20260101-020000")
    _apply(instance, _sense(run_folder_sensor, instance, runs_root))
    assert "grandchild-20260101-020000" not in instance.get_dynamic_partitions(run_partitions.name)

    requests = evaluate_new_checkpoints(dg.build_schedule_context(instance=instance))
    assert [(r.partition_key, r.run_key) for r in requests] == [("child-20260101-010000", "child-20260101-010000@3500")]
    assert defs.resolve_job_def(evaluate_runs.name).partitions_def == run_partitions

    _write_evaluation(runs_root, "child-20260101-010000", 3500, 0.6)  # evaluated (here: by the CLI)
    _apply(instance, _sense(run_folder_sensor, instance, runs_root))
    assert isinstance(evaluate_new_checkpoints(dg.build_schedule_context(instance=instance)), dg.SkipReason)


@pytest.fixture()
def crowded_runs(tmp_path: Path) -> tuple[Path, Path]:
    """Five runs under a three-run policy: the active lineage and a parent a kept child needs stay."""
    root = tmp_path / "runs"
    make_run(root, "old-a", steps=[1000], heartbeat_age_s=90_000)
    make_run(root, "old-b", steps=[1000], heartbeat_age_s=80_000)
    make_run(root, "old-b-child", parent="old-b", steps=[2000], heartbeat_age_s=70_000)
    make_run(root, "active", steps=[1000], heartbeat_age_s=100)
    make_run(root, "active-child", parent="active", steps=[2000], heartbeat_age_s=50)
    policy = tmp_path / "retention.yaml"
    policy.write_text("max_runs: 3\nkeep_active_lineage: true\n")
    return root, policy


def _cleanup(instance, runs_root: Path, run_config) -> dg.ExecuteInProcessResult:
    return cleanup_runs.execute_in_process(run_config=run_config, instance=instance,
                                           resources={"runs": RunsRoot(runs_root=str(runs_root))})


def _output_metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return {key: value.value for key, value in output.event_specific_data.metadata.items()}


def test_retention_sensor_launches_the_cleanup_job_with_the_exact_plan(instance, crowded_runs):
    runs_root, policy = crowded_runs
    _apply(instance, _sense(run_folder_sensor, instance, runs_root))
    request = _sense(retention_sensor, instance, runs_root, retention_policy=str(policy))
    assert isinstance(request, dg.RunRequest)
    assert dg.validate_run_config(cleanup_runs, request.run_config)
    plan = request.run_config["ops"]["delete_planned_runs"]["config"]["plan"]
    assert sorted(item["run_name"] for item in plan["delete"]) == ["old-a", "old-b-child"]

    result = _cleanup(instance, runs_root, request.run_config)
    assert sorted(result.output_for_node("delete_planned_runs")) == ["old-a", "old-b-child"]
    metadata = _output_metadata(result)
    assert sorted(metadata["deleted_runs"]) == ["old-a", "old-b-child"] and metadata["freed_bytes"] > 0
    assert "| old-a |" in metadata["deleted"]
    assert sorted(p.name for p in runs_root.iterdir() if p.name != INDEX_FILE) == ["active", "active-child", "old-b"]
    assert sorted(instance.get_dynamic_partitions(run_partitions.name)) == ["active", "active-child", "old-b"]
    assert isinstance(_sense(retention_sensor, instance, runs_root, retention_policy=str(policy)), dg.SkipReason)


def test_cleanup_job_skips_a_run_that_became_live_after_planning(instance, crowded_runs):
    runs_root, policy = crowded_runs
    request = _sense(retention_sensor, instance, runs_root, retention_policy=str(policy))
    update_record(runs_root / "old-a", status="running", heartbeat_at=dt.datetime.now(dt.timezone.utc))
    metadata = _output_metadata(_cleanup(instance, runs_root, request.run_config))
    assert metadata["deleted_runs"] == ["old-b-child"] and metadata["skipped_runs"] == ["old-a"]
    assert (runs_root / "old-a").is_dir()


def test_retention_sensor_reports_a_bad_policy(instance, crowded_runs):
    runs_root, policy = crowded_runs
    policy.write_text("max_runz: 3\n")
    with pytest.raises(dg.Failure, match="max_runz"):
        _sense(retention_sensor, instance, runs_root, retention_policy=str(policy))


def test_views_and_the_new_checkpoint_evaluation_are_requested_after_a_checkpoint_is_reported_and_only_then(instance):
    instance.add_dynamic_partitions(run_partitions.name, ["a-20260101-000000", "b-20260101-000000"])
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)  # starts the cursor
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=CHECKPOINT, partition="a-20260101-000000"))
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    # Requested though most partitions of checkpoint and evaluation_report were never materialized.
    assert {key.to_user_string(): after.get_num_requested(key)
            for key in (dg.AssetKey("dashboard"), dg.AssetKey("lineage_view"))} == {"dashboard": 1, "lineage_view": 1}
    # The new checkpoint is evaluated now, not at the schedule's next tick; the other run is not.
    assert after.get_requested_partitions(EVALUATION_REPORT) == {"a-20260101-000000"}
    assert after.total_requested == 3
    assert dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor).total_requested == 0


def test_cleanup_job_spares_the_lineage_that_became_active_after_planning(instance, crowded_runs):
    runs_root, policy = crowded_runs
    request = _sense(retention_sensor, instance, runs_root, retention_policy=str(policy))
    make_run(runs_root, "old-b-revived", parent="old-b", steps=[3000], heartbeat_age_s=1)  # the newest activity
    metadata = _output_metadata(_cleanup(instance, runs_root, request.run_config))
    assert metadata["deleted_runs"] == ["old-a"] and metadata["skipped_runs"] == ["old-b-child"]


def test_a_run_that_stopped_without_finishing_is_observed_not_materialized(instance, tmp_path):
    root = tmp_path / "runs"
    make_run(root, "cut-20260101-000000", status="interrupted", steps=[1000, 1500])
    result = _sense(run_folder_sensor, instance, root)
    assert not _events(result, CHECKPOINT)  # no materialization: the partition must not look finished
    stopped = _events(result, CHECKPOINT, dg.AssetObservation)["cut-20260101-000000"]
    assert values(stopped)["status"] == "interrupted" and values(stopped)["step"] == 1500
    assert stopped.description.startswith("NOT FINISHED: INTERRUPTED")
    _apply(instance, result)
    assert isinstance(_sense(run_folder_sensor, instance, root), dg.SkipReason)  # reported once
