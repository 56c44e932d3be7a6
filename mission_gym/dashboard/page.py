"""The page: one self-contained HTML document built from the rows read by `data` and the pictures of `charts`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from mission_gym.dashboard.charts import chart_svg, forest_svg
from mission_gym.dashboard.data import Evaluation, Row
from mission_gym.dashboard.fmt import esc, fmt_age, fmt_num, fmt_pct, fmt_steps, fmt_time, status_label
from mission_gym.runs.record import RunRecord

REFRESH_S = 5

_CSS = """
*{box-sizing:border-box}
body{margin:0;padding:20px 28px 40px;background:#f6f7f9;color:#1f2328;
  font:13px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
h1{font-size:20px;margin:0 0 2px}
h2{font-size:14px;margin:22px 0 8px;color:#374151;text-transform:uppercase;letter-spacing:.04em}
.sub,.muted,.meta{color:#6b7280}
.meta{font-size:12px}
td.status .meta,td.status{white-space:nowrap}
.active-line{margin-top:6px}
.panel{background:#fff;border:1px solid #d0d7de;border-radius:8px;overflow:auto}
.forest-panel{max-height:380px;padding:4px}
table{border-collapse:collapse;width:100%}
th{position:sticky;top:0;background:#f0f2f5;text-align:left;font-weight:600;font-size:12px;color:#374151;
  padding:8px 10px;border-bottom:1px solid #d0d7de;white-space:nowrap}
td{padding:8px 10px;border-top:1px solid #e5e7eb;vertical-align:top}
tbody tr:hover{background:#f9fafb}
tr.active-run{background:#f0f9ff}
tr.active-run td:first-child{box-shadow:inset 3px 0 #0284c7}
.tree{white-space:nowrap}
.arrow{color:#9ca3af;margin-right:4px}
.name{font-weight:600;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.pill{display:inline-block;margin-left:6px;padding:0 6px;border-radius:9px;font-size:11px;
  background:#0284c7;color:#fff;vertical-align:1px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;border:1px solid}
.badge.running{background:#dcfce7;color:#166534;border-color:#86efac}
.badge.stalled{background:#ffedd5;color:#9a3412;border-color:#fdba74;border-style:dashed}
.badge.finished{background:#dbeafe;color:#1e40af;border-color:#93c5fd}
.badge.failed{background:#fee2e2;color:#991b1b;border-color:#fca5a5}
.badge.interrupted{background:#fef9c3;color:#854d0e;border-color:#fde047}
.bar{width:130px;height:6px;background:#e5e7eb;border-radius:3px;margin:4px 0 2px;overflow:hidden}
.bar>div{height:100%;background:#2563eb}
.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.big{font-size:15px;font-weight:600}
td.notes-cell{min-width:12em}
.notes{white-space:pre-wrap;overflow-wrap:anywhere;max-width:26em}
.error{white-space:pre-wrap;overflow-wrap:anywhere;max-width:26em;color:#991b1b;font-size:12px;margin-top:4px}
.chart{display:block}
details{margin-top:18px}
summary{cursor:pointer;color:#9a3412;font-weight:600}
.problems{white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px}
"""
_COLUMNS = ("Run", "Status", "Progress", "Learning curve", "Latest evaluation", "Notes")
_COLUMN_CLASSES = ("run", "status", "progress", "curve", "evaluation", "notes-cell")


def render_page(title: str, rows: Sequence[Row], problems: Sequence[tuple[str, str]], now: dt.datetime) -> str:
    running = sum(row.record.is_live(now) for row in rows)
    summary = f"{title} · {len(rows)} runs, {running} running · generated {fmt_time(now)}"
    summary += f" · refreshes every {REFRESH_S} s"
    header = f'<h1>Mission Gym runs</h1><div class="sub">{esc(summary)}</div>{_active_line(rows, now)}'
    body = [f"<header>{header}</header>"]
    if rows:
        body += ['<h2>Lineage</h2><div class="panel forest-panel">', forest_svg(rows, now), "</div>"]
        body += ["<h2>Runs</h2>", _table(rows, now)]
    else:
        body.append('<p class="muted">No runs to show yet.</p>')
    body.append(_problems(problems))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        # Nothing on this page may run or load anything, even if a string ever slipped through unescaped.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
        f'<meta http-equiv="refresh" content="{REFRESH_S}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Mission Gym · {esc(title)}</title>\n<style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _active_line(rows: Sequence[Row], now: dt.datetime) -> str:
    active = next((row for row in rows if row.is_active), None)
    if active is None:
        return ""
    record = active.record
    label, _ = status_label(record, now)
    return (
        f'<div class="active-line">Most recently active: <span class="name">{esc(record.run_name)}</span> '
        f"— {esc(label)}, {fmt_steps(record.timesteps.current)} / {fmt_steps(record.timesteps.target)} steps</div>"
    )


def _table(rows: Sequence[Row], now: dt.datetime) -> str:
    head = "".join(f"<th>{name}</th>" for name in _COLUMNS)
    body = "\n".join(_table_row(row, now) for row in rows)
    return f'<div class="panel"><table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div>'


def _table_row(row: Row, now: dt.datetime) -> str:
    cells = (
        _run_cell(row),
        _status_cell(row.record, now),
        _progress_cell(row.record),
        chart_svg(row.curve),
        _evaluation_cell(row.evaluation),
        _notes_cell(row.record),
    )
    row_class = ' class="active-run"' if row.is_active else ""
    tds = "".join(
        f'<td class="{css_class}">{cell}</td>' for css_class, cell in zip(_COLUMN_CLASSES, cells, strict=True)
    )
    return f'<tr{row_class} data-run="{esc(row.record.run_name)}" data-depth="{row.node.depth}">{tds}</tr>'


def _run_cell(row: Row) -> str:
    record, depth = row.record, row.node.depth
    indent = f' style="padding-left:{1.4 * depth:.1f}em"' if depth else ""
    arrow = '<span class="arrow">↳</span>' if depth else ""
    pill = '<span class="pill">active</span>' if row.is_active else ""
    lines = [f'<div class="tree"{indent}>{arrow}<span class="name">{esc(record.run_name)}</span>{pill}</div>']
    if record.parent_run or record.parent_checkpoint:
        step = fmt_steps(record.parent_checkpoint.step) if record.parent_checkpoint else "—"
        lines.append(f'<div class="meta"{indent}>from {esc(record.parent_run or "?")} @ {step}</div>')
    if record.branch_name:
        lines.append(f'<div class="meta"{indent}>branch {esc(record.branch_name)}</div>')
    where = f"{esc(record.device)} on {esc(record.host)}"
    lines.append(f'<div class="meta"{indent}>created {fmt_time(record.created_at)} · {where}</div>')
    return "".join(lines)


def _status_cell(record: RunRecord, now: dt.datetime) -> str:
    label, css = status_label(record, now)
    age = (now - record.heartbeat_at).total_seconds()
    return (
        f'<span class="badge {css}">{esc(label)}</span>'
        f'<div class="meta" title="{esc(fmt_time(record.heartbeat_at))}">updated {fmt_age(age)}</div>'
    )


def _progress_cell(record: RunRecord) -> str:
    steps = record.timesteps
    span = steps.target - steps.start
    done = 1.0 if span <= 0 else min(max((steps.current - steps.start) / span, 0.0), 1.0)
    start = f" · from {fmt_steps(steps.start)}" if steps.start else ""
    return (
        f'<div class="num" title="{steps.current:,} / {steps.target:,}">{fmt_steps(steps.current)} / '
        f"{fmt_steps(steps.target)}</div>"
        f'<div class="bar"><div style="width:{100 * done:.1f}%"></div></div>'
        f'<div class="meta num">{100 * done:.0f}%{start}</div>'
    )


def _evaluation_cell(evaluation: Evaluation | None) -> str:
    if evaluation is None:
        return '<span class="muted">not evaluated</span>'
    if evaluation.problem is not None:
        return f'<div class="error">{esc(evaluation.file)}: {esc(evaluation.problem)}</div>'
    lo, hi = evaluation.ci
    ci = f" [{fmt_pct(lo)}–{fmt_pct(hi)}]" if lo is not None and hi is not None else ""
    returns = f"mean return {fmt_num(evaluation.mean_return)}"
    if evaluation.episodes is not None:
        returns += f" · {evaluation.episodes:.0f} episodes"
    versus = [f"baseline {fmt_pct(evaluation.baseline_capture)}"]
    if evaluation.parent_capture is not None:
        parent = f"parent {fmt_pct(evaluation.parent_capture)}"
        versus.append(f'<span title="{esc(evaluation.parent_label or "")}">{parent}</span>')
    source = evaluation.checkpoint or evaluation.file
    return (
        f'<div class="num"><span class="big">{fmt_pct(evaluation.capture_rate)}</span> '
        f'<span class="meta">capture{ci}</span></div>'
        f'<div class="meta">{returns}</div>'
        f'<div class="meta">{" · ".join(versus)}</div>'
        f'<div class="meta" title="{esc(source)}">{esc(Path(source).name)}</div>'
    )


def _notes_cell(record: RunRecord) -> str:
    notes = f'<div class="notes">{esc(record.notes)}</div>' if record.notes else ""
    error = f'<div class="error">{esc(record.error)}</div>' if record.error else ""
    return notes + error


def _problems(problems: Sequence[tuple[str, str]]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li><b>{esc(name)}</b>: {esc(problem)}</li>" for name, problem in problems)
    return (
        f"<details><summary>{len(problems)} folder(s) in the runs root without a valid run record</summary>"
        f'<ul class="problems">{items}</ul></details>'
    )
