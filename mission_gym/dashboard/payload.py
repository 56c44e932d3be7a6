"""The run data the page's script draws from, as the text of a `<script type="application/json">` block.

Per run: lineage (parent, branch step), status, checkpoint and evaluation steps, hyperparameters, and its
metrics curve (every numeric column of metrics.jsonl, bucket-averaged to at most MAX_EMBEDDED_POINTS
points) when it has one. Every `<` is written as \\u003c, so no string (a note, a metrics key) can close
the block.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mission_gym.dashboard.changes import Change
from mission_gym.dashboard.charts import downsample
from mission_gym.dashboard.data import TIME_KEY, Curve, Row

MAX_EMBEDDED_POINTS = 150
_X_KEYS = ("timestep", TIME_KEY)  # exact (10 digits): steps and Unix seconds; metrics keep 5 significant digits


def page_data(rows: Sequence[Row], changes: Mapping[str, list[Change]], lineage_of: Mapping[str, str]) -> str:
    """The JSON text of the page's data block, safe inside <script> (see module docstring)."""
    runs = [_run(row, changes.get(row.record.run_name, []), lineage_of[row.record.run_name]) for row in rows]
    curves = {row.record.run_name: _curve_json(row.curve) for row in rows if len(row.curve)}
    metrics = sorted({key for row in rows for key in row.curve.columns if key not in _X_KEYS})
    head = json.dumps({"runs": runs, "metrics": metrics}, separators=(",", ":"))
    body = ",".join(f"{json.dumps(name)}:{text}" for name, text in curves.items())
    return (head[:-1] + ',"curves":{' + body + "}}").replace("<", "\\u003c")


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
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value) if not isinstance(value, str) else value


def _curve_json(curve: Curve) -> str:
    """{"timestep": [...], "time": [...], "<metric>": [...]}: numbers written by numpy, NaN as null."""
    names = list(curve.columns)
    points = downsample(np.column_stack([curve.column(name) for name in names]), MAX_EMBEDDED_POINTS)
    parts = []
    for i, name in enumerate(names):
        text = ",".join(np.char.mod("%.10g" if name in _X_KEYS else "%.5g", points[:, i]).tolist())
        parts.append(f"{json.dumps(name)}:[{text.replace('nan', 'null')}]")
    return "{" + ",".join(parts) + "}"
