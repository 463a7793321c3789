"""Which samples worker p uses at clock c: a pure function of (seed, p, c).

The simulator and the real backend call the same function, so both backends train on the
same data order.  It is a counter-based hash (SplitMix64, Steele, Lea & Flood 2014) rather
than a seeded generator object: creating a ``numpy.random.Generator`` per iteration would
cost more than a small gradient.  Indices are drawn with replacement; the modulo bias is
below n / 2**64.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sample_indices"]

_MASK = (1 << 64) - 1
_G = 0x9E3779B97F4A7C15
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB
_GAMMA = np.uint64(_G)
_M1 = np.uint64(_C1)
_M2 = np.uint64(_C2)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _mix_int(z: int) -> int:
    """SplitMix64 finaliser on one Python int."""
    z = ((z ^ (z >> 30)) * _C1) & _MASK
    z = ((z ^ (z >> 27)) * _C2) & _MASK
    return z ^ (z >> 31)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrap-around arithmetic)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def sample_indices(seed: int, worker: int, clock: int, batch: int, n: int) -> np.ndarray:
    """The ``batch`` sample indices in ``[0, n)`` of worker ``worker`` at iteration ``clock``.

    >>> sample_indices(0, worker=1, clock=3, batch=4, n=100)
    array([46, 87, 54, 51])
    >>> bool((sample_indices(0, 1, 3, 4, 100) == sample_indices(0, 1, 3, 4, 100)).all())
    True
    >>> bool((sample_indices(0, 1, 3, 4, 100) == sample_indices(0, 2, 3, 4, 100)).all())
    False
    """
    h = _mix_int((seed + _G) & _MASK)
    h = _mix_int(h ^ ((worker * _G + _C1) & _MASK))
    h = _mix_int(h ^ ((clock * _G + _C2) & _MASK))
    counters = np.arange(1, batch + 1, dtype=np.uint64) * _GAMMA + np.uint64(h)
    return (_mix(counters) % np.uint64(n)).astype(np.int64)
