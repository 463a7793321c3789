"""The SSP schedule in closed form: exact commit times without simulating events.

When the server applies updates instantly (no contention, ``network.apply_time = 0``), the
gate of :mod:`sspsim.ssp` fixes every time by a recurrence.  Let ``M_k`` be the instant the
slowest worker commits clock k (``M_k = max_p C[p, k]``, ``M_k = 0`` for k <= 0).  Worker p is
admitted to iteration c when its own previous commit is in *and* the slowest clock has
reached ``guaranteed_clock(c, s) = c - 1 - s``:

    A[p, c] = max(C[p, c - 1], M[c - 1 - s])
    C[p, c] = A[p, c] + pull + X[p, c] + push

so one pass over the clocks, vectorised over workers, gives the whole schedule in
O(P x clocks) array work: 10^7 iterations in seconds.  Reads follow from the times too: an
eager read at instant a sees every commit at or before a, so the slowest committed clock then
is ``#{k : M_k <= a}``, and :func:`~sspsim.ssp.read_cutoff` turns that into what each read
policy holds (a push read, ESSP, sees the same complete clocks).  Only timing comes
out of here (problem.kind = "none"); the event simulator (:mod:`sspsim.sim`) handles math and
server contention, and property tests show both agree on identical draws.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sspsim.ssp import Staleness, guaranteed_clock, read_count, read_cutoff, read_visible
from sspsim.trace import Recording

__all__ = ["batch_schedule"]


def batch_schedule(
    compute: np.ndarray,
    *,
    staleness: Staleness,
    read_policy: str,
    message_cost: float,
    push_cost: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Recording, np.ndarray]:
    """Schedule the iterations whose compute times are ``compute`` (workers x clocks).

    Returns the recording (times, reads, staleness; no math) and ``M`` (length clocks + 1,
    ``M[k]`` the instant clock k completed everywhere, ``M[0] = 0``).  A pull costs
    ``message_cost``, a push ``push_cost`` (default: the same).
    """
    push = message_cost if push_cost is None else push_cost
    workers, clocks = compute.shape
    by_clock = np.ascontiguousarray(compute.T)  # rows are clocks: the loop reads and writes contiguous rows
    admit_t = np.empty((clocks, workers))
    commit_t = np.empty((clocks, workers))
    M = np.zeros(clocks + 1)
    prev = np.zeros(workers)
    tick = max(1, clocks // 100)
    for c in range(1, clocks + 1):
        need = guaranteed_clock(c, staleness)
        gate = M[int(need)] if need >= 1 else 0.0
        a = np.maximum(prev, gate, out=admit_t[c - 1])
        done = np.add(a, message_cost + by_clock[c - 1] + push, out=commit_t[c - 1])  # the event engine's order
        M[c] = done.max()
        prev = done
        if progress is not None and (c % tick == 0 or c == clocks):
            progress(c * workers, clocks * workers)

    rec = Recording.empty(workers, clocks)
    rec.compute[:] = compute
    admit, commit = admit_t.T, commit_t.T
    rec.admit, rec.commit = admit, commit
    rec.start = admit + message_cost
    rec.wait[:, 0] = admit[:, 0]
    rec.wait[:, 1:] = admit[:, 1:] - commit[:, :-1]

    # Commit order: ties broken by worker, then clock.
    flat = commit.reshape(-1)  # worker-major copy
    order = np.argsort(flat, kind="stable")
    rank = np.empty(flat.size, dtype=np.int64)
    rank[order] = np.arange(1, flat.size + 1)
    rec.commit_index[:] = rank.reshape(workers, clocks)
    clock = np.arange(1, clocks + 1)[None, :]
    # the slowest committed clock at each admission (a lazy read does not depend on it: skip the search)
    min_clock = 0 if read_policy == "lazy" else np.searchsorted(M[1:], admit, side="right")
    cutoff = read_cutoff(read_policy, clock, staleness, min_clock)
    rec.visible[:] = read_visible(cutoff, clock, workers)
    if read_policy == "eager":
        rec.read_updates[:] = _commits_by_admission(flat[order], rec.commit_index, admit, commit, M, staleness)
    else:
        rec.read_updates[:] = read_count(cutoff, clock, workers)
    rec.update_staleness[:] = rec.commit_index - 1 - rec.read_updates
    rec.step[:] = np.nan
    return rec, M


def _commits_by_admission(
    ordered: np.ndarray, commit_index: np.ndarray, admit: np.ndarray, commit: np.ndarray, M: np.ndarray, staleness: Staleness
) -> np.ndarray:
    """Number of commits at or before each admission (what an eager read contains).

    An admission is either the worker's own previous commit (count: that commit's rank, moved
    to the last of any equal times) or the completion M_k of the clock the gate waited for
    (one search per clock), so no search over all 10^7 admissions is needed.
    """
    at_or_before = np.searchsorted(ordered, ordered, side="right")  # sorted queries: one linear pass
    out = np.empty(admit.shape, dtype=np.int64)
    out[:, 0] = np.searchsorted(ordered, admit[:, 0], side="right")
    own = at_or_before[commit_index[:, :-1] - 1]
    clocks = admit.shape[1]
    need = guaranteed_clock(np.arange(2, clocks + 1), staleness)
    gate_time = np.where(need >= 1, M[np.clip(need, 0, clocks).astype(np.int64)], 0.0)
    gate_count = np.searchsorted(ordered, gate_time, side="right")
    gated = admit[:, 1:] != commit[:, :-1]
    out[:, 1:] = np.where(gated, gate_count[None, :], own)
    return out
