"""One seeded random generator for the whole library.

Parameter initialisation, dropout masks and data shuffling all draw from
``generator()``; ``manual_seed(seed)`` makes every one of them repeatable.
Numbers are drawn with NumPy on the CPU and moved to the backend afterwards,
so a seed gives the same numbers on NumPy and on CuPy.
"""
import numpy as np

__all__ = ["manual_seed", "generator"]

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Seed parameter init, dropout and data shuffling at once."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator():
    """The shared ``numpy.random.Generator``."""
    return _generator
