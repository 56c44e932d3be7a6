"""The dashboard in a real headless Chromium, opened from file:// like users do."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import WatchedPage, chromium, watched_page  # noqa: F401  (pytest fixtures)
from dashboard_runs import CHILD_RUN, GRANDCHILD_RUN, OTHER_RUN, ROOT_RUN, XSS_NOTES, make_lineage
from runs_factory import make_run

from mission_gym.dashboard import REFRESH_S, generate_unified_dashboard

pytestmark = pytest.mark.slow  # end to end: the dashboard in a real Chromium

SCREENSHOT = Path("/tmp/dashboard.png")


def open_dashboard(watched: WatchedPage, runs_root: Path) -> str:
    url = generate_unified_dashboard(runs_root).resolve().as_uri()
    watched.page.goto(url, wait_until="load")
    return url


def test_dashboard_renders_offline_and_inert(tmp_path: Path, watched_page: WatchedPage) -> None:  # noqa: F811
    make_lineage(tmp_path / "runs")
    url = open_dashboard(watched_page, tmp_path / "runs")
    page = watched_page.page
    page.screenshot(path=str(SCREENSHOT), full_page=True)  # for a human look at the layout

    for name in (ROOT_RUN, CHILD_RUN, GRANDCHILD_RUN, OTHER_RUN):
        assert page.locator(f'tr[data-run="{name}"] .name').is_visible(), name

    # Lineage: each generation further right, with the arrow only on children.
    x = {
        n: page.locator(f'tr[data-run="{n}"] .name').bounding_box()["x"] for n in (ROOT_RUN, CHILD_RUN, GRANDCHILD_RUN)
    }
    assert x[ROOT_RUN] + 10 < x[CHILD_RUN] < x[GRANDCHILD_RUN] - 10
    assert page.locator(f'tr[data-run="{CHILD_RUN}"] .arrow').inner_text() == "↳"
    assert page.locator(f'tr[data-run="{ROOT_RUN}"] .arrow').count() == 0

    # Charts are drawn (inline SVG with a real size), the forest picture too.
    for selector in (f'tr[data-run="{ROOT_RUN}"] svg.chart', "svg.forest"):
        chart = page.locator(selector)
        assert chart.is_visible(), selector
        box = chart.bounding_box()
        assert box["width"] > 100 and box["height"] > 50, (selector, box)
    assert page.locator(f'tr[data-run="{ROOT_RUN}"] svg.chart path').count() == 2

    # The hostile notes are shown as text and nothing in them ran.
    assert page.locator(f'tr[data-run="{CHILD_RUN}"] .notes').inner_text() == XSS_NOTES
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator(f'tr[data-run="{CHILD_RUN}"] img, tr[data-run="{CHILD_RUN}"] script').count() == 0
    assert watched_page.dialogs == [] and watched_page.errors == []
    assert watched_page.console == []  # not even a blocked attempt (CSP violations are logged there)

    # Offline: the page fetched nothing but itself.
    assert watched_page.requests == [url]


def test_dashboard_reloads_itself_and_shows_new_runs(tmp_path: Path, watched_page: WatchedPage) -> None:  # noqa: F811
    runs = tmp_path / "runs"
    make_run(runs, "first-run", status="running", heartbeat_age_s=1)
    url = open_dashboard(watched_page, runs)
    make_run(runs, "second-run", status="running", heartbeat_age_s=0)
    generate_unified_dashboard(runs)
    row = watched_page.page.locator('tr[data-run="second-run"]')
    row.wait_for(state="visible", timeout=(REFRESH_S + 5) * 1000)
    assert set(watched_page.requests) == {url}
