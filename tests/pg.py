"""A throwaway PostgreSQL 15 server for tests: Debian's initdb + pg_ctl in a temp folder, on a loopback port.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the `postgres`
system user (the Debian package creates it) and its data folder is handed to that user.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2  # installed with dagster-postgres

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "mission-gym-test"
DB_NAME = "dagster"


@dataclass(frozen=True)
class PostgresServer:
    """Where a running test server listens, and how to reach it."""

    host: str
    port: int
    username: str
    password: str
    db_name: str

    @property
    def url(self) -> str:
        """SQLAlchemy URL naming the psycopg2 driver (a bare postgresql:// means psycopg 3 on SQLAlchemy 2.1)."""
        return f"postgresql+psycopg2://{self.username}:{self.password}@{self.host}:{self.port}/{self.db_name}"

    def dagster_env(self) -> dict[str, str]:
        """The variables dagster_home_postgres/dagster.yaml reads its connection from."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.username,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.db_name,
        }


def postgres_available() -> bool:
    """Whether Debian's PostgreSQL 15 binaries are installed (scripts/install_system_deps.sh installs them)."""
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_user() -> str | None:
    """The user to run the server as: `postgres` when we are root (initdb refuses root), else ourselves."""
    return "postgres" if os.geteuid() == 0 else None


def _run(args: list[str], user: str | None) -> None:
    result = subprocess.run(args, user=user, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a fresh server with password authentication and an empty `dagster` database; stop and delete it after."""
    user = _server_user()
    workdir = Path(tempfile.mkdtemp(prefix="mission-gym-pg-"))
    data_dir, socket_dir = workdir / "data", workdir / "sock"
    socket_dir.mkdir()
    password_file = workdir / "password"
    password_file.write_text(PASSWORD + "\n")
    if user is not None:
        account = pwd.getpwnam(user)
        for path in (workdir, socket_dir, password_file):
            os.chown(path, account.pw_uid, account.pw_gid)
    port = free_port()
    server = PostgresServer("127.0.0.1", port, "postgres", PASSWORD, DB_NAME)
    try:
        _run([str(PG_BIN / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=scram-sha-256",
              f"--pwfile={password_file}", "--no-sync"], user)
        # Listen on loopback only, with the unix socket in our folder (/var/run/postgresql may not be writable).
        options = f"-h 127.0.0.1 -p {port} -k {socket_dir} -c fsync=off"
        _run([str(PG_BIN / "pg_ctl"), "-D", str(data_dir), "-o", options, "-l", str(workdir / "log"),
              "-w", "-t", "60", "start"], user)
        try:
            _create_database(server)
            yield server
        finally:
            _run([str(PG_BIN / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"], user)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _create_database(server: PostgresServer) -> None:
    connection = psycopg2.connect(host=server.host, port=server.port, user=server.username,
                                  password=server.password, dbname="postgres")
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {server.db_name}")
    finally:
        connection.close()
