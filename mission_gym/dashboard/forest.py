"""The lineage forest as SVG, one picture per tree: each run a box with its status and evaluated capture
rate (with its interval), each edge labelled with the branch step and what the child changed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from mission_gym.dashboard.changes import Change, change_text
from mission_gym.dashboard.data import Evaluation, Row
from mission_gym.dashboard.fmt import esc, finite, fmt_pct, fmt_steps, status_label

_NODE_W, _NODE_H, _ROW_H, _INDENT, _PAD = 270, 36, 44, 130, 8
_CHANGES_SHOWN, _CHAR_W = 3, 6.2  # change labels right of a box: how many changes, and the width of a character
_NODE_NAME_CHARS = 30
_BAR_X, _BAR_W = 178, 80  # the interval bar inside a box
_STATUS_COLORS = {  # fill, stroke
    "running": ("#dcfce7", "#15803d"),
    "stalled": ("#ffedd5", "#c2410c"),
    "finished": ("#dbeafe", "#1d4ed8"),
    "failed": ("#fee2e2", "#b91c1c"),
    "interrupted": ("#fef9c3", "#a16207"),
}


def forest_svg(rows: Sequence[Row], now: dt.datetime, changes: Mapping[str, list[Change]]) -> str:
    """Runs of one tree as boxes in table order, each child indented under its tree parent by an edge
    labelled with the branch step (dashed where the direct parent run is gone and the run hangs under its
    root), with what it changed against its parent written right of its box."""
    y_of = {row.node.name: _PAD + i * _ROW_H for i, row in enumerate(rows)}
    x_of = {row.node.name: _PAD + row.node.depth * _INDENT for row in rows}
    right_edges = [x_of[row.node.name] + _NODE_W for row in rows]
    right_edges += [x_of[row.node.name] + _NODE_W + 8 + _CHAR_W * len(_change_label(changes[row.node.name]))
                    for row in rows if changes.get(row.node.name)]  # fmt: skip
    width = round(max(right_edges, default=0)) + _PAD
    height = _PAD * 2 + _ROW_H * len(rows) - (_ROW_H - _NODE_H)
    parts = [f'<svg class="forest" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="lineage tree of {len(rows)} runs">']  # fmt: skip
    parts += [_edge(row, x_of, y_of) for row in rows if row.tree_parent is not None]
    parts += [_node(row, x_of[row.node.name], y_of[row.node.name], now) for row in rows]
    parts += [_changes(changes[row.node.name], x_of[row.node.name], y_of[row.node.name])
              for row in rows if changes.get(row.node.name)]  # fmt: skip
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


def _changes(changes: list[Change], x: int, y: int) -> str:
    left = x + _NODE_W + 8
    return (
        f'<text class="edge-changes" x="{left}" y="{y + _NODE_H / 2 + 4}" font-size="10.5" fill="#7c2d12">'
        f"<title>{esc(change_text(changes))}</title>{esc(_change_label(changes))}</text>"
    )


def _change_label(changes: list[Change]) -> str:
    return f"Δ {change_text(changes, _CHANGES_SHOWN)}"


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
        f'<text x="{x + 8}" y="{y + 14}" font-size="11.5" font-weight="{weight}" fill="#111827">{esc(name)}</text>'
        f'<text x="{x + _NODE_W - 8}" y="{y + 14}" font-size="10" fill="{stroke}" text-anchor="end">'
        f"{esc(label)}</text>{_capture(row.evaluation, x, y + 29)}</g>"
    )


def _capture(evaluation: Evaluation | None, x: int, base: float) -> str:
    """`capture 42.0% [35.0–49.0%]` with the interval drawn as a bar on a 0–100% track."""
    if evaluation is None or evaluation.capture_rate is None:
        return f'<text x="{x + 8}" y="{base}" font-size="10" fill="#6b7280">not evaluated</text>'
    lo, hi = evaluation.ci
    return (
        f'<text class="node-capture" x="{x + 8}" y="{base}" font-size="10" fill="#111827">'
        f"{esc(capture_text(evaluation))}</text>"
        + interval_svg(evaluation.capture_rate, lo, hi, x + _BAR_X, base - 7, _BAR_W)
    )


def capture_text(evaluation: Evaluation) -> str:
    """`capture 42.0% [35.0–49.0%]`, the interval when the report has one."""
    lo, hi = evaluation.ci
    ci = f" [{fmt_pct(lo)}–{fmt_pct(hi)}]" if lo is not None and hi is not None else ""
    return f"capture {fmt_pct(evaluation.capture_rate)}{ci}"


def interval_svg(value: float, lo: float | None, hi: float | None, x: float, y: float, width: float) -> str:
    """A 0–100% track, the interval [lo, hi] as a bar on it and the point estimate as a tick (SVG parts)."""

    def at(rate: float) -> float:
        return x + width * min(max(rate, 0.0), 1.0)

    parts = [f'<rect x="{x}" y="{y + 2}" width="{width}" height="4" rx="2" fill="#e5e7eb"/>']
    if finite(lo) is not None and finite(hi) is not None:
        parts.append(f'<rect x="{at(lo):.1f}" y="{y}" width="{max(at(hi) - at(lo), 1):.1f}" height="8" rx="2" '
                     'fill="#93c5fd"/>')  # fmt: skip
    parts.append(f'<rect x="{at(value) - 1:.1f}" y="{y - 1}" width="2" height="10" fill="#1d4ed8"/>')
    return "".join(parts)
