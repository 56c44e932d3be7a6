"""The real jobs and assets in process, on a temporary instance: train and branch by materializing new
checkpoint partitions, watch the training (log lines, checkpoint observations), refuse a bad parent and an
existing run, re-record when asked, evaluate, and build the dashboard and lineage view."""

import base64
import io
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image
from pipelines_support import REPO_CONFIGS, checkpoint_config, latest_materialization_metadata, train_run_config, values

from mission_gym.runs.record import load_record, sha256_file
from mission_gym.training import TrainSettings
from mission_gym_pipelines.assets import (
    config_snapshot,
    dashboard,
    evaluation_report,
    lineage_view,
    parent_checkpoint_intact,
)
from mission_gym_pipelines.curve import learning_curve_png
from mission_gym_pipelines.definitions import defs
from mission_gym_pipelines.events import CHECKPOINT, CONFIG_SNAPSHOT, EVALUATION_REPORT, PARENT_CHECK
from mission_gym_pipelines.partitions import run_partitions
from mission_gym_pipelines.progress import DagsterProgress, progress_line
from mission_gym_pipelines.reported import TRAINING_RUN_TAG
from mission_gym_pipelines.resources import RunsRoot
from mission_gym_pipelines.training import TrainingConfig, TrainRunConfig, checkpoint

pytestmark = pytest.mark.slow  # end to end: Dagster materializations that train


ALL_ASSETS = [config_snapshot, checkpoint, parent_checkpoint_intact, evaluation_report, dashboard, lineage_view]


class Lab:
    """A temporary instance and runs folder holding a trained root run and a branch of it."""

    def __init__(self, instance: dg.DagsterInstance, root: Path) -> None:
        self.instance, self.runs_root = instance, root / "runs"
        self.resource = RunsRoot(runs_root=str(self.runs_root), config_dir=str(REPO_CONFIGS))

    def train(self, run_name: str, resource: RunsRoot | None = None, tags: dict[str, str] | None = None,
              **overrides) -> dg.ExecuteInProcessResult:
        """The UI's click-path: add the partition, then materialize checkpoint (and its check) with a config."""
        self.instance.add_dynamic_partitions(run_partitions.name, [run_name])
        return dg.materialize(ALL_ASSETS, partition_key=run_name, instance=self.instance, tags=tags,
                              resources={"runs": resource or self.resource}, run_config=checkpoint_config(**overrides),
                              selection=dg.AssetSelection.assets(CHECKPOINT), raise_on_error=False)

    def materialize(self, asset_name: str, partition: str | None = None, **run_config) -> dg.ExecuteInProcessResult:
        """Materialize one asset (with its checks) the way the UI's Materialize button does."""
        return dg.materialize(ALL_ASSETS, partition_key=partition, instance=self.instance,
                              resources={"runs": self.resource}, run_config=run_config or None,
                              selection=dg.AssetSelection.assets(asset_name), raise_on_error=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with dg.instance_for_test() as instance:
        lab = Lab(instance, tmp_path_factory.mktemp("lab"))
        lab.root_name, lab.branch_name = "root", "explore"
        lab.root_run = lab.train(lab.root_name)
        assert lab.root_run.success
        assert lab.train(lab.branch_name, parent_checkpoint=lab.root_name, notes="more entropy", ent_coef=0.05).success
        yield lab


def test_materializing_a_new_partition_trains_the_run_it_names(lab):
    # The partition key is the run folder's name, verbatim (no timestamp appended).
    assert sorted(p.name for p in lab.runs_root.iterdir() if p.is_dir()) == ["explore", "root"]
    assert set(lab.instance.get_dynamic_partitions(run_partitions.name)) == {lab.root_name, lab.branch_name}
    checkpoint = latest_materialization_metadata(lab.instance, CHECKPOINT, lab.root_name)
    record = load_record(lab.runs_root / lab.root_name)
    assert checkpoint["step"] == checkpoint["global_timesteps"] == 512 == record.timesteps.current
    assert checkpoint["checkpoint_path"] == f"{lab.root_name}/checkpoints/ppo_mission_512_steps.zip"
    assert checkpoint["checkpoint_sha256"] == sha256_file(lab.runs_root / checkpoint["checkpoint_path"])
    assert checkpoint["device"] == record.device and checkpoint["status"] == "finished"
    assert checkpoint["parent_run"] == "none (trained from scratch)"
    assert checkpoint["observation_space"] == f"Box ({record.spaces.observation['shape'][0]},)"
    assert checkpoint["action_space"].startswith(f"MultiDiscrete {record.spaces.action['nvec']}: STOP, ")
    config = latest_materialization_metadata(lab.instance, CONFIG_SNAPSHOT, lab.root_name)
    assert config["config_hash"] == record.config.hash and "scenario.yaml" in config["files"]
    [check] = lab.root_run.get_asset_check_evaluations()
    assert check.passed and check.check_name == PARENT_CHECK


def test_the_training_run_shows_progress_and_each_checkpoint_while_it_trains(lab):
    lines = [e.message for e in lab.instance.all_logs(lab.root_run.run_id) if e.message.startswith("progress ")]
    assert lines and lines[0].startswith("progress step=256 target=512 ")
    observations = lab.instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=CHECKPOINT, asset_partitions=[lab.root_name]), limit=10).records
    saved = sorted((values(r.asset_observation)["step"], values(r.asset_observation)["checkpoint_sha256"])
                   for r in observations if r.run_id == lab.root_run.run_id)
    record = load_record(lab.runs_root / lab.root_name)
    # Every checkpoint saved during training (the final model is saved after it, with the materialization).
    during = sorted((e.step, e.sha256) for e in record.checkpoints if e.file != f"{lab.root_name}/final_model.zip")
    assert saved == during and [step for step, _ in saved] == [256, 512]


