"""Lineage on generated forests, and scanning the runs folder (broken folders, symlinks)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from runs_factory import fake_record, make_broken_run, make_run

from mission_gym.errors import RunNameError
from mission_gym.runs.lineage import (
    active_run,
    children,
    last_activity,
    lineage_forest,
    lineage_members,
    list_runs,
    scan_runs,
    walk_forest,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def generate_forest(seed: int, runs: int = 80):
    """Random trees with siblings and long chains; returns records, each run's root and depth by construction."""
    rng = random.Random(seed)
    records, root_of, depth_of = [], {}, {}
    for i in range(runs):
        created = T0 + dt.timedelta(minutes=i)
        heartbeat = created + dt.timedelta(minutes=rng.randint(0, 600))
        name = f"run-{i}"
        if i < 4 or rng.random() < 0.08:
            parent = None
        elif rng.random() < 0.4:
            parent = records[-1].run_name  # extends the newest run: deep chains
        else:
            parent = rng.choice(records).run_name  # any earlier run: siblings
        root_of[name] = root_of[parent] if parent else name
        depth_of[name] = depth_of[parent] + 1 if parent else 0
        records.append(fake_record(name, parent, root_of[name], created, heartbeat))
    rng.shuffle(records)  # the folder listing order must not matter
    return records, root_of, depth_of


@pytest.mark.parametrize("seed", range(6))
def test_lineage_members_on_generated_forests(seed):
    records, root_of, _ = generate_forest(seed)
    for record in records:
        expected = {name for name, root in root_of.items() if root == root_of[record.run_name]}
        assert lineage_members(records, record.run_name) == expected


@pytest.mark.parametrize("seed", range(6))
def test_forest_structure_on_generated_forests(seed):
    records, root_of, depth_of = generate_forest(seed)
    by_name = {r.run_name: r for r in records}
    forest = lineage_forest(records)
    nodes = list(walk_forest(forest))
    assert sorted(n.name for n in nodes) == sorted(by_name)  # every run exactly once
    assert {n.name for n in forest} == set(root_of.values())
    for node in nodes:
        assert node.depth == depth_of[node.name]
        assert {c.name for c in node.children} == {r.run_name for r in children(records, node.name)}
        assert [(c.activity, c.name) for c in node.children] == sorted(
            ((c.activity, c.name) for c in node.children), reverse=True)  # the one sibling order: newest first
        assert all(c.tree_parent == node.name for c in node.children)
        subtree = [by_name[n] for n in by_name if _is_descendant(by_name, n, node.name)]
        assert node.activity == max(last_activity(r) for r in subtree)
    activities = [root.activity for root in forest]
    assert activities == sorted(activities, reverse=True)
    newest = max(records, key=last_activity)
    assert active_run(records) == newest and forest[0].name == root_of[newest.run_name]


def _is_descendant(by_name, name, ancestor):
    while name is not None:
        if name == ancestor:
            return True
        name = by_name[name].parent_run
    return False


def test_walk_order_is_parent_before_children():
    records = [
        fake_record("root", created_at=T0),
        fake_record("a", "root", created_at=T0 + dt.timedelta(hours=1)),
        fake_record("b", "root", created_at=T0 + dt.timedelta(hours=2)),
        fake_record("a1", "a", "root", created_at=T0 + dt.timedelta(hours=3)),
    ]
    assert [(n.name, n.depth) for n in walk_forest(lineage_forest(records))] == [
        ("root", 0), ("a", 1), ("a1", 2), ("b", 1),
    ]  # fmt: skip


def test_siblings_come_newest_activity_first_so_the_active_run_is_on_the_first_branch():
    records = [
        fake_record("root", created_at=T0),
        fake_record("old", "root", created_at=T0 + dt.timedelta(hours=1)),
        fake_record("new", "root", created_at=T0 + dt.timedelta(hours=2)),
        fake_record("old-kid", "old", "root", created_at=T0 + dt.timedelta(hours=3)),  # trains now
    ]
    assert [n.name for n in walk_forest(lineage_forest(records))] == ["root", "old", "old-kid", "new"]
    records[3] = fake_record("old-kid", "old", "root", created_at=T0 + dt.timedelta(minutes=90))
    assert [n.name for n in walk_forest(lineage_forest(records))] == ["root", "new", "old", "old-kid"]


def test_siblings_stay_together_when_their_parent_is_deleted():
    records = [
        fake_record("root", created_at=T0),
        fake_record("left", "gone", "root", created_at=T0 + dt.timedelta(hours=1)),
        fake_record("right", "gone", "root", created_at=T0 + dt.timedelta(hours=2)),
        fake_record("other", created_at=T0 + dt.timedelta(hours=3)),
    ]
    assert lineage_members(records, "left") == {"root", "left", "right"}
    forest = lineage_forest(records)
    assert [n.name for n in forest] == ["other", "root"]
    assert [c.name for c in forest[1].children] == ["right", "left"]  # hung under their root ancestor
    assert [c.tree_parent for c in forest[1].children] == ["root", "root"]


def test_orphans_without_root_become_roots_and_cycles_appear_once():
    records = [
        fake_record("orphan", "deleted-parent", "deleted-root"),
        fake_record("x", "y", "x"),
        fake_record("y", "x", "x"),
    ]
    names = [n.name for n in walk_forest(lineage_forest(records))]
    assert sorted(names) == ["orphan", "x", "y"]
    assert lineage_members(records, "x") == {"x", "y"}


def test_deep_chain_does_not_hit_recursion_limit():
    records = [fake_record("r0", created_at=T0)]
    for i in range(1, 3000):
        records.append(fake_record(f"r{i}", f"r{i - 1}", "r0", created_at=T0 + dt.timedelta(seconds=i)))
    forest = lineage_forest(records)
    assert len(forest) == 1 and max(n.depth for n in walk_forest(forest)) == 2999


def test_unknown_run_suggests_names():
    with pytest.raises(RunNameError, match="did you mean: zen-comet-20260122-012517"):
        lineage_members([fake_record("zen-comet-20260122-012517")], "zen-comet")


def test_scan_sees_every_run_folder_and_never_follows_symlinks(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "good", steps=[1000])
    make_broken_run(runs, "no-record")
    make_broken_run(runs, "bad-json", run_json="{not json")
    outside = tmp_path / "outside"
    make_run(outside, "elsewhere")
    (runs / "linked").symlink_to(outside / "elsewhere", target_is_directory=True)
    (runs / "dashboard.html").write_text("<html>")
    (runs / ".run.json.tmp").mkdir()
    folders = {f.name: f for f in scan_runs(runs)}
    assert sorted(folders) == ["bad-json", "good", "linked", "no-record"]
    assert folders["good"].record is not None and folders["good"].problem is None
    assert "missing" in folders["no-record"].problem and "JSON" in folders["bad-json"].problem
    assert folders["linked"].is_symlink and folders["linked"].record is None
    assert "not followed" in folders["linked"].problem
    assert [r.run_name for r in list_runs(runs)] == ["good"]
    assert list_runs(tmp_path / "missing") == []


def test_recordless_folder_is_live_only_while_fresh(tmp_path):
    fresh = make_broken_run(tmp_path, "starting", age_s=5)
    stale = make_broken_run(tmp_path, "crashed", age_s=3600)
    folders = {f.name: f for f in scan_runs(tmp_path)}
    assert folders[fresh.name].is_live() and not folders[stale.name].is_live()
