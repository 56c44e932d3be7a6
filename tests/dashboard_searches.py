"""Branch searches for the dashboard tests: the real `run_search`, whose training writes run folders the way
the other dashboard tests do (runs_factory, with metrics and an evaluation) and whose play gives each run a
fixed skill, so nothing trains and the decisions are real sequential tests.

from dashboard_searches import PARENT, make_parent, make_search
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from dashboard_runs import metric_rows, write_evaluation, write_metrics
from runs_factory import make_run, update_record

from mission_gym.runs.layout import SEARCH_RECORD_FILE
from mission_gym.runs.record import load_record
from mission_gym.search import SearchRecord, SearchSettings, run_search, search_dir

PARENT = "search-parent-20260301-090000"
SPACE = Path(__file__).resolve().parents[1] / "configs" / "search.yaml"
ROUND_STEPS = 1000


def make_parent(runs_root: Path) -> Path:
    """The run searches branch from, with a learning curve and an evaluation."""
    run_dir = make_run(runs_root, PARENT, steps=[5000], notes="search parent")
    write_metrics(run_dir, metric_rows(50, step=100))
    write_evaluation(run_dir, "ppo_mission_5000_steps", capture_rate=0.3, capture_rate_ci=[0.22, 0.39])
    return run_dir


def _strong(hyperparameters: dict) -> bool:
    return hyperparameters["learning_rate"] > 6e-4  # with seed 3, one of four sampled members


class FakeBranches:
    """Members as run folders (all hyperparameters of the parent, the searched ones replaced, as training
    records them); a strong member captures 95 % of seeds, the others 10 %. Raises KeyboardInterrupt before
    training member number `stop_after`, as an interrupted search would stop."""

    def __init__(self, runs_root: Path, stop_after: int | None = None) -> None:
        self.runs_root, self.trained, self.stop_after = runs_root, 0, stop_after

    def train(self, *, parent: str, branch_name: str, hyperparameters: dict, notes: str, seed: int) -> str:
        if self.stop_after is not None and self.trained >= self.stop_after:
            raise KeyboardInterrupt
        self.trained += 1
        parent_record = load_record(self.runs_root / parent)
        start, name = parent_record.timesteps.current, f"{branch_name}-x"
        run_dir = make_run(self.runs_root, name, parent=parent, steps=[start + ROUND_STEPS], notes=notes)
        update_record(run_dir, hyperparameters={**parent_record.hyperparameters, **hyperparameters})
        write_metrics(run_dir, [{**row, "timestep": start + row["timestep"]} for row in metric_rows(20, step=50)])
        rate = 0.9 if _strong(hyperparameters) else 0.12
        write_evaluation(run_dir, f"ppo_mission_{start + ROUND_STEPS}_steps", capture_rate=rate,
                         capture_rate_ci=[rate - 0.06, rate + 0.05])  # fmt: skip
        return name

    def play(self, run_name: str, seeds: Sequence[int]) -> list[bool]:
        skill = 0.95 if _strong(load_record(self.runs_root / run_name).hyperparameters) else 0.1
        return [random.Random(f"{run_name}-{s}").random() < skill for s in seeds]


def make_search(runs_root: Path, name: str, rounds: int = 3, stop_after: int | None = None) -> SearchRecord:
    """A search of four members from PARENT (make_parent first), finished, or still running when stopped
    before its `stop_after`-th member; returns its record as saved."""
    settings = SearchSettings(parent=PARENT, population=4, rounds=rounds, round_timesteps=ROUND_STEPS, space=SPACE,
                              name=name, runs_root=runs_root, seed=3)  # fmt: skip
    fake = FakeBranches(runs_root, stop_after)
    try:
        run_search(settings, train=fake.train, play=fake.play)
    except KeyboardInterrupt:
        pass
    return SearchRecord.model_validate_json((search_dir(runs_root, name) / SEARCH_RECORD_FILE).read_text())
