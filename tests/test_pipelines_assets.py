"""The real jobs and assets in process, on a temporary instance: train, branch, refuse a bad parent,
re-record without retraining, evaluate, and build the dashboard and lineage view."""

from pathlib import Path

import dagster as dg
import pytest
from pipelines_support import REPO_CONFIGS, latest_materialization_metadata, train_run_config, values

from mission_gym.runs.record import load_record, sha256_file
from mission_gym.training import TrainSettings
from mission_gym_pipelines.assets import (
    checkpoint,
    config_snapshot,
    dashboard,
    evaluation_report,
    lineage_view,
    parent_checkpoint_intact,
)
from mission_gym_pipelines.definitions import defs
from mission_gym_pipelines.events import CHECKPOINT, CONFIG_SNAPSHOT, EVALUATION_REPORT, PARENT_CHECK
from mission_gym_pipelines.partitions import run_partitions
from mission_gym_pipelines.resources import RunsRoot
from mission_gym_pipelines.training import TrainingConfig

pytestmark = pytest.mark.slow  # end to end: Dagster materializations that train


ALL_ASSETS = [config_snapshot, checkpoint, parent_checkpoint_intact, evaluation_report, dashboard, lineage_view]


class Lab:
    """A temporary instance and runs folder holding a trained root run and a branch of it."""

    def __init__(self, instance: dg.DagsterInstance, root: Path) -> None:
        self.instance, self.runs_root = instance, root / "runs"
        self.resource = RunsRoot(runs_root=str(self.runs_root), config_dir=str(REPO_CONFIGS))

    def train(self, resource: RunsRoot | None = None, **overrides) -> dg.ExecuteInProcessResult:
        return defs.resolve_job_def("train_run").execute_in_process(
            run_config=train_run_config(**overrides), instance=self.instance,
            resources={"runs": resource or self.resource}, raise_on_error=False)

    def materialize(self, asset_name: str, partition: str | None = None, **run_config) -> dg.ExecuteInProcessResult:
        """Materialize one asset (with its checks) the way the UI's Materialize button does."""
        return dg.materialize(ALL_ASSETS, partition_key=partition, instance=self.instance,
                              resources={"runs": self.resource}, run_config=run_config or None,
                              selection=dg.AssetSelection.assets(asset_name))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with dg.instance_for_test() as instance:
        lab = Lab(instance, tmp_path_factory.mktemp("lab"))
        lab.root_name = lab.train(run_name="root").output_for_node("train_new_run")
        lab.branch_name = lab.train(parent_checkpoint=lab.root_name, branch_name="explore",
                                    notes="more entropy", ent_coef=0.05).output_for_node("train_new_run")
        yield lab


def test_training_registers_the_run_and_reports_its_checkpoint(lab):
    assert lab.root_name.startswith("root-")
    assert set(lab.instance.get_dynamic_partitions(run_partitions.name)) == {lab.root_name, lab.branch_name}
    checkpoint = latest_materialization_metadata(lab.instance, CHECKPOINT, lab.root_name)
    record = load_record(lab.runs_root / lab.root_name)
    assert checkpoint["step"] == checkpoint["global_timesteps"] == 512 == record.timesteps.current
    assert checkpoint["checkpoint_path"] == f"{lab.root_name}/checkpoints/ppo_mission_512_steps.zip"
    assert checkpoint["checkpoint_sha256"] == sha256_file(lab.runs_root / checkpoint["checkpoint_path"])
    assert checkpoint["device"] == record.device and checkpoint["status"] == "finished"
    assert checkpoint["parent_run"] == "none (trained from scratch)"
    assert checkpoint["observation_space"]["shape"] == record.spaces.observation["shape"]
    config = latest_materialization_metadata(lab.instance, CONFIG_SNAPSHOT, lab.root_name)
    assert config["config_hash"] == record.config.hash and "scenario.yaml" in config["files"]


