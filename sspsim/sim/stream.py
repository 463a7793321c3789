"""Streaming planner: the batch schedule's summary figures, clock by clock, in bounded memory.

The recursion of :mod:`sspsim.schedule` (``A[p, c] = max(C[p, c - 1], M[c - 1 - s])``,
``C[p, c] = A[p, c] + pull + X[p, c] + push``) needs only the previous row of commits and the
clock maxima M, so a summary-only timing run never has to hold the (workers x clocks)
record.  Per clock this module accumulates what :class:`~sspsim.trace.Totals` needs: waits,
compute sums, the clock-staleness histogram (the visible clock is ``#{k : M_k <= A}``,
between ``c - 1 - s`` and ``c - 1``).

Update staleness needs each commit's rank in the global commit order (ties by worker, then
clock).  With positive iteration times the gate bounds where a commit of clock c can fall:
every commit of clocks <= c - 1 - s comes before it and every commit of clocks >= c + s + 1
after it (``C[q, c + s + 1] > A[q, c + s + 1] >= M[c] >= C[p, c]``).  So ranks of a block of
clocks come from sorting that block plus s clocks on either side, and the commits of older
clocks are just counted.  An eager read holds every commit at or before its admission, which
is the worker's own previous commit (its rank, moved past equal times) or the gate instant
``M[c - 1 - s]`` (one search per clock), as in :func:`sspsim.schedule._commits_by_admission`.

State: the clock maxima M (clocks + 1 floats), per-worker sums, and about (block + 2s + 1)
rows of commit times; nothing of size workers x clocks.  The figures equal
:func:`sspsim.trace.summarize` of the full batch schedule (integers exactly, float sums to
rounding), which the property tests check.  Staleness must be finite (under ASP a fast worker
can run arbitrarily far ahead of the slowest, so no window of clocks bounds the ranks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

from sspsim.ssp import Staleness, guaranteed_clock, read_count, read_cutoff, read_visible
from sspsim.trace import Totals

__all__ = ["ZeroDuration", "default_block", "stream_schedule"]

Progress = Callable[[int, int], None]
FAST_STALENESS = 8  # lazy and push reads up to this s: ranks by direct counts, no sorting


class ZeroDuration(Exception):
    """An iteration takes no time: its commit ties its admission, which only the event engine orders."""


def default_block(workers: int, staleness: Staleness) -> int:
    """Clocks per ranking block.

    Each block re-sorts 2s + 1 clocks of margin, so blocks of 10 (s + 1) clocks keep that share
    small, up to about 4 M iterations per block; but at least 10^6 iterations, where sorting
    still runs in cache, and at least 2 (s + 1) clocks.
    """
    s = 0 if math.isinf(staleness) else int(staleness)
    P = max(1, workers)
    return max(2 * (s + 1), min(10 * (s + 1), (1 << 22) // P), (1 << 20) // P)


def stream_schedule(
    blocks: Iterable[np.ndarray],
    *,
    workers: int,
    clocks: int,
    staleness: Staleness,
    read_policy: str,
    message_cost: float,
    eval_every: int,
    push_cost: float | None = None,
    block: int | None = None,
    progress: Progress | None = None,
) -> tuple[Totals, list[dict[str, float]], np.ndarray]:
    """Run the batch schedule over compute-time ``blocks`` ((workers x b) arrays, clocks in order).

    Returns the :class:`~sspsim.trace.Totals`, the evaluation rows (time and updates when each
    evaluated clock completed, like the batch engine's) and M (``M[k]`` the instant clock k
    completed everywhere, ``M[0] = 0``).  Raises :class:`ZeroDuration` on a zero-length
    iteration.
    """
    push = message_cost if push_cost is None else push_cost
    if math.isinf(staleness):
        raise ValueError("streaming needs a finite staleness")
    s = int(staleness)
    P, T = workers, clocks
    block = block or default_block(P, s)
    back = max(s, 1)  # rows before a ranking block: s for the order, 1 for an eager read's own last commit
    M = np.zeros(T + 1)
    prev = np.zeros(P)
    wait_pw = np.zeros(P)
    compute_pw = np.zeros(P)
    hist = np.zeros(s + 1, dtype=np.int64)
    rows: dict[int, np.ndarray] = {}  # clock -> commit row, for the window still needed
    reads: dict[int, np.ndarray | int] = {}  # clock -> what its reads hold (see _finalize)
    evals: list[dict[str, float]] = [{"time": 0.0, "clock": 0, "updates": 0}]
    acc = _Ranks()
    tick = max(1, T // 100)
    first = 1  # first clock whose ranks are still open
    fast = read_policy != "eager" and s <= FAST_STALENESS  # no per-commit ranks needed (see _finalize_direct)
    c = 0
    for chunk in blocks:
        by_clock = np.ascontiguousarray(chunk.T)
        for x in by_clock:
            c += 1
            need = guaranteed_clock(c, s)
            gate = float(M[need]) if need >= 1 else 0.0
            d = message_cost + x + push  # the event engine's order of additions
            if float(d.min()) <= 0.0:
                raise ZeroDuration(f"clock {c}")
            a = np.maximum(prev, gate)
            t = np.add(a, d)
            M[c] = t.max()
            wait_pw += a - prev if c > 1 else a
            compute_pw += x
            if read_policy == "lazy":
                cutoff = read_cutoff("lazy", c, s, 0)
                hist[(c - 1) - read_visible(cutoff, c, P)] += P
                reads[c] = read_count(cutoff, c, P)
            else:
                complete = _complete(M, a, c, s)
                hist += np.bincount((c - 1) - complete, minlength=s + 1)[: s + 1]
                if read_policy == "push":
                    reads[c] = read_count(complete, c, P)
                else:  # eager: own previous commit (rank, later) or the gate instant
                    reads[c] = np.where((a == prev) & (c > 1), -1, 0)
                    acc.gates[c] = gate
            rows[c] = t
            prev = t
            if fast:
                for j in range(first, (T if c == T else c - s) + 1):
                    _finalize_direct(acc, rows, reads, M, j, P, s, read_policy, eval_every, T, evals)
                    first = j + 1
                rows.pop(first - 1 - s, None)
            elif c - first + 1 >= block + s or c == T:
                last = T if c == T else c - s
                _finalize(acc, rows, reads, M, first, last, c, P, s, back, read_policy, eval_every, T, evals)
                first = last + 1
                for k in [k for k in rows if k < first - back]:
                    del rows[k]
            if progress is not None and (c % tick == 0 or c == T):
                progress(c * P, T * P)
    if c != T:
        raise ValueError(f"the compute-time blocks hold {c} clocks, expected {T}")
    n = P * T
    if fast:
        acc.total += n * (n - 1) // 2  # the ranks of all commits are 0, 1, ..., N - 1
    totals = Totals(
        workers=P, clocks=T, total_time=float(M[T]) if T else 0.0, finish=prev,
        compute_mean=float(compute_pw.sum() / n) if n else float("nan"), compute_per_worker=compute_pw,
        wait_total=float(wait_pw.sum()), wait_per_worker=wait_pw,
        staleness_histogram=np.trim_zeros(hist, "b") if hist.any() else hist[:1],
        update_staleness_sum=acc.total, update_staleness_max=acc.most,
    )
    return totals, evals, M


def _complete(M: np.ndarray, a: np.ndarray, c: int, s: int) -> np.ndarray:
    """Clocks complete at each admission, ``#{k : M_k <= a}``; at least c - 1 - s, below c."""
    lo = max(1, c - s)
    base = lo - 1
    if c - lo <= 16:
        out = np.full(a.shape, base, dtype=np.int64)
        for k in range(lo, c):
            out += M[k] <= a
        return out
    return base + np.searchsorted(M[lo:c], a, side="right")


