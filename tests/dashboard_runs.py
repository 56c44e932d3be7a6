"""Run folders with metrics and evaluation reports for the dashboard tests (run.json via runs_factory).

from dashboard_runs import write_metrics, write_evaluation, make_lineage
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runs_factory import make_run, update_record


XSS_NOTES = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1;alert(1)"> & \'q\' "dq"'
XSS_BRANCH = '"><svg onload=alert(2)><script>window.__pwned=2</script>'

ROOT_RUN = "amber-badger-20260120-101010"
CHILD_RUN = "branch-20260122-193222"
GRANDCHILD_RUN = "deeper-20260123-080000"
OTHER_RUN = "quiet-otter-20260110-120000"
START = dt.datetime(2026, 1, 20, 10, 10, 10, tzinfo=dt.timezone.utc)  # of every curve, as training writes `time`


def metric_rows(count: int, step: int = 1000) -> list[dict[str, Any]]:
    """A rising learning curve: return from about 0 to 50, capture rate from 0 to 0.8, a row every 10 s."""
    return [
        {
            "timestep": (i + 1) * step,
            "time": (START + dt.timedelta(seconds=10 * i)).isoformat(),
            "ep_return_mean": 50 * math.tanh(i / max(count / 3, 1)),
            "capture_rate": 0.8 * i / max(count - 1, 1),
        }
        for i in range(count)
    ]


def write_metrics(run_dir: Path, rows: Iterable[dict[str, Any]], tail: str = "") -> Path:
    """metrics.jsonl with one line per row, then `tail` verbatim (e.g. a truncated line)."""
    path = run_dir / "metrics.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + tail)
    return path


def write_evaluation(run_dir: Path, stem: str, **report: Any) -> Path:
    """evaluations/<stem>.json holding `report`."""
    folder = run_dir / "evaluations"
    folder.mkdir(exist_ok=True)
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(report))
    return path


def make_lineage(runs_root: Path) -> dict[str, Path]:
    """root -> running child (XSS in notes and branch name) -> grandchild, plus an older unrelated run.

    The child is the most recently active run; every run has a learning curve, the root an evaluation.
    """
    dirs = {
        OTHER_RUN: make_run(runs_root, OTHER_RUN, steps=[5000], heartbeat_age_s=30_000, notes="unrelated"),
        ROOT_RUN: make_run(runs_root, ROOT_RUN, steps=[100_000, 200_000], heartbeat_age_s=7200,
                           notes="baseline & defaults"),
    }  # fmt: skip
    dirs[CHILD_RUN] = make_run(runs_root, CHILD_RUN, parent=ROOT_RUN, parent_step=200_000, steps=[250_000],
                               status="running", heartbeat_age_s=2, notes=XSS_NOTES)  # fmt: skip
    update_record(dirs[CHILD_RUN], branch_name=XSS_BRANCH)
    dirs[GRANDCHILD_RUN] = make_run(runs_root, GRANDCHILD_RUN, parent=CHILD_RUN, steps=[260_000],
                                    heartbeat_age_s=600)  # fmt: skip
    for name, run_dir in dirs.items():
        write_metrics(run_dir, metric_rows(400 if name == ROOT_RUN else 40))
    write_evaluation(
        dirs[ROOT_RUN], "ppo_mission_200000_steps", checkpoint=f"{ROOT_RUN}/checkpoints/ppo_mission_200000_steps.zip",
        capture_rate=0.42, capture_rate_ci=[0.35, 0.49], mean_return=37.25, baseline={"capture_rate": 0.12},
    )  # fmt: skip
    return dirs
