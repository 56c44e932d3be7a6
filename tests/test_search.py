"""Branch search: rounds, exploit + explore as real branches, decisions with evidence, resume, bad input.

The fast tests train nothing: `train` writes a run folder the way a branch would (tests/runs_factory.py) and
`play` gives each run a fixed skill, so the decisions are known. One slow test runs the real thing."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from runs_factory import make_run

from mission_gym.errors import MissionGymError
from mission_gym.runs.lineage import list_runs
from mission_gym.runs.record import load_record
from mission_gym.scripts.search import main as search_main
from mission_gym.runs.layout import SEARCH_RECORD_FILE
from mission_gym.search import SearchSettings, run_search, search_dir
from mission_gym.search_space import load_search_space

REPO = Path(__file__).resolve().parent.parent
SPACE = REPO / "configs" / "search.yaml"
ROUND = 1000


class FakeBranches:
    """Branches as run folders; a run with a learning rate above 6e-4 captures 95 % of seeds, others 10 %."""

    def __init__(self, runs_root: Path, fail_after: int | None = None) -> None:
        self.runs_root, self.calls, self.fail_after = runs_root, [], fail_after

    def train(self, *, parent, branch_name, hyperparameters, notes, seed):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt  # the search is interrupted between two members
        start = load_record(self.runs_root / parent).timesteps.current
        name = f"{branch_name}-x"
        make_run(self.runs_root, name, parent=parent, steps=[start + ROUND], notes=notes)
        record_path = self.runs_root / name / "run.json"
        data = json.loads(record_path.read_text())
        data["hyperparameters"] = hyperparameters
        record_path.write_text(json.dumps(data))
        self.calls.append((parent, name, hyperparameters, notes))
        return name

    def play(self, run_name, seeds):
        lr = load_record(self.runs_root / run_name).hyperparameters["learning_rate"]
        skill = 0.95 if lr > 6e-4 else 0.1  # with seed 3, one of four sampled members
        return [random.Random(f"{run_name}-{s}").random() < skill for s in seeds]


@pytest.fixture()
def root(tmp_path):
    make_run(tmp_path, "parent", steps=[5000])
    return tmp_path


def settings(root: Path, **changes) -> SearchSettings:
    values = dict(parent="parent", population=4, rounds=3, round_timesteps=ROUND, space=SPACE, name="s1",
                  runs_root=root, seed=3)
    return SearchSettings(**{**values, **changes})


def test_rounds_exploit_losers_and_continue_the_rest(root):
    fake = FakeBranches(root)
    record = run_search(settings(root), train=fake.train, play=fake.play)
    assert len(record.members) == 12 and record.status == "finished"
    first = [m for m in record.members if m.round == 0]
    assert {m.parent_run for m in first} == {"parent"}
    assert all(m.origin.startswith("sampled from the space") for m in first)
    decided = record.rounds_decided[0]
    best = decided["best"]
    losers = [d["member"] for d in decided["decisions"] if d["decision"] == "worse"]
    assert losers, "a low learning rate member should lose against a high one"
    for member in (m for m in record.members if m.round == 1):
        previous = next(p for p in first if p.member == member.member)
        if previous.run_name in losers:
            assert member.parent_run == best
            assert member.origin.startswith(f"exploit of {best} at step ")
            assert "learning_rate ×" in member.origin
        else:
            assert member.parent_run == previous.run_name and member.hyperparameters == previous.hyperparameters
    # Every member-round is a real branch whose notes say why it exists.
    runs = {r.run_name: r for r in list_runs(root)}
    for member in record.members:
        assert runs[member.run_name].parent_run == member.parent_run
        assert member.origin in runs[member.run_name].notes and "search s1" in runs[member.run_name].notes
    assert record.winner_lineage[0] == "parent" and record.winner_lineage[-1] == record.winner
    assert record.episodes_played < record.episodes_fixed


def test_summary_names_the_winner_and_each_decision(root):
    fake = FakeBranches(root)
    record = run_search(settings(root), train=fake.train, play=fake.play)
    folder = search_dir(root, "s1")
    summary = (folder / "summary.md").read_text()
    assert f"**Winner: {record.winner}**" in summary
    assert " → ".join(record.winner_lineage) in summary
    assert summary.count("| worse |") == sum(d["decision"] == "worse" for r in record.rounds_decided
                                             for d in r["decisions"])
    assert json.loads((folder / SEARCH_RECORD_FILE).read_text())["winner"] == record.winner


def test_an_interrupted_search_resumes_from_its_record(root):
    with pytest.raises(KeyboardInterrupt):
        run_search(settings(root), train=FakeBranches(root, fail_after=6).train, play=FakeBranches(root).play)
    saved = json.loads((search_dir(root, "s1") / SEARCH_RECORD_FILE).read_text())
    assert len(saved["members"]) == 6 and saved["status"] == "running"
    fake = FakeBranches(root)
    record = run_search(settings(root), train=fake.train, play=fake.play)
    assert len(fake.calls) == 6 and len(record.members) == 12
    again = FakeBranches(root)
    run_search(settings(root), train=again.train, play=again.play)
    assert again.calls == []


def test_resuming_with_other_settings_is_refused(root):
    fake = FakeBranches(root)
    run_search(settings(root, rounds=1), train=fake.train, play=fake.play)
    with pytest.raises(MissionGymError, match="population"):
        run_search(settings(root, population=3), train=fake.train, play=fake.play)


def test_a_finished_search_is_not_extended(root):
    fake = FakeBranches(root)
    record = run_search(settings(root, rounds=1), train=fake.train, play=fake.play)
    with pytest.raises(MissionGymError, match=f"--parent {record.winner}"):
        run_search(settings(root, rounds=2), train=fake.train, play=fake.play)
    assert run_search(settings(root, rounds=1), train=fake.train, play=fake.play).winner == record.winner


@pytest.mark.parametrize("text, says", [
    ("", "empty"),
    ("parameters: {}\n", "empty"),
    ("parameters: [\n", "not valid YAML"),
    ("parameters:\n  net_arch: {low: 1, high: 2}\n", "net_arch"),
    ("parameters:\n  learnin_rate: {low: 1, high: 2}\n", "learnin_rate"),
    ("parameters:\n  learning_rate: {low: 0.0, high: 1.0e-3, scale: log}\n", "log scale needs low > 0"),
    ("parameters:\n  learning_rate: {low: 1.0e-2, high: 1.0e-3}\n", "above high"),
    ("parameters:\n  learning_rate: {low: .nan, high: 1.0e-3}\n", "learning_rate.low"),
    ("parameters:\n  clip_range: {low: 0.1, high: 0.3}\nsequential: {margin: 0.7}\n", "margin"),
])
def test_bad_search_spaces_are_named(tmp_path, text, says):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(MissionGymError, match=says) as caught:
        load_search_space(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("argv, says", [
    (["--parent", "parent", "--population", "1"], "--population 1"),
    (["--parent", "nobody"], "nobody"),
    (["--parent", "parent", "--space", "missing.yaml"], "missing.yaml"),
])
def test_cli_errors_name_the_flag(root, capsys, argv, says):
    code = search_main([*argv, "--runs-dir", str(root)])
    err = capsys.readouterr().err
    assert code == 2 and says in err and "Traceback" not in err
    assert not (root / "searches").exists() or not any((root / "searches").iterdir())


@pytest.mark.slow
def test_a_real_search_branches_trains_and_decides(tmp_path, monkeypatch):
    from test_training_support import TINY, make_workdir, train_main

    folder = make_workdir(tmp_path / "work")
    monkeypatch.chdir(folder)
    code, _, err = train_main(["--timesteps", "512", *TINY, "--run-name", "root", "--seed", "1",
                               "--imitation-samples", "0", "--checkpoint-freq", "256"])
    assert code == 0, err
    root_run = next(p.name for p in (folder / "runs").iterdir() if p.name.startswith("root"))
    code = search_main(["--parent", root_run, "--population", "2", "--rounds", "2", "--round-timesteps", "256",
                        "--n-envs", "4", "--selection-seeds", "20", "--name", "tiny", "--space", str(SPACE)])
    assert code == 0
    record = json.loads((folder / "runs" / "searches" / "tiny" / SEARCH_RECORD_FILE).read_text())
    assert len(record["members"]) == 4 and record["winner"]
    for member in record["members"]:
        run = load_record(folder / "runs" / member["run_name"])
        assert run.status == "finished" and run.parent_run == member["parent_run"]
        assert run.hyperparameters["learning_rate"] == pytest.approx(member["hyperparameters"]["learning_rate"])
        assert run.timesteps.current >= run.timesteps.start + 256  # the counter continues across branches
