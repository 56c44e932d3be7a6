"""Cleanup and retention plans: every mode, the live and parent protections, applying safely."""

from __future__ import annotations

import pytest
from runs_factory import backdate, make_broken_run, make_run, update_record

from mission_gym.errors import ConfigError, MissionGymError, RunNameError
from mission_gym.runs.record import utc_now
from mission_gym.runs.retention import (
    CleanupPlan,
    RetentionPolicy,
    apply_cleanup,
    folder_size,
    plan_cleanup,
    plan_retention,
)


def _names(plan: CleanupPlan) -> set[str]:
    return {item.run_name for item in plan.delete}


@pytest.fixture()
def runs(tmp_path):
    """Two lineages, a failed run, a short finished run and a folder without run.json.

    old-root ── old-child            (unrelated lineage, finished)
    main-root ─┬ main-a ── main-a1   (active: main-a1 has the newest heartbeat)
               └ main-b              (sibling branch)
    """
    root = tmp_path / "runs"
    make_run(root, "old-root", steps=[1000, 2000], heartbeat_age_s=90_000)
    make_run(root, "old-child", parent="old-root", steps=[3000], heartbeat_age_s=80_000)
    make_run(root, "main-root", steps=[1000, 2000], heartbeat_age_s=50_000)
    make_run(root, "main-a", parent="main-root", steps=[3000], heartbeat_age_s=40_000)
    make_run(root, "main-b", parent="main-root", parent_step=1000, steps=[2500], heartbeat_age_s=30_000)
    make_run(root, "main-a1", parent="main-a", steps=[4000], heartbeat_age_s=600)
    make_run(root, "crashed", status="failed", heartbeat_age_s=70_000)
    make_run(root, "ctrl-c", status="interrupted", heartbeat_age_s=70_000)
    make_run(root, "died", status="running", heartbeat_age_s=20_000)
    make_run(root, "short-finished", status="finished", heartbeat_age_s=60_000)
    make_broken_run(root, "no-record", age_s=65_000)
    return root


def test_mode_is_required_and_exclusive(runs):
    with pytest.raises(MissionGymError, match="choose exactly one cleanup mode: --keep-active-lineage"):
        plan_cleanup(runs)
    with pytest.raises(MissionGymError, match="exactly one"):
        plan_cleanup(runs, keep_active_lineage=True, delete_failed=True)


def test_keep_active_lineage_keeps_siblings_and_sees_recordless_folders(runs):
    plan = plan_cleanup(runs, keep_active_lineage=True)
    assert plan.anchor == "main-a1" and plan.mode == "keep-active-lineage"
    assert set(plan.keep) == {"main-root", "main-a", "main-b", "main-a1"}
    assert _names(plan) == {"old-root", "old-child", "crashed", "ctrl-c", "died", "short-finished", "no-record"}
    assert all(item.path == runs / item.run_name for item in plan.delete)
    assert all(item.size_bytes > 1000 for item in plan.delete if item.run_name != "no-record")
    assert {item.reason for item in plan.delete} == {"not in the lineage of main-a1"}


def test_planning_deletes_nothing(runs):
    before = sorted(p.relative_to(runs) for p in runs.rglob("*"))
    plan_cleanup(runs, keep_active_lineage=True)
    plan_cleanup(runs, delete_failed=True)
    plan_retention(runs, RetentionPolicy(max_runs=1))
    assert sorted(p.relative_to(runs) for p in runs.rglob("*")) == before


def test_keep_lineage_of_a_named_run(runs):
    plan = plan_cleanup(runs, keep_lineage="old-child")
    assert plan.anchor == "old-child" and set(plan.keep) == {"old-root", "old-child"}
    assert "main-a1" in _names(plan)


def test_keep_lineage_of_unknown_or_broken_run(runs):
    with pytest.raises(RunNameError, match="did you mean: old-child"):
        plan_cleanup(runs, keep_lineage="old-chld")
    with pytest.raises(RunNameError, match="no lineage"):
        plan_cleanup(runs, keep_lineage="no-record")


def test_delete_failed_selects_only_failed_runs_without_checkpoints(runs):
    make_run(runs, "failed-with-ckpt", status="failed", steps=[1000], heartbeat_age_s=70_000)
    make_run(runs, "starting", status="running", heartbeat_age_s=3)
    make_broken_run(runs, "being-created", age_s=2)
    plan = plan_cleanup(runs, delete_failed=True)
    assert _names(plan) == {"crashed", "ctrl-c", "died", "no-record"}
    reasons = {item.run_name: item.reason for item in plan.delete}
    assert reasons["crashed"] == "failed with no checkpoints"
    assert reasons["died"].startswith("died while running (last heartbeat 5.6 h ago)")
    assert "short-finished" in plan.keep and "failed-with-ckpt" in plan.keep and "starting" in plan.keep


