"""Branch search from Dagster: each member-round is its own training run in the `gpu` pool.

Jobs → `start_search` → Launchpad → the search's settings (SearchSettings' own defaults and descriptions) →
Launch Run. The job writes the search's record (runs/searches/<name>/search.json), or resumes it when the
name exists with the same settings. `search_sensor` then drives every search a `start_search` run launched:
it materializes the `checkpoint` partition `<search>-r<R>-m<M>` of each member the round still needs (one
Dagster run each, holding the `gpu` pool, so the pool's size is how many members train at once and, on
Kubernetes, each run's pod asks for its own GPU), and once every member of the round has a finished run
folder it launches `decide_search_round`, which plays the sequential tests and plans the next round or
finishes the search (summary.md). The record stays the library's: the CLI can resume the same search.

A member whose Dagster run failed is not launched again by the sensor (its skip reason names it); launching
`start_search` again with the same name resumes the search and tries the members that have no finished run.
"""

import re
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, ValidationError

from mission_gym.errors import MissionGymError
from mission_gym.runs.layout import SEARCH_RECORD_FILE, SEARCH_SUMMARY_FILE, SEARCHES_DIR
from mission_gym.runs.record import load_record
from mission_gym.search import (
    MemberRequest,
    SearchRecord,
    SearchSettings,
    decide_round,
    load_search,
    pending_members,
    player,
    record_trained,
    search_dir,
    start_or_resume_search,
)
from mission_gym_pipelines.events import CHECKPOINT, run_link
from mission_gym_pipelines.failures import not_retried, readable_failure
from mission_gym_pipelines.partitions import run_partitions
from mission_gym_pipelines.pools import GPU_K8S_TAGS
from mission_gym_pipelines.resources import RunsRoot
from mission_gym_pipelines.training import TrainingConfig, checkpoint

SEARCH_TAG = "mission_gym/search"  # the search a Dagster run belongs to
LAUNCH_TAG = "mission_gym/search_launch"  # the start_search run whose launch it serves
STEP_TAG = "mission_gym/search_step"  # the member's run name, or decide-r<R>


def _setting(name: str) -> Any:
    """A launchpad field with SearchSettings' own default and description (one source for both)."""
    field = SearchSettings.model_fields[name]
    return Field(default=field.default, description=field.description)


class SearchConfig(dg.Config):
    """A search request: the CLI's flags but the runs folder and configs, which are the `runs` resource's."""

    parent: str = _setting("parent")
    population: int = _setting("population")
    rounds: int = _setting("rounds")
    round_timesteps: int = _setting("round_timesteps")
    space: str = Field(default=str(SearchSettings.model_fields["space"].default), description=(
        f"{SearchSettings.model_fields['space'].description} (a relative path is read from the folder holding "
        "the config directory)"))
    name: str | None = _setting("name")
    n_envs: int = _setting("n_envs")
    seed: int = _setting("seed")
    selection_seeds: int = _setting("selection_seeds")

    def to_settings(self, runs: RunsRoot) -> SearchSettings:
        """The library's settings; an out-of-range value is a readable failure naming the field."""
        config_dir = Path(runs.config_dir)
        try:
            return SearchSettings(**{**self.model_dump(), "space": config_dir.parent / self.space},
                                  runs_root=runs.path, config_dir=config_dir)
        except ValidationError as error:
            first = error.errors()[0]
            raise dg.Failure(description=f"start_search config: {first['loc'][0]} {first.get('input')!r}: "
                             f"{first['msg']}", allow_retries=False) from None


@dg.op(description="Write the search's record with round 0 planned, or resume it (same name, same settings).")
def start_or_resume(context: dg.OpExecutionContext, config: SearchConfig, runs: RunsRoot) -> dg.Output[str]:
    with not_retried(context), readable_failure():
        record = start_or_resume_search(config.to_settings(runs))
    # The sensor drives only searches a start_search run launched, and tells launches apart by this run.
    context.instance.add_run_tags(context.run_id, {SEARCH_TAG: record.name})
    return dg.Output(record.name, metadata={
        "search": record.name, "status": record.status, "round": len(record.rounds_decided),
        "members_to_train": ", ".join(r.run_name for r in pending_members(record)) or "none",
        "record": str(search_dir(runs.path, record.name) / SEARCH_RECORD_FILE),
        "next": "search_sensor launches one checkpoint run per member (pool gpu), then decide_search_round"})


