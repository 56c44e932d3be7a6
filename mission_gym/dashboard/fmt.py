"""Text for the dashboard page: HTML escaping and number, step, time and status formats that never raise."""

from __future__ import annotations

import datetime as dt
import html
import math

import numpy as np

from mission_gym.runs.record import RunRecord


def esc(value: object) -> str:
    """Text safe inside HTML/SVG content and double-quoted attributes."""
    return html.escape(str(value), quote=True)


_REAL_TYPES = (int, float, np.integer, np.floating)  # concrete types: numbers.Real's ABC check is slow


def finite(value: object) -> float | None:
    """A finite float from any real number (numpy scalars included); None for NaN, inf, bool, text, None."""
    if isinstance(value, bool) or not isinstance(value, _REAL_TYPES):
        return None
    try:
        number = float(value)
    except OverflowError:  # a JSON integer beyond float range
        return None
    return number if math.isfinite(number) else None


def fmt_num(value: object, digits: int = 1) -> str:
    number = finite(value)
    return "—" if number is None else f"{number:,.{digits}f}"


def fmt_pct(value: object) -> str:
    number = finite(value)
    return "—" if number is None else f"{100 * number:.1f}%"


def fmt_steps(value: object) -> str:
    """`27.67M`, `50.0k`, `800`."""
    number = finite(value)
    if number is None:
        return "—"
    for suffix, scale, digits in (("M", 1e6, 2), ("k", 1e3, 1)):
        if abs(number) >= scale:
            return f"{number / scale:.{digits}f}{suffix}"
    return f"{number:.0f}"


def fmt_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def fmt_age(seconds: float) -> str:
    if seconds < 0:
        return "just now"
    for suffix, scale in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= scale:
            return f"{seconds / scale:.0f} {suffix} ago"
    return f"{seconds:.0f} s ago"


def status_label(record: RunRecord, now: dt.datetime) -> tuple[str, str]:
    """(label, css class): a `running` run whose heartbeat is stale probably died without saying so."""
    if record.status == "running" and not record.is_live(now):
        return "stalled?", "stalled"
    return record.status, record.status