def test_live_runs_are_never_deleted(runs):
    make_run(runs, "other-parent", steps=[1000], heartbeat_age_s=100_000)
    make_run(runs, "other-live", parent="other-parent", status="running", heartbeat_age_s=30)
    make_run(runs, "active-live", parent="main-a1", status="running", heartbeat_age_s=1)
    plan = plan_cleanup(runs, keep_active_lineage=True)
    assert plan.anchor == "active-live"
    assert plan.skipped_live == ["other-live"]
    assert plan.protected == ["other-parent"]  # the live run branched from it
    assert not {"other-live", "other-parent", "active-live"} & _names(plan)


def test_parent_of_a_kept_run_is_protected_in_every_mode(runs):
    # A failed run without checkpoints cannot be anyone's parent, except by a hand-made record: still honoured.
    update_record(runs / "main-b", parent_run="crashed", root_ancestor="main-root")
    plan = plan_cleanup(runs, delete_failed=True)
    assert "crashed" not in _names(plan) and plan.protected == ["crashed"]


def test_apply_deletes_planned_folders_only(runs):
    plan = plan_cleanup(runs, keep_active_lineage=True)
    deleted = apply_cleanup(plan)
    assert set(deleted) == _names(plan)
    assert sorted(p.name for p in runs.iterdir()) == ["main-a", "main-a1", "main-b", "main-root"]


def test_apply_rechecks_liveness_before_each_delete(runs):
    plan = plan_cleanup(runs, keep_active_lineage=True)
    update_record(runs / "old-child", status="running", heartbeat_at=utc_now())  # resumed while the user read
    deleted = apply_cleanup(plan)
    assert "old-child" not in deleted and (runs / "old-child").is_dir()
    assert "old-root" not in deleted  # old-child still needs its parent checkpoint
    assert "crashed" in deleted


def test_apply_skips_a_run_branched_from_after_planning(runs):
    plan = plan_cleanup(runs, keep_active_lineage=True)
    make_run(runs, "late-branch", parent="old-child", status="running", heartbeat_age_s=0)
    deleted = apply_cleanup(plan)
    assert "old-child" not in deleted and "old-root" not in deleted
    assert (runs / "old-child" / "checkpoints" / "ppo_mission_3000_steps.zip").is_file()


def test_symlinked_run_folder_is_unlinked_never_followed(tmp_path, runs):
    target = make_run(tmp_path / "precious", "elsewhere", steps=[1000], heartbeat_age_s=99_000)
    (runs / "linked").symlink_to(target, target_is_directory=True)
    plan = plan_cleanup(runs, keep_active_lineage=True)
    linked = next(item for item in plan.delete if item.run_name == "linked")
    assert linked.size_bytes < 1000  # the link itself, not the target's files
    assert "linked" in apply_cleanup(plan)
    assert not (runs / "linked").exists()
    assert (target / "checkpoints" / "ppo_mission_1000_steps.zip").is_file() and (target / "run.json").is_file()


def test_symlink_inside_a_deleted_run_is_not_followed(tmp_path, runs):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("do not delete")
    (runs / "old-child" / "checkpoints" / "escape").symlink_to(outside, target_is_directory=True)
    assert "old-child" in apply_cleanup(plan_cleanup(runs, keep_active_lineage=True))
    assert (outside / "keep.txt").read_text() == "do not delete"


