"""One run's learning curve as a small SVG sparkline (return and capture rate), drawn here without script."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mission_gym.dashboard.data import Curve
from mission_gym.dashboard.fmt import esc, fmt_num, fmt_pct, fmt_steps

MAX_CURVE_POINTS = 300

_CHART_W, _CHART_H = 240, 100
_PANELS = ((15, 41), (59, 85))  # y top/bottom of the return and capture-rate panels
_RETURN_COLOR, _CAPTURE_COLOR = "#2563eb", "#059669"


def downsample(columns: np.ndarray, limit: int = MAX_CURVE_POINTS) -> np.ndarray:
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
            steps = curve.column("timestep")
            columns = np.column_stack([steps, curve.column("ep_return_mean"), curve.column("capture_rate")])
            curve.svg = _draw_chart(downsample(columns), (float(steps.min()), float(steps.max())))
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
