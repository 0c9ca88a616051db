"""One seeded random generator for the whole library.

Parameter initialisation, dropout masks and data shuffling all draw from
``generator()``; ``manual_seed(seed)`` makes every one of them repeatable,
and a seed gives the same numbers on NumPy and on CuPy.

Two kinds of draws keep that promise in two ways:

* Numbers needed once, or on the host anyway (initial weights, the data
  order), are drawn with NumPy on the CPU and moved to the backend afterwards.
* Numbers needed in every training step, as large as a feature map (dropout
  masks), are made where the data lives by ``uniform(xp, shape)``: one 64-bit
  key is drawn from ``generator()`` on the host, and element ``i`` gets the
  ``i``-th output of the SplitMix64 generator (Steele, Lea and Flood, 2014)
  started at that key. It is integer arithmetic modulo 2**64, exact on NumPy
  and on CuPy alike, so both give the same numbers bit for bit, and nothing of
  the mask's size crosses between host and GPU.
"""
import numpy as np

__all__ = ["manual_seed", "generator", "uniform"]

_generator = np.random.default_rng(0)

# SplitMix64's constants: the step (2**64 / golden ratio, odd) and the two
# multipliers of its output mix.
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def manual_seed(seed):
    """Seed parameter init, dropout and data shuffling at once. ``seed`` is an int from 0 to
    2**64 - 1; a negative seed, which PyTorch's ``torch.manual_seed`` takes (as its 64-bit two's
    complement), is refused here."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        # torch.manual_seed takes up to 2**64 - 1 too (and negative seeds, refused here)
        raise ValueError(f"manual_seed: seed must be an integer from 0 to 2**64 - 1, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator():
    """The shared ``numpy.random.Generator``."""
    return _generator


def uniform(xp, shape):
    """float32 numbers uniform on [0, 1), of ``shape``, made with the array module ``xp``.

    The key comes from ``generator()`` (one draw, so ``manual_seed`` repeats
    it); the numbers are SplitMix64's outputs ``key + (i + 1) * gamma``, mixed,
    whose top 24 bits make an exact float32 ``k / 2**24``. Same seed, same
    numbers on NumPy and on CuPy.
    """
    key = np.uint64(_generator.integers(0, 2 ** 63, dtype=np.int64))
    size = int(np.prod(shape, dtype=np.int64))
    z = (xp.arange(1, size + 1, dtype=xp.uint64) * _GAMMA) + key        # wraps modulo 2**64
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(40)).astype(xp.float32) * np.float32(2.0 ** -24)).reshape(shape)
