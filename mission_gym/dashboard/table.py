"""The run table: one row per run with a compare checkbox, lineage, what changed, links, status, progress,
sparkline, latest evaluation (capture interval, paired results) and notes. Every user string goes through
`esc`; links are relative to the page's folder so the page works from file:// wherever the runs root is.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

from mission_gym.dashboard.changes import Change, change_text
from mission_gym.dashboard.charts import chart_svg
from mission_gym.dashboard.data import REPORT_SUFFIXES, Evaluation, RootCache, Row
from mission_gym.dashboard.fmt import esc, fmt_age, fmt_num, fmt_pct, fmt_steps, fmt_time, status_label
from mission_gym.dashboard.forest import interval_svg
from mission_gym.runs.layout import CHECKPOINTS_DIR, EVALUATIONS_DIR, TENSORBOARD_DIR
from mission_gym.runs.record import RunRecord

DAGSTER_ASSET = "checkpoint"  # the partitioned asset a run's Dagster link opens
_COLUMNS = ("", "Run", "Status", "Progress", "Learning curve", "Latest evaluation", "Notes")
_COLUMN_CLASSES = ("pick", "run", "status", "progress", "curve", "evaluation", "notes-cell")
_CHANGES_SHOWN = 4


@dataclass(frozen=True)
class Links:
    """Where links point: `page_dir` holds the page, `runs_root` the runs (as the user gave it, for the
    TensorBoard command), `dagster_url` the Dagster UI (no link without it)."""

    page_dir: Path
    runs_root: Path
    dagster_url: str | None

    @cached_property
    def _prefix(self) -> str:
        return Path(os.path.relpath(self.runs_root, self.page_dir)).as_posix()

    def to(self, *parts: str) -> str:
        """A relative, URL-quoted link from the page to `runs_root/parts...`."""
        target = "/".join(part for part in (self._prefix, *parts) if part != ".")
        return esc(quote(target))


def table(rows: Sequence[Row], now: dt.datetime, changes: Mapping[str, list[Change]],
          lineage_of: Mapping[str, str], links: Links, cache: RootCache) -> str:  # fmt: skip
    """The run table; each row's HTML is reused while nothing it shows changed (see RootCache.memo)."""
    head = "".join(f'<th class="{css}">{name}</th>' for css, name in zip(_COLUMN_CLASSES, _COLUMNS, strict=True))
    html = []
    for row in rows:
        record, name = row.record, row.node.name
        run_changes, svg, label = changes.get(name, []), chart_svg(row.curve), status_label(record, now)
        age = fmt_age((now - record.heartbeat_at).total_seconds())
        reports = _report_files(row, links)  # written after the JSON report the evaluation was read from
        inputs = (record, row.evaluation, svg, tuple(run_changes), lineage_of[name], row.is_active, row.tree_parent,
                  row.node.depth, label, age, links, reports)  # fmt: skip
        html.append(cache.memo("row", name, inputs,
                               lambda: _table_row(row, now, run_changes, lineage_of[name], links, reports)))  # fmt: skip
    body = "\n".join(html)
    return (
        f'<div class="panel table-panel"><table id="runs"><thead><tr>{head}</tr></thead><tbody>\n{body}\n'
        "</tbody></table></div>"
    )


def _table_row(
    row: Row, now: dt.datetime, changes: list[Change], lineage: str, links: Links, reports: tuple[str, ...]
) -> str:
    name = esc(row.record.run_name)
    cells = (
        f'<input type="checkbox" class="pick" value="{name}" aria-label="compare {name}">',
        _run_cell(row, changes, links, reports),
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
    _, status = status_label(row.record, now)
    return (
        f'<tr{row_class} data-run="{name}" data-depth="{row.node.depth}" data-status="{status}" '
        f'data-lineage="{esc(lineage)}">{tds}</tr>'
    )


def _run_cell(row: Row, changes: list[Change], links: Links, reports: tuple[str, ...]) -> str:
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
    if changes:
        lines.append(f'<div class="changes"{indent} title="{esc(change_text(changes))}">'
                     f"Δ {esc(change_text(changes, _CHANGES_SHOWN))}</div>")  # fmt: skip
    where = f"{esc(record.device)} on {esc(record.host)}"
    lines.append(f'<div class="meta created"{indent}>created {fmt_time(record.created_at)} · {where}</div>')
    lines.append(f'<div class="links"{indent}>{_links(row, links, reports)}</div>')
    return "".join(lines)


def _report_files(row: Row, links: Links) -> tuple[str, ...]:
    """File names of the latest evaluation's readable report and replay that exist beside its JSON."""
    if row.evaluation is None:
        return ()
    folder = os.path.join(links.runs_root, row.record.run_name, EVALUATIONS_DIR)
    stem = Path(row.evaluation.file).stem
    return tuple(stem + suffix for suffix in REPORT_SUFFIXES if os.path.isfile(os.path.join(folder, stem + suffix)))


def _links(row: Row, links: Links, reports: tuple[str, ...]) -> str:
    """Evaluation report and replay, checkpoints, Dagster partition, TensorBoard command."""
    name, parts = row.record.run_name, []
    for file_name in reports:
        label = "replay" if file_name.endswith(REPORT_SUFFIXES[1]) else "report"
        parts.append(f'<a href="{links.to(name, EVALUATIONS_DIR, file_name)}">{label}</a>')
    if row.record.checkpoints:
        parts.append(f'<a href="{links.to(name, CHECKPOINTS_DIR)}/">checkpoints</a>')
    if links.dagster_url is not None:
        url = f"{links.dagster_url}/assets/{DAGSTER_ASSET}?view=partitions&partition={quote(name, safe='')}"
        parts.append(f'<a href="{esc(url)}">Dagster</a>')
    command = f"tensorboard --logdir {os.path.join(links.runs_root, name, TENSORBOARD_DIR)}"
    parts.append(f'<details class="tb"><summary>TensorBoard</summary><code>{esc(command)}</code></details>')
    return " · ".join(parts)



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
    versus = [f"baseline {fmt_pct(evaluation.baseline_capture)}{_paired(evaluation.baseline_paired)}"]
    if evaluation.parent_capture is not None:
        parent = f"parent {fmt_pct(evaluation.parent_capture)}{_paired(evaluation.parent_paired)}"
        versus.append(f'<span title="{esc(evaluation.parent_label or "")}">{parent}</span>')
    source = evaluation.checkpoint or evaluation.file
    bar = ""
    if evaluation.capture_rate is not None:
        bar = f'<svg class="interval" width="130" height="10" aria-hidden="true">{interval_svg(evaluation.capture_rate, lo, hi, 1, 1, 128)}</svg>'
    return (
        f'<div class="num"><span class="big">{fmt_pct(evaluation.capture_rate)}</span> '
        f'<span class="meta">capture{ci}</span></div>{bar}'
        f'<div class="meta">{returns}</div>'
        f'<div class="meta">{"<br>".join(versus)}</div>'
        f'<div class="meta" title="{esc(source)}">{esc(Path(source).name)}</div>'
    )


def _paired(counts: tuple[int, int] | None) -> str:
    """`: better on 12 seeds, worse on 3` (seeds only one side captures), from a paired comparison."""
    return "" if counts is None else f": better on {counts[0]} seeds, worse on {counts[1]}"


def _notes_cell(record: RunRecord) -> str:
    notes = f'<div class="notes">{esc(record.notes)}</div>' if record.notes else ""
    error = f'<div class="error">{esc(record.error)}</div>' if record.error else ""
    return notes + error


