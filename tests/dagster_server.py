"""A real `dagster dev` (webserver + daemon) for tests, on 127.0.0.1, stopped by its PID; or the production
shape, `dagster-webserver` and `dagster-daemon run` as separate processes (`running_deployment`).

Not `dagster-webserver` alone: runs launched from the UI wait in the run queue, which the daemon drains
(and the daemon enforces the pools and launches run retries).

`dagster dev` started from a script ignores SIGINT when backgrounded and copies that onto SIGTERM,
so it would hang on stop. It is therefore started in its own session with SIGINT reset to the
default handler; SIGTERM to the process group then stops webserver, daemon and code server.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import DagsterInstance
from pg import free_port
from pipelines_support import TINY_TRAINING

REPO_ROOT = Path(__file__).resolve().parent.parent

LOCATION_STATUS = """
query { workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


@dataclass(frozen=True)
class DagsterServer:
    """A running `dagster dev`: its GraphQL endpoint, its instance folder and its log."""

    url: str
    dagster_home: Path
    log_path: Path

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run one GraphQL query; return its `data`, raising on transport or GraphQL errors."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.load(response)
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def _home(instance_yaml: Path, prepare: Callable[[DagsterInstance], None] | None) -> Path:
    """A temp DAGSTER_HOME holding `instance_yaml`; `prepare` gets the instance before any server starts."""
    dagster_home = Path(tempfile.mkdtemp(prefix="mission-gym-dagster-"))
    shutil.copy(instance_yaml, dagster_home / "dagster.yaml")
    if prepare is not None:
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            prepare(instance)
    return dagster_home


def _start(args: list[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen:
    """Start a Dagster CLI in its own session (stoppable as a group) with SIGINT at its default."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", *args], cwd=REPO_ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


@contextmanager
def running_dagster(instance_yaml: Path, env: Mapping[str, str] | None = None,
                    prepare: Callable[[DagsterInstance], None] | None = None,
                    timeout_s: float = 90.0) -> Iterator[DagsterServer]:
    """Start `dagster dev -w workspace.yaml` with a temp DAGSTER_HOME holding `instance_yaml`.

    `prepare` gets the instance before the server starts. Yields once the code location has loaded;
    stops the whole process group afterwards.
    """
    dagster_home = _home(instance_yaml, prepare)
    port = free_port()
    server = DagsterServer(f"http://127.0.0.1:{port}", dagster_home, dagster_home / "dagster-dev.log")
    process = _start(["dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
                     {**os.environ, **(env or {}), "DAGSTER_HOME": str(dagster_home)}, server.log_path)
    try:
        _wait_until_loaded(server, process, timeout_s)
        yield server
    finally:
        _stop(process)
        shutil.rmtree(dagster_home, ignore_errors=True)


@dataclass
class Deployment:
    """`dagster-webserver` and `dagster-daemon run` as two processes sharing one instance (production's shape)."""

    server: DagsterServer
    env: Mapping[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start_webserver(self, timeout_s: float = 90.0) -> None:
        port = self.server.url.rsplit(":", 1)[1]
        self.processes["webserver"] = _start(
            ["dagster_webserver", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", port],
            self.env, self.server.log_path)
        _wait_until_loaded(self.server, self.processes["webserver"], timeout_s)

    def restart_webserver(self) -> None:
        """Stop the webserver and start it again; the daemon and the runs carry on."""
        _stop(self.processes.pop("webserver"))
        self.start_webserver()


@contextmanager
def running_deployment(instance_yaml: Path, env: Mapping[str, str] | None = None,
                       prepare: Callable[[DagsterInstance], None] | None = None) -> Iterator[Deployment]:
    """Start `dagster-daemon run` and `dagster-webserver` separately on a temp DAGSTER_HOME; stop both after."""
    dagster_home = _home(instance_yaml, prepare)
    server = DagsterServer(f"http://127.0.0.1:{free_port()}", dagster_home, dagster_home / "deployment.log")
    deployment = Deployment(server, {**os.environ, **(env or {}), "DAGSTER_HOME": str(dagster_home)})
    try:
        deployment.processes["daemon"] = _start(
            ["dagster._daemon", "run", "-w", str(REPO_ROOT / "workspace.yaml")], deployment.env, server.log_path)
        deployment.start_webserver()
        yield deployment
    finally:
        for process in deployment.processes.values():
            _stop(process)
        shutil.rmtree(dagster_home, ignore_errors=True)


def _wait_until_loaded(server: DagsterServer, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {process.returncode}:\n{server.log_tail()}")
        try:
            entries = server.graphql(LOCATION_STATUS)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, RuntimeError):
            entries = []
        if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
            errors = [entry["locationOrLoadError"] for entry in entries
                      if entry["locationOrLoadError"]["__typename"] == "PythonError"]
            if errors:
                raise RuntimeError(f"code location failed to load: {errors}")
            return
        time.sleep(0.5)
    raise TimeoutError(f"dagster dev did not load the code location in {timeout_s} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group (webserver, daemon, code server, run workers); SIGKILL what lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    try:  # run workers may outlive the parent briefly; they share its process group
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --- driving it through GraphQL, as the UI does ----------------------------------------------------

REPOSITORY = {"repositoryLocationName": "mission_gym", "repositoryName": "__repository__"}
ADD_PARTITION = """
mutation($repo: RepositorySelector!, $key: String!) {
  addDynamicPartition(repositorySelector: $repo, partitionsDefName: "runs", partitionKey: $key) {
    __typename ... on PythonError { message } } }
"""
LAUNCH = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }
"""
RUN = """
query($id: ID!) { runOrError(runId: $id) { ... on Run { status startTime endTime tags { key value } } } }
"""
LOGS = """
query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
  __typename ... on MessageEvent { message } ... on ExecutionStepFailureEvent { error { message } } } } } }
"""
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def materialize(server: DagsterServer, run_name: str, *, add: bool = True, **config: Any) -> str:
    """The README's click-path: Assets -> checkpoint -> Open launchpad -> (Add new partition `run_name`) ->
    config (the tiny training plus `config`) -> Materialize. Returns the Dagster run id."""
    if add:
        added = server.graphql(ADD_PARTITION, {"repo": REPOSITORY, "key": run_name})["addDynamicPartition"]
        assert added["__typename"] == "AddDynamicPartitionSuccess", added
    params = {"selector": {**REPOSITORY, "jobName": "__ASSET_JOB", "assetSelection": [{"path": ["checkpoint"]}],
                           "assetCheckSelection": [{"assetKey": {"path": ["checkpoint"]},
                                                    "name": "parent_checkpoint_intact"}]},
              "runConfigData": {"ops": {"checkpoint": {"config": {**TINY_TRAINING, **config}}}},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": run_name}]}}
    result = server.graphql(LAUNCH, {"params": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def run_messages(server: DagsterServer, run_id: str) -> list[str]:
    """The run's log messages and step-failure messages."""
    events = server.graphql(LOGS, {"id": run_id})["logsForRun"]["events"]
    return [e.get("message") or "" for e in events] + [e["error"]["message"] for e in events if e.get("error")]


def run_status(server: DagsterServer, run_id: str) -> dict[str, Any]:
    """status, startTime, endTime and tags (as a dict) of one Dagster run."""
    run = server.graphql(RUN, {"id": run_id})["runOrError"]
    return {**run, "tags": {tag["key"]: tag["value"] for tag in run["tags"]}}


def wait_for_runs(server: DagsterServer, run_ids: list[str], timeout_s: float = 240) -> list[dict[str, Any]]:
    """The runs once all have finished."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = [run_status(server, run_id) for run_id in run_ids]
        if all(run["status"] in FINISHED for run in runs):
            return runs
        time.sleep(0.5)
    raise TimeoutError(f"runs {run_ids} unfinished after {timeout_s} s:\n{server.log_tail()}")