def test_apply_refuses_paths_outside_the_runs_root(runs, tmp_path):
    plan = plan_cleanup(runs, keep_active_lineage=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    plan.delete[0].path = victim
    with pytest.raises(MissionGymError, match="refusing to delete"):
        apply_cleanup(plan)
    assert victim.is_dir()


def test_missing_runs_root_is_an_error(tmp_path):
    with pytest.raises(MissionGymError, match="does not exist"):
        plan_cleanup(tmp_path / "nope", delete_failed=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissionGymError, match="no active lineage"):
        plan_cleanup(tmp_path / "empty", keep_active_lineage=True)
    assert plan_cleanup(tmp_path / "empty", delete_failed=True).delete == []


def test_retention_max_runs_deletes_oldest_unprotected(runs):
    plan = plan_retention(runs, RetentionPolicy(max_runs=6, keep_active_lineage=True))
    assert plan.mode == "retention"
    # 11 runs, 4 pinned by the active lineage; old-root is needed by old-child while that stays.
    assert _names(plan) == {"old-child", "crashed", "ctrl-c", "short-finished", "no-record"}
    assert len(plan.keep) == 6 and "over max_runs=6" in plan.delete[0].reason


def test_retention_failed_age_and_disk_limit(runs):
    aged = plan_retention(runs, RetentionPolicy(failed_run_max_age_hours=10, keep_active_lineage=False))
    assert _names(aged) == {"crashed", "ctrl-c", "no-record"}  # "died" stopped only 5.6 h ago
    assert all("older than 10 h" in item.reason for item in aged.delete)
    total = sum(folder_size(p) for p in runs.iterdir())
    limit = RetentionPolicy(max_disk_gb=(total - 1) / 1e9, keep_active_lineage=True)
    by_disk = plan_retention(runs, limit)
    assert _names(by_disk) == {"old-child"}  # the oldest run nothing depends on


def test_retention_never_touches_live_runs(runs):
    make_run(runs, "live", status="running", heartbeat_age_s=1, created_at=utc_now().replace(year=2020))
    plan = plan_retention(runs, RetentionPolicy(max_runs=1, keep_active_lineage=False))
    assert plan.keep == ["live"]  # everything else went, parents after their children


def test_retention_policy_yaml(tmp_path):
    good = tmp_path / "retention.yaml"
    good.write_text("max_runs: 20\nmax_disk_gb: 50\nfailed_run_max_age_hours: 24\nkeep_active_lineage: true\n")
    assert RetentionPolicy.from_yaml(good) == RetentionPolicy(
        max_runs=20, max_disk_gb=50, failed_run_max_age_hours=24, keep_active_lineage=True
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_run: 20\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid retention policy: max_run"):
        RetentionPolicy.from_yaml(bad)
    bad.write_text("max_runs: -1\n")
    with pytest.raises(ConfigError, match="max_runs"):
        RetentionPolicy.from_yaml(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        RetentionPolicy.from_yaml(tmp_path / "missing.yaml")


def test_folders_that_are_not_runs_are_left_alone(runs):
    notes = runs / "my-notes"
    notes.mkdir()
    (notes / "ideas.txt").write_text("try 3 defenders")
    old_format = make_broken_run(runs, "old-system-run")
    (old_format / "lineage.json").write_text('{"best": Infinity}')
    backdate(old_format, 80_000)
    for plan in (plan_cleanup(runs, keep_active_lineage=True), plan_cleanup(runs, delete_failed=True),
                 plan_retention(runs, RetentionPolicy(max_runs=1, keep_active_lineage=False))):  # fmt: skip
        assert plan.ignored == ["my-notes"] and "my-notes" not in _names(plan) and "my-notes" not in plan.keep
    plan = plan_cleanup(runs, keep_active_lineage=True)
    assert {"old-system-run", "no-record"} <= _names(plan)  # a crashed or older-format run is still a run
    apply_cleanup(plan)
    assert (notes / "ideas.txt").is_file()


def _cycle_runs(root, child_age_s: float, other_age_s: float) -> None:
    """a and b, whose hand-edited records name each other as parent, b's child, and an unrelated run."""
    make_run(root, "a", steps=[100], heartbeat_age_s=9000)
    make_run(root, "b", parent="a", steps=[200], heartbeat_age_s=8000)
    make_run(root, "child", parent="b", steps=[300], heartbeat_age_s=child_age_s)
    make_run(root, "other", steps=[5], heartbeat_age_s=other_age_s)
    for name, parent in (("a", "b"), ("b", "a")):
        update_record(root / name, parent_run=parent, root_ancestor=parent)


def test_a_parent_cycle_is_named_and_cleanup_deletes_what_it_says(tmp_path):
    root = tmp_path / "runs"
    _cycle_runs(root, child_age_s=7000, other_age_s=60)
    plan = plan_cleanup(root, keep_active_lineage=True)
    assert plan.anchor == "other" and _names(plan) == {"a", "b", "child"}
    assert len(plan.problems) == 1 and "parent cycle a -> b -> a" in plan.problems[0]
    assert sorted(apply_cleanup(plan)) == ["a", "b", "child"], "every run the plan said it deletes is deleted"
    assert sorted(p.name for p in root.iterdir()) == ["other"]


def test_a_parent_cycle_kept_by_a_kept_child_is_kept_whole(tmp_path):
    root = tmp_path / "runs"
    _cycle_runs(root, child_age_s=60, other_age_s=7000)
    plan = plan_cleanup(root, keep_lineage="child")
    assert _names(plan) == {"other"} and {"a", "b", "child"} <= set(plan.keep)
    assert apply_cleanup(plan) == ["other"]


def test_a_heartbeat_in_the_future_does_not_make_its_run_the_active_one(runs):
    update_record(runs / "old-child", heartbeat_at=utc_now().replace(year=2099), status="running")
    backdate(runs / "old-child", 3600)  # the hand edit happened an hour ago
    plan = plan_cleanup(runs, keep_active_lineage=True)
    assert plan.anchor == "main-a1"
    assert "old-child" in _names(plan) and "old-child" not in plan.skipped_live


def test_temp_files_left_by_a_kill_are_not_data_and_cleanup_sweeps_them(tmp_path):
    root = tmp_path / "runs"
    dead = make_run(root, "dead", status="running", steps=[100], heartbeat_age_s=9000)
    live = make_run(root, "live", status="running", steps=[100], heartbeat_age_s=0)
    leftovers = [dead / ".run.json.abc123.tmp", dead / "checkpoints" / ".ppo_mission_200_steps.zip.x1y2.tmp"]
    for path in leftovers:
        path.write_bytes(b"\0" * 10_000)
    in_flight = live / "checkpoints" / ".ppo_mission_200_steps.zip.q9.tmp"
    in_flight.write_bytes(b"\0" * 10_000)
    assert folder_size(dead) < 10_000, "half-written files are not counted as data"
    plan = plan_cleanup(root, keep_lineage="dead")
    apply_cleanup(plan)
    assert not any(p.exists() for p in leftovers)
    assert (dead / "checkpoints" / "ppo_mission_100_steps.zip").exists()
    assert plan.skipped_live == ["live"] and in_flight.exists(), "a live run's write in progress is left alone"
