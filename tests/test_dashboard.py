"""The unified dashboard as HTML text: escaping, lineage filters, order, tree, atomic write, cache, parsing."""

from __future__ import annotations

import builtins
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from dashboard_runs import (
    CHILD_RUN,
    GRANDCHILD_RUN,
    OTHER_RUN,
    ROOT_RUN,
    make_lineage,
    metric_rows,
    write_evaluation,
    write_metrics,
)
from runs_factory import make_broken_run, make_run, update_record

from mission_gym.dashboard import data as dashboard_data
from mission_gym.dashboard.assets import script_hash
from mission_gym.dashboard.fmt import fmt_num, fmt_pct, fmt_steps
from mission_gym.dashboard import MAX_CURVE_POINTS, generate_unified_dashboard
from mission_gym.errors import MissionGymError


def render(runs_root: Path, **kwargs) -> str:
    return generate_unified_dashboard(runs_root, **kwargs).read_text(encoding="utf-8")


def row_names(page: str) -> list[str]:
    return re.findall(r'<tr[^>]*data-run="([^"]*)"', page)


def row_html(page: str, name: str) -> str:
    match = re.search(rf'<tr[^>]*data-run="{re.escape(name)}".*?</tr>', page, re.S)
    assert match, f"no row for {name}"
    return match.group(0)


def without_inline_code(page: str) -> str:
    """The page minus the trusted inline scripts (uPlot and app.js, allowed by hash) and the data block."""
    return re.sub(r'<script( type="application/json" id="mg-data")?>.*?</script>', "", page, flags=re.S)


