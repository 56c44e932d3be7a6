"""Where the runs live: one resource, so the webserver, the daemon and every run worker agree on the folder."""

import os
from pathlib import Path

import dagster as dg
from pydantic import Field


class RunsRoot(dg.ConfigurableResource):
    """The runs folder and the config files the pipelines read.

    Relative paths resolve against the working directory (start Dagster from the repository root, as
    the CLIs are run). On several machines point `runs_root` at a shared volume: every machine must see
    the same run folders, since a branch reads its parent's checkpoint from there.
    """

    runs_root: str = Field(default="runs", description="Folder holding one sub-folder per run (runs/<name>/).")
    config_dir: str = Field(default="configs", description="Config directory new runs are trained with.")
    retention_policy: str = Field(
        default="configs/retention.yaml", description="Retention policy the retention sensor enforces."
    )

    @classmethod
    def from_env(cls) -> "RunsRoot":
        """Defaults overridable by MISSION_GYM_RUNS_ROOT, MISSION_GYM_CONFIG_DIR, MISSION_GYM_RETENTION_POLICY."""
        defaults = cls()
        return cls(
            runs_root=os.environ.get("MISSION_GYM_RUNS_ROOT", defaults.runs_root),
            config_dir=os.environ.get("MISSION_GYM_CONFIG_DIR", defaults.config_dir),
            retention_policy=os.environ.get("MISSION_GYM_RETENTION_POLICY", defaults.retention_policy),
        )

    @property
    def path(self) -> Path:
        return Path(self.runs_root)

    def run_dir(self, run_name: str) -> Path:
        return self.path / run_name
