"""The demo: `python -m mission_gym_pipelines.demo` (or `make demo`) runs the real jobs through Dagster.

On the embedded instance (DAGSTER_HOME, default dagster_home/) and the runs folder (runs/): a short
training run, a branch from it, an evaluation of each, then the dashboard and the lineage view. Every
step is a Dagster run recorded in the instance, so the UI opened afterwards shows all of it.
"""

import os
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg

REPO_ROOT = Path(__file__).resolve().parent.parent
# Enough for learning curves and a step counter that continues across the branch; the whole demo takes
# about 2 minutes on 2 cores (the 100 seeds of configs/eval_seeds.txt are one vectorized pass each).
ROOT_TIMESTEPS = 100_000
BRANCH_TIMESTEPS = 50_000
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.monotonic()


def _train(defs: dg.Definitions, instance: dg.DagsterInstance, **config: Any) -> str:
    result = defs.resolve_job_def("train_run").execute_in_process(
        run_config={**QUIET, "ops": {"train_new_run": {"config": {"checkpoint_freq": 25_000, **config}}}},
        instance=instance)
    return result.output_for_node("train_new_run")


def _evaluate(defs: dg.Definitions, instance: dg.DagsterInstance, run_name: str) -> dict[str, Any]:
    result = defs.resolve_job_def("evaluate_runs").execute_in_process(partition_key=run_name, instance=instance,
                                                                  run_config=QUIET)
    [event] = result.get_asset_materialization_events()
    return {key: value.value for key, value in event.materialization.metadata.items()}


def main() -> int:
    os.environ.setdefault("DAGSTER_HOME", str(REPO_ROOT / "dagster_home"))
    # Imported after DAGSTER_HOME is settled; definitions read the runs folder from the environment.
    from mission_gym_pipelines.definitions import defs
    from mission_gym_pipelines.pools import ensure_pools

    runs_root = defs.resources["runs"].path.resolve()
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        ensure_pools(instance)
        _step(f"Training a fresh run ({ROOT_TIMESTEPS:,} timesteps) with the train_run job")
        root = _train(defs, instance, timesteps=ROOT_TIMESTEPS, run_name="demo", notes="make demo: fresh run")
        print(f"   trained {root}")
        _step(f"Branching from {root} ({BRANCH_TIMESTEPS:,} more timesteps, smaller learning rate)")
        branch = _train(defs, instance, timesteps=BRANCH_TIMESTEPS, parent_checkpoint=root, branch_name="demo-branch",
                        learning_rate=1e-4, notes="make demo: branch with a smaller learning rate")
        print(f"   trained {branch}")
        for run_name in (root, branch):
            _step(f"Evaluating {run_name} with the evaluate_runs job")
            report = _evaluate(defs, instance, run_name)
            comparisons = "".join(f", {name} {report[f'{name}_capture_rate']:.0%}"
                                  for name in ("baseline", "parent") if f"{name}_capture_rate" in report)
            print(f"   capture rate {report['capture_rate']:.0%} {report['capture_rate_ci95']}{comparisons}"
                  f" -> {runs_root / report['report']}")
        _step("Building the dashboard and the lineage view")
        views = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, run_config=QUIET,
            asset_selection=[dg.AssetKey("dashboard"), dg.AssetKey("lineage_view")])
        [lineage] = [e for e in views.get_asset_materialization_events() if e.asset_key == dg.AssetKey("lineage_view")]
        print(lineage.materialization.metadata["lineage"].value)

    print(f"\nDone in {time.monotonic() - started:.0f} s.")
    print(f"  Runs:          {runs_root}/{{{root},{branch}}}/ (run.json, checkpoints/, evaluations/, metrics.jsonl)")
    print(f"  Dashboard:     {(runs_root / 'dashboard.html').as_uri()}")
    print(f"  Dagster data:  {os.environ['DAGSTER_HOME']}")
    print("  Open the UI (the same instance, bound to this machine only):")
    print(f"    DAGSTER_HOME={os.environ['DAGSTER_HOME']} {Path(sys.executable).parent}/dagster dev "
          "-w workspace.yaml -h 127.0.0.1")
    print("  then http://127.0.0.1:3000 -> Assets -> checkpoint -> Partitions (each run; parent and child links),")
    print("  Assets -> lineage_view (the forest). To train or branch: Assets -> checkpoint -> Materialize (v) ->")
    print("  Open launchpad -> Add new partition (the run's name) -> config -> Materialize.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
