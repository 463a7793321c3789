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

__all__ = ["DRAW_BLOCK", "ZeroDuration", "default_block", "stream_schedule"]

Progress = Callable[[int, int], None]
DRAW_BLOCK = 1 << 22  # iterations per block of drawn compute times (32 MiB): few draw calls per worker
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
    scratch = np.empty(P)
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
        # the event engine's order of additions (pull, compute, push); with no message costs (0 + x) + 0 is x itself
        durations = by_clock if message_cost == 0.0 and push == 0.0 else message_cost + by_clock + push
        short = durations.min(axis=1) <= 0.0
        if short.any():
            raise ZeroDuration(f"clock {c + 1 + int(np.argmax(short))}")
        for x, d in zip(by_clock, durations):
            c += 1
            need = guaranteed_clock(c, s)
            gate = float(M[need]) if need >= 1 else 0.0
            a = np.maximum(prev, gate)
            t = np.add(a, d)
            M[c] = t.max()
            if c > 1:
                wait_pw += np.subtract(a, prev, out=scratch)
            else:
                wait_pw += a
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
                else:  # eager: own previous commit (its rank, later) where admitted at it, else the gate instant
                    reads[c] = a == prev if c > 1 else np.zeros(P, dtype=bool)
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
    ordered = _CommitOrder(window, P, n_rows)
    order = ordered.order
    tie_member = None
    if ordered.tied.size:
        tie_member = np.zeros(window.size, dtype=bool)  # sorted positions in a run of equal times
        tie_member[ordered.tied] = True
    pos = np.empty(window.size, dtype=np.int64)
    pos[order] = np.arange(window.size)
    base = P * (lo - 1)  # commits of clocks below lo: all before the window's
    J = last - first + 1
    R = pos[(first - lo) * P:(last - lo + 1) * P].reshape(J, P)  # commits before (j, p), less base
    if policy == "eager":
        gate_count = ordered.at_or_before(np.array([acc.gates.pop(j) for j in range(first, last + 1)]))
        own = np.stack([reads.pop(j) for j in range(first, last + 1)])  # admitted at their own last commit
        k = first - 1 - lo  # the window row of clock first - 1 (-1 only for first = 1, whose reads are all gated)
        before = pos[k * P:(last - lo) * P] if k >= 0 else np.concatenate([np.zeros(P, np.int64), pos[:(last - lo) * P]])
        at = before.reshape(J, P)  # sorted position of each worker's previous commit
        if tie_member is not None:
            moved = own & tie_member[at]
            if moved.any():  # an equal-time commit later in the order is in the read too
                at = at.copy()
                at[moved] = ordered.at_or_before(window[order[at[moved]]]) - 1
        read = np.where(own, at + 1, gate_count[:, None])
    else:
        read = np.stack([np.broadcast_to(reads.pop(j), (P,)) for j in range(first, last + 1)]) - base
    us = R - read
    acc.total += int(us.sum())
    acc.most = max(acc.most, int(us.max()))
    due = [j for j in range(first, last + 1) if j % every == 0 or j == T]
    for j, n in zip(due, ordered.at_or_before(M[due]).tolist()):
        evals.append({"time": float(M[j]), "clock": j, "updates": base + n})


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
        acc.most = max(acc.most, _rank(rows, j, p, top, P, s, T, latest=mask is None) - r)
    if j % every == 0 or j == T:
        evals.append({"time": float(M[j]), "clock": j, "updates": _count_at_or_before(rows, M[j], j, P, s, T)})


def _rank(rows: dict[int, np.ndarray], j: int, p: int, value: float, P: int, s: int, T: int, *, latest: bool) -> int:
    """Commits before (value, worker p, clock j) in commit order: earlier times, then lower workers.

    Per row that is the times below ``value`` plus the lower workers' times equal to it: one pass,
    ``row[:p] <= value`` and ``row[p:] < value``.  ``latest``: ``value = M[j]``, so every commit of
    a clock below j is earlier (``C[q, k] < C[q, j] <= M[j]``) and only clocks j .. j + s are counted.
    """
    below = j if latest else max(1, j - s)
    rank = P * (below - 1)
    for k in range(below, min(T, j + s) + 1):
        row = rows[k]
        rank += int(np.count_nonzero(row[:p] <= value)) + int(np.count_nonzero(row[p:] < value))
    return rank