class _Ranks:
    """Running sum and maximum of the update staleness, and the gate instants of open clocks."""

    def __init__(self) -> None:
        self.total = 0
        self.most = -(1 << 62)
        self.gates: dict[int, float] = {}


def _finalize(
    acc: _Ranks, rows: dict[int, np.ndarray], reads: dict[int, np.ndarray | int], M: np.ndarray,
    first: int, last: int, c: int, P: int, s: int, back: int, policy: str, every: int, T: int,
    evals: list[dict[str, float]],
) -> None:
    """Rank the commits of clocks first..last among the window of clocks around them.

    Commits of clocks below ``lo`` all come before, those above ``c`` (at least last + s)
    all after, so a commit's rank is ``P (lo - 1)`` plus its position in the sorted window.
    """
    lo = max(1, first - back)
    window = np.concatenate([rows[k] for k in range(lo, c + 1)])  # clock-major
    n_rows = c - lo + 1
    order = np.argsort(window)
    values = window[order]
    tied = values[1:] == values[:-1]
    tie_member = None
    if tied.any():
        tie_member = _order_ties(order, values, tied, P, n_rows)
    pos = np.empty(window.size, dtype=np.int64)
    pos[order] = np.arange(window.size)
    base = P * (lo - 1)
    for j in range(first, last + 1):
        R = base + pos[(j - lo) * P:(j - lo + 1) * P]  # commits before (j, p) in commit order
        read = reads.pop(j)
        if policy == "eager":
            assert isinstance(read, np.ndarray)
            gate_count = base + int(np.searchsorted(values, acc.gates.pop(j), side="right"))
            own = read < 0
            if j > 1 and own.any():
                at = pos[(j - 1 - lo) * P:(j - lo) * P][own]
                if tie_member is not None:
                    moved = tie_member[at]
                    at = at.copy()
                    at[moved] = np.searchsorted(values, values[at[moved]], side="right") - 1
                counts = np.full(P, gate_count, dtype=np.int64)
                counts[own] = base + at + 1  # commits at or before the own previous commit
                read = counts
            else:
                read = np.full(P, gate_count, dtype=np.int64)
        us = R - read
        acc.total += int(us.sum())
        acc.most = max(acc.most, int(us.max()))
        if j % every == 0 or j == T:
            evals.append({"time": float(M[j]), "clock": j, "updates": base + int(np.searchsorted(values, M[j], side="right"))})


