"""SVG pictures drawn here (no script): one run's learning curve and the lineage forest."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence

import numpy as np

from mission_gym.dashboard.data import Curve, Row
from mission_gym.dashboard.fmt import esc, fmt_num, fmt_pct, fmt_steps, status_label

MAX_CURVE_POINTS = 300

_CHART_W, _CHART_H = 240, 100
_PANELS = ((15, 41), (59, 85))  # y top/bottom of the return and capture-rate panels
_RETURN_COLOR, _CAPTURE_COLOR = "#2563eb", "#059669"


def _downsample(columns: np.ndarray, limit: int = MAX_CURVE_POINTS) -> np.ndarray:
    """Average consecutive rows into at most `limit` buckets, ignoring NaN (a bucket of NaN stays NaN).

    Means rather than every k-th row: the curve keeps its shape without the noise of single updates.
    """
    if len(columns) <= limit:
        return columns
    starts = np.linspace(0, len(columns), limit, endpoint=False).astype(np.int64)
    finite = np.isfinite(columns)
    sums = np.add.reduceat(np.where(finite, columns, 0.0), starts, axis=0)
    counts = np.add.reduceat(finite.astype(np.int64), starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def chart_svg(curve: Curve) -> str:
    """The learning curve of one run, drawn once per change of its metrics (cached on the curve)."""
    if curve.svg is None:
        if len(curve):
            arrays = (curve.timestep, curve.ep_return, curve.capture)
            # np.array copies: a numpy view would pin the buffer and make the next append raise.
            columns = np.column_stack([np.array(a, dtype=np.float64) for a in arrays])
            curve.svg = _draw_chart(_downsample(columns), (min(curve.timestep), max(curve.timestep)))
        else:
            curve.svg = '<span class="muted">no metrics yet</span>'
    return curve.svg


def _draw_chart(points: np.ndarray, step_range: tuple[float, float]) -> str:
    """Two stacked panels sharing the timestep axis: episode return (own range) and capture rate (0-1).

    `step_range` labels the axis with the real first and last timesteps, not the bucket means plotted.
    """
    steps, returns, captures = points[:, 0], points[:, 1], points[:, 2]
    x_of = _scale(float(steps.min()), float(steps.max()), 4, _CHART_W - 4)
    finite = returns[np.isfinite(returns)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    (ret_top, ret_bottom), (cap_top, cap_bottom) = _PANELS
    grey = "#6b7280"
    return "".join(
        [
            f'<svg class="chart" width="{_CHART_W}" height="{_CHART_H}" viewBox="0 0 {_CHART_W} {_CHART_H}" '
            f'role="img" aria-label="learning curve up to {fmt_steps(step_range[1])} timesteps">',
            _panel(x_of(steps), _scale(lo, hi, ret_bottom, ret_top)(returns), ret_top, ret_bottom, _RETURN_COLOR),
            _panel(x_of(steps), _scale(0.0, 1.0, cap_bottom, cap_top)(captures), cap_top, cap_bottom, _CAPTURE_COLOR),
            _label(4, 11, f"return {fmt_num(_last_finite(returns))}", _RETURN_COLOR, bold=True),
            _label(_CHART_W - 4, 11, f"{fmt_num(lo)} … {fmt_num(hi)}", grey, anchor="end"),
            _label(4, 55, f"capture {fmt_pct(_last_finite(captures))}", _CAPTURE_COLOR, bold=True),
            _label(_CHART_W - 4, 55, "0 … 100%", grey, anchor="end"),
            _label(4, 97, fmt_steps(step_range[0]), grey),
            _label(_CHART_W - 4, 97, f"{fmt_steps(step_range[1])} steps", grey, anchor="end"),
            "</svg>",
        ]
    )


def _scale(lo: float, hi: float, out_lo: float, out_hi: float) -> Callable[[np.ndarray], np.ndarray]:
    """Linear map of [lo, hi] onto [out_lo, out_hi]; a flat range maps to the middle."""
    if hi <= lo:
        return lambda values: np.where(np.isfinite(values), (out_lo + out_hi) / 2, np.nan)
    return lambda values: out_lo + (values - lo) / (hi - lo) * (out_hi - out_lo)


def _panel(xs: np.ndarray, ys: np.ndarray, top: int, bottom: int, color: str) -> str:
    """A grey panel with the line through the finite points (NaN leaves a gap) and a dot on the last one.

    y is clipped to the panel: a capture rate outside [0, 1] in a hand-edited file must not draw elsewhere.
    """
    ys = np.clip(ys, top, bottom)
    commands, pen_down, last = [], False, None
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        if math.isfinite(y):
            commands.append(f"{'L' if pen_down else 'M'}{x:.1f} {y:.1f}")
            last = (x, y)
        pen_down = math.isfinite(y)
    parts = [f'<rect x="4" y="{top}" width="{_CHART_W - 8}" height="{bottom - top}" rx="2" fill="#f3f4f6"/>']
    if last is not None:
        parts.append(f'<path d="{" ".join(commands)}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        parts.append(f'<circle cx="{last[0]:.1f}" cy="{last[1]:.1f}" r="2.5" fill="{color}"/>')
    return "".join(parts)


def _label(x: float, y: float, text: str, color: str, anchor: str = "start", bold: bool = False) -> str:
    weight = ' font-weight="600"' if bold else ""
    return f'<text x="{x}" y="{y}" fill="{color}" font-size="10" text-anchor="{anchor}"{weight}>{esc(text)}</text>'


def _last_finite(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else None


# --- lineage forest picture ---------------------------------------------------------------------------

_NODE_W, _NODE_H, _ROW_H, _INDENT, _PAD = 270, 22, 30, 130, 8
_NODE_NAME_CHARS = 30
_STATUS_COLORS = {  # fill, stroke
    "running": ("#dcfce7", "#15803d"),
    "stalled": ("#ffedd5", "#c2410c"),
    "finished": ("#dbeafe", "#1d4ed8"),
    "failed": ("#fee2e2", "#b91c1c"),
    "interrupted": ("#fef9c3", "#a16207"),
}


def forest_svg(rows: Sequence[Row], now: dt.datetime) -> str:
    """Runs as boxes in table order, each child indented under its tree parent by an edge labelled with
    the branch step (dashed where the direct parent run is gone and the run hangs under its root)."""
    y_of = {row.node.name: _PAD + i * _ROW_H for i, row in enumerate(rows)}
    x_of = {row.node.name: _PAD + row.node.depth * _INDENT for row in rows}
    width = _PAD * 2 + _NODE_W + _INDENT * max((row.node.depth for row in rows), default=0)
    height = _PAD * 2 + _ROW_H * len(rows) - (_ROW_H - _NODE_H)
    parts = [f'<svg class="forest" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="lineage forest of {len(rows)} runs">']  # fmt: skip
    parts += [_edge(row, x_of, y_of) for row in rows if row.tree_parent is not None]
    parts += [_node(row, x_of[row.node.name], y_of[row.node.name], now) for row in rows]
    parts.append("</svg>")
    return "".join(parts)


def _edge(row: Row, x_of: dict[str, int], y_of: dict[str, int]) -> str:
    record, parent = row.record, row.tree_parent or ""
    x0, mid_y = x_of[parent] + 14, y_of[row.node.name] + _NODE_H / 2
    x1 = x_of[row.node.name]
    dash = "" if record.parent_run == parent else ' stroke-dasharray="4 3"'
    step = record.parent_checkpoint.step if record.parent_checkpoint else None
    label = f"@ {fmt_steps(step)}" if step is not None else "root"
    return (
        f'<path d="M{x0} {y_of[parent] + _NODE_H} V{mid_y} H{x1}" fill="none" stroke="#9ca3af" '
        f'stroke-width="1.5"{dash}/>'
        f'<text x="{x0 + 6}" y="{mid_y - 3}" font-size="10" fill="#4b5563">{esc(label)}</text>'
    )


def _node(row: Row, x: int, y: int, now: dt.datetime) -> str:
    record = row.record
    label, css = status_label(record, now)
    fill, stroke = _STATUS_COLORS.get(css, ("#f3f4f6", "#6b7280"))
    name = record.run_name
    if len(name) > _NODE_NAME_CHARS:
        name = name[: _NODE_NAME_CHARS - 1] + "…"
    steps = f"{fmt_steps(record.timesteps.current)} / {fmt_steps(record.timesteps.target)} steps"
    weight, stroke_w = ("600", 2.5) if row.is_active else ("400", 1)
    return (
        f'<g class="node"><title>{esc(f"{record.run_name}: {label}, {steps}")}</title>'
        f'<rect x="{x}" y="{y}" width="{_NODE_W}" height="{_NODE_H}" rx="4" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{stroke_w}"/>'
        f'<text x="{x + 8}" y="{y + 15}" font-size="11.5" font-weight="{weight}" fill="#111827">{esc(name)}</text>'
        f'<text x="{x + _NODE_W - 8}" y="{y + 15}" font-size="10" fill="{stroke}" text-anchor="end">'
        f"{esc(label)}</text></g>"
    )