@dg.job(description="Start (or resume) a branch search: Launchpad -> the search's settings -> Launch Run. "
        "search_sensor then trains each member as its own run in the gpu pool and decides each round.")
def start_search() -> None:
    start_or_resume()


class DecideRoundConfig(dg.Config):
    """Which search's round to decide (the sensor fills it in)."""

    search: str = Field(description="the search's name (runs/searches/<name>/)")
    round: int = Field(description="the round to decide, from 0")


def finished_member_run(runs_root: Path, run_name: str) -> str | None:
    """The finished run holding a member's training: its own folder, or the child a preemption retry resumed it
    as (`<run>-retry<N>`, see training.py); None while it trains, or when it stopped unfinished."""
    while (runs_root / run_name / "run.json").is_file():
        if load_record(runs_root / run_name).status == "finished":
            return run_name
        retry = re.compile(rf"{re.escape(run_name)}-retry(\d+)")
        retries = {int(match[1]): match[0] for path in runs_root.glob(f"{run_name}-retry*")
                   if (match := retry.fullmatch(path.name))}
        if not retries:
            return None
        run_name = retries[max(retries)]  # a second preemption resumes the first retry: <run>-retry1-retry2
    return None


# No pool: deciding is the search's critical path, and the `evaluation` pool would hold it behind the evaluations
# of every member just trained (evaluation_sensor), which the decision does not need.
@dg.op(description="Record the round's trained members, play the sequential paired tests and plan the next "
       "round (or finish the search and write summary.md).")
def decide_round_op(context: dg.OpExecutionContext, config: DecideRoundConfig, runs: RunsRoot) -> dg.Output[str]:
    with not_retried(context), readable_failure():
        record = load_search(runs.path, config.search)
        if len(record.rounds_decided) <= config.round:
            _record_round(record, runs.path)
            decide_round(record, config.round, player(runs.path, Path(runs.config_dir)), runs.path)
    decided = record.rounds_decided[config.round]
    context.log.info(f"Search {record.name} round {config.round}: best {decided['best']}, winner "
                     f"{decided['winner']}; search {record.status}")
    return dg.Output(record.status, metadata={
        "search": record.name, "round": config.round, "best": run_link(decided["best"]),
        "winner": run_link(decided["winner"]), "status": record.status,
        "decisions": dg.MetadataValue.json(decided["decisions"]),
        "summary": str(search_dir(runs.path, record.name) / SEARCH_SUMMARY_FILE) if record.status == "finished" else "-"})


def _record_round(record: SearchRecord, runs_root: Path) -> None:
    for request in pending_members(record):
        run_name = finished_member_run(runs_root, request.run_name)
        if run_name is None:
            raise MissionGymError(f"search {record.name}: member run {request.run_name} has not finished "
                                  f"(runs/{request.run_name}); the round is decided once every member finished")
        record_trained(record, request.plan, run_name, runs_root)


@dg.job(description="Decide one round of a search (launched by search_sensor once every member trained).")
def decide_search_round() -> None:
    decide_round_op()


train_search_member = dg.define_asset_job(
    "train_search_member", selection=dg.AssetSelection.assets(CHECKPOINT), tags=GPU_K8S_TAGS,
    description="Materializes one search member's checkpoint partition (launched by search_sensor; pool gpu).")


def member_request(record: SearchRecord, request: MemberRequest, launch: str) -> dg.RunRequest:
    """The checkpoint materialization training one member: a branch of the plan's parent with its values."""
    config = TrainingConfig(timesteps=record.settings["round_timesteps"], n_envs=record.settings["n_envs"],
                            seed=request.seed, notes=request.notes, parent_checkpoint=request.plan.parent_run,
                            **request.plan.hyperparameters)
    return dg.RunRequest(
        job_name=train_search_member.name, partition_key=request.run_name, run_key=f"{request.run_name}@{launch}",
        run_config=dg.RunConfig(ops={checkpoint.op.name: config}),
        tags={SEARCH_TAG: record.name, LAUNCH_TAG: launch, STEP_TAG: request.run_name})