def _count_at_or_before(rows: dict[int, np.ndarray], value: float, j: int, P: int, s: int, T: int) -> int:
    """Commits at or before ``value = M[j]``: all of clocks <= j, some of the next s."""
    return P * j + sum(int(np.count_nonzero(rows[k] <= value)) for k in range(j + 1, min(T, j + s) + 1))


class _CommitOrder:
    """A window's commits (clock-major rows of P times) in commit order: time, then worker, then clock.

    ``order`` is the order of the full schedule's stable sort, found by one plain sort of 64-bit
    keys (several times cheaper than an argsort): a key holds the time in fixed point over the
    window's range (a non-decreasing map) and the window index in the low
    ``bits``.  Keys then sort by quantised time, then index; the few runs of commits that share
    their quantised time (``collided``) are put in order by (time, worker, clock) exactly;
    ``tied`` lists the sorted positions in runs of equal times.  ``62 - bits`` bits of fixed point
    over a window's range leave chance collisions rare (about n^2 / 2^(63 - bits) pairs).
    """

    def __init__(self, window: np.ndarray, P: int, n_rows: int) -> None:
        n = window.size
        bits = max(1, (n - 1).bit_length())
        self.window, self.bits, self.low = window, np.uint64(bits), np.uint64((1 << bits) - 1)
        self.origin, span = float(window.min()), float(window.max() - window.min())
        self.top = float(1 << (62 - bits))
        self.scale = self.top / span if span > 0 else 0.0
        keys = np.subtract(window, self.origin)
        keys *= self.scale  # in [0, top (1 + 2^-52)]: no clipping needed
        keys = keys.astype(np.uint64)
        keys <<= self.bits
        keys |= np.arange(n, dtype=np.uint64)
        keys.sort()
        self.keys = keys
        self.order = order = (keys & self.low).view(np.int64)  # below 2^bits: the same integers
        at = np.flatnonzero(np.diff(keys) <= self.low)  # candidates: every pair with equal quantised times is one
        at = at[(keys[at] >> self.bits) == (keys[at + 1] >> self.bits)]  # sorted positions i with i + 1 equal
        self.collided = bool(at.size)
        if self.collided:
            members = np.union1d(at, at + 1)
            starts = np.ones(members.size, dtype=bool)  # a run of equal quantised times begins here
            starts[1:] = ~np.isin(members[:-1], at) | (members[1:] != members[:-1] + 1)
            idx = order[members]
            key = (idx % P) * n_rows + idx // P  # worker-major index within the window
            order[members] = idx[np.lexsort((key, window[idx], np.cumsum(starts)))]
            ranked = window[order[members]]
            equal = (members[1:] == members[:-1] + 1) & (ranked[1:] == ranked[:-1])
            self.tied = np.union1d(members[:-1][equal], members[1:][equal])  # sorted positions in a run of equal times
        else:
            self.tied = np.zeros(0, dtype=np.int64)

    def _quantised(self, times: np.ndarray) -> np.ndarray:
        """Fixed-point times, non-decreasing in the time (rounding is monotone), clipped to the range."""
        return np.clip((times - self.origin) * self.scale, 0.0, self.top).astype(np.uint64)

    def at_or_before(self, times: np.ndarray) -> np.ndarray:
        """How many of the window's commits have a time <= each of ``times``."""
        times = np.asarray(times, dtype=float)
        q = self._quantised(times) << self.bits
        below = np.searchsorted(self.keys, q, side="left")  # a smaller quantised time: an earlier time
        upto = np.searchsorted(self.keys, q | self.low, side="right")
        for i in np.flatnonzero(upto > below):  # the same quantised time: compare the times themselves
            span = self.window[self.order[below[i]:upto[i]]]
            below[i] += int(np.count_nonzero(span <= times[i]))
        return below