def test_progress_lines_are_key_value_and_rounded():
    line = progress_line({"timestep": 1024, "ep_return_mean": 3.14159, "capture_rate": 0.4166666, "fps": 1234.7}, 2048)
    assert line == "progress step=1024 target=2048 mean_return=3.142 capture_rate=0.417 timesteps_per_s=1234"
    assert progress_line({"timestep": 64}, 128).endswith("mean_return=n/a capture_rate=n/a timesteps_per_s=n/a")


def test_learning_curve_is_a_small_png():
    rows = [{"timestep": 1000 * i, "ep_return_mean": float(i), "capture_rate": i / 10} for i in range(1, 11)]
    image = Image.open(io.BytesIO(learning_curve_png(rows)))
    assert image.format == "PNG" and image.size == (480, 180)
    assert (31, 119, 180) in {colour for _, colour in image.getcolors(10_000)}  # the return curve is drawn
    assert learning_curve_png(rows[:1]) is None


def test_checkpoint_materialization_embeds_the_learning_curve(lab):
    curve = latest_materialization_metadata(lab.instance, CHECKPOINT, lab.branch_name)["learning_curve"]
    if curve.startswith("No learning curve yet"):  # the tiny runs may end no episode in 2 rollouts
        metrics = (lab.runs_root / lab.branch_name / "metrics.jsonl").read_text()
        assert metrics.count("ep_return_mean") < 2
    else:
        data = curve.split("data:image/png;base64,", 1)[1].rstrip(")")
        assert base64.b64decode(data).startswith(b"\x89PNG")


def test_branch_lineage_metadata_names_the_parent(lab):
    checkpoint = latest_materialization_metadata(lab.instance, CHECKPOINT, lab.branch_name)
    # A link labelled by the run's name, to the parent's partition.
    assert checkpoint["parent_run"] == "[root](/assets/checkpoint?view=partitions&partition=root)"
    assert load_record(lab.runs_root / lab.branch_name).parent_run == lab.root_name
    assert checkpoint["parent_step"] == 512 and checkpoint["global_timesteps"] == 1024
    assert checkpoint["hyperparameters"]["ent_coef"] == 0.05 and checkpoint["notes"] == "more entropy"
    config = latest_materialization_metadata(lab.instance, CONFIG_SNAPSHOT, lab.branch_name)
    assert config["files_changed_vs_parent"] == "none" and config["counts_changed_vs_parent"] == "none"
    # The parent partition links back to its child.
    observations = lab.instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=CHECKPOINT, asset_partitions=[lab.root_name]), limit=5).records
    links = [values(r.asset_observation).get("child_run") for r in observations]
    assert [link for link in links if link] == [
        f"[{lab.branch_name}](/assets/checkpoint?view=partitions&partition={lab.branch_name})"]
    history = lab.instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(CHECKPOINT, PARENT_CHECK), limit=10)
    [check] = [c for c in history if c.partition == lab.branch_name]
    assert check.event.dagster_event.event_specific_data.passed