def _decide_request(record: SearchRecord, launch: str) -> dg.RunRequest:
    round_ = len(record.rounds_decided)
    return dg.RunRequest(
        job_name=decide_search_round.name, run_key=f"{record.name}-decide-r{round_}@{launch}",
        run_config=dg.RunConfig(ops={decide_round_op.name: DecideRoundConfig(search=record.name, round=round_)}),
        tags={SEARCH_TAG: record.name, LAUNCH_TAG: launch, STEP_TAG: f"decide-r{round_}"})


class _SearchRuns:
    """The Dagster runs of one search: its latest launch, and each step's runs (newest first)."""

    def __init__(self, instance: dg.DagsterInstance, name: str) -> None:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={SEARCH_TAG: name}))
        launches = [r for r in runs if r.job_name == start_search.name and r.status == dg.DagsterRunStatus.SUCCESS]
        self.launch = launches[0].run_id if launches else ""
        self.by_step: dict[str, list[dg.DagsterRun]] = {}
        for run in runs:
            if STEP_TAG in run.tags:
                self.by_step.setdefault(run.tags[STEP_TAG], []).append(run)

    def state(self, step: str) -> str | None:
        """'busy' while a run of the step is queued or running, 'failed: ...' when this launch's run ended
        without the result, None when the step needs a run."""
        runs = self.by_step.get(step, [])
        if any(not run.is_finished for run in runs):
            return "busy"
        ended = [run for run in runs if run.tags.get(LAUNCH_TAG) == self.launch]
        if ended:
            return f"failed: Dagster run {ended[0].run_id} ended {ended[0].status.value}"
        return None


def _search_step(history: _SearchRuns, runs_root: Path, record: SearchRecord) -> tuple[list[dg.RunRequest], list[str]]:
    """What one search needs now: run requests, and a line per member or round waiting or failed."""
    requests, said = [], []
    for request in pending_members(record):
        if finished_member_run(runs_root, request.run_name):
            continue
        state = history.state(request.run_name)
        if state is None:
            requests.append(member_request(record, request, history.launch))
        elif state == "busy":
            said.append(f"{request.run_name} is queued or training")
        else:
            said.append(f"{request.run_name} {state}; its training did not finish (the run's failure says why). "
                        f"Launch start_search again with name {record.name} to retry it")
    if requests or said:
        return requests, said
    step = f"decide-r{len(record.rounds_decided)}"
    state = history.state(step)
    if state is None:
        return [_decide_request(record, history.launch)], []
    if state == "busy":
        return [], [f"round {len(record.rounds_decided)} is being decided"]
    return [], [f"deciding round {len(record.rounds_decided)} {state}. Launch start_search again with name "
                f"{record.name} to retry it"]


def _running_searches(runs_root: Path) -> list[SearchRecord]:
    names = sorted(p.parent.name for p in (runs_root / SEARCHES_DIR).glob(f"*/{SEARCH_RECORD_FILE}"))
    return [r for r in (load_search(runs_root, n) for n in names) if r.status == "running"]


@dg.sensor(
    jobs=[train_search_member, decide_search_round],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Drives the searches start_search launched: one checkpoint run per member (pool gpu), then "
    "decide_search_round once every member of the round finished. A failed member is named, not relaunched.",
)
def search_sensor(context: dg.SensorEvaluationContext, runs: RunsRoot) -> dg.SensorResult | dg.SkipReason:
    requests: list[dg.RunRequest] = []
    said: list[str] = []
    for record in _running_searches(runs.path):
        history = _SearchRuns(context.instance, record.name)
        if not history.launch:  # a search the CLI started: the CLI's process trains its members
            continue
        wanted, lines = _search_step(history, runs.path, record)
        requests += wanted
        said += [f"search {record.name}: {line}" for line in lines]
    for line in said:
        context.log.info(line)
    if not requests:
        return dg.SkipReason("; ".join(said) or "No search launched from start_search is running.")
    registered = set(context.instance.get_dynamic_partitions(run_partitions.name))
    new = [r.partition_key for r in requests if r.partition_key and r.partition_key not in registered]
    return dg.SensorResult(run_requests=requests,
                           dynamic_partitions_requests=[run_partitions.build_add_request(new)] if new else [])

