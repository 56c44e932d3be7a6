"""Per-arena random numbers (SplitMix64): each arena owns one 64-bit state, so an arena's trajectory depends
only on its own seed, never on how many arenas are stepped together."""

import numpy as np
from mission_gym.sim.jit import jit, jit_inline

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@jit_inline
def next_u64(rng: np.ndarray, b: int) -> np.uint64:
    """Advance arena `b`'s generator and return 64 random bits."""
    rng[b] += _GOLDEN
    z = rng[b]
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@jit_inline
def uniform(rng: np.ndarray, b: int) -> float:
    """Uniform float in [0, 1)."""
    return float(next_u64(rng, b) >> np.uint64(11)) * _TO_UNIT


@jit
def uniform_range(rng: np.ndarray, b: int, low: float, high: float) -> float:
    """Uniform float in [low, high)."""
    return low + (high - low) * uniform(rng, b)


@jit
def normal(rng: np.ndarray, b: int) -> float:
    """Standard normal deviate (Box-Muller)."""
    u1 = max(uniform(rng, b), 1e-300)
    u2 = uniform(rng, b)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def seed_state(seed: int) -> np.uint64:
    """Initial generator state for an integer seed (mixed, so nearby seeds give unrelated streams)."""
    return np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0]
