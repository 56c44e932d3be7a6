"""Branch search: population-based training in which every exploit and explore is a real branch.

Round 0 branches ``population`` members from the parent run with hyperparameters sampled from the search space.
After each round every member is compared, on the same selection seeds, with the round's best (the member that
captured most on the first group of seeds) by the sequential paired test of :mod:`mission_gym.sequential`. A
member the test finds worse is replaced by a branch of the best member's latest checkpoint with perturbed
hyperparameters (exploit + explore); every other member continues as a branch of itself. Each member-round is
an ordinary run folder, with lineage, notes that say why it exists, and its place in the search.

The search keeps its record in ``runs/searches/<name>/search.json`` (rewritten atomically after every member
round), so a search that is interrupted and launched again with the same name resumes where it stopped. The
selection seeds are not the held-out evaluation seeds, which stay unseen by the search.

A search is a sequence of steps on its record: `start_or_resume_search`, then per round `pending_members`
(each trained as the branch `<search>-r<R>-m<M>`), `record_trained` and `decide_round`. `run_search` loops over
them in one process (the CLI); mission_gym_pipelines/search.py trains each member as its own Dagster run.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mission_gym.errors import MissionGymError
from mission_gym.runs.checkpoints import checkpoint_step, latest_checkpoint
from mission_gym.runs.layout import SEARCH_RECORD_FILE, SEARCH_SUMMARY_FILE, SEARCHES_DIR
from mission_gym.runs.naming import timestamp, validate_name
from mission_gym.runs.record import atomic_write_json, atomic_write_text, load_record, utc_now
from mission_gym.search_space import SearchSpace, load_search_space
from mission_gym.sequential import sequential_compare

SELECTION_SEED_BASE = 1_000_000  # far from the held-out seeds in configs/eval_seeds.txt

Play = Callable[[str, Sequence[int]], list[bool]]  # (run name, seeds) -> captured per seed
Train = Callable[..., str]  # keyword arguments of a branch -> the new run's name


class SearchSettings(BaseModel):
    """One search request (the CLI's flags, the Dagster config)."""

    model_config = ConfigDict(extra="forbid")

    parent: str = Field(description="run to search from (its latest checkpoint)")
    population: int = Field(4, ge=2, description="members per round")
    rounds: int = Field(3, ge=1, description="rounds of training and selection")
    round_timesteps: int = Field(1_000_000, gt=0, description="timesteps each member trains per round")
    space: Path = Field(Path("configs/search.yaml"), description="search-space YAML file")
    name: str | None = Field(None, description="search name; an existing one resumes (default: search-<timestamp>)")
    n_envs: int = Field(256, gt=0, le=4096, description="arenas per training")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of sampling, perturbation and training")
    selection_seeds: int = Field(100, ge=1, le=100_000, description="seeds the sequential tests may play")
    runs_root: Path = Field(Path("runs"), description="runs folder")
    config_dir: Path = Field(Path("configs"), description="config directory the members train on")


class Plan(BaseModel):
    """What a member trains in a round: from which run, with which hyperparameters, and why."""

    round: int
    member: int
    parent_run: str
    hyperparameters: dict[str, float | int]
    origin: str


class MemberRound(Plan):
    """A member-round once trained: its run folder and its selection evidence."""

    run_name: str
    step: int
    decision: dict[str, Any] | None = None


class SearchRecord(BaseModel):
    """Everything a search decided, with its evidence; the dashboard and retention read it."""

    schema_version: Literal[1] = 1
    name: str
    created_at: str
    settings: dict[str, Any]
    space: dict[str, Any]
    status: Literal["running", "finished"] = "running"
    plans: list[Plan] = []
    members: list[MemberRound] = []
    rounds_decided: list[dict[str, Any]] = []
    winner: str | None = None
    winner_lineage: list[str] = []
    episodes_played: int = 0
    episodes_fixed: int = 0  # what a fixed-sample evaluation of every comparison would have played

    def trained(self, round_: int, member: int) -> MemberRound | None:
        return next((m for m in self.members if m.round == round_ and m.member == member), None)


def search_dir(runs_root: Path, name: str) -> Path:
    """Where a search keeps its record and summary."""
    return Path(runs_root) / SEARCHES_DIR / validate_name(name, "search name")


class MemberRequest(BaseModel):
    """A member-round to train: its plan, the run name to train it under, its notes and its training seed."""

    plan: Plan
    run_name: str  # <search>-r<R>-m<M>: the CLI's branch name, Dagster's partition key (verbatim)
    notes: str
    seed: int


def run_search(settings: SearchSettings, train: Train | None = None, play: Play | None = None) -> SearchRecord:
    """Run (or resume) a search and write its record and summary; returns the finished record."""
    record = start_or_resume_search(settings)
    train = train or _train_branch(settings)
    play = play or player(settings.runs_root, settings.config_dir)
    while record.status == "running":
        round_ = len(record.rounds_decided)
        for request in pending_members(record):
            run_name = train(parent=request.plan.parent_run, branch_name=request.run_name,
                             hyperparameters=request.plan.hyperparameters, notes=request.notes, seed=request.seed)
            record_trained(record, request.plan, run_name, settings.runs_root)
        decide_round(record, round_, play, settings.runs_root)
    return record


def start_or_resume_search(settings: SearchSettings) -> SearchRecord:
    """Check the request, then load the search's record (same settings; `rounds` may change) or write a new one
    with round 0 planned. Every bad input is a MissionGymError naming it."""
    space = load_search_space(settings.space)
    load_record(Path(settings.runs_root) / validate_name(settings.parent, "--parent"))  # a clear error if missing
    name = settings.name or f"search-{timestamp(utc_now())}"
    record = _load_or_start(name, settings, space)
    if not record.plans:
        record.plans = _first_plans(settings, space)
    if record.status == "running" and len(record.rounds_decided) >= settings.rounds:  # resumed with fewer rounds
        _finish(record, settings.runs_root)
    save_search(record, settings.runs_root)
    return record


def pending_members(record: SearchRecord) -> list[MemberRequest]:
    """The current round's member-rounds not trained yet (none once the search finished), by member."""
    if record.status != "running":
        return []
    round_ = len(record.rounds_decided)
    plans = sorted((p for p in record.plans if p.round == round_), key=lambda p: p.member)
    return [MemberRequest(plan=p, run_name=f"{record.name}-r{round_}-m{p.member}", seed=_member_seed(record, p),
                          notes=f"{p.origin} (search {record.name}, round {round_}, member {p.member})")
            for p in plans if record.trained(round_, p.member) is None]


def _member_seed(record: SearchRecord, plan: Plan) -> int:
    return int(record.settings["seed"]) + 7919 * plan.round + plan.member


def record_trained(record: SearchRecord, plan: Plan, run_name: str, runs_root: Path) -> MemberRound:
    """Add a trained member-round (its finished run folder `run_name`) to the record, and save it."""
    member = MemberRound(**plan.model_dump(), run_name=run_name, step=_latest_step(runs_root, run_name))
    record.members.append(member)
    save_search(record, runs_root)
    return member


def decide_round(record: SearchRecord, round_: int, play: Play, runs_root: Path) -> None:
    """Run the round's sequential tests, then plan the next round or finish the search (record, summary.md)."""
    settings = SearchSettings.model_validate(record.settings)
    space = SearchSpace.model_validate(record.space)
    missing = [r.run_name for r in pending_members(record)]
    if round_ != len(record.rounds_decided) or missing:
        raise MissionGymError(f"search {record.name}: round {round_} cannot be decided now (rounds decided: "
                              f"{len(record.rounds_decided)}; members not trained: {missing or 'none'})")
    seeds = [SELECTION_SEED_BASE + i for i in range(settings.selection_seeds)]
    _decide_round(record, round_, seeds, play, space, settings)
    if round_ + 1 >= settings.rounds:
        _finish(record, runs_root)
    save_search(record, runs_root)


def _finish(record: SearchRecord, runs_root: Path) -> None:
    record.status = "finished"
    record.winner_lineage = _lineage(runs_root, record.winner, record.settings["parent"])
    atomic_write_text(search_dir(runs_root, record.name) / SEARCH_SUMMARY_FILE, summary_markdown(record))


def load_search(runs_root: Path, name: str) -> SearchRecord:
    """A search's record; a MissionGymError naming the file when there is none."""
    path = search_dir(runs_root, name) / SEARCH_RECORD_FILE
    if not path.is_file():
        raise MissionGymError(f"{path}: no search named {name} (start it first)")
    return SearchRecord.model_validate_json(path.read_text(encoding="utf-8"))


def _load_or_start(name: str, settings: SearchSettings, space: SearchSpace) -> SearchRecord:
    folder = search_dir(settings.runs_root, name)
    if (folder / SEARCH_RECORD_FILE).is_file():
        record = load_search(settings.runs_root, name)
        same = {k: v for k, v in record.settings.items() if k not in ("name", "rounds")}
        asked = {k: v for k, v in settings.model_dump(mode="json").items() if k not in ("name", "rounds")}
        if same != asked:
            changed = sorted(k for k in asked if asked[k] != same.get(k))
            raise MissionGymError(f"search {name} exists with other settings ({', '.join(changed)}); resume it with "
                                  f"the same flags, or choose another --name")
        if record.status == "finished" and settings.rounds != record.settings["rounds"]:
            raise MissionGymError(f"search {name} finished after {len(record.rounds_decided)} rounds and is not "
                                  f"extended (--rounds {settings.rounds}); start a new search from its winner: "
                                  f"--parent {record.winner}")
        record.settings["rounds"] = settings.rounds
        return record
    folder.mkdir(parents=True, exist_ok=True)
    return SearchRecord(name=name, created_at=utc_now().isoformat(), settings=settings.model_dump(mode="json"),
                        space=space.model_dump(mode="json"))


def _first_plans(settings: SearchSettings, space: SearchSpace) -> list[Plan]:
    plans = []
    for member in range(settings.population):
        values = space.sample(random.Random(f"{settings.seed}-sample-{member}"))
        plans.append(Plan(round=0, member=member, parent_run=settings.parent, hyperparameters=values,
                          origin=f"sampled from the space: {_describe(values)}"))
    return plans


def _decide_round(record: SearchRecord, round_: int, seeds: list[int], play: Play, space: SearchSpace,
                  settings: SearchSettings) -> None:
    """Compare every member with the round's best and plan the next round (exploit + explore, or continue)."""
    design = space.sequential.design()
    members = sorted((m for m in record.members if m.round == round_), key=lambda m: m.member)
    first = seeds[:design.group]
    outcomes = {m.run_name: play(m.run_name, first) for m in members}
    best = max(members, key=lambda m: (sum(outcomes[m.run_name]), -m.member))
    decisions = []
    for member in members:
        if member is best:
            continue
        result = sequential_compare(lambda group, m=member: (play(m.run_name, group), play(best.run_name, group)),
                                    seeds, design)
        member.decision = {"against": best.run_name, **result.to_dict()}
        decisions.append({"member": member.run_name, "against": best.run_name, "decision": result.decision,
                          "episodes": result.episodes, "only_member": result.only_ours, "only_best": result.only_theirs})
        record.episodes_played += result.episodes
        record.episodes_fixed += len(seeds)
    winner = _winner(best, members)
    record.winner = winner.run_name
    record.rounds_decided.append({"round": round_, "best": best.run_name, "winner": winner.run_name,
                                  "decisions": decisions})
    if round_ + 1 < settings.rounds:
        record.plans += [_next_plan(m, best, round_ + 1, space, settings) for m in members]


def _winner(best: MemberRound, members: list[MemberRound]) -> MemberRound:
    """The round's best, unless a member was found better than it (then the one with the largest margin)."""
    better = [m for m in members if m.decision and m.decision["decision"] == "better"]
    return max(better, key=lambda m: m.decision["capture_rate_difference"]) if better else best


def _next_plan(member: MemberRound, best: MemberRound, round_: int, space: SearchSpace,
               settings: SearchSettings) -> Plan:
    if member.decision and member.decision["decision"] == "worse":
        values, changes = space.perturb(best.hyperparameters,
                                        random.Random(f"{settings.seed}-perturb-{round_}-{member.member}"))
        origin = f"exploit of {best.run_name} at step {best.step:,}, {changes} (replaces {member.run_name})"
        return Plan(round=round_, member=member.member, parent_run=best.run_name, hyperparameters=values,
                    origin=origin)
    return Plan(round=round_, member=member.member, parent_run=member.run_name,
                hyperparameters=member.hyperparameters, origin=f"continues {member.run_name} at step {member.step:,}")


def _lineage(runs_root: Path, run_name: str | None, stop: str) -> list[str]:
    """The winner's ancestors back to the search's parent, oldest first."""
    chain, seen = [], set()
    while run_name and run_name not in seen:
        seen.add(run_name)
        chain.append(run_name)
        if run_name == stop:
            break
        run_name = load_record(Path(runs_root) / run_name).parent_run
    return chain[::-1]


def _latest_step(runs_root: Path, run_name: str) -> int:
    latest = latest_checkpoint(Path(runs_root) / run_name)
    if latest is None:
        raise MissionGymError(f"run {run_name} saved no checkpoint; the search cannot branch from it")
    return checkpoint_step(latest)


def _describe(values: dict[str, float | int]) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())


