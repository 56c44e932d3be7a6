"""Shared by the pipelines tests: a training config small enough for CI, and reading Dagster events back."""

from pathlib import Path
from typing import Any

import dagster as dg

REPO_CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# A run of ~1 s on 2 cores: two rollouts of 4 arenas x 64 decisions, one checkpoint per rollout.
TINY_TRAINING: dict[str, Any] = {
    "timesteps": 512, "n_envs": 4, "n_steps": 64, "batch_size": 128, "n_epochs": 1, "net_arch": [32, 32],
    "checkpoint_freq": 256, "seed": 7, "tensorboard": False, "torch_threads": 1,
}


def checkpoint_config(**overrides: Any) -> dict[str, Any]:
    """Run config materializing a checkpoint partition: the tiny training plus `overrides` (parent_checkpoint, ...)."""
    return {"ops": {"checkpoint": {"config": {**TINY_TRAINING, **overrides}}}}


def train_run_config(**overrides: Any) -> dict[str, Any]:
    """Run config of the train_run job: the tiny training plus `overrides` (run_name, parent_checkpoint, ...)."""
    return {"ops": {"train_new_run": {"config": {**TINY_TRAINING, **overrides}}}}


def values(event: Any) -> dict[str, Any]:
    """An event's metadata as plain values (Dagster wraps each in a MetadataValue)."""
    return {key: value.value for key, value in event.metadata.items()}


def latest_materialization_metadata(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                                    partition: str | None = None) -> dict[str, Any]:
    """Plain metadata of the latest materialization of an asset (partition)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    assert records, f"{asset_key.to_user_string()} [{partition}] was never materialized"
    return values(records[0].asset_materialization)
