"""The dashboard's comparison data as HTML and JSON text: what each branch changed, every metric embedded,
evaluation intervals and paired results, links, the Dagster address and the inlined chart library."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from dashboard_runs import CHILD_RUN, OTHER_RUN, ROOT_RUN, make_lineage, metric_rows, write_evaluation, write_metrics
from runs_factory import make_spaces, update_record
from test_dashboard import data_block, render, row_html

from mission_gym.dashboard import assets, generate_unified_dashboard
from mission_gym.dashboard.payload import MAX_EMBEDDED_POINTS
from mission_gym.errors import MissionGymError

REWARD = "components:\n  win_bonus: {{weight: {win}, enabled: true}}\n  time_penalty: {{weight: -0.001}}\n"


@pytest.fixture(autouse=True)
def no_dagster_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages without Dagster links unless a test asks for them, whatever the developer's environment says."""
    monkeypatch.delenv("MISSION_GYM_DAGSTER_URL", raising=False)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_lineage(root)
    return root


def snapshot(run_dir: Path, reward: str, file_hash: str) -> None:
    (run_dir / "configs").mkdir(exist_ok=True)
    (run_dir / "configs" / "reward.yaml").write_text(reward)
    update_record(run_dir, config={"hash": file_hash * 64, "files": {"reward.yaml": file_hash * 64}})


def test_each_branch_shows_what_it_changed_against_its_parent(runs: Path) -> None:
    snapshot(runs / ROOT_RUN, REWARD.format(win=200.0), "a")
    snapshot(runs / CHILD_RUN, REWARD.format(win=150.0), "b")
    update_record(runs / CHILD_RUN, hyperparameters={"learning_rate": 0.0001, "n_steps": 128, "ent_coef": 0.01},
                  spaces=make_spaces(attackers=6))  # fmt: skip
    page = render(runs)
    expected = ["learning_rate 0.0003 → 0.0001", "ent_coef — → 0.01",
                "reward.yaml: components.win_bonus.weight 200 → 150", "attackers 4 → 6"]  # fmt: skip
    row = row_html(page, CHILD_RUN)
    forest = "".join(re.findall(r'<svg class="forest".*?</svg>', page, re.S))
    for change in expected:
        assert change in row and change in forest, change
    assert "n_steps" not in row  # unchanged keys are not listed
    child = next(r for r in data_block(page)["runs"] if r["name"] == CHILD_RUN)
    assert ["learning_rate", "0.0003", "0.0001"] in child["changes"]
    assert child["hyperparameters"] == {"learning_rate": "0.0001", "n_steps": "128", "ent_coef": "0.01"}


def test_config_files_with_equal_hashes_are_not_compared(runs: Path) -> None:
    snapshot(runs / ROOT_RUN, REWARD.format(win=200.0), "a")
    snapshot(runs / CHILD_RUN, REWARD.format(win=150.0), "a")  # the record says: same file
    assert "win_bonus" not in row_html(render(runs), CHILD_RUN)


def test_every_numeric_metrics_column_is_embedded_with_a_point_cap(runs: Path) -> None:
    rows = [{**row, "time": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00", "train_approx_kl": 0.01,
             "fps": 3000 + i, "note": "text is not a number"} for i, row in enumerate(metric_rows(1000))]  # fmt: skip
    rows[3]["train_approx_kl"] = None
    write_metrics(runs / OTHER_RUN, rows)
    data = data_block(render(runs))
    assert data["metrics"] == ["capture_rate", "ep_return_mean", "fps", "train_approx_kl"]
    curve = data["curves"][OTHER_RUN]
    assert set(curve) == {"timestep", "time", "ep_return_mean", "capture_rate", "train_approx_kl", "fps", "note"}
    assert len(curve["timestep"]) == MAX_EMBEDDED_POINTS and all(v is None for v in curve["note"])
    assert curve["time"][0] == pytest.approx(1767225600 + 3, abs=4)  # Unix seconds of the first bucket
    assert curve["timestep"][-1] == pytest.approx(997_500, rel=1e-3)  # bucket means, steps exact to 10 digits
    assert set(data["curves"]) == {ROOT_RUN, CHILD_RUN, "deeper-20260123-080000", OTHER_RUN}


def test_runs_without_metrics_embed_no_curve(runs: Path) -> None:
    (runs / OTHER_RUN / "metrics.jsonl").unlink()
    data = data_block(render(runs))
    assert OTHER_RUN not in data["curves"] and OTHER_RUN in [r["name"] for r in data["runs"]]


