"""SGD step sizes and per-worker momentum.

The update of worker p at iteration c is ``u = -eta * d`` where ``d`` is p's direction (its
minibatch gradient, or a heavy-ball average of p's gradients) and ``eta`` is chosen by the
server when it applies the update:

* ``constant``: eta_t = lr;
* ``inv_sqrt``: eta_t = lr / sqrt(t), t = P (c - 1) + p + 1 the update's index in the
  round-robin reference order (Ho et al. 2013, Theorem 1; reference/theorems.md §3);
* ``staleness_aware``: eta is further divided by max(1, tau), tau the number of updates
  applied between the read and this commit (Zhang, Gupta, Lian & Liu 2016, arXiv 1511.05950).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sspsim.config import OptimizerConfig

__all__ = ["Momentum", "StepSize", "round_robin_index"]


def round_robin_index(worker: int, clock: int, workers: int) -> int:
    """Index t = P (c - 1) + p + 1 of update (p, c) in the serial reference order (1-based).

    >>> [round_robin_index(p, c, workers=3) for c in (1, 2) for p in range(3)]
    [1, 2, 3, 4, 5, 6]
    """
    return workers * (clock - 1) + worker + 1


@dataclass(frozen=True)
class StepSize:
    """eta(t, tau) as configured by ``[optimizer]``."""

    lr: float
    schedule: str = "inv_sqrt"
    staleness_aware: bool = False

    @classmethod
    def from_config(cls, cfg: OptimizerConfig) -> StepSize:
        return cls(lr=cfg.lr, schedule=cfg.schedule, staleness_aware=cfg.staleness_aware)

    def __call__(self, t: int, update_staleness: int) -> float:
        """Step for the update with round-robin index ``t`` and update staleness ``update_staleness``.

        >>> StepSize(0.5, "inv_sqrt")(4, 0)
        0.25
        >>> StepSize(0.5, "constant", staleness_aware=True)(4, 5)
        0.1
        """
        eta = self.lr if self.schedule == "constant" else self.lr / math.sqrt(t)
        if self.staleness_aware and update_staleness > 1:
            eta /= update_staleness
        return eta


class Momentum:
    """Heavy ball per worker: d_c = g_c + beta d_{c-1} (beta = 0: plain SGD, d = g).

    Each worker has its own buffer (what worker-side momentum computes); the server keeps the
    buffers, so its state, and a checkpoint of it, hold all optimizer state, and every read is
    still x0 plus a sum of applied update vectors.
    """

    def __init__(self, beta: float) -> None:
        self.beta = beta
        self._d: np.ndarray | None = None

    def direction(self, grad: np.ndarray) -> np.ndarray:
        """d_c; never a reference to ``grad`` kept past the call (a caller may reuse its buffer)."""
        if self.beta == 0.0:
            return grad
        self._d = grad.copy() if self._d is None else grad + self.beta * self._d
        return self._d

    @property
    def buffer(self) -> np.ndarray | None:
        return self._d

    @buffer.setter
    def buffer(self, value: np.ndarray | None) -> None:
        self._d = value
