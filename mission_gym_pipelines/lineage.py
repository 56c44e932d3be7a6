"""The lineage view: every run as a forest (parents, branch points with steps, capture rate per run).

Rendered as markdown with links to each run's checkpoint partition (the UI renders nested lists and
links, not diagrams) and as JSON edges for tools. The picture of the same forest is in the dashboard.
"""

from pathlib import Path
from typing import Any

from mission_gym.runs.lineage import lineage_forest, walk_forest
from mission_gym.runs.record import RunRecord
from mission_gym.runs.reports import latest_evaluation
from mission_gym_pipelines.events import CHECKPOINT, partition_path


def _capture_rate(runs_root: Path, record: RunRecord) -> float | None:
    evaluation = latest_evaluation(runs_root / record.run_name)
    return float(evaluation.report["capture_rate"]) if evaluation else None


def lineage_json(runs_root: Path, records: list[RunRecord]) -> dict[str, Any]:
    """{"runs": [...], "edges": [{parent, child, step, transfer}]} in tree order (parents before children);
    `transfer` lists the unit-count changes of a branch that carried its weights across them, else None."""
    runs, edges = [], []
    for node in walk_forest(lineage_forest(records)):
        record = node.record
        branch_step = record.parent_checkpoint.step if record.parent_checkpoint else None
        runs.append({
            "run": record.run_name, "depth": node.depth, "parent": record.parent_run, "branch_step": branch_step,
            "root_ancestor": record.root_ancestor, "status": record.status,
            "timesteps": record.timesteps.current, "capture_rate": _capture_rate(runs_root, record),
        })
        transfer = list(record.transfer.changes) if record.transfer else None
        runs[-1]["transfer"] = transfer
        if record.parent_run:
            edges.append({"parent": record.parent_run, "child": record.run_name, "step": branch_step,
                          "transfer": transfer})
    return {"runs": runs, "edges": edges}


def lineage_markdown(view: dict[str, Any]) -> str:
    """Nested markdown list, one line per run: link, status, steps, branch point (and the unit-count change of a
    transfer branch), capture rate."""
    if not view["runs"]:
        return "No runs yet."
    lines = []
    for run in view["runs"]:
        rate = "not evaluated" if run["capture_rate"] is None else f"capture rate {run['capture_rate']:.0%}"
        branch = f" · branched at step {run['branch_step']:,}" if run["branch_step"] is not None else ""
        if run["transfer"]:
            branch += f" · **transfer: {'; '.join(run['transfer'])}**"
        link = f"[{run['run']}]({partition_path(CHECKPOINT, run['run'])})"
        indent = "  " * run["depth"]
        lines.append(f"{indent}- {link} · {run['status']} · {run['timesteps']:,} steps{branch} · {rate}")
    return "\n".join(lines)