def save_search(record: SearchRecord, runs_root: Path) -> None:
    """Rewrite the search's record atomically (an interruption leaves the previous one whole)."""
    atomic_write_json(search_dir(runs_root, record.name) / SEARCH_RECORD_FILE, record.model_dump(mode="json"))


def _train_branch(settings: SearchSettings) -> Train:
    """Train one member-round as a branch of a run's latest checkpoint, through the ordinary training path."""
    from mission_gym.training import TrainSettings, plan_run, train  # torch and SB3 only when training

    def branch(*, parent: str, branch_name: str, hyperparameters: dict[str, Any], notes: str, seed: int) -> str:
        train_settings = TrainSettings(
            timesteps=settings.round_timesteps, n_envs=settings.n_envs, seed=seed, notes=notes,
            parent_checkpoint=parent, branch_name=branch_name, config_dir=settings.config_dir,
            runs_root=settings.runs_root, hyperparameters=hyperparameters, progress_bar=False,
        )
        record = train(train_settings, plan_run(train_settings))
        if record.status != "finished":
            raise MissionGymError(f"member run {record.run_name} ended {record.status}; launch the search again "
                                  "with the same --name to resume it")
        return record.run_name

    return branch


def player(runs_root: Path, config_dir: Path) -> Play:
    """Play a run's latest checkpoint on seeds, remembering every outcome so no episode is played twice."""
    from mission_gym.config import load_config
    from mission_gym.evaluation import load_policy, run_episodes

    cache: dict[tuple[str, int], bool] = {}
    config_dir = Path(config_dir)
    config = load_config(config_dir)

    def play(run_name: str, seeds: Sequence[int]) -> list[bool]:
        missing = [s for s in seeds if (run_name, s) not in cache]
        if missing:
            path = latest_checkpoint(Path(runs_root) / run_name)
            policy = load_policy(path, config, config_dir)
            for result in run_episodes(policy, config, missing, deterministic=True):
                cache[(run_name, result.seed)] = result.outcome == "captured"
        return [cache[(run_name, s)] for s in seeds]

    return play


