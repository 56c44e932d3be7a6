"""Time to write runs/dashboard.html for 1,000 and 10,000 synthetic runs (one run.json each; the first
100 with 400 metrics lines, a config snapshot and an evaluation), first call in a fresh process and the
next call (only stats, as while training).

    python benchmarks/dashboard_scale.py          # target: <= 3 s at 10,000 runs
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_runs import make_runs  # noqa: E402

from mission_gym.dashboard import generate_unified_dashboard  # noqa: E402

WITH_METRICS = 100


def main() -> None:
    for count in (1_000, 10_000):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "runs"
            make_runs(root, count, WITH_METRICS)
            start = time.perf_counter()
            page = generate_unified_dashboard(root)
            first = time.perf_counter() - start
            start = time.perf_counter()
            generate_unified_dashboard(root)
            again = time.perf_counter() - start
            size = page.stat().st_size / 1e6
            print(f"{count:>6,} runs ({WITH_METRICS} with metrics): first write {first:.2f} s, next {again:.2f} s, "
                  f"page {size:.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
