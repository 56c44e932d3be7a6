"""Runs as partitions: one dynamic partition per run folder, keyed by the run name.

Run names carry their start time (`name-YYYYMMDD-HHMMSS`), so a key is never reused: Dagster keeps a
deleted partition's materialization history, and a new run must not inherit it.
"""

import dagster as dg

run_partitions = dg.DynamicPartitionsDefinition(name="runs")
