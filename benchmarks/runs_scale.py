"""Time listing the runs (without and with the record index), planning a cleanup dry run, and the
dashboard's first write in a fresh process, at 1,000 and 10,000 synthetic runs (one run.json each).

    python benchmarks/runs_scale.py     # targets at 10,000 runs: warm listing <= 0.5 s, plan <= 2 s,
                                        # dashboard first write <= 3 s
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_runs import make_runs

from mission_gym.runs.index import INDEX_FILE
from mission_gym.runs.lineage import list_runs
from mission_gym.runs.retention import plan_cleanup

WITH_METRICS = 100
_IN_FRESH_PROCESS = """
import sys, time
from pathlib import Path
from mission_gym.dashboard import generate_unified_dashboard
from mission_gym.runs.lineage import list_runs
action = {"list": list_runs, "dashboard": generate_unified_dashboard}[sys.argv[2]]
start = time.perf_counter()
action(Path(sys.argv[1]))
print(time.perf_counter() - start)
"""


def _seconds(action: Callable[[Path], object], root: Path) -> float:
    start = time.perf_counter()
    action(root)
    return time.perf_counter() - start


def _in_fresh_process(root: Path, action: str) -> float:
    """Seconds `action` ("list" or "dashboard") takes in a new process (no in-process cache; the index is there)."""
    command = [sys.executable, "-c", _IN_FRESH_PROCESS, str(root), action]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    for count in (1_000, 10_000):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "runs"
            make_runs(root, count, WITH_METRICS)
            (root / INDEX_FILE).unlink(missing_ok=True)
            cold = _seconds(list_runs, root)  # no index: every run.json read and validated
            warm = _seconds(list_runs, root)  # the index answers for every unchanged record (kept in memory)
            fresh = _in_fresh_process(root, "list")  # the same, unpickling the index
            plan = _seconds(lambda r: plan_cleanup(r, keep_active_lineage=True), root)
            page = _in_fresh_process(root, "dashboard")
            print(f"{count:>6,} runs: listing cold {cold:.2f} s, warm {warm:.2f} s (fresh process {fresh:.2f} s); "
                  f"cleanup dry-run plan {plan:.2f} s; dashboard first write (fresh process) {page:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
