"""The Searches section: each branch search as a tree of member-rounds under the search's parent.

A node shows the run (status and evaluated capture rate with its interval, as the lineage forest does) and
the sequential decision against its round's best with its evidence; the edge into it says how it came to be
(sampled, continues, exploit, with the search's own origin text) and what it changed against its parent.
Losers are faded, the winner starred and its lineage drawn in gold. Buttons pick the search's runs (or the
winner's lineage) for the compare chart: app.js finds them in the page data by the search's index.
Every string from a search record goes through `esc`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from typing import Any

from mission_gym.dashboard.changes import change_text
from mission_gym.dashboard.data import Row
from mission_gym.dashboard.fmt import esc, finite, fmt_age, fmt_pct, status_label
from mission_gym.dashboard.forest import capture_text, interval_svg
from mission_gym.dashboard.searches import SearchNode, SearchTree
from mission_gym.dashboard.table import Links
from mission_gym.runs.layout import SEARCH_SUMMARY_FILE, SEARCHES_DIR
from mission_gym.search import MemberRound, SearchRecord

_OPEN_SEARCHES = 3  # searches shown unfolded: the newest ones
_CHANGES_SHOWN = 4
_VERDICT_CLASSES = {"worse": "worse", "better": "better", "no difference": "even", "undecided": "undecided"}
_LEGEND = (
    '<p class="meta search-legend">Each tree starts at the run the search branched from. An edge says how a '
    "member-round came to be (<b>sampled</b> from the space, <b>continues</b> its member, <b>exploit</b> of the "
    "round's best) and what it changed; a node, how it fared against its round's best (seeds only it / only the "
    'best captured). <span class="gold">★ winner</span> and its lineage in gold; faded: found worse and '
    "replaced.</p>"
)


def searches_section(trees: Sequence[SearchTree], problems: Sequence[tuple[str, str]], rows: Mapping[str, Row],
                     now: dt.datetime, links: Links) -> str:  # fmt: skip
    """The panel: one <details> per search (newest first, the first few open), then folders skipped and why."""
    parts = [_LEGEND] + [_search(i, tree, rows, now, links) for i, tree in enumerate(trees)]
    if problems:
        items = "".join(f"<li><b>{esc(folder)}</b>: {esc(problem)}</li>" for folder, problem in problems)
        parts.append(f'<div class="search-problems">{len(problems)} search folder(s) not shown:'
                     f'<ul class="problems">{items}</ul></div>')  # fmt: skip
    return '<div class="panel searches-panel">' + "".join(parts) + "</div>"


def _search(index: int, tree: SearchTree, rows: Mapping[str, Row], now: dt.datetime, links: Links) -> str:
    record = tree.record
    opened = " open" if index < _OPEN_SEARCHES else ""
    buttons = [f'<button class="pick-search" data-search="{index}" value="runs">compare this search</button>']
    if tree.lineage:
        leader = "winner" if record.status == "finished" else "leader"
        buttons.append(f'<button class="pick-search" data-search="{index}" value="lineage">'
                       f"compare the {leader}&#x27;s lineage</button>")  # fmt: skip
    if os.path.isfile(os.path.join(links.runs_root, SEARCHES_DIR, tree.source.folder, SEARCH_SUMMARY_FILE)):
        buttons.append(f'<a href="{links.to(SEARCHES_DIR, tree.source.folder, SEARCH_SUMMARY_FILE)}">summary</a>')
    return (
        f'<details class="search-panel" data-search="{esc(tree.source.folder)}"{opened}>'
        f"<summary>{_summary(tree, now)}</summary>"
        f'<div class="search-body"><div class="meta">{esc(_savings(record))}</div>'
        f'<div class="search-actions">{" ".join(buttons)}</div>{_tree(tree, rows, now)}</div></details>'
    )


def _summary(tree: SearchTree, now: dt.datetime) -> str:
    record = tree.record
    facts = [f"from {tree.root}", f"{len(record.rounds_decided)} of {record.settings.get('rounds', '?')} rounds "
             f"decided", f"{len(record.members)} member-rounds"]  # fmt: skip
    if record.winner is not None:
        facts.append(f"{'winner' if record.status == 'finished' else 'leading'} {record.winner}")
    facts.append(f"updated {fmt_age((now - tree.source.updated).total_seconds())}")
    return (
        f'<span class="name">{esc(record.name)}</span> <span class="badge {esc(record.status)}">'
        f'{esc(record.status)}</span> <span class="meta">{esc(" · ".join(facts))}</span>'
    )


def _savings(record: SearchRecord) -> str:
    """What the sequential tests saved against fixed-sample comparisons on every selection seed."""
    played, fixed = record.episodes_played, record.episodes_fixed
    if fixed <= 0:
        return "No member has been compared with its round's best yet."
    saved = fixed - played
    return (f"Sequential tests played {played:,} episodes per side where fixed-sample comparisons would have "
            f"played {fixed:,}: {saved:,} saved ({saved / fixed:.0%}).")  # fmt: skip


def _tree(tree: SearchTree, rows: Mapping[str, Row], now: dt.datetime) -> str:
    """Nested lists from the depth-first nodes (a node is at most one level deeper than the one before)."""
    html, depth = [], -1
    for node in tree.nodes:
        if node.depth > depth:
            html.append('<ul class="stree">' if depth < 0 else "<ul>")
        else:
            html.append("</li>" + "</ul></li>" * (depth - node.depth))
        html.append(_item(tree, node, rows.get(node.name), now))
        depth = node.depth
    html.append("</li>" + "</ul></li>" * depth + "</ul>")
    return "".join(html)


def _item(tree: SearchTree, node: SearchNode, row: Row | None, now: dt.datetime) -> str:
    """`<li>` with the edge into the node (for a member) and the node's box."""
    member, record = node.member, tree.record
    verdict, evidence, why = _verdict(record, member) if member is not None else ("", "", "")
    item_classes = ["lineage"] if node.name in tree.lineage else []
    box_classes = ["snode"] + (["loser"] if verdict == "worse" else [])
    if node.name == record.winner:
        box_classes.append("winner")
    where = "search parent" if member is None else f"round {member.round} · member {member.member}"
    head = [f'<span class="name">{esc(node.name)}</span>', f'<span class="meta">{esc(where)}</span>', _status(row, now)]
    if node.name == record.winner:
        head.append(f'<span class="pill winner">★ {"winner" if record.status == "finished" else "leading"}</span>')
    body = [_capture(row)]
    if evidence:
        body.append(f'<span class="verdict {verdict}" title="{esc(why)}">{esc(evidence)}</span>')
    return (
        f'<li class="{" ".join(item_classes)}" data-run="{esc(node.name)}">{_edge(node)}'
        f'<div class="{" ".join(box_classes)}"><div class="snode-head">{" ".join(head)}</div>'
        f'<div class="snode-body">{" ".join(body)}</div></div>'
    )