def data_block(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="mg-data">(.*?)</script>', page, re.S)
    assert match, "no data block"
    assert "<" not in match.group(1)
    return json.loads(match.group(1))


def chart_paths(row: str) -> list[str]:
    return re.findall(r'<path d="([^"]*)"', row)


@pytest.fixture(autouse=True)
def no_dagster_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages without Dagster links unless a test asks for them, whatever the developer's environment says."""
    monkeypatch.delenv("MISSION_GYM_DAGSTER_URL", raising=False)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_lineage(root)
    return root


# --- safety -------------------------------------------------------------------------------------------


def test_user_strings_are_escaped_everywhere(runs: Path) -> None:
    update_record(runs / ROOT_RUN, status="failed", error='<b>boom</b> & "x"')
    write_evaluation(runs / CHILD_RUN, "ppo_mission_250000_steps", checkpoint='"><script>alert(3)</script>',
                     capture_rate=0.5, parent={"capture_rate": 0.4, "checkpoint": "<i>p</i>"})  # fmt: skip
    update_record(runs / CHILD_RUN, hyperparameters={"</script><script>alert(4)</script>": "<b>x</b>"})
    raw = render(runs)
    page = without_inline_code(raw)
    assert "<script" not in page.lower()
    assert data_block(raw)["runs"][1]["hyperparameters"] == {"</script><script>alert(4)</script>": "<b>x</b>"}
    assert "<img" not in page and "<svg onload" not in page and "<b>boom" not in page and "<i>p" not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=&quot;window.__pwned=1;" in page
    assert "&amp; &#x27;q&#x27; &quot;dq&quot;" in page
    assert "&quot;&gt;&lt;svg onload=alert(2)&gt;" in page
    assert "&lt;b&gt;boom&lt;/b&gt; &amp; &quot;x&quot;" in page
    assert 'title="&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;"' in page


def test_page_is_self_contained_and_refreshes(runs: Path) -> None:
    raw = render(runs)
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in raw and 'data-refresh-s="5"' in raw
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', raw).group(1)
    for rule in ("default-src 'none'", "connect-src 'none'", "img-src data:"):
        assert rule in csp, rule
    scripts = re.findall(r"<script>(.*?)</script>", raw, re.S)
    assert len(scripts) == 2 and "uPlot" in scripts[0] and "Copyright" in scripts[0]  # the library and its licence
    allowed = re.search(r"script-src ([^;]*)", csp).group(1).split()
    assert allowed == [script_hash(s) for s in scripts]
    page = without_inline_code(raw)
    for external in ("http:", "https:", "//cdn", "<link", "@import", "url(", "<script"):
        assert external not in page, external
    assert re.search(r"<[a-z][^>]*\ssrc=", page) is None  # no tag loads anything
    assert all(not re.match(r"[a-z]+:|/", href) for href in re.findall(r'href="([^"]*)"', page))  # relative links only
    assert page.count("<svg") >= 5  # the forest and one learning curve per run


def test_numbers_never_crash_and_show_a_dash_when_missing() -> None:
    for missing in (None, float("nan"), np.float32("nan"), float("inf"), -np.inf, "12", True, 10**400, [1]):
        assert fmt_num(missing) == "—"
        assert fmt_pct(missing) == "—"
        assert fmt_steps(missing) == "—"
    assert fmt_num(np.float32(1.25), 2) == "1.25"
    assert fmt_pct(np.float64(0.425)) == "42.5%"
    assert fmt_steps(np.int64(27_670_000)) == "27.67M"
    assert fmt_steps(50_000) == "50.0k"


def test_non_finite_values_in_reports_and_metrics_render_as_dashes(runs: Path) -> None:
    eval_dir = runs / OTHER_RUN / "evaluations"
    eval_dir.mkdir()
    (eval_dir / "ppo_mission_5000_steps.json").write_text(
        '{"capture_rate": NaN, "capture_rate_ci": [NaN, 0.5], "mean_return": Infinity, "baseline": null,'
        ' "parent": "not a dict"}'
    )
    lines = ['{"timestep": 1, "ep_return_mean": NaN, "capture_rate": null}', '{"timestep": 2}', "[1, 2]"]
    (runs / OTHER_RUN / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    row = row_html(render(runs), OTHER_RUN)
    assert '<span class="big">—</span>' in row and "mean return —" in row and "baseline —" in row
    assert "return —" in row and "capture —" in row  # chart labels: two points, no value


# --- what is shown, and in which order ----------------------------------------------------------------


def test_all_runs_ordered_by_activity_with_children_under_parents(runs: Path) -> None:
    page = render(runs)
    # The root's tree holds the most recently active run (its child), so it comes first; the unrelated,
    # older run last. The active run is marked.
    assert row_names(page) == [ROOT_RUN, CHILD_RUN, GRANDCHILD_RUN, OTHER_RUN]
    assert 'class="active-run"' in row_html(page, CHILD_RUN)
    assert f'Most recently active: <span class="name">{CHILD_RUN}</span>' in page


def test_siblings_most_recently_active_first(tmp_path: Path) -> None:
    make_run(tmp_path, "root", steps=[1000], heartbeat_age_s=9000)
    make_run(tmp_path, "older-sibling", parent="root", steps=[2000], heartbeat_age_s=10)
    make_run(tmp_path, "newer-sibling", parent="root", steps=[2000], heartbeat_age_s=5000)
    make_run(tmp_path, "lone", steps=[1000], heartbeat_age_s=100)
    assert row_names(render(tmp_path)) == ["root", "older-sibling", "newer-sibling", "lone"]


def test_children_are_indented_with_an_arrow(runs: Path) -> None:
    page = render(runs)
    assert 'data-depth="0"' in row_html(page, ROOT_RUN) and "↳" not in row_html(page, ROOT_RUN)
    assert 'data-depth="1"' in row_html(page, CHILD_RUN) and '<span class="arrow">↳</span>' in row_html(page, CHILD_RUN)
    assert 'data-depth="2"' in row_html(page, GRANDCHILD_RUN)
    assert 'style="padding-left:1.4em"' in row_html(page, CHILD_RUN)
    assert 'style="padding-left:2.8em"' in row_html(page, GRANDCHILD_RUN)
    assert f"from {ROOT_RUN} @ 200.0k" in row_html(page, CHILD_RUN)


def test_forest_picture_has_a_node_per_run_and_labelled_branch_edges(runs: Path) -> None:
    forest = "".join(re.findall(r'<svg class="forest".*?</svg>', render(runs), re.S))
    assert forest.count('<g class="node">') == 4
    assert ">@ 200.0k</text>" in forest and ">@ 250.0k</text>" in forest  # child and grandchild branch steps


@pytest.mark.parametrize(
    ("lineage_filter", "shown"),
    [
        (None, {ROOT_RUN, CHILD_RUN, GRANDCHILD_RUN, OTHER_RUN}),
        ("active", {ROOT_RUN, CHILD_RUN, GRANDCHILD_RUN}),
        (CHILD_RUN, {ROOT_RUN, CHILD_RUN, GRANDCHILD_RUN}),
        (OTHER_RUN, {OTHER_RUN}),
    ],
)
def test_lineage_filter(runs: Path, lineage_filter: str | None, shown: set[str]) -> None:
    assert set(row_names(render(runs, lineage_filter=lineage_filter))) == shown


def test_unknown_lineage_filter_names_near_matches(runs: Path) -> None:
    with pytest.raises(MissionGymError, match=rf"no run named 'branch-20260122'.*did you mean: {CHILD_RUN}"):
        generate_unified_dashboard(runs, lineage_filter="branch-20260122")
    assert not (runs / "dashboard.html").exists()


def test_status_badges_flag_a_running_run_with_a_stale_heartbeat(tmp_path: Path) -> None:
    make_run(tmp_path, "live", status="running", heartbeat_age_s=3)
    make_run(tmp_path, "dead", status="running", heartbeat_age_s=3600)
    make_run(tmp_path, "crashed", status="failed")
    make_run(tmp_path, "stopped", status="interrupted")
    page = render(tmp_path)
    assert '<span class="badge running">running</span>' in row_html(page, "live")
    assert '<span class="badge stalled">stalled?</span>' in row_html(page, "dead")
    assert '<span class="badge failed">failed</span>' in row_html(page, "crashed")
    assert '<span class="badge interrupted">interrupted</span>' in row_html(page, "stopped")


def test_folders_without_a_valid_record_are_listed_not_hidden(runs: Path) -> None:
    make_broken_run(runs, "half-made", run_json="{not json")
    page = render(runs)
    assert "1 folder(s) in the runs root without a valid run record" in page and "<b>half-made</b>" in page
    assert "half-made" not in render(runs, lineage_filter="active")
    with pytest.raises(MissionGymError, match=r"'half-made' .* has no valid run record"):
        generate_unified_dashboard(runs, lineage_filter="half-made")


def test_empty_or_missing_runs_root(tmp_path: Path) -> None:
    assert "No runs to show yet." in render(tmp_path / "runs")
    assert "No runs to show yet." in render(tmp_path / "runs", lineage_filter="active")
    with pytest.raises(MissionGymError, match="no run named 'x'"):
        generate_unified_dashboard(tmp_path / "runs", lineage_filter="x")


# --- evaluation reports -------------------------------------------------------------------------------


def test_latest_evaluation_is_chosen_by_the_step_in_its_name(runs: Path) -> None:
    newer_step = write_evaluation(runs / CHILD_RUN, "ppo_mission_10000_steps", capture_rate=0.1)
    older_step = write_evaluation(runs / CHILD_RUN, "ppo_mission_900_steps", capture_rate=0.9)
    os.utime(newer_step, (1, 1))  # file times must not matter, nor lexicographic order
    os.utime(older_step, (2, 2))
    assert '<span class="big">10.0%</span>' in row_html(render(runs), CHILD_RUN)
    write_evaluation(runs / CHILD_RUN, "final_model", capture_rate=0.77, capture_rate_ci=[0.7, 0.8],
                     mean_return=12.5, episodes=200, baseline={"capture_rate": 0.1}, parent={"capture_rate": 0.42})  # fmt: skip
    row = row_html(render(runs), CHILD_RUN)
    assert '<span class="big">77.0%</span>' in row and "[70.0%–80.0%]" in row
    assert "mean return 12.5 · 200 episodes" in row and "baseline 10.0%" in row and "parent 42.0%" in row


def test_unreadable_latest_evaluation_is_reported(runs: Path) -> None:
    (runs / ROOT_RUN / "evaluations" / "ppo_mission_300000_steps.json").write_text("{cut")
    assert "ppo_mission_300000_steps.json: unreadable" in row_html(render(runs), ROOT_RUN)
    assert "not evaluated" in row_html(render(runs), OTHER_RUN)


# --- learning curves ----------------------------------------------------------------------------------


def test_truncated_last_metrics_line_is_ignored_until_complete(runs: Path) -> None:
    path = write_metrics(runs / OTHER_RUN, [{"timestep": 1000, "ep_return_mean": 1.5, "capture_rate": 0.25}],
                         tail='not json\n{"timestep": 2000, "ep_ret')  # fmt: skip
    row = row_html(render(runs), OTHER_RUN)
    assert "return 1.5" in row and "capture 25.0%" in row and "1.0k steps" in row
    with path.open("a") as handle:
        handle.write('urn_mean": 7.5, "capture_rate": 0.5}\n')
    row = row_html(render(runs), OTHER_RUN)
    assert "return 7.5" in row and "capture 50.0%" in row and "2.0k steps" in row


def test_curves_are_downsampled(runs: Path) -> None:
    write_metrics(runs / OTHER_RUN, metric_rows(5000, step=100))
    paths = chart_paths(row_html(render(runs), OTHER_RUN))
    assert len(paths) == 2
    for d in paths:
        assert 100 < len(re.findall(r"[ML]", d)) <= MAX_CURVE_POINTS
    assert "500.0k steps" in row_html(render(runs), OTHER_RUN)


# --- writing ------------------------------------------------------------------------------------------


def test_written_atomically_via_a_temp_file_in_the_same_folder(runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    replaced: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    out = generate_unified_dashboard(runs)
    assert out == runs / "dashboard.html"
    [(src, dst)] = replaced
    assert dst == out and src.parent == out.parent and src.name.startswith(".")


def test_a_failed_write_keeps_the_previous_page(runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = render(runs)
    make_run(runs, "new-run")

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        generate_unified_dashboard(runs)
    assert (runs / "dashboard.html").read_text(encoding="utf-8") == before
    assert sorted(p.name for p in runs.iterdir() if p.is_file()) == ["dashboard.html"]  # no temp file left


def test_custom_output_path(runs: Path, tmp_path: Path) -> None:
    out = generate_unified_dashboard(runs, lineage_filter="active", output=tmp_path / "site" / "lineage.html")
    assert out == tmp_path / "site" / "lineage.html" and CHILD_RUN in out.read_text(encoding="utf-8")


# --- the cache ----------------------------------------------------------------------------------------


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file opened by path from now on (builtins.open and io.open, which pathlib uses)."""
    paths: list[Path] = []
    real_open = io.open

    def counting_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            paths.append(Path(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(io, "open", counting_open)
    return paths


def test_unchanged_files_are_not_opened_again(runs: Path, opened: list[Path]) -> None:
    generate_unified_dashboard(runs)
    first = {p.relative_to(runs).as_posix() for p in opened}
    assert f"{ROOT_RUN}/metrics.jsonl" in first and f"{ROOT_RUN}/evaluations/ppo_mission_200000_steps.json" in first
    assert f"{CHILD_RUN}/run.json" in first

    opened.clear()
    generate_unified_dashboard(runs)
    assert opened == []

    with (runs / CHILD_RUN / "metrics.jsonl").open("a") as handle:
        handle.write(json.dumps({"timestep": 999_000, "ep_return_mean": 61.0, "capture_rate": 0.9}) + "\n")
    update_record(runs / CHILD_RUN, notes="heartbeat")
    opened.clear()
    generate_unified_dashboard(runs)
    changed = sorted(p.relative_to(runs).as_posix() for p in opened)
    assert changed == [f"{CHILD_RUN}/metrics.jsonl", f"{CHILD_RUN}/run.json"]
    page = (runs / "dashboard.html").read_text(encoding="utf-8")
    assert "return 61.0" in row_html(page, CHILD_RUN) and ">heartbeat<" in row_html(page, CHILD_RUN)


def test_metrics_are_read_incrementally_and_again_when_replaced(runs: Path) -> None:
    path = write_metrics(runs / OTHER_RUN, [{"timestep": 1, "ep_return_mean": 10.0, "capture_rate": 0.1}])
    assert "10.0 … 10.0" in row_html(render(runs), OTHER_RUN)
    # Rewrite the first line in place (same length) and append one: only the appended bytes are read.
    path.write_text(path.read_text().replace("10.0", "99.0") + '{"timestep": 2, "ep_return_mean": 20.0}\n')
    assert "10.0 … 20.0" in row_html(render(runs), OTHER_RUN)
    # A replaced (or truncated) file is read from the start.
    replacement = path.with_name("metrics.new")
    replacement.write_text('{"timestep": 5, "ep_return_mean": 3.0}\n')
    os.replace(replacement, path)
    row = row_html(render(runs), OTHER_RUN)
    assert "3.0 … 3.0" in row and "return 3.0" in row


def test_deleted_runs_leave_page_and_cache(runs: Path) -> None:
    render(runs)
    for item in sorted((runs / OTHER_RUN).rglob("*"), reverse=True):
        item.rmdir() if item.is_dir() else item.unlink()
    (runs / OTHER_RUN).rmdir()
    assert OTHER_RUN not in render(runs)
    cache = dashboard_data._CACHES[runs.resolve()]
    assert all(OTHER_RUN not in p.parts for table in (cache.records, cache.curves, cache.evaluations) for p in table)


# --- the documented entry points ----------------------------------------------------------------------


def test_run_utils_reexport_uses_runs_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_lineage(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    from mission_gym.scripts.run_utils import generate_unified_dashboard as from_run_utils

    assert from_run_utils is generate_unified_dashboard
    assert from_run_utils(lineage_filter="active") == Path("runs/dashboard.html")
    shown = row_names(Path("runs/dashboard.html").read_text(encoding="utf-8"))
    assert set(shown) == {ROOT_RUN, CHILD_RUN, GRANDCHILD_RUN}
    from_run_utils(lineage_filter=CHILD_RUN)
    assert OTHER_RUN not in Path("runs/dashboard.html").read_text(encoding="utf-8")


def test_dashboard_cli(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mission_gym.cli import main  # `mission-gym dashboard ...` runs mission_gym.scripts.run_utils

    assert main(["dashboard", "--runs-dir", str(runs), "--lineage", "active"]) == 0
    assert "Dashboard written: file://" in capsys.readouterr().out
    assert main(["dashboard", "--runs-dir", str(runs), "--lineage", "amber-badger"]) == 2
    assert f"did you mean: {ROOT_RUN}" in capsys.readouterr().err