@pytest.mark.parametrize("problem", ["incompatible", "missing"])
def test_a_bad_parent_fails_with_the_readable_report_and_leaves_nothing(lab, config_dir, problem):
    third_defender = {"unit_type": "DEF_UGV", "spawn": {"x": 60.0, "y": 60.0, "heading": 0.0},
                      "patrol_waypoints": [[55.0, 55.0], [65.0, 65.0]]}
    configs = config_dir({"scenario.yaml": lambda data: data["defenders"].append(third_defender)}
                         if problem == "incompatible" else None)  # a third defender changes the observation
    parent = lab.root_name if problem == "incompatible" else f"{lab.root_name}/checkpoints/ppo_mission_999_steps"
    folders_before = sorted(p.name for p in lab.runs_root.iterdir())

    result = lab.train(f"doomed-{problem}", RunsRoot(runs_root=str(lab.runs_root), config_dir=str(configs)),
                       parent_checkpoint=parent)

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    report = failure.step_failure_data.user_failure_data.description
    expected = "Observation space mismatch!" if problem == "incompatible" else "checkpoint not found"
    assert expected in report and "Traceback" not in report
    assert sorted(p.name for p in lab.runs_root.iterdir()) == folders_before


def _files(run_dir: Path) -> dict[Path, tuple[int, str]]:
    return {p: (p.stat().st_mtime_ns, sha256_file(p)) for p in run_dir.rglob("*") if p.is_file()}


def test_materializing_an_existing_run_refuses_and_says_how_to_continue(lab):
    before = _files(lab.runs_root / lab.root_name)
    result = lab.materialize("checkpoint", lab.root_name, ops={"checkpoint": {"config": {"timesteps": 256}}})
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.user_failure_data.description
    assert f"Run {lab.root_name} already exists" in message and f"parent_checkpoint: {lab.root_name}" in message
    assert _files(lab.runs_root / lab.root_name) == before
    # Not retried by Dagster either: a retry would be refused the same way.
    assert lab.instance.get_run_by_id(result.run_id).tags.get("dagster/retry_on_asset_or_op_failure") == "false"


def test_an_interrupted_training_fails_the_materialization_and_reports_its_state(lab, monkeypatch):
    def interrupt(self):  # Ctrl-C after the first rollout: train() keeps a checkpoint and returns "interrupted"
        raise KeyboardInterrupt

    monkeypatch.setattr(DagsterProgress, "_on_rollout_end", interrupt)
    result = lab.train("cut-short")
    assert not result.success
    assert load_record(lab.runs_root / "cut-short").status == "interrupted"
    assert not lab.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=CHECKPOINT, asset_partitions=["cut-short"]), limit=1).records
    [state] = lab.instance.fetch_observations(  # the progress callback was replaced: this is the only one
        dg.AssetRecordsFilter(asset_key=CHECKPOINT, asset_partitions=["cut-short"]), limit=10).records
    assert values(state.asset_observation)["status"] == "interrupted"
    assert state.asset_observation.description.startswith("NOT FINISHED: INTERRUPTED")
    # An interruption stays eligible for Dagster's run retry, which resumes the run.
    assert "dagster/retry_on_asset_or_op_failure" not in lab.instance.get_run_by_id(result.run_id).tags


