"""The run data the page's script draws from, as the text of a `<script type="application/json">` block.

Per run: lineage (parent, branch step), status, checkpoint and evaluation steps, hyperparameters, and its
metrics curve (every numeric column of metrics.jsonl, bucket-averaged to at most MAX_EMBEDDED_POINTS
points) when it has one. Per branch search (in the page's order): its runs and its winner's lineage, which
its "compare" buttons pick. Every `<` is written as \\u003c, so no string (a note, a metrics key) can close
the block.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mission_gym.dashboard.changes import Change
from mission_gym.dashboard.charts import downsample
from mission_gym.dashboard.data import TIME_KEY, Curve, RootCache, Row
from mission_gym.dashboard.searches import SearchTree

MAX_EMBEDDED_POINTS = 150
_X_KEYS = ("timestep", TIME_KEY)  # exact (10 digits): steps and Unix seconds; metrics keep 5 significant digits


def page_data(
    rows: Sequence[Row],
    changes: Mapping[str, list[Change]],
    lineage_of: Mapping[str, str],
    cache: RootCache,
    searches: Sequence[SearchTree] = (),
) -> str:
    """The JSON text of the page's data block, safe inside <script> (see module docstring); each run's part
    is reused while its record, evaluations, changes and curve are unchanged."""
    runs, curves, metrics = [], [], set()
    for row in rows:
        name, run_changes = row.record.run_name, changes.get(row.record.run_name, [])
        inputs = (row.record, row.evaluation_steps, tuple(run_changes), lineage_of[name])
        runs.append(cache.memo("data", name, inputs, lambda: _dumps(_run(row, run_changes, lineage_of[name]))))
        if len(row.curve):
            curve_json, keys = cache.memo("curve", name, (row.curve, row.curve.key), lambda: _curve_json(row.curve))
            curves.append(f"{json.dumps(name)}:{curve_json}")
            metrics.update(keys)
    picks = _dumps([{"name": t.record.name, "runs": t.runs, "lineage": list(t.lineage)} for t in searches])
    text = (f'{{"runs":[{",".join(runs)}],"metrics":{_dumps(sorted(metrics))},"curves":{{{",".join(curves)}}},'
            f'"searches":{picks}}}')  # fmt: skip
    return text.replace("<", "\\u003c")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _run(row: Row, changes: list[Change], lineage: str) -> dict[str, Any]:
    record = row.record
    return {
        "name": record.run_name,
        "parent": record.parent_run,
        "branch": record.parent_checkpoint.step if record.parent_checkpoint else None,
        "lineage": lineage,
        "status": record.status,
        "checkpoints": [entry.step for entry in record.checkpoints],
        "evaluations": list(row.evaluation_steps),
        "hyperparameters": {key: _text(value) for key, value in record.hyperparameters.items()},
        "changes": [list(change) for change in changes],
    }


def _text(value: Any) -> str:
    """A hyperparameter as shown: floats to 4 significant digits, other non-strings as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value) if isinstance(value, int) else json.dumps(value)


def _curve_json(curve: Curve) -> tuple[str, list[str]]:
    """{"timestep": [...], "time": [...], "<metric>": [...]}: numbers written by numpy, NaN as null; and
    the metrics with at least one number (the ones worth offering)."""
    names = list(curve.columns)
    points = downsample(np.column_stack([curve.column(name) for name in names]), MAX_EMBEDDED_POINTS)
    parts, numeric = [], []
    for i, name in enumerate(names):
        text = ",".join(np.char.mod("%.10g" if name in _X_KEYS else "%.5g", points[:, i]).tolist())
        parts.append(f"{json.dumps(name)}:[{text.replace('nan', 'null')}]")
        if name not in _X_KEYS and np.isfinite(points[:, i]).any():
            numeric.append(name)
    return "{" + ",".join(parts) + "}", numeric
