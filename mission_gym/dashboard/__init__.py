"""The unified dashboard: one self-contained HTML page, `runs/dashboard.html`, showing every run.

Open it from disk (file://); it reloads itself every REFRESH_S seconds and training rewrites it, so it
follows a live run. It compares runs on one chart (any metrics.jsonl column, a branch drawn over its
parent's history), shows what each branch changed against its parent, each run's latest evaluation with
its interval and paired results, links, the lineage forest, and each branch search as a tree of its
member-rounds with the decisions that shaped it.

The package, data flowing one way: `data` reads run folders (no HTML; the file names it reads are its
first constants), `changes` diffs a branch against its parent, `searches` reads each search's record and
builds its tree, `charts`/`forest` draw SVG, `payload` writes the run data the page's script (`app.js`,
with uPlot from `assets`) draws from, `table`, `search_view` and `page` build the HTML. Every string read
from a run or search folder goes through `fmt.esc` (in HTML and SVG) or JSON with `<` escaped; the
Content-Security-Policy allows only the inline scripts, by hash, and no request.

Cost of one call (training calls it every few thousand steps): one listing of the runs root and, per run,
a stat of run.json and metrics.jsonl and a listing of evaluations/; per search a stat of search.json. A
file is opened only when its (size, mtime_ns, inode) changed since the previous call in this process, and
each run's row, data and changes are rebuilt only when what they show changed (RootCache.memo); the
searches, a few dozen nodes each, are drawn afresh. Curves are bucket-averaged to at most MAX_CURVE_POINTS
points for the sparkline and payload.MAX_EMBEDDED_POINTS for the compare chart. Measured with
benchmarks/dashboard_scale.py: see README.
"""

from __future__ import annotations

import os
from pathlib import Path

from mission_gym.dashboard.changes import Change, run_changes
from mission_gym.dashboard.charts import MAX_CURVE_POINTS
from mission_gym.dashboard.data import ACTIVE, LOCK, RootCache, Row, root_cache, rows_in_order, scan, select
from mission_gym.dashboard.page import REFRESH_S, View, render_page
from mission_gym.dashboard.searches import SearchTree, read_searches, search_tree
from mission_gym.dashboard.table import Links
from mission_gym.errors import MissionGymError
from mission_gym.runs.index import gc_paused
from mission_gym.runs.layout import DASHBOARD_FILE, dashboard_file
from mission_gym.runs.lineage import active_run
from mission_gym.runs.record import RunRecord, atomic_write_text, utc_now

__all__ = ["ACTIVE", "DAGSTER_URL_ENV", "DASHBOARD_FILE", "MAX_CURVE_POINTS", "REFRESH_S", "generate_unified_dashboard"]

DAGSTER_URL_ENV = "MISSION_GYM_DAGSTER_URL"  # the Dagster UI's address; runs link to their partition when set

# --- public API ---------------------------------------------------------------------------------------


def generate_unified_dashboard(
    runs_root: str | os.PathLike[str] = "runs",
    lineage_filter: str | None = None,
    output: str | os.PathLike[str] | None = None,
    dagster_url: str | None = None,
) -> Path:
    """Write the dashboard of `runs_root` atomically and return its path (default `<runs_root>/dashboard.html`;
    a lineage-filtered page defaults to its own `<runs_root>/dashboard-<lineage>.html` and prints where it is).

    `lineage_filter`: None shows every run; "active" the lineage tree of the most recently active run; a
    run name that run's lineage tree (a name unknown to the runs root raises MissionGymError naming near
    matches). `dagster_url` (default: the MISSION_GYM_DAGSTER_URL environment variable) adds a link to
    each run's Dagster partition. Safe to call often from a training loop: see the module docstring for
    its cost.
    """
    root = Path(runs_root)
    target = Path(output) if output is not None else dashboard_file(root, lineage_filter)
    links = Links(target.parent, root, _dagster_url(dagster_url))
    with LOCK, gc_paused():  # tens of objects per run, kept in the caches or freed by refcount: see gc_paused
        cache = root_cache(root)
        records, problems = scan(root, cache)
        selected, title = select(records, problems, lineage_filter, root)
        rows = rows_in_order(root, selected, cache, active_run(records))
        cache.prune(root, frozenset([r.run_name for r in records] + [name for name, _ in problems]))
        by_name = {r.run_name: r for r in records}
        changes = _changes(root, rows, by_name, cache)
        searches, search_problems = _searches(root, cache, by_name, changes, rows, lineage_filter is None)
        # Rendering fills the curves' SVG cache, so it stays under the lock too.
        shown_problems = problems if lineage_filter is None else []
        view = View(title, rows, shown_problems, utc_now(), changes, links, cache, searches, search_problems)
        page = render_page(view)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, page)
    if lineage_filter is not None and output is None:
        # The guide's one-line Python snippet has no other way to learn where its page went.
        print(f"Dashboard written: {target.resolve().as_uri()}")
    return target


def _changes(root: Path, rows: list[Row], records: dict[str, RunRecord], cache: RootCache) -> dict[str, list[Change]]:
    """What each branch changed against its parent run, for runs whose parent's record is readable."""
    changes = {}
    for row in rows:
        parent = records.get(row.record.parent_run or "")
        if parent is not None:
            changes[row.record.run_name] = cache.memo(
                "changes", row.record.run_name, (row.record, parent), lambda: run_changes(root, row.record, parent, cache)
            )
    return changes


def _searches(root: Path, cache: RootCache, records: dict[str, RunRecord], changes: dict[str, list[Change]],
              rows: list[Row], every_run: bool) -> tuple[list[SearchTree], list[tuple[str, str]]]:  # fmt: skip
    """The searches to show, newest first, and search folders without a valid record. A lineage page shows
    the searches that started inside its lineage, and no broken folders (as for runs)."""
    found, problems = read_searches(root, cache)
    trees = [search_tree(search, records, changes) for search in found]
    if every_run:
        return trees, problems
    shown = {row.record.run_name for row in rows}
    return [tree for tree in trees if tree.root in shown], []


def _dagster_url(given: str | None) -> str | None:
    """The Dagster UI address without a trailing slash; an address that is not http(s) is an error."""
    source = "dagster_url" if given is not None else DAGSTER_URL_ENV
    url = given if given is not None else os.environ.get(DAGSTER_URL_ENV) or None
    if url is None:
        return None
    if not url.startswith(("http://", "https://")) or any(c in url for c in "\"'<> "):
        raise MissionGymError(
            f"{source}={url!r} is not a Dagster UI address: give one like http://127.0.0.1:3000 "
            f"(or unset {DAGSTER_URL_ENV})"
        )
    return url.rstrip("/")
