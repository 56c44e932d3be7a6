"""The batched simulation core: state arrays over (arena, unit) advanced by one numba kernel.

Compiled kernels are cached on disk in a folder named after everything they are built from (see
:mod:`mission_gym.sim.cache`), so an edited rule never runs from a stale cache. The folder must be chosen
before the first kernel is defined: numba fixes a function's cache location when it is decorated.
"""

import numba

from mission_gym.sim import cache

# mission_gym.ppo_kernel defines its kernels with this package's compile settings, in the same folder.
_SOURCES = cache.dependencies(("mission_gym.sim", "mission_gym.ppo_kernel"))
_LOADED_BEFORE = cache.loaded_modules()
numba.config.CACHE_DIR = cache.cache_dir(_SOURCES)

from mission_gym.sim.core import BatchedSim  # noqa: E402  (the cache folder must be set first)

cache.check_covered(_SOURCES, _LOADED_BEFORE)

__all__ = ["BatchedSim"]
