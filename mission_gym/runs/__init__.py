"""The run folders under `runs/`: layout (every name in a run folder), record (run.json, atomic writes),
naming, checkpoints, lineage, reports (a run's latest evaluation), compat and retention. Pure library:
nothing here imports the environment, torch or Dagster."""