def summary_markdown(record: SearchRecord) -> str:
    """The search's result: the winner, its lineage through the search, and each decision with its evidence."""
    saved = record.episodes_fixed - record.episodes_played
    lines = [f"# Search {record.name}", "",
             f"Parent: {record.settings['parent']}; population {record.settings['population']}, "
             f"{len(record.rounds_decided)} rounds of {record.settings['round_timesteps']:,} timesteps.", "",
             f"**Winner: {record.winner}**", "", "Lineage: " + " → ".join(record.winner_lineage), "",
             f"Sequential tests played {record.episodes_played} episodes per side where fixed evaluations would have "
             f"played {record.episodes_fixed} ({saved} saved).", ""]
    for decided in record.rounds_decided:
        lines += [f"## Round {decided['round']}: best {decided['best']}, winner {decided['winner']}", "",
                  "| member | hyperparameters | why it exists | against best | episodes | only member / only best |",
                  "|---|---|---|---|---|---|"]
        for member in sorted((m for m in record.members if m.round == decided["round"]), key=lambda m: m.member):
            evidence = member.decision or {}
            lines.append(f"| {member.run_name} | {_describe(member.hyperparameters)} | {member.origin} | "
                         f"{evidence.get('decision', 'best')} | {evidence.get('episodes', '')} | "
                         f"{evidence.get('only_ours', '')} / {evidence.get('only_theirs', '')} |")
        lines.append("")
    return "\n".join(lines)

