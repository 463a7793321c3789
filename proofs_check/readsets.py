"""Read sets recovered from a trace, and Ho et al.'s inconsistency sets A_t, B_t.

Every read policy of sspsim reads, for each worker q, a *prefix* of q's updates: q's
iterations 1..K[r, q].  The trace gives that prefix:

* ``eager``: the read holds the first ``read_updates`` commits in commit order (or, for a trace
  without that column, every commit at or before the read instant);
* ``lazy`` and ``push``: every update of clocks <= the cutoff (the recorded ``visible_clock``)
  plus the reader's own earlier updates.

Against the round-robin reference order t = P (c - 1) + p + 1 (Ho et al. 2013), the read of
update t misses A_t (reference updates before t it lacks) and holds B_t (updates after t):
with ``ref[q] = c`` for q < p and ``c - 1`` otherwise, worker q contributes
``|K[r, q] - ref[q]|`` elements, all from one side, so ``gamma_t = sum_q |K[r, q] - ref[q]|``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sspsim.proofs_check.evidence import RunData

__all__ = ["MAX_CELLS", "ReadSets", "read_sets"]

MAX_CELLS = 50_000_000  # rows x workers held in memory


@dataclass
class ReadSets:
    """Per-row, per-worker visible prefixes K (rows in commit order) and what they imply."""

    K: np.ndarray  # (rows, P)
    worker: np.ndarray
    clock: np.ndarray
    source: str
    cutoff: np.ndarray | None = None  # lazy/push: every update of clocks <= cutoff is in the read

    @cached_property
    def reference(self) -> np.ndarray:
        """ref[r, q]: how many of q's updates precede row r's update in the round-robin order."""
        P = self.K.shape[1]
        q = np.arange(P)[None, :]
        return self.clock[:, None] - 1 + (q < self.worker[:, None])

    @cached_property
    def gamma(self) -> np.ndarray:
        """|A_t| + |B_t| per row."""
        return np.abs(self.K - self.reference).sum(axis=1)

    @cached_property
    def visible(self) -> np.ndarray:
        """min_q K: the visible clock the read set implies."""
        return self.K.min(axis=1)

    @cached_property
    def own(self) -> np.ndarray:
        """K[r, p]: how many of the reader's own updates the read holds."""
        return self.K[np.arange(len(self.K)), self.worker]

    def window(self) -> tuple[np.ndarray, np.ndarray]:
        """How far back the oldest missing and how far ahead the newest extra update lie, per row.

        ``back[r] = t - min(A_t)`` and ``ahead[r] = max(B_t) - t`` (0 where the set is empty).
        Update (q, k) has index P (k - 1) + q + 1.
        """
        P = self.K.shape[1]
        t = P * (self.clock - 1) + self.worker + 1
        q = np.arange(P)[None, :]
        K, ref = self.K, self.reference
        oldest_missing = np.where(K < ref, P * K + q + 1, np.iinfo(np.int64).max).min(axis=1)
        newest_extra = np.where(K > ref, P * (K - 1) + q + 1, np.iinfo(np.int64).min).max(axis=1)
        back = np.where(oldest_missing < np.iinfo(np.int64).max, t - oldest_missing, 0)
        ahead = np.where(newest_extra > np.iinfo(np.int64).min, newest_extra - t, 0)
        return back, ahead


def read_sets(rd: RunData) -> ReadSets | str:
    """The read sets of a run, or a one-line reason they cannot be recovered."""
    if rd.trace is None:
        return "no trace.csv (the run used trace = \"summary\")"
    n_rows, P = len(rd.trace), rd.P
    if n_rows * P > MAX_CELLS:
        return f"{n_rows} rows x {P} workers is too large to hold the read sets"
    worker, clock = rd.worker, rd.clock
    K = np.empty((n_rows, P), dtype=np.int64)
    if rd.policy == "eager":
        if rd.has("read_updates"):
            prefix = rd.trace["read_updates"].to_numpy().astype(np.int64)
            source = "the first read_updates commits"
        else:
            prefix = rd.commits_at(rd.read_instant)
            source = "every commit at or before the read"
        for q in range(P):
            positions = np.flatnonzero(worker == q)
            K[:, q] = np.searchsorted(positions, prefix, side="left")
    else:
        cutoff = rd.trace["visible_clock"].to_numpy().astype(np.int64)
        K[:] = cutoff[:, None]
        K[np.arange(n_rows), worker] = clock - 1
        source = "clocks <= the recorded cutoff plus the reader's own updates"
        return ReadSets(K=K, worker=worker, clock=clock, source=source, cutoff=cutoff)
    return ReadSets(K=K, worker=worker, clock=clock, source=source)
