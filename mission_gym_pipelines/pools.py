"""The concurrency pools: how many trainings and evaluations run at once, whoever launched them.

dagster.yaml's `concurrency.pools.default_limit` (1) sizes every pool; Dagster 1.13 has no per-pool
limit in dagster.yaml, so a pool that needs another size is set on the instance:
`dagster instance concurrency set gpu N` (N GPU nodes) or `... set evaluation N` (N spare cores).
A pool holds every run that contains a step declaring it (`granularity: run`), also UI materializations,
which carry no custom tags a run-tag limit could match.
"""

import dagster as dg

GPU_POOL = "gpu"
EVALUATION_POOL = "evaluation"
POOLS = (GPU_POOL, EVALUATION_POOL)
# Read by the K8s run launcher from run tags and by k8s_job_executor from op tags (dagster issue #20429).
GPU_K8S_TAGS = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}


def ensure_pools(instance: dg.DagsterInstance) -> None:
    """Create each pool's limit (dagster.yaml's default_limit) now if the instance has none yet.

    Dagster creates it lazily, in the queue pass that first sees a run using the pool, and that pass
    does not enforce it yet (dagster 1.13.27): on a fresh instance the first two training runs would
    start together. The demo and the tests call this; `dagster instance concurrency set gpu 1` does the same.
    """
    existing = instance.event_log_storage.get_concurrency_keys()
    for pool in POOLS:
        if pool not in existing:
            instance.event_log_storage.initialize_concurrency_limit_to_default(pool)