def _edge(node: SearchNode) -> str:
    """How the member came from its parent (the search's origin text on hover), which run an exploit
    replaced, and what it changed against its parent."""
    if node.member is None or node.kind is None:
        return ""
    changes = list(node.changes)
    parts = [f'<span class="kind {node.kind}" title="{esc(node.member.origin)}">{node.kind}</span>']
    if node.replaces is not None:
        parts.append(f'<span class="origin">replaces {esc(node.replaces)} ·</span>')
    if changes:
        parts.append(f'<span class="changes" title="{esc(change_text(changes))}">'
                     f"Δ {esc(change_text(changes, _CHANGES_SHOWN))}</span>")  # fmt: skip
    else:
        parts.append('<span class="origin">no change</span>')
    return f'<div class="sedge">{" ".join(parts)}</div>'


def _status(row: Row | None, now: dt.datetime) -> str:
    if row is None:
        return '<span class="muted">run folder not found (pruned?)</span>'
    label, css = status_label(row.record, now)
    return f'<span class="badge {css}">{esc(label)}</span>'


def _capture(row: Row | None) -> str:
    """`capture 42.0% [35.0–49.0%]` with its interval bar, as on a lineage node."""
    evaluation = row.evaluation if row is not None else None
    if evaluation is None or evaluation.capture_rate is None:
        return '<span class="muted">not evaluated</span>' if row is not None else ""
    lo, hi = evaluation.ci
    bar = interval_svg(evaluation.capture_rate, lo, hi, 1, 1, 88)
    return (f'<span class="capture">{esc(capture_text(evaluation))}</span>'
            f'<svg class="interval" width="90" height="10" aria-hidden="true">{bar}</svg>')  # fmt: skip


def _verdict(record: SearchRecord, member: MemberRound) -> tuple[str, str, str]:
    """(css class, `worse after 40 episodes: member 3 / best 12`, the evidence in full) of the member's
    sequential test against its round's best, or what the round says about it when it had none."""
    decision: dict[str, Any] = member.decision or {}
    decided = next((r for r in record.rounds_decided if r.get("round") == member.round), None)
    wins = " · wins the round" if decided is not None and decided.get("winner") == member.run_name else ""
    verdict = decision.get("decision")
    if isinstance(verdict, str):
        ci = decision.get("capture_rate_difference_ci")
        lo, hi = ci if isinstance(ci, list) and len(ci) == 2 else (None, None)
        evidence = (f"{verdict} after {_count(decision.get('episodes'))} episodes: member "
                    f"{_count(decision.get('only_ours'))} / best {_count(decision.get('only_theirs'))}")  # fmt: skip
        why = (f"against the round's best {decision.get('against', '?')}: seeds only this member captured / only "
               f"the best did; capture-rate difference {fmt_pct(decision.get('capture_rate_difference'))} "
               f"[{fmt_pct(lo)}, {fmt_pct(hi)}]; {decision.get('hypotheses', '')}")  # fmt: skip
        return _VERDICT_CLASSES.get(verdict, "other"), evidence + wins, why
    if decided is None:
        return "pending", "awaiting the round's decision", ""
    if decided.get("best") == member.run_name:
        why = "captured most on the first group of selection seeds; every other member was tested against it"
        return "best", f"best of round {member.round}" + wins, why
    return "", "", ""


def _count(value: object) -> str:
    number = finite(value)
    return "?" if number is None else f"{number:.0f}"