def _finalize_direct(
    acc: _Ranks, rows: dict[int, np.ndarray], reads: dict[int, np.ndarray | int], M: np.ndarray,
    j: int, P: int, s: int, policy: str, every: int, T: int, evals: list[dict[str, float]],
) -> None:
    """Update staleness of clock j for lazy and push reads, without ranking every commit.

    Their reads count ``(P - 1) cutoff + (c - 1)`` updates, the same for every worker of a
    cutoff, and the ranks of all commits are 0..N-1 whatever their order, so the sum needs
    no ranks and the maximum over the workers of one cutoff is the rank of their last commit
    in commit order, counted directly in the clocks j - s .. j + s around it.
    """
    t = rows[j]
    read = reads.pop(j)
    acc.total -= P * read if isinstance(read, int) else int(np.sum(read))  # the ranks' sum is added at the end
    if isinstance(read, np.ndarray):  # push: one group per cutoff
        groups = [(int(g), read == g) for g in np.unique(read)]
    else:
        groups = [(read, None)]
    for r, mask in groups:
        top = float(t.max() if mask is None else t[mask].max())
        tied = np.flatnonzero(t == top) if mask is None else np.flatnonzero((t == top) & mask)
        p = int(tied[-1])  # the last of the group in commit order: latest time, then highest worker
        acc.most = max(acc.most, _rank(rows, j, p, top, P, s, T) - r)
    if j % every == 0 or j == T:
        evals.append({"time": float(M[j]), "clock": j, "updates": _count_at_or_before(rows, M[j], j, P, s, T)})


def _rank(rows: dict[int, np.ndarray], j: int, p: int, value: float, P: int, s: int, T: int) -> int:
    """Commits before (value, worker p, clock j) in commit order: earlier times, then lower workers."""
    rank = P * max(0, j - 1 - s)
    for k in range(max(1, j - s), min(T, j + s) + 1):
        row = rows[k]
        rank += int(np.count_nonzero(row < value)) + int(np.count_nonzero(row[:p] == value))
    return rank


def _count_at_or_before(rows: dict[int, np.ndarray], value: float, j: int, P: int, s: int, T: int) -> int:
    """Commits at or before ``value = M[j]``: all of clocks <= j, some of the next s."""
    return P * j + sum(int(np.count_nonzero(rows[k] <= value)) for k in range(j + 1, min(T, j + s) + 1))


def _order_ties(order: np.ndarray, values: np.ndarray, tied: np.ndarray, P: int, n_rows: int) -> np.ndarray:
    """Put equal commit times in (worker, clock) order, as the full schedule's stable sort does.

    Returns a mask of the sorted positions that belong to a run of equal times.
    """
    member = np.zeros(values.size, dtype=bool)
    member[:-1] |= tied
    member[1:] |= tied
    at = np.flatnonzero(member)
    starts = np.ones(at.size, dtype=bool)
    starts[1:] = (at[1:] != at[:-1] + 1) | (values[at[1:]] != values[at[:-1]])
    run = np.cumsum(starts)
    idx = order[at]
    key = (idx % P) * n_rows + idx // P  # worker-major index within the window
    order[at] = idx[np.lexsort((key, run))]
    return member
