"""The record index beside the runs: used when nothing changed, never trusted over run.json."""

from __future__ import annotations

import gc
import os
import pickle

import pytest
from runs_factory import make_broken_run, make_run, update_record

from mission_gym.dashboard import data as dashboard_data
from mission_gym.runs import index as index_module
from mission_gym.runs.index import INDEX_FILE
from mission_gym.runs.lineage import list_runs, scan_runs


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for name in ("alpha", "beta", "gamma"):
        make_run(root, name)
    return root


@pytest.fixture
def parses(monkeypatch):
    """Names of the run folders whose run.json was read and validated."""
    seen: list[str] = []
    real = index_module.load_record

    def spy(run_dir):
        seen.append(os.path.basename(run_dir))
        return real(run_dir)

    monkeypatch.setattr(index_module, "load_record", spy)
    return seen


def test_second_listing_parses_nothing_unchanged(runs, parses):
    first = list_runs(runs)
    assert sorted(parses) == ["alpha", "beta", "gamma"] and (runs / INDEX_FILE).is_file()
    parses.clear()
    assert list_runs(runs) == first
    assert parses == []


def test_changed_added_deleted_and_corrupted_runs_are_seen(runs, parses):
    list_runs(runs)
    parses.clear()
    update_record(runs / "alpha", status="failed")
    make_run(runs, "delta")
    (runs / "beta" / "run.json").unlink()
    (runs / "gamma" / "run.json").write_text("{not json", encoding="utf-8")
    folders = {f.name: f for f in scan_runs(runs)}
    assert sorted(parses) == ["alpha", "beta", "delta", "gamma"]
    assert folders["alpha"].record.status == "failed"
    assert folders["delta"].record is not None
    assert folders["beta"].record is None and "missing" in folders["beta"].problem
    assert folders["gamma"].record is None and "not readable as JSON" in folders["gamma"].problem
    parses.clear()
    scan_runs(runs)
    assert sorted(parses) == ["beta", "gamma"], "broken folders are re-read, valid unchanged ones are not"


@pytest.mark.parametrize("damage", ["delete", "garbage", "foreign pickle"])
def test_lost_or_corrupt_index_is_rebuilt(runs, parses, damage):
    first = list_runs(runs)
    path = runs / INDEX_FILE
    if damage == "delete":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"\x00 not a pickle")
    else:
        path.write_bytes(pickle.dumps({"some": "thing"}))
    parses.clear()
    assert list_runs(runs) == first
    assert sorted(parses) == ["alpha", "beta", "gamma"]
    parses.clear()
    list_runs(runs)
    assert parses == [], "the rebuilt index is used by the next listing"


def test_stale_index_entry_never_wins_over_the_file(runs):
    list_runs(runs)
    path = runs / INDEX_FILE
    data = pickle.loads(path.read_bytes())
    key, alpha = data["runs"]["alpha"]
    # A lying entry: the right key for alpha but beta's record, and a wrong key for beta's real content.
    data["runs"]["alpha"] = (key, data["runs"]["beta"][1])
    data["runs"]["beta"] = ((0, 0, 0), alpha)
    path.write_bytes(pickle.dumps(data))
    update_record(runs / "gamma", status="failed")  # and gamma changed under an old entry
    by_name = {r.run_name: r for r in list_runs(runs)}
    assert sorted(by_name) == ["alpha", "beta", "gamma"]
    assert by_name["beta"].run_name == "beta" and by_name["gamma"].status == "failed"


def test_broken_folder_and_symlink_are_still_reported(runs, tmp_path):
    list_runs(runs)
    make_broken_run(runs, "broken", run_json="{}")
    outside = tmp_path / "outside"
    make_run(outside, "elsewhere")
    (runs / "link").symlink_to(outside / "elsewhere")
    folders = {f.name: f for f in scan_runs(runs)}
    assert folders["broken"].record is None and folders["broken"].problem
    assert folders["link"].is_symlink and folders["link"].record is None
    assert sorted(r.run_name for r in list_runs(runs)) == ["alpha", "beta", "gamma"]


def test_a_fresh_dashboard_process_reads_records_from_the_index(runs, parses):
    list_runs(runs)
    parses.clear()
    records, problems = dashboard_data.scan(runs, dashboard_data.RootCache())  # a new process has an empty cache
    assert sorted(r.run_name for r in records) == ["alpha", "beta", "gamma"] and problems == []
    assert parses == []
    update_record(runs / "beta", status="failed")
    records, _ = dashboard_data.scan(runs, dashboard_data.RootCache())
    assert parses == ["beta"] and {r.run_name: r.status for r in records}["beta"] == "failed"


def test_an_index_rewritten_by_another_process_is_read_again(runs, parses):
    list_runs(runs)  # this process now remembers the index it wrote
    update_record(runs / "alpha", status="failed")
    other = pickle.loads((runs / INDEX_FILE).read_bytes())
    del other["runs"]["beta"]  # another process's index, written after alpha changed: beta missing
    (runs / INDEX_FILE).write_bytes(pickle.dumps(other))
    parses.clear()
    by_name = {r.run_name: r for r in list_runs(runs)}
    assert sorted(parses) == ["alpha", "beta"] and by_name["alpha"].status == "failed"


@pytest.mark.parametrize("listing", [list_runs, scan_runs])
def test_a_symlinked_run_json_is_keyed_by_the_file_it_leads_to(runs, tmp_path, listing):
    real = tmp_path / "elsewhere.json"
    os.replace(runs / "alpha" / "run.json", real)
    (runs / "alpha" / "run.json").symlink_to(real)

    def alpha():
        found = [getattr(item, "record", item) for item in listing(runs)]  # scan_runs gives RunFolders
        return next(record for record in found if record.run_name == "alpha")

    record = alpha()  # indexed under the key it has now
    real.write_text(record.model_copy(update={"status": "failed"}).model_dump_json())  # the link is unchanged
    assert alpha().status == "failed"


def test_gc_paused_nests_and_restores_the_collector():
    was_enabled = gc.isenabled()
    try:
        gc.enable()
        with index_module.gc_paused():
            with index_module.gc_paused():
                assert not gc.isenabled()
            assert not gc.isenabled(), "the outer pause still holds"
        assert gc.isenabled()
        gc.disable()
        with pytest.raises(RuntimeError), index_module.gc_paused():
            raise RuntimeError
        assert not gc.isenabled(), "a collector switched off by the caller stays off"
    finally:
        (gc.enable if was_enabled else gc.disable)()


def test_listing_never_follows_a_symlinked_run_folder_even_with_a_matching_record(runs, tmp_path):
    make_run(tmp_path / "outside", "twin")
    (runs / "twin").symlink_to(tmp_path / "outside" / "twin", target_is_directory=True)
    assert sorted(r.run_name for r in list_runs(runs)) == ["alpha", "beta", "gamma"]
    assert {f.name: f.record for f in scan_runs(runs)}["twin"] is None
