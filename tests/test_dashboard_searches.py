"""The dashboard's Searches section: each branch search as a tree with its decisions, the winner and its lineage,
the compare buttons' data, escaping, broken records as notes; and the same in a real headless Chromium."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import WatchedPage, chromium, watched_page  # noqa: F401  (pytest fixtures)
from dashboard_runs import XSS_BRANCH, XSS_NOTES, make_lineage
from dashboard_searches import PARENT, make_parent, make_search
from test_dashboard import data_block, opened, render, without_inline_code  # noqa: F401  (opened: a fixture)

from mission_gym.dashboard import generate_unified_dashboard
from mission_gym.dashboard.changes import change_text, hyperparameter_changes
from mission_gym.dashboard.searches import SearchFile, search_tree
from mission_gym.runs.layout import SEARCH_RECORD_FILE, SEARCHES_DIR
from mission_gym.search import MemberRound, SearchRecord

XSS_FOLDER = '"><svg onload=alert(4)>'
SCREENSHOT = Path("/tmp/dashboard-searches.png")


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SearchRecord, SearchRecord]:
    """A runs root with a finished three-round search and a newer one stopped during its second round."""
    runs = tmp_path_factory.mktemp("searched") / "runs"
    make_parent(runs)
    finished = make_search(runs, "lr-search")
    running = make_search(runs, "newer-search", rounds=2, stop_after=6)
    return runs, finished, running


class _Tree(HTMLParser):
    """(run, run of the enclosing node) per tree node, in document order, and each node's text and classes."""

    def __init__(self) -> None:
        super().__init__()
        self.edges: list[tuple[str, str | None]] = []
        self.text: dict[str, str] = {}
        self.classes: dict[str, str] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "li":
            run = values["data-run"] or ""
            self.edges.append((run, self._open[-1] if self._open else None))
            self._open.append(run)
            self.text[run], self.classes[run] = "", values.get("class") or ""
        elif tag == "div" and "snode" in (values.get("class") or "").split():
            self.classes[self._open[-1]] += " " + (values.get("class") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "li":
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for run in self._open[-1:]:
            self.text[run] += data


def search_panel(page: str, folder: str) -> str:
    match = re.search(rf'<details class="search-panel" data-search="{re.escape(folder)}".*?</details>', page, re.S)
    assert match, f"no search panel {folder}"
    return match.group(0)


def tree_of(panel: str) -> _Tree:
    parser = _Tree()
    parser.feed(re.search(r'<ul class="stree">.*</ul>', panel, re.S).group(0))
    return parser


def evidence(member: MemberRound) -> str:
    d = member.decision
    return f"{d['decision']} after {d['episodes']} episodes: member {d['only_ours']} / best {d['only_theirs']}"


def test_each_search_is_a_tree_of_its_member_rounds(searched) -> None:
    runs, record, _ = searched
    page = render(runs)
    assert page.index("<h2>Searches</h2>") < page.index("<h2>Runs</h2>")
    tree = tree_of(search_panel(page, "lr-search"))
    members = {m.run_name: m for m in record.members}
    assert tree.edges[0] == (PARENT, None)
    assert dict(tree.edges[1:]) == {name: m.parent_run for name, m in members.items()}  # each under its parent
    for name, member in members.items():
        text = tree.text[name]
        assert f"round {member.round} · member {member.member}" in text and "capture " in text, name
        if member.round == 0:
            assert "sampled" in text
        elif member.origin.startswith("exploit"):
            replaced = record.trained(member.round - 1, member.member).run_name
            assert f"exploit replaces {replaced} ·" in text, text
            assert change_text(hyperparameter_changes(members[member.parent_run].hyperparameters,
                                                      member.hyperparameters), 4) in text  # fmt: skip
        else:
            assert "continues no change" in text
        if member.decision:
            assert evidence(member) in text
    losers = {m.run_name for m in record.members if m.decision and m.decision["decision"] == "worse"}
    assert losers, "the fixture search should replace a member"
    assert {run for run, classes in tree.classes.items() if "loser" in classes.split()} == losers


def test_the_winner_and_its_lineage_are_marked_and_the_savings_shown(searched) -> None:
    runs, record, running = searched
    page = render(runs)
    panel = search_panel(page, "lr-search")
    tree = tree_of(panel)
    assert [run for run, classes in tree.classes.items() if "winner" in classes.split()] == [record.winner]
    assert "★ winner" in tree.text[record.winner]
    assert [run for run, classes in tree.classes.items() if "lineage" in classes.split()] == record.winner_lineage
    saved = record.episodes_fixed - record.episodes_played
    assert f"played {record.episodes_played:,} episodes per side" in panel and f"{saved:,} saved" in panel
    assert '<span class="badge finished">finished</span>' in panel and f"winner {record.winner}" in panel
    assert 'href="searches/lr-search/summary.md">summary</a>' in panel
    newer = search_panel(page, "newer-search")  # still running: its leader so far, no summary yet
    assert '<span class="badge running">running</span>' in newer and "★ leading" in newer
    assert "compare the leader&#x27;s lineage" in newer and "compare the winner&#x27;s lineage" in panel
    assert "awaiting the round's decision" in "".join(tree_of(newer).text.values()) and "summary</a>" not in newer
    assert page.index('data-search="newer-search"') < page.index('data-search="lr-search"')  # newest first


def test_the_page_data_lists_each_searchs_runs_and_winner_lineage(searched) -> None:
    runs, record, running = searched
    searches = data_block(render(runs))["searches"]
    by_round = [m.run_name for m in sorted(record.members, key=lambda m: (m.round, m.member))]
    assert searches[1] == {"name": "lr-search", "runs": [PARENT, *by_round], "lineage": record.winner_lineage}
    assert searches[0]["name"] == "newer-search" and len(searches[0]["runs"]) == 7
    assert searches[0]["lineage"] == [PARENT, running.winner]  # the leader's, before the search sets one


def test_searches_beyond_the_first_few_are_folded(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_parent(runs)
    record = make_search(runs, "s0", rounds=1)
    start = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    for i in range(1, 5):
        copy = record.model_copy(update={"name": f"s{i}", "created_at": (start + dt.timedelta(days=i)).isoformat()})
        (runs / SEARCHES_DIR / f"s{i}").mkdir()
        (runs / SEARCHES_DIR / f"s{i}" / SEARCH_RECORD_FILE).write_text(copy.model_dump_json())
    page = render(runs)
    shown = re.findall(r'<details class="search-panel" data-search="(s\d)"( open)?>', page)
    assert shown == [("s0", " open"), ("s4", " open"), ("s3", " open"), ("s2", ""), ("s1", "")]  # s0 started today


def write_hostile_search(runs: Path) -> None:
    """A hand-written record: hostile folder, search name, member run name (no folder) and texts."""
    member = MemberRound(round=0, member=0, parent_run=PARENT, hyperparameters={"learning_rate": 0.001},
                         origin=XSS_NOTES, run_name=XSS_BRANCH, step=6000,
                         decision={"decision": "worse<img src=x onerror=alert(3)>", "against": XSS_NOTES,
                                   "episodes": 40, "only_ours": 3, "only_theirs": 12})  # fmt: skip
    record = SearchRecord(name=XSS_NOTES, created_at=XSS_BRANCH, settings={"parent": PARENT, "rounds": XSS_NOTES},
                          space={}, status="finished", members=[member], winner=XSS_BRANCH,
                          rounds_decided=[{"round": 0, "best": XSS_NOTES, "winner": XSS_BRANCH}])  # fmt: skip
    (runs / SEARCHES_DIR / XSS_FOLDER).mkdir(parents=True)
    (runs / SEARCHES_DIR / XSS_FOLDER / SEARCH_RECORD_FILE).write_text(record.model_dump_json())


def test_hostile_search_and_run_names_are_escaped(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_parent(runs)
    write_hostile_search(runs)
    page = render(runs)
    inert = without_inline_code(page)
    for raw in ("<script>window.__pwned", "<img src=x", "<svg onload"):
        assert raw not in inert, raw
    panel = re.search(r'<div class="panel searches-panel">.*?</div></details>', page, re.S).group(0)
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in panel  # the name, shown as text
    assert "worse&lt;img src=x onerror=alert(3)&gt; after 40 episodes: member 3 / best 12" in panel
    assert "run folder not found" in panel and "learning_rate 0.0003 → 0.001" in panel  # from the record
    assert data_block(page)["searches"] == [{"name": XSS_NOTES, "runs": [PARENT, XSS_BRANCH],
                                             "lineage": [PARENT, XSS_BRANCH]}]  # fmt: skip


def test_broken_search_records_are_skipped_with_a_note(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_parent(runs)
    make_lineage(runs)
    make_search(runs, "good", rounds=1)
    for folder, text in (("garbled", "{not json"), ("invalid", '{"name": 1}'), ("starting", None)):
        (runs / SEARCHES_DIR / folder).mkdir()
        if text is not None:
            (runs / SEARCHES_DIR / folder / SEARCH_RECORD_FILE).write_text(text)
    page = render(runs)
    notes = re.search(r'<div class="search-problems">.*?</div>', page, re.S).group(0)
    assert "3 search folder(s) not shown" in notes
    assert "<b>searches/garbled</b>: search.json is not valid JSON: Invalid JSON: key must be a string" in notes
    assert "<b>searches/invalid</b>: search.json is not a valid search record: name = 1: " in notes
    assert "<b>searches/starting</b>: search.json missing" in notes
    assert 'data-search="good"' in page and "without a valid run record" not in page  # searches/ is no run
    lineage_page = render(runs, lineage_filter=PARENT)
    assert 'data-search="good"' in lineage_page and '<div class="search-problems">' not in lineage_page
    assert "<h2>Searches</h2>" not in render(runs, lineage_filter="active")  # another lineage: none of its searches


def test_a_parent_cycle_in_a_hand_edited_record_draws_every_member_once() -> None:
    def member(name: str, parent: str, round_: int) -> MemberRound:
        return MemberRound(round=round_, member=0, parent_run=parent, hyperparameters={}, origin="", run_name=name,
                           step=1)  # fmt: skip

    record = SearchRecord(name="loop", created_at="", settings={"parent": "p"}, space={}, winner="b",
                          members=[member("a", "b", 1), member("b", "a", 2), member("c", "p", 0)])  # fmt: skip
    tree = search_tree(SearchFile("loop", record, dt.datetime.now(dt.timezone.utc)), {}, {})
    assert [(n.name, n.depth) for n in tree.nodes] == [("p", 0), ("c", 1), ("a", 1), ("b", 2)]
    assert tree.lineage == ()  # no path from the winner to the search's parent


def test_unchanged_search_records_are_not_read_again(tmp_path: Path, opened: list[Path]) -> None:  # noqa: F811
    runs = tmp_path / "runs"
    make_parent(runs)
    make_search(runs, "lr-search", rounds=1)
    generate_unified_dashboard(runs)
    record = runs / SEARCHES_DIR / "lr-search" / SEARCH_RECORD_FILE
    opened.clear()
    generate_unified_dashboard(runs)
    assert record not in opened
    record.write_text(json.dumps({**json.loads(record.read_text()), "status": "running"}))
    opened.clear()
    page = generate_unified_dashboard(runs).read_text(encoding="utf-8")
    assert record in opened and '<span class="badge running">running</span>' in search_panel(page, "lr-search")


# --- in Chromium ---------------------------------------------------------------------------------------


def legend(page) -> set[str]:
    return set(page.locator(".u-legend .u-series .u-label").all_inner_texts()) - {"step"}


@pytest.mark.slow
def test_search_tree_in_the_browser_picks_runs_for_the_chart(searched, tmp_path: Path,
                                                             watched_page: WatchedPage) -> None:  # noqa: F811
    record = searched[1]
    runs = Path(shutil.copytree(searched[0], tmp_path / "runs"))  # the hostile search only in this copy
    write_hostile_search(runs)
    url = generate_unified_dashboard(runs).resolve().as_uri()
    page = watched_page.page
    page.goto(url, wait_until="load")
    page.locator("#live").uncheck()  # a reload mid-test (every 5 s) would detach what the test holds
    panel = page.locator('details.search-panel[data-search="lr-search"]')
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(SCREENSHOT))  # for a human look at the layout
    assert panel.locator("ul.stree li").count() == 1 + len(record.members)
    winner = panel.locator(".snode.winner")
    assert winner.is_visible() and winner.locator(".name").inner_text() == record.winner
    assert "★ winner" in winner.inner_text()
    worse = sum(1 for m in record.members if m.decision and m.decision["decision"] == "worse")
    assert panel.locator(".snode.loser").count() == worse
    opacity = panel.locator(".snode.loser").first.evaluate("e => getComputedStyle(e).opacity")
    assert float(opacity) < 1  # losers are visibly faded

    panel.locator('button.pick-search[value="runs"]').click()
    everyone = {PARENT, *(m.run_name for m in record.members)}
    assert legend(page) == everyone
    checked = page.locator("input.pick:checked").evaluate_all("boxes => boxes.map(b => b.value)")
    assert set(checked) == everyone
    assert page.locator("#chart").bounding_box()["y"] < 900  # the chart was scrolled into view
    panel.locator('button.pick-search[value="lineage"]').click()
    assert legend(page) == set(record.winner_lineage)

    assert page.evaluate("typeof window.__pwned") == "undefined"  # the hostile search is inert
    assert watched_page.dialogs == [] and watched_page.errors == [] and watched_page.console == []
    assert watched_page.requests == [url]
