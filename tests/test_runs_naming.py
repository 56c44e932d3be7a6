"""Run names: what is refused, generated name formats, same-second uniqueness."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest

from mission_gym.errors import RunNameError
from mission_gym.runs.naming import (
    ADJECTIVES,
    ANIMALS,
    new_run_name,
    reserve_run_dir,
    timestamp,
    unknown_run_message,
    validate_name,
)

NOW = dt.datetime(2026, 1, 22, 19, 32, 22, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "a/b", "a\\b", "..", "../escape", "a..b", ".hidden", "tab\there", "two words", "bell\x07",
     "nul\x00", "x" * 101, "é-run", "-leading-dash", "semi;colon"],
)  # fmt: skip
def test_refused_names_say_what_is_allowed(bad):
    with pytest.raises(RunNameError) as info:
        validate_name(bad, "branch name")
    message = str(info.value)
    assert "invalid branch name" in message and "Allowed:" in message and "letters" in message


@pytest.mark.parametrize("good", ["2-defenders-experiment", "reward_tuning.v2", "a", "x" * 100, "lr+3e-4"])
def test_accepted_names(good):
    assert validate_name(good) == good


def test_timestamp_is_utc():
    assert timestamp(NOW) == "20260122-193222"
    assert timestamp(NOW.astimezone(dt.timezone(dt.timedelta(hours=-5)))) == "20260122-193222"


def test_generated_name_formats(tmp_path):
    named = new_run_name(tmp_path, run_name="2-defenders-experiment", now=NOW)
    assert named == "2-defenders-experiment-20260122-193222"
    assert new_run_name(tmp_path, is_branch=True, branch_name="continued", now=NOW) == "continued-20260122-193222"
    assert new_run_name(tmp_path, is_branch=True, now=NOW) == "branch-20260122-193222"
    generated = new_run_name(tmp_path, now=NOW)
    adjective, animal, stamp = re.fullmatch(r"([a-z]+)-([a-z]+)-(\d{8}-\d{6})", generated).groups()
    assert adjective in ADJECTIVES and animal in ANIMALS and stamp == "20260122-193222"
    assert len(ADJECTIVES) >= 30 and len(ANIMALS) >= 30


def test_generated_names_are_validated(tmp_path):
    with pytest.raises(RunNameError, match="run name"):
        new_run_name(tmp_path, run_name="../x", now=NOW)
    with pytest.raises(RunNameError, match="branch name"):
        new_run_name(tmp_path, is_branch=True, branch_name="a/b", now=NOW)
    with pytest.raises(RunNameError, match="no parent checkpoint"):
        new_run_name(tmp_path, branch_name="b", now=NOW)


def test_random_name_avoids_existing_folders(tmp_path):
    pairs = [f"{adjective}-{animal}" for adjective in ADJECTIVES for animal in ANIMALS]
    for pair in pairs[::2]:  # half the pairs taken this second: 20 draws all hitting them is ~1e-6
        (tmp_path / f"{pair}-20260122-193222").mkdir()
    for _ in range(5):
        assert not (tmp_path / new_run_name(tmp_path, now=NOW)).exists()


def test_random_name_when_every_pair_is_taken_still_gets_its_own_folder(tmp_path):
    for adjective in ADJECTIVES:
        for animal in ANIMALS:
            (tmp_path / f"{adjective}-{animal}-20260122-193222").mkdir()
    name = new_run_name(tmp_path, now=NOW)
    assert reserve_run_dir(tmp_path, name) == tmp_path / f"{name}-2"


def test_reserve_appends_suffix_when_taken(tmp_path):
    name = "exp-20260122-193222"
    assert reserve_run_dir(tmp_path, name) == tmp_path / name
    assert reserve_run_dir(tmp_path, name) == tmp_path / f"{name}-2"
    assert reserve_run_dir(tmp_path, name) == tmp_path / f"{name}-3"


def test_reserve_refuses_escaping_names(tmp_path):
    with pytest.raises(RunNameError):
        reserve_run_dir(tmp_path / "runs", "../outside")
    assert not (tmp_path / "outside").exists()


def test_same_second_racing_threads_never_share_a_folder(tmp_path):
    name = new_run_name(tmp_path, run_name="race", now=NOW)
    barrier = threading.Barrier(16)
    results: list = []

    def start_run():
        barrier.wait()
        results.append(reserve_run_dir(tmp_path / "runs", name))

    threads = [threading.Thread(target=start_run) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 16 and len(set(results)) == 16
    assert all(p.is_dir() and p.parent == tmp_path / "runs" for p in results)


def test_unknown_run_message_suggests_close_names():
    message = unknown_run_message("branch-2026012-193222", ["branch-20260122-193222", "zen-comet"], "runs")
    assert "no run named 'branch-2026012-193222' in runs" in message
    assert "did you mean: branch-20260122-193222?" in message