def test_evaluation_shows_interval_paired_results_and_episodes(runs: Path) -> None:
    write_evaluation(runs / CHILD_RUN, "ppo_mission_250000_steps", capture_rate=0.6, capture_rate_ci=[0.5, 0.7],
                     episodes=200, baseline={"capture_rate": 0.1, "paired": {"only_ours_captured": 12, "only_theirs_captured": 3}},
                     parent={"capture_rate": 0.42, "paired": {"only_ours_captured": 7, "only_theirs_captured": 2}})  # fmt: skip
    row = row_html(render(runs), CHILD_RUN)
    assert "baseline 10.0%: better on 12 seeds, worse on 3" in row and "parent 42.0%: better on 7 seeds, worse on 2" in row
    assert "200 episodes" in row and '<svg class="interval"' in row
    # the interval bar spans 50–70 % of its 128-px track, starting at x=1
    assert re.search(r'<rect x="65.0" y="1" width="25.6" height="8"', row)
    evaluations = next(r for r in data_block(render(runs))["runs"] if r["name"] == CHILD_RUN)["evaluations"]
    assert evaluations == [250_000]


def test_links_are_relative_to_the_page(runs: Path, tmp_path: Path) -> None:
    folder = runs / ROOT_RUN / "evaluations"
    (folder / "ppo_mission_200000_steps.md").write_text("# report")
    (folder / "ppo_mission_200000_steps.gif").write_bytes(b"GIF89a")
    row = row_html(render(runs), ROOT_RUN)
    assert f'href="{ROOT_RUN}/evaluations/ppo_mission_200000_steps.md">report</a>' in row
    assert f'href="{ROOT_RUN}/evaluations/ppo_mission_200000_steps.gif">replay</a>' in row
    assert f'href="{ROOT_RUN}/checkpoints/">checkpoints</a>' in row
    assert f"tensorboard --logdir {runs / ROOT_RUN / 'tensorboard'}" in row
    assert "replay" not in row_html(render(runs), CHILD_RUN)  # no evaluation, no report links
    elsewhere = generate_unified_dashboard(runs, output=tmp_path / "site" / "page.html").read_text(encoding="utf-8")
    assert f'href="../runs/{ROOT_RUN}/evaluations/ppo_mission_200000_steps.md"' in row_html(elsewhere, ROOT_RUN)


def test_dagster_partition_links(runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "Dagster" not in render(runs)
    row = row_html(render(runs, dagster_url="http://127.0.0.1:3000/"), ROOT_RUN)
    assert f'href="http://127.0.0.1:3000/assets/checkpoint?view=partitions&amp;partition={ROOT_RUN}">Dagster</a>' in row
    monkeypatch.setenv("MISSION_GYM_DAGSTER_URL", "https://dagster.example")
    assert 'href="https://dagster.example/assets/checkpoint?' in row_html(render(runs), ROOT_RUN)
    monkeypatch.setenv("MISSION_GYM_DAGSTER_URL", "javascript:alert(1)")
    with pytest.raises(MissionGymError, match=r"MISSION_GYM_DAGSTER_URL='javascript:alert\(1\)' .* like http://"):
        generate_unified_dashboard(runs)


def test_missing_chart_library_names_the_fix(runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "UPLOT_DIR", tmp_path / "node_modules" / "uplot")
    assets.load_assets.cache_clear()
    try:
        with pytest.raises(MissionGymError, match=r"uPlot.iife.min.js not found; install it with `make install`"):
            generate_unified_dashboard(runs)
    finally:
        assets.load_assets.cache_clear()


def test_metrics_keys_cannot_break_out_of_the_data_block(runs: Path) -> None:
    write_metrics(runs / OTHER_RUN, [{"timestep": 1, "</script><script>alert(5)</script>": 1.0}])
    page = render(runs)
    assert "alert(5)" in json.dumps(data_block(page)["metrics"])
    assert "</script><script>alert(5)" not in page


def test_a_report_written_after_its_json_gets_its_link_on_the_next_refresh(runs: Path) -> None:
    render(runs)  # the evaluation's JSON is read; its .md does not exist yet
    (runs / ROOT_RUN / "evaluations" / "ppo_mission_200000_steps.md").write_text("# report")
    assert f'href="{ROOT_RUN}/evaluations/ppo_mission_200000_steps.md">report</a>' in row_html(render(runs), ROOT_RUN)