def test_an_automatic_retry_resumes_the_stopped_run_as_a_child_and_finishes_its_timesteps(lab, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(DagsterProgress, "_on_rollout_end", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
        assert not lab.train("preempted").success
    stopped = load_record(lab.runs_root / "preempted")
    assert stopped.status == "interrupted" and stopped.timesteps.current == 256
    before = _files(lab.runs_root / "preempted")

    # What Dagster's run-retry daemon launches: the same partition and config, tagged with the retry number.
    retry = lab.train("preempted", tags={"dagster/retry_number": "1"})

    assert retry.success
    child = load_record(lab.runs_root / "preempted-retry1")
    assert child.status == "finished" and child.parent_run == "preempted"
    assert (child.timesteps.start, child.timesteps.current) == (256, 512)  # the counter continues to the target
    assert _files(lab.runs_root / "preempted") == before  # the stopped run's folder is never written again
    assert "preempted-retry1" in lab.instance.get_dynamic_partitions(run_partitions.name)
    assert latest_materialization_metadata(lab.instance, CHECKPOINT, "preempted-retry1")["step"] == 512
    resumed = latest_materialization_metadata(lab.instance, CHECKPOINT, "preempted")
    assert resumed["status"] == "interrupted" and resumed["resumed_to_step"] == 512
    assert resumed["resumed_by"].startswith("[preempted-retry1](")


def test_a_second_retry_resumes_from_the_first_retrys_child(lab, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(DagsterProgress, "_on_rollout_end", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
        assert not lab.train("chain", timesteps=1024).success
        first_retry = lab.train("chain", tags={"dagster/retry_number": "1"}, timesteps=1024)
        assert not first_retry.success  # preempted again, while training chain-retry1
    assert load_record(lab.runs_root / "chain-retry1").timesteps.current == 512
    # Dagster copies the stopped run's tags onto its retry: the tag naming the run it was training among them.
    copied = {TRAINING_RUN_TAG: lab.instance.get_run_by_id(first_retry.run_id).tags[TRAINING_RUN_TAG]}
    assert lab.train("chain", tags={**copied, "dagster/retry_number": "2"}, timesteps=1024).success
    last = load_record(lab.runs_root / "chain-retry1-retry2")
    assert last.parent_run == "chain-retry1" and (last.timesteps.start, last.timesteps.current) == (512, 1024)
    assert latest_materialization_metadata(lab.instance, CHECKPOINT, "chain")["resumed_to_step"] == 1024


def test_a_retried_train_run_job_resumes_its_stopped_run_the_same_way(lab, monkeypatch):
    train_run = defs.resolve_job_def("train_run")
    config = train_run_config(run_name="job-preempted")
    with monkeypatch.context() as patch:
        patch.setattr(DagsterProgress, "_on_rollout_end", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
        first = train_run.execute_in_process(run_config=config, instance=lab.instance,
                                             resources={"runs": lab.resource}, raise_on_error=False)
    stopped = lab.instance.get_run_by_id(first.run_id).tags[TRAINING_RUN_TAG]
    assert load_record(lab.runs_root / stopped).status == "interrupted"

    # Dagster's retry of that run: same config, the original run's tags plus the retry number.
    retry = train_run.execute_in_process(run_config=config, instance=lab.instance, resources={"runs": lab.resource},
                                         tags={TRAINING_RUN_TAG: stopped, "dagster/retry_number": "1"})
    assert retry.output_for_node("train_new_run") == f"{stopped}-retry1"
    child = load_record(lab.runs_root / f"{stopped}-retry1")
    assert child.parent_run == stopped and (child.timesteps.start, child.timesteps.current) == (256, 512)
    assert latest_materialization_metadata(lab.instance, CHECKPOINT, stopped)["resumed_to_step"] == 512


def test_the_train_run_job_trains_through_the_same_code_with_a_timestamped_name(lab):
    result = defs.resolve_job_def("train_run").execute_in_process(
        run_config=train_run_config(run_name="job", parent_checkpoint=lab.root_name), instance=lab.instance,
        resources={"runs": lab.resource})
    name = result.output_for_node("train_new_run")
    assert name.startswith("job-") and name in lab.instance.get_dynamic_partitions(run_partitions.name)
    checkpoint = latest_materialization_metadata(lab.instance, CHECKPOINT, name)
    assert checkpoint["step"] == 1024 and checkpoint["status"] == "finished"
    assert any(e.message.startswith("progress step=") for e in lab.instance.all_logs(result.run_id))


def test_rematerializing_a_checkpoint_with_rerecord_rerecords_it_and_writes_nothing(lab):
    run_dir = lab.runs_root / lab.root_name
    before = _files(run_dir)
    result = lab.materialize("checkpoint", lab.root_name, ops={"checkpoint": {"config": {"rerecord": True}}})
    assert result.success
    assert _files(run_dir) == before
    [materialization] = result.get_asset_materialization_events()
    metadata = values(materialization.materialization)
    assert metadata["step"] == 512
    assert lab.branch_name in metadata["children"]  # the child is known now
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.check_name == PARENT_CHECK


def test_evaluation_report_compares_with_parent_and_baseline(lab):
    result = lab.materialize("evaluation_report", lab.branch_name,
                             ops={"evaluation_report": {"config": {"episodes": 4}}})
    metadata = values(result.get_asset_materialization_events()[0].materialization)
    assert metadata["checkpoint"] == f"{lab.branch_name}/checkpoints/ppo_mission_1024_steps.zip"
    assert 0.0 <= metadata["capture_rate_ci95_low"] <= metadata["capture_rate"] <= metadata["capture_rate_ci95_high"]
    assert metadata["capture_rate"] == round(metadata["capture_rate"], 4)
    assert {"baseline_capture_rate", "parent_capture_rate", "capture_rate_vs_parent"} <= metadata.keys()
    assert (lab.runs_root / metadata["report_file"]).is_file()
    assert "| this checkpoint |" in metadata["report"]  # the report's tables, not a path
    assert latest_materialization_metadata(lab.instance, EVALUATION_REPORT, lab.branch_name)["step"] == 1024


def test_dashboard_and_lineage_view_show_the_forest(lab):
    lineage = values(lab.materialize("lineage_view").get_asset_materialization_events()[0].materialization)
    # Other tests here add runs to the forest (a job-trained branch of root, an interrupted run).
    assert {"parent": lab.root_name, "child": lab.branch_name, "step": 512, "transfer": None} in lineage["edges"]["edges"]
    root_line, branch_line = [line for line in lineage["lineage"].splitlines()
                              if f"[{lab.root_name}]" in line or f"[{lab.branch_name}]" in line]
    assert root_line.startswith(f"- [{lab.root_name}](/assets/checkpoint?view=partitions&partition={lab.root_name})")
    assert branch_line.startswith(f"  - [{lab.branch_name}]") and "branched at step 512" in branch_line
    dashboard = values(lab.materialize("dashboard").get_asset_materialization_events()[0].materialization)
    page = Path(dashboard["path"]).read_text()
    assert lab.root_name in page and lab.branch_name in page


def test_launchpad_config_is_documented_and_passes_only_given_ppo_values(tmp_path):
    for name, field in {**TrainingConfig.model_fields, **TrainRunConfig.model_fields}.items():
        assert field.description, f"{name} has no description in the launchpad"
        if name in TrainSettings.model_fields:
            assert field.default == TrainSettings.model_fields[name].default
    assert checkpoint.op.pool == "gpu"
    runs = RunsRoot(runs_root=str(tmp_path / "runs"), config_dir=str(REPO_CONFIGS))
    settings = TrainingConfig(parent_checkpoint="root-20260101-000000", learning_rate=1e-4).to_settings(runs)
    assert settings.hyperparameters == {"learning_rate": 1e-4}  # the rest is inherited from the parent
    assert settings.runs_root == tmp_path / "runs" and settings.progress_bar is False


def test_a_folder_taken_by_another_process_while_starting_stops_the_training():
    from types import SimpleNamespace

    from mission_gym.errors import MissionGymError
    from mission_gym_pipelines.training import _is_planned

    plan = SimpleNamespace(run_name="race", run_dir=Path("runs/race"))
    _is_planned(plan, Path("runs/race"))  # the folder train() reserved is the partition's: go on
    with pytest.raises(MissionGymError, match="created by another process"):
        _is_planned(plan, Path("runs/race-2"))
