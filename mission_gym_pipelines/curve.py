"""A run's learning curve as a small PNG, embedded in markdown metadata (the UI renders data: images).

Drawn with Pillow (already a dependency, for the evaluation GIFs): mean episode return in blue, capture rate
in orange (0-100 % on the right-hand scale), against global timesteps. No plotting library is needed for two
polylines, and the picture stays a few kilobytes so it can live inside the materialization event.
"""

import base64
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from mission_gym.runs.layout import RunPaths

WIDTH, HEIGHT, MARGIN = 480, 180, 28
# At most this many points are drawn; a long run's rows are thinned evenly (the shape stays, the bytes do not grow).
MAX_POINTS = 400
RETURN_COLOUR, CAPTURE_COLOUR, AXIS_COLOUR = (31, 119, 180), (255, 127, 14), (120, 120, 120)


def metrics_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The rollout rows of the run's metrics.jsonl that carry episode statistics (unreadable lines skipped)."""
    try:
        lines = RunPaths(run_dir).metrics.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:  # the line being appended right now
            continue
        if isinstance(row.get("ep_return_mean"), (int, float)):
            rows.append(row)
    return rows


def _thin(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(rows) <= MAX_POINTS:
        return rows
    stride = len(rows) / MAX_POINTS
    return [rows[int(i * stride)] for i in range(MAX_POINTS - 1)] + [rows[-1]]


def learning_curve_png(rows: list[dict[str, Any]]) -> bytes | None:
    """PNG bytes of mean return and capture rate against timesteps; None with fewer than two rows."""
    rows = _thin(rows)
    if len(rows) < 2:
        return None
    steps = [float(r["timestep"]) for r in rows]
    returns = [float(r["ep_return_mean"]) for r in rows]
    captures = [float(r.get("capture_rate") or 0.0) for r in rows]
    low, high = min(returns), max(returns)
    span_steps, span_returns = (steps[-1] - steps[0]) or 1.0, (high - low) or 1.0
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def point(step: float, fraction: float) -> tuple[float, float]:
        return MARGIN + (step - steps[0]) / span_steps * plot_w, HEIGHT - MARGIN - fraction * plot_h

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([MARGIN, MARGIN, WIDTH - MARGIN, HEIGHT - MARGIN], outline=AXIS_COLOUR)
    draw.line([point(s, (r - low) / span_returns) for s, r in zip(steps, returns)], fill=RETURN_COLOUR, width=2)
    draw.line([point(s, c) for s, c in zip(steps, captures)], fill=CAPTURE_COLOUR, width=2)
    draw.text((MARGIN, 4), f"mean return {low:.1f} .. {high:.1f}", fill=RETURN_COLOUR)
    draw.text((WIDTH - MARGIN - 110, 4), "capture rate 0-100%", fill=CAPTURE_COLOUR)
    draw.text((MARGIN, HEIGHT - MARGIN + 6), f"{steps[0]:,.0f}", fill=AXIS_COLOUR)
    draw.text((WIDTH - MARGIN - 70, HEIGHT - MARGIN + 6), f"{steps[-1]:,.0f} steps", fill=AXIS_COLOUR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def learning_curve_markdown(run_dir: Path) -> str:
    """The run's learning curve as a markdown image with a data: URI, or a sentence saying why there is none."""
    png = learning_curve_png(metrics_rows(run_dir))
    if png is None:
        return "No learning curve yet: fewer than two rollouts with finished episodes."
    return f"![learning curve of {run_dir.name}](data:image/png;base64,{base64.b64encode(png).decode()})"