def test_branch_lineage_metadata_names_the_parent(lab):
    checkpoint = latest_materialization_metadata(lab.instance, CHECKPOINT, lab.branch_name)
    assert checkpoint["parent_run"] == f"/assets/checkpoint?view=partitions&partition={lab.root_name}"
    assert checkpoint["parent_step"] == 512 and checkpoint["global_timesteps"] == 1024
    assert checkpoint["hyperparameters"]["ent_coef"] == 0.05 and checkpoint["notes"] == "more entropy"
    config = latest_materialization_metadata(lab.instance, CONFIG_SNAPSHOT, lab.branch_name)
    assert config["files_changed_vs_parent"] == "none" and config["counts_changed_vs_parent"] == "none"
    # The parent partition links back to its child.
    observations = lab.instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=CHECKPOINT, asset_partitions=[lab.root_name]), limit=5).records
    links = [values(r.asset_observation)["child_run"] for r in observations]
    assert links == [f"/assets/checkpoint?view=partitions&partition={lab.branch_name}"]
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
    partitions_before = lab.instance.get_dynamic_partitions(run_partitions.name)

    result = lab.train(RunsRoot(runs_root=str(lab.runs_root), config_dir=str(configs)),
                       parent_checkpoint=parent, branch_name="doomed")

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    report = failure.step_failure_data.user_failure_data.description
    expected = "Observation space mismatch!" if problem == "incompatible" else "checkpoint not found"
    assert expected in report and "Traceback" not in report
    assert sorted(p.name for p in lab.runs_root.iterdir()) == folders_before
    assert lab.instance.get_dynamic_partitions(run_partitions.name) == partitions_before


def test_rematerializing_a_checkpoint_rerecords_it_and_writes_nothing(lab):
    run_dir = lab.runs_root / lab.root_name
    before = {p: (p.stat().st_mtime_ns, sha256_file(p)) for p in run_dir.rglob("*") if p.is_file()}
    result = lab.materialize("checkpoint", lab.root_name)
    assert result.success
    assert {p: (p.stat().st_mtime_ns, sha256_file(p)) for p in run_dir.rglob("*") if p.is_file()} == before
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
    assert 0.0 <= metadata["capture_rate"] <= 1.0 and metadata["capture_rate_ci95"].startswith("[")
    assert {"baseline_capture_rate", "parent_capture_rate", "capture_rate_vs_parent"} <= metadata.keys()
    assert (lab.runs_root / metadata["report"]).is_file()
    assert latest_materialization_metadata(lab.instance, EVALUATION_REPORT, lab.branch_name)["step"] == 1024


def test_dashboard_and_lineage_view_show_the_forest(lab):
    lineage = values(lab.materialize("lineage_view").get_asset_materialization_events()[0].materialization)
    assert lineage["edges"]["edges"] == [{"parent": lab.root_name, "child": lab.branch_name, "step": 512}]
    root_line, branch_line = lineage["lineage"].splitlines()
    assert root_line.startswith(f"- [{lab.root_name}](/assets/checkpoint?view=partitions&partition={lab.root_name})")
    assert branch_line.startswith(f"  - [{lab.branch_name}]") and "branched at step 512" in branch_line
    dashboard = values(lab.materialize("dashboard").get_asset_materialization_events()[0].materialization)
    page = Path(dashboard["path"]).read_text()
    assert lab.root_name in page and lab.branch_name in page


def test_launchpad_config_is_documented_and_passes_only_given_ppo_values(tmp_path):
    for name, field in TrainingConfig.model_fields.items():
        assert field.description, f"{name} has no description in the launchpad"
        if name in TrainSettings.model_fields:
            assert field.default == TrainSettings.model_fields[name].default
    runs = RunsRoot(runs_root=str(tmp_path / "runs"), config_dir=str(REPO_CONFIGS))
    settings = TrainingConfig(parent_checkpoint="root-20260101-000000", learning_rate=1e-4).to_settings(runs)
    assert settings.hyperparameters == {"learning_rate": 1e-4}  # the rest is inherited from the parent
    assert settings.runs_root == tmp_path / "runs" and settings.progress_bar is False
