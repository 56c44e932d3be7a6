"""The page: one self-contained, offline HTML document (runs/dashboard.html) that works from file://.

Built from the rows `data` read: a compare chart (uPlot, drawn by app.js from the run data embedded as
JSON), the lineage forest (one collapsible picture per tree), the branch searches (one collapsible tree
each), the run table and folders without a record.
The Content-Security-Policy allows only the inline scripts by hash, no request of any kind (`connect-src
'none'`), and images only as data: URLs, as a second line of defence behind `esc`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mission_gym.dashboard.assets import load_assets, script_hash
from mission_gym.dashboard.changes import Change
from mission_gym.dashboard.data import RootCache, Row
from mission_gym.dashboard.fmt import esc, fmt_steps, fmt_time, status_label
from mission_gym.dashboard.forest import forest_svg
from mission_gym.dashboard.payload import page_data
from mission_gym.dashboard.search_view import searches_section
from mission_gym.dashboard.searches import SearchTree
from mission_gym.dashboard.table import Links, table

REFRESH_S = 5
_OPEN_TREES = 3  # trees shown unfolded: the first ones, which hold the most recent activity


@dataclass(frozen=True)
class View:
    """Everything one page shows."""

    title: str
    rows: Sequence[Row]
    problems: Sequence[tuple[str, str]]
    now: dt.datetime
    changes: Mapping[str, list[Change]]
    links: Links
    cache: RootCache
    searches: Sequence[SearchTree] = ()
    search_problems: Sequence[tuple[str, str]] = ()


def render_page(view: View) -> str:
    """The whole document."""
    assets = load_assets()
    rows, now = view.rows, view.now
    running = sum(row.record.is_live(now) for row in rows)
    summary = f"{view.title} · {len(rows)} runs, {running} running · generated {fmt_time(now)}"
    summary += f" · refreshes every {REFRESH_S} s"
    live = '<label class="live"><input type="checkbox" id="live" checked> auto-refresh</label>'
    header = f'<h1>Mission Gym runs</h1><div class="sub">{esc(summary)} {live}</div>{_active_line(rows, now)}'
    body = [f"<header>{header}</header>"]
    if rows:
        lineage_of = tree_roots(rows)
        body += [_COMPARE, "<h2>Lineage</h2>", _forest(rows, now, view.changes, view.cache)]
        if view.searches or view.search_problems:
            by_name = {row.record.run_name: row for row in rows}
            section = searches_section(view.searches, view.search_problems, by_name, now, view.links)
            body += ["<h2>Searches</h2>", section]
        body += ["<h2>Runs</h2>", _filters(lineage_of), table(rows, now, view.changes, lineage_of, view.links, view.cache)]
        body.append('<nav class="pager"><button id="prev">‹ previous</button><span id="page-info"></span>'
                    '<button id="next">next ›</button></nav>')  # fmt: skip
        embedded = page_data(rows, view.changes, lineage_of, view.cache, view.searches)
        data = f'<script type="application/json" id="mg-data">{embedded}</script>'
    else:
        body.append('<p class="muted">No runs to show yet.</p>')
        data = ""
    body.append(_problems(view.problems))
    scripts = (assets.uplot_js, assets.app_js)
    return (
        _head(view.title, scripts, assets.uplot_css + "\n" + assets.page_css)
        + f'<body data-refresh-s="{REFRESH_S}">\n'
        + "\n".join(body)
        + f"\n{data}\n"
        + "".join(f"<script>{script}</script>\n" for script in scripts)
        + "</body></html>\n"
    )


def _head(title: str, scripts: Sequence[str], css: str) -> str:
    """Doctype and head: the policy allows exactly `scripts` (by hash), inline styles, data: images, and
    no request of any kind; without JavaScript a meta refresh still follows a live run."""
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; connect-src 'none'; base-uri 'none'; "
        f"form-action 'none'; script-src {' '.join(map(script_hash, scripts))}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        f'<noscript><meta http-equiv="refresh" content="{REFRESH_S}"></noscript>\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Mission Gym · {esc(title)}</title>\n<style>{css}</style></head>\n"
    )


_COMPARE = """<h2>Compare</h2><div class="panel compare">
<div class="controls"><label>metric <select id="metric"></select></label>
<label>x <select id="xaxis"><option value="timestep">global step</option><option value="time">wall-clock</option></select></label>
<label>smoothing <input type="range" id="smooth" min="0" max="0.99" step="0.01" value="0"> <output id="smooth-value">0</output></label>
<label><input type="checkbox" id="history" checked> parents' history</label>
<button id="clear">clear selection</button><span id="selection" class="meta"></span></div>
<div id="chart"><p class="muted">Tick runs in the table (or a lineage below) to compare their curves.</p></div>
<div id="hyperparameters"></div></div>"""


def tree_roots(rows: Sequence[Row]) -> dict[str, str]:
    """Each run's tree root in the forest (rows come depth-first, so a parent precedes its children)."""
    roots: dict[str, str] = {}
    for row in rows:
        roots[row.node.name] = row.node.name if row.tree_parent is None else roots[row.tree_parent]
    return roots


