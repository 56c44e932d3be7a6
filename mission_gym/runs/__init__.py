"""The run folders under `runs/`: record (run.json, atomic writes), naming, checkpoints, lineage, compat and
retention. Pure library: nothing here imports the environment, torch or Dagster."""
