"""Mission Gym's Dagster code location: runs as partitioned assets over the `mission_gym` library.

`definitions.py` assembles it (workspace.yaml loads `mission_gym_pipelines.definitions:defs`); nothing in
`mission_gym` imports Dagster.
"""
