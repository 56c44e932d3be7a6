"""The code location: assembles the assets, check, jobs, schedule, sensors and the runs resource.

workspace.yaml loads `defs` from here; MISSION_GYM_RUNS_ROOT / MISSION_GYM_CONFIG_DIR /
MISSION_GYM_RETENTION_POLICY override the folders (see resources.py).
"""

import dagster as dg

from mission_gym_pipelines.assets import (
    config_snapshot,
    dashboard,
    evaluation_report,
    lineage_view,
    parent_checkpoint_intact,
)
from mission_gym_pipelines.cleanup import cleanup_runs
from mission_gym_pipelines.resources import RunsRoot
from mission_gym_pipelines.schedules import evaluate_new_checkpoints, evaluate_runs
from mission_gym_pipelines.search import decide_search_round, search_sensor, start_search, train_search_member
from mission_gym_pipelines.sensors import evaluation_sensor, retention_sensor, run_folder_sensor, views_sensor
from mission_gym_pipelines.training import checkpoint, train_run

defs = dg.Definitions(
    assets=[config_snapshot, checkpoint, evaluation_report, dashboard, lineage_view],
    asset_checks=[parent_checkpoint_intact],
    jobs=[train_run, evaluate_runs, cleanup_runs, start_search, train_search_member, decide_search_round],
    schedules=[evaluate_new_checkpoints],
    sensors=[run_folder_sensor, retention_sensor, views_sensor, evaluation_sensor, search_sensor],
    resources={"runs": RunsRoot.from_env()},
    # One process per run, not one more per step: each process imports torch and the simulation again
    # (seconds on 2 cores), and every job here is one or two short steps. On Kubernetes use
    # dagster_k8s.k8s_job_executor instead (docs/dagster.md).
    executor=dg.in_process_executor,
)
