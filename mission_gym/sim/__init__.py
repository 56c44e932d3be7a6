"""The batched simulation core: state arrays over (arena, unit) advanced by one numba kernel.

Compiled kernels are cached on disk under a folder named after the hash of this package's sources, so a
changed kernel never reuses a stale cache (numba itself only watches the file that defines a function).
"""

import hashlib
import os
from pathlib import Path

import numba


def _kernel_cache_dir() -> str:
    sources = sorted(Path(__file__).parent.glob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    root = os.environ.get("MISSION_GYM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "mission_gym"
    )
    return os.path.join(root, f"numba-{numba.__version__}-{digest}")


numba.config.CACHE_DIR = _kernel_cache_dir()

from mission_gym.sim.core import BatchedSim, Outcome  # noqa: E402  (the cache folder must be set first)

__all__ = ["BatchedSim", "Outcome"]
