"""run.json model, atomic writes and strict JSON."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import subprocess

import pytest
from runs_factory import make_run

from mission_gym.errors import RunRecordError
from mission_gym.runs import record as rec
from mission_gym.runs.layout import RUN_RECORD_FILE
from mission_gym.runs.record import (
    LIVE_HEARTBEAT_S,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    git_info,
    load_record,
    save_record,
    sha256_file,
    to_iso,
)


def test_atomic_write_replaces_content_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_crash_during_replace_keeps_old_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "run.json"
    atomic_write_json(target, {"status": "running"})

    def crash(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(rec.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        atomic_write_json(target, {"status": "finished"})
    assert json.loads(target.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # temp file cleaned up


def test_crash_during_write_keeps_old_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "model.zip"
    atomic_write_bytes(target, b"old model")
    monkeypatch.setattr(rec.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new model")
    assert target.read_bytes() == b"old model"
    assert len(list(tmp_path.iterdir())) == 1


def test_atomic_write_keeps_existing_mode(tmp_path):
    target = tmp_path / "shared.txt"
    target.write_text("x")
    target.chmod(0o640)
    atomic_write_text(target, "y")
    assert target.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_json_never_contains_nan_or_infinity(tmp_path, bad):
    target = tmp_path / "m.json"
    atomic_write_json(target, {"ok": 1})
    with pytest.raises(ValueError, match="non-finite"):
        atomic_write_json(target, {"value": [1.0, bad]})
    assert json.loads(target.read_text()) == {"ok": 1}


def test_json_writes_numpy_values(tmp_path):
    np = pytest.importorskip("numpy")
    target = tmp_path / "m.json"
    atomic_write_json(target, {"f": np.float32(0.5), "a": np.arange(3), "t": dt.datetime(2026, 1, 2, 3, 4, 5)})
    assert json.loads(target.read_text()) == {"f": 0.5, "a": [0, 1, 2], "t": "2026-01-02T03:04:05Z"}


def test_record_round_trip_has_no_absolute_paths(tmp_path):
    make_run(tmp_path, "parent", steps=[1000, 2000])
    child_dir = make_run(tmp_path, "child", parent="parent", steps=[3000])
    text = (child_dir / RUN_RECORD_FILE).read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}"))
    assert data["parent_checkpoint"]["path"] == "parent/checkpoints/ppo_mission_2000_steps.zip"
    assert data["checkpoints"][0]["file"] == "child/checkpoints/ppo_mission_3000_steps.zip"
    assert str(tmp_path) not in text
    assert "parent_record" not in text and data["schema_version"] == 1  # flat: no nested parent copies
    loaded = load_record(child_dir)
    assert loaded.root_ancestor == "parent" and loaded.timesteps.start == 2000


def _valid_dict(tmp_path):
    run_dir = make_run(tmp_path, "r1", steps=[10])
    return run_dir, json.loads((run_dir / RUN_RECORD_FILE).read_text())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"surprise": 1}, "surprise"),
        ({"status": "done"}, "status"),
        ({"parent_checkpoint": {"path": "/abs/x.zip", "step": 1, "sha256": "a"}}, "relative"),
        ({"parent_checkpoint": {"path": "../x.zip", "step": 1, "sha256": "a"}}, "relative"),
        ({"created_at": "2026-01-01T00:00:00"}, "created_at"),  # naive timestamps are refused
        ({"hyperparameters": {"lr": float("nan")}}, "NaN"),
        ({"run_name": "other"}, "folder"),
    ],
)
def test_invalid_record_error_names_file_and_field(tmp_path, change, message):
    run_dir, data = _valid_dict(tmp_path)
    (run_dir / RUN_RECORD_FILE).write_text(json.dumps({**data, **change}))
    with pytest.raises(RunRecordError) as info:
        load_record(run_dir)
    assert str(run_dir / RUN_RECORD_FILE) in str(info.value)
    assert message in str(info.value)


def test_missing_or_corrupt_record(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(RunRecordError, match="missing"):
        load_record(tmp_path / "x")
    (tmp_path / "x" / RUN_RECORD_FILE).write_text('{"run_name": ')
    with pytest.raises(RunRecordError, match="not readable as JSON"):
        load_record(tmp_path / "x")
    (tmp_path / "x" / RUN_RECORD_FILE).write_text('{"best": Infinity}')
    with pytest.raises(RunRecordError, match="Infinity"):
        load_record(tmp_path / "x")


def test_is_live_depends_on_status_and_heartbeat(tmp_path):
    record = load_record(make_run(tmp_path, "a", status="running", heartbeat_age_s=0))
    beat = record.heartbeat_at
    assert record.is_live(beat + dt.timedelta(seconds=LIVE_HEARTBEAT_S - 1))
    assert not record.is_live(beat + dt.timedelta(seconds=LIVE_HEARTBEAT_S + 1))
    assert not record.model_copy(update={"status": "finished"}).is_live(beat)


def _on_this_host(record: rec.RunRecord, pid: int, started_at: float | None) -> rec.RunRecord:
    return record.model_copy(update={"host": socket.gethostname(), "pid": pid, "process_started_at": started_at})


def test_on_its_own_host_a_run_is_live_exactly_while_its_process_runs(tmp_path):
    record = load_record(make_run(tmp_path, "a", status="running", heartbeat_age_s=0))
    me = os.getpid()
    assert rec.process_start_time(me) is not None
    assert _on_this_host(record, me, rec.process_start_time(me)).is_live()
    # A heartbeat from an hour ago does not matter while the process runs...
    old = _on_this_host(record, me, rec.process_start_time(me)).model_copy(
        update={"heartbeat_at": record.heartbeat_at - dt.timedelta(hours=1)})
    assert old.is_live()
    # ...and a fresh one does not keep a run alive whose process is gone (killed: no 120 s grace)...
    gone = subprocess.Popen(["sleep", "60"])
    started = rec.process_start_time(gone.pid)
    assert _on_this_host(record, gone.pid, started).is_live()
    gone.kill()
    gone.wait()
    assert not _on_this_host(record, gone.pid, started).is_live()
    # ...or whose pid now belongs to another process (it started at another time).
    assert not _on_this_host(record, me, rec.process_start_time(me) - 100).is_live()


def test_a_heartbeat_from_the_future_is_live_for_one_window_at_most(tmp_path):
    record = load_record(make_run(tmp_path, "a", status="running", heartbeat_age_s=0))
    skewed = record.model_copy(update={"heartbeat_at": dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)})
    first_seen = rec.utc_now()
    assert skewed.is_live(first_seen)
    assert skewed.is_live(first_seen + dt.timedelta(seconds=LIVE_HEARTBEAT_S - 1))
    assert not skewed.is_live(first_seen + dt.timedelta(seconds=LIVE_HEARTBEAT_S + 1))
    # Written (as this host's file times say) longer ago than the window: dead at once.
    written = first_seen - dt.timedelta(seconds=LIVE_HEARTBEAT_S + 1)
    other = skewed.model_copy(update={"run_name": "b", "root_ancestor": "b"})
    assert not other.is_live(first_seen, written_at=written)


def test_save_record_refuses_wrong_folder(tmp_path):
    record = load_record(make_run(tmp_path, "a"))
    (tmp_path / "b").mkdir()
    with pytest.raises(RunRecordError):
        save_record(tmp_path / "b", record)


def test_to_iso_is_utc():
    moment = dt.datetime(2026, 1, 22, 19, 32, 22, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert to_iso(moment) == "2026-01-22T17:32:22Z"
    assert to_iso(dt.datetime(2026, 1, 22, 17, 32, 22)) == "2026-01-22T17:32:22Z"  # naive means UTC


def test_sha256_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_git_info_in_and_outside_a_repo(tmp_path):
    assert git_info(tmp_path) == rec.Git(commit="unknown", dirty=None)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    try:
        for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "x"]):
            subprocess.run(["git", "-C", str(tmp_path), *args], check=True, env=env, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git not usable here")
    clean = git_info(tmp_path)
    assert clean.commit and len(clean.commit) == 40 and clean.dirty is False
    (tmp_path / "new.py").write_text("x = 1\n")
    assert git_info(tmp_path).dirty is True
