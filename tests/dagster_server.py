"""A real `dagster dev` (webserver + daemon) for tests, on 127.0.0.1, stopped by its PID.

`dagster dev` rather than `dagster-webserver` alone: runs launched from the UI wait in the run queue,
which the daemon drains (and the daemon enforces the "gpu" pool).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import DagsterInstance
from pg import free_port

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


@contextmanager
def running_dagster(instance_yaml: Path, env: Mapping[str, str] | None = None,
                    prepare: Callable[[DagsterInstance], None] | None = None,
                    timeout_s: float = 90.0) -> Iterator[DagsterServer]:
    """Start `dagster dev -w workspace.yaml` with a temp DAGSTER_HOME holding `instance_yaml`.

    `prepare` gets the instance before the server starts. Yields once the code location has loaded;
    stops the whole process group afterwards.
    """
    dagster_home = Path(tempfile.mkdtemp(prefix="mission-gym-dagster-"))
    shutil.copy(instance_yaml, dagster_home / "dagster.yaml")
    if prepare is not None:
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            prepare(instance)
    port = free_port()
    log_path = dagster_home / "dagster-dev.log"
    process_env = {**os.environ, **(env or {}), "DAGSTER_HOME": str(dagster_home)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"),
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT, env=process_env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    server = DagsterServer(f"http://127.0.0.1:{port}", dagster_home, log_path)
    try:
        _wait_until_loaded(server, process, timeout_s)
        yield server
    finally:
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
