"""The demo: `python -m mission_gym_pipelines.demo` (or `make demo`) runs the real jobs through Dagster.

On the embedded instance (DAGSTER_HOME, default dagster_home/) and the runs folder (runs/): a short
training run, a branch from it, an evaluation of each, then the dashboard and the lineage view. Every
step is a Dagster run recorded in the instance, so the UI opened afterwards shows all of it.
"""

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg

from mission_gym.scripts.cli_support import CommandParser, positive_int, run_cli

REPO_ROOT = Path(__file__).resolve().parent.parent
# Enough for the fresh run to beat the scripted baseline on the held-out seeds (paired) and for the branch to
# hold or improve on its parent, with the whole demo under 4 minutes on 2 cores (README, "Speed and learning").
ROOT_TIMESTEPS = 1_500_000
BRANCH_TIMESTEPS = 500_000
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.monotonic()


def _train(defs: dg.Definitions, instance: dg.DagsterInstance, **config: Any) -> str:
    result = defs.resolve_job_def("train_run").execute_in_process(
        run_config={**QUIET, "ops": {"train_new_run": {"config": {"checkpoint_freq": 250_000, **config}}}},
        instance=instance)
    return result.output_for_node("train_new_run")


def _evaluate(defs: dg.Definitions, instance: dg.DagsterInstance, run_name: str) -> dict[str, Any]:
    result = defs.resolve_job_def("evaluate_runs").execute_in_process(partition_key=run_name, instance=instance,
                                                                  run_config=QUIET)
    [event] = result.get_asset_materialization_events()
    return {key: value.value for key, value in event.materialization.metadata.items()}


def _parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="python -m mission_gym_pipelines.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--root-timesteps", type=positive_int, default=ROOT_TIMESTEPS,
                        help=f"timesteps of the fresh run (default {ROOT_TIMESTEPS:,})")
    parser.add_argument("--branch-timesteps", type=positive_int, default=BRANCH_TIMESTEPS,
                        help=f"timesteps of its branch (default {BRANCH_TIMESTEPS:,})")
    return parser


def _verdict(root: dict[str, Any], branch: dict[str, Any]) -> str:
    """What the demo showed, in the words of the paired tests on the held-out seeds."""
    against_baseline = root["paired_vs_baseline"].split(":")[0]
    against_parent = branch["paired_vs_parent"].split(":")[0]
    return (f"The trained policy vs the scripted baseline: {against_baseline}; the branch vs its parent: "
            f"{against_parent} (paired on the held-out seeds).")


def main(argv: list[str] | None = None) -> int:
    return run_cli(_parser(), argv, _demo)


def _demo(args: argparse.Namespace) -> int:
    os.environ.setdefault("DAGSTER_HOME", str(REPO_ROOT / "dagster_home"))
    # Imported after DAGSTER_HOME is settled; definitions read the runs folder from the environment.
    from mission_gym_pipelines.definitions import defs
    from mission_gym_pipelines.pools import ensure_pools

    runs_root = defs.resources["runs"].path.resolve()
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        ensure_pools(instance)
        _step(f"Training a fresh run ({args.root_timesteps:,} timesteps) with the train_run job")
        root = _train(defs, instance, timesteps=args.root_timesteps, run_name="demo", seed=0,
                      notes="make demo: fresh run")
        print(f"   trained {root}")
        _step(f"Branching from {root} ({args.branch_timesteps:,} more timesteps, smaller learning rate)")
        branch = _train(defs, instance, timesteps=args.branch_timesteps, parent_checkpoint=root,
                        branch_name="demo-branch", learning_rate=1e-4, seed=1,
                        notes="make demo: branch with a smaller learning rate")
        print(f"   trained {branch}")
        reports = {}
        for run_name in (root, branch):
            _step(f"Evaluating {run_name} on the held-out seeds with the evaluate_runs job")
            report = reports[run_name] = _evaluate(defs, instance, run_name)
            print(f"   capture rate {report['capture_rate']:.0%} (95% CI {report['capture_rate_ci95_low']:.0%}-"
                  f"{report['capture_rate_ci95_high']:.0%}) -> {runs_root / report['report_file']}")
            for name in ("baseline", "parent"):
                if f"paired_vs_{name}" in report:
                    print(f"   vs the {'scripted ' if name == 'baseline' else ''}{name} "
                          f"({report[f'{name}_capture_rate']:.0%}), paired on the same seeds: "
                          f"{report[f'paired_vs_{name}']}")
        _step("Building the dashboard and the lineage view")
        views = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, run_config=QUIET,
            asset_selection=[dg.AssetKey("dashboard"), dg.AssetKey("lineage_view")])
        [lineage] = [e for e in views.get_asset_materialization_events() if e.asset_key == dg.AssetKey("lineage_view")]
        print(lineage.materialization.metadata["lineage"].value)

    print(f"\nDone in {time.monotonic() - started:.0f} s. {_verdict(reports[root], reports[branch])}")
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