def _forest(rows: Sequence[Row], now: dt.datetime, changes: Mapping[str, list[Change]], cache: RootCache) -> str:
    """One <details> per tree, the first few open; a button ticks the whole lineage for comparison. A
    tree's picture is reused while none of its runs changed what it shows."""
    trees: dict[str, list[Row]] = {}
    for row, root in zip(rows, tree_roots(rows).values(), strict=True):
        trees.setdefault(root, []).append(row)
    parts = []
    for i, (root, members) in enumerate(trees.items()):
        shown = tuple((row.record, row.evaluation, tuple(changes.get(row.node.name, [])), status_label(row.record, now),
                       row.is_active, row.tree_parent, row.node.depth) for row in members)  # fmt: skip
        parts.append(cache.memo("forest", root, (shown, i < _OPEN_TREES), lambda: _tree(root, members, i, now, changes)))
    return '<div class="panel forest-panel">' + "".join(parts) + "</div>"


def _tree(root: str, members: list[Row], index: int, now: dt.datetime, changes: Mapping[str, list[Change]]) -> str:
    opened = " open" if index < _OPEN_TREES else ""
    return (
        f'<details class="tree-panel" data-lineage="{esc(root)}"{opened}><summary><span class="name">{esc(root)}'
        f'</span> <span class="meta">{len(members)} run(s)</span></summary>'
        f'<button class="pick-lineage" value="{esc(root)}">compare this lineage</button>'
        f'<div class="forest-wrap">{forest_svg(members, now, changes)}</div></details>'
    )


def _filters(lineage_of: Mapping[str, str]) -> str:
    roots = "".join(f'<option value="{esc(root)}">{esc(root)}</option>' for root in dict.fromkeys(lineage_of.values()))
    statuses = "".join(f'<option value="{s}">{s}</option>'
                       for s in ("running", "stalled", "finished", "interrupted", "failed"))  # fmt: skip
    return (
        '<div class="filters"><input id="filter-text" type="search" placeholder="filter by name or notes" '
        'aria-label="filter by name or notes">'
        f'<select id="filter-status" aria-label="status"><option value="">any status</option>{statuses}</select>'
        f'<select id="filter-lineage" aria-label="lineage"><option value="">any lineage</option>{roots}</select>'
        '<span id="filter-count" class="meta"></span></div>'
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


def _problems(problems: Sequence[tuple[str, str]]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li><b>{esc(name)}</b>: {esc(problem)}</li>" for name, problem in problems)
    return (
        f"<details><summary>{len(problems)} folder(s) in the runs root without a valid run record</summary>"
        f'<ul class="problems">{items}</ul></details>'
    )
