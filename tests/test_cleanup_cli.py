"""`python cleanup_runs.py ...` exactly as the workflow guide writes it, plus the prompt paths."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from runs_factory import make_broken_run, make_run

from mission_gym.scripts import cleanup
from mission_gym.scripts.cleanup import human_size, human_steps, main

pytestmark = pytest.mark.slow  # end to end: the cleanup command in a subprocess

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def runs(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "zen-comet-20260122-012517", steps=[1000, 2000], heartbeat_age_s=90_000)
    make_run(root, "branch-20260122-193222", steps=[27_670_000], heartbeat_age_s=50_000)
    make_run(root, "continued-training-20260125-120000", parent="branch-20260122-193222", steps=[27_680_000],
             heartbeat_age_s=600)  # fmt: skip
    make_run(root, "sibling-20260124-080000", parent="branch-20260122-193222", heartbeat_age_s=40_000)
    make_run(root, "warm-panther-20260122-165345", status="failed", heartbeat_age_s=70_000)
    make_broken_run(root, "no-record")
    return root


def cli(*args: str, stdin=subprocess.DEVNULL, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run the shim the way users do: `python cleanup_runs.py ...` from the repository root."""
    return subprocess.run(
        [sys.executable, str(REPO / "cleanup_runs.py"), *args],
        cwd=cwd, stdin=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _present(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()}


def test_dry_run_prints_plan_and_deletes_nothing(runs):
    before = sorted(runs.rglob("*"))
    done = cli("--keep-active-lineage", "--dry-run", "--runs-dir", str(runs))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Lineage tree of continued-training-20260125-120000 (KEPT):" in out
    assert "  branch-20260122-193222 (finished, 27.67M steps)" in out
    assert "\n  ↳ continued-training-20260125-120000 (finished, 27.68M steps, active)\n" in out
    assert "\n  ↳ sibling-20260124-080000" in out
    assert "To delete: 3 run(s)" in out
    for name in ("zen-comet-20260122-012517", "warm-panther-20260122-165345", "no-record"):
        assert f"  {name}" in out
    assert " kB " in out or " B " in out
    assert "Dry run: nothing was deleted." in out
    assert sorted(runs.rglob("*")) == before


def test_no_tty_without_yes_refuses_cleanly(runs):
    done = cli("--keep-active-lineage", "--runs-dir", str(runs))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Pass --yes to delete" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(_present(runs)) == 6


def test_no_mode_is_an_error_not_delete_everything(runs):
    done = cli("--runs-dir", str(runs))
    assert done.returncode == 2 and done.stderr.startswith("error: choose exactly one cleanup mode")
    assert "Traceback" not in done.stderr and len(_present(runs)) == 6


def test_yes_deletes_without_prompt(runs):
    done = cli("--keep-active-lineage", "--yes", "--runs-dir", str(runs))
    assert done.returncode == 0, done.stderr
    assert "Deleted 3 run(s)." in done.stdout
    assert _present(runs) == {
        "branch-20260122-193222", "continued-training-20260125-120000", "sibling-20260124-080000",
    }  # fmt: skip


# In-process from here on: each subprocess pays the interpreter's start-up, the tests above cover the shim.


def test_delete_failed_keeps_finished_runs(runs):
    assert main(["--delete-failed", "--yes", "--runs-dir", str(runs)]) == 0
    assert _present(runs) == {
        "zen-comet-20260122-012517", "branch-20260122-193222", "continued-training-20260125-120000",
        "sibling-20260124-080000",
    }  # fmt: skip


def test_keep_lineage_by_name(runs):
    assert main(["--keep-lineage", "zen-comet-20260122-012517", "--yes", "--runs-dir", str(runs)]) == 0
    assert _present(runs) == {"zen-comet-20260122-012517"}


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "choose exactly one cleanup mode"),
        (("--keep-lineage", "zen-comet"), "did you mean: zen-comet-20260122-012517"),
    ],
)
def test_errors_exit_2_with_message(runs, args, message, capsys):
    assert main([*args, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert len(_present(runs)) == 6


def test_two_modes_are_refused_in_one_line(runs, capsys):
    assert main(["--keep-active-lineage", "--delete-failed", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not allowed with" in err and err.count("\n") == 1


def test_keep_lineage_names_its_anchor_without_calling_it_active(runs, capsys):
    assert main(["--keep-lineage", "zen-comet-20260122-012517", "--dry-run", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "zen-comet-20260122-012517 (finished, 2.0k steps, named by --keep-lineage)" in out
    assert "active" not in out.split("To delete")[0]
    assert main(["--keep-active-lineage", "--dry-run", "--runs-dir", str(runs)]) == 0
    assert "steps, active)" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_runs_dir_that_is_no_folder_is_named(tmp_path, capsys, kind):
    target = tmp_path / "runz"
    if kind == "file":
        target.write_text("not a folder")
    assert main(["--delete-failed", "--dry-run", "--runs-dir", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --runs-dir {target}: ") and "Errno" not in err
    assert target.exists() == (kind == "file")


def test_default_runs_dir_is_runs_in_the_working_directory(runs, monkeypatch, capsys):
    monkeypatch.chdir(runs.parent)
    assert main(["--delete-failed", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Runs folder: runs " in out and "warm-panther-20260122-165345" in out


def test_prompt_on_a_real_terminal(runs):
    primary, secondary = pty.openpty()
    try:
        os.write(primary, b"y\n")
        done = cli("--delete-failed", "--runs-dir", str(runs), stdin=secondary)
    finally:
        os.close(primary)
        os.close(secondary)
    assert done.returncode == 0, done.stderr
    assert "Delete 2 run(s)" in done.stdout and "Deleted 2 run(s)." in done.stdout
    assert "warm-panther-20260122-165345" not in _present(runs)


@pytest.mark.parametrize("answer", ["n", "", EOFError])
def test_prompt_declined_deletes_nothing(runs, monkeypatch, capsys, answer):
    monkeypatch.setattr(cleanup.sys.stdin, "isatty", lambda: True, raising=False)

    def fake_input(prompt):
        if answer is EOFError:
            raise EOFError
        return answer

    monkeypatch.setattr("builtins.input", fake_input)
    assert main(["--keep-active-lineage", "--runs-dir", str(runs)]) == 1
    assert "Aborted: nothing was deleted." in capsys.readouterr().out
    assert len(_present(runs)) == 6


def test_nothing_to_delete_needs_no_confirmation(tmp_path, capsys):
    make_run(tmp_path, "only", steps=[1000])
    assert main(["--keep-active-lineage", "--runs-dir", str(tmp_path)]) == 0
    assert "Nothing to delete." in capsys.readouterr().out


def test_human_formats():
    assert human_size(512) == "512 B"
    assert human_size(3_400_000) == "3.4 MB"
    assert human_size(1_200_000_000) == "1.20 GB"
    assert human_steps(27_670_000) == "27.67M" and human_steps(50_000) == "50.0k" and human_steps(800) == "800"


def test_tree_indents_grandchildren(tmp_path, capsys):
    make_run(tmp_path, "root", steps=[1000])
    make_run(tmp_path, "child", parent="root", steps=[2000])
    make_run(tmp_path, "grandchild", parent="child", steps=[3000], heartbeat_age_s=10)
    assert main(["--keep-active-lineage", "--dry-run", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\n  root (finished, 1.0k steps)\n  ↳ child (finished, 2.0k steps)\n    ↳ grandchild (" in out
