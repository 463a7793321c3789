"""The parameter server's logic, without time: gate, reads under a read policy, commits.

Both backends drive one :class:`ParameterServer`: the SimPy engine at simulated instants, the
real backend's rank 0 when messages arrive.  It asks :class:`~sspsim.ssp.ClockTable` who may
proceed and decides what a read contains (DESIGN §Semantics):

* ``eager``: everything committed so far (the read set is a prefix of the commit order);
* ``lazy``: exactly what the guarantee forces, every update of clocks <= c - 1 - s plus the
  reader's own (the SSP-legal worst case of Ho et al. 2013);
* ``push``: ESSP (Dai et al. 2015): the server pushes each completed clock to every worker, so
  a read holds every update of clocks <= the slowest committed clock, plus the reader's own.

Staleness is recorded two ways: in clocks, ``(c - 1) - visible_clock`` (bounded by s), and in
updates, the number of updates applied before this one's commit that its read missed (the
delay tau of asynchronous-SGD theory; mean P - 1 for ASP, reference/theorems.md §7.4).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np

from sspsim.optimizer import Momentum, StepSize, round_robin_index
from sspsim.ssp import ClockTable, Decision, Staleness, read_count, read_cutoff, read_visible

__all__ = ["BLOCK", "Commit", "ParameterServer", "Read", "add_scaled"]


class Read(NamedTuple):
    """What one read returned.

    ``params`` is None for timing-only problems.  The read set is either the first
    ``prefix`` updates in commit order (eager; ``cutoff = -1``), or every update of clocks
    <= ``cutoff`` plus the reader's own (lazy, push; ``prefix = -1``).
    """

    iteration: int
    params: np.ndarray | None
    visible_clock: int
    staleness: int
    updates: int
    prefix: int
    cutoff: int


class Commit(NamedTuple):
    """What one commit did: its index in commit order (1-based), the update staleness tau,
    the step eta, the applied update (None without math), and the workers it released."""

    commit_index: int
    update_staleness: int
    step: float
    update: np.ndarray | None
    released: tuple[int, ...]
    completed: int | None  # the new slowest clock, when this commit advanced it


BLOCK = 32768
"""Floats per block of an in-place update (256 KiB: the block and its slices of x and d stay in cache)."""


def add_scaled(x: np.ndarray, a: float, d: np.ndarray, block: np.ndarray) -> None:
    """``x += a * d`` in place, a block of ``block.size`` at a time through ``block``: each element
    rounds as in ``x += a * d`` (a product, then a sum), without a temporary the size of x.

    >>> x = np.ones(5); add_scaled(x, -0.5, np.arange(5.0), np.empty(2)); x.tolist()
    [1.0, 0.5, 0.0, -0.5, -1.0]
    """
    n, b = x.size, block.size
    if n == b:  # one block: no slices (the simulator's small vectors)
        np.multiply(d, a, out=block)
        x += block
        return
    for i in range(0, n, b):
        j = min(i + b, n)
        t = block[: j - i]
        np.multiply(d[i:j], a, out=t)
        x[i:j] += t


class ParameterServer:
    """x = x0 + every committed update, the clock table, and the snapshots a read policy needs."""

    def __init__(
        self,
        x0: np.ndarray | None,
        *,
        workers: int,
        staleness: Staleness,
        read_policy: str,
        step: StepSize,
        momentum: float = 0.0,
        in_place: bool = False,
    ) -> None:
        """``in_place``: apply every update ``x += -eta d`` block by block through one small
        buffer allocated once (the real server, whose vectors are large): no allocation, one
        pass over memory, the same rounding; ``Commit.update`` is then None.  Lazy and push
        reads keep their updates, so they ignore it."""
        self.table = ClockTable(workers, staleness)
        self.workers = workers
        self.staleness = staleness
        self.policy = read_policy
        self.step = step
        self.commits = 0
        self.x = None if x0 is None else np.array(x0, dtype=float)
        self._read_updates = [0] * workers
        self.momentum = [Momentum(momentum) for _ in range(workers)]
        math_ = self.x is not None
        # lazy and push: snapshots of complete clocks, per-clock sums of clocks in progress,
        # and each worker's own updates that the newest snapshot it may be served lacks.
        self._keeps_own = math_ and read_policy in ("lazy", "push")
        if self._keeps_own:
            assert self.x is not None
            self._snap: dict[int, np.ndarray] = {0: self.x.copy()}
            self._pending: dict[int, np.ndarray] = {}
            self._own: list[deque[tuple[int, np.ndarray]]] = [deque() for _ in range(workers)]
        self._block = np.empty(min(BLOCK, self.x.size)) if (in_place and self.x is not None and not self._keeps_own) else None

    # -- gate ----------------------------------------------------------------------------
    def admit(self, worker: int) -> Decision:
        """Proceed or Wait, from the shared controller."""
        return self.table.admit(worker)

    def hold(self, worker: int) -> None:
        """Queue ``worker`` at the gate until a commit releases it."""
        self.table.hold(worker)

    # -- reads ---------------------------------------------------------------------------
    def read(self, worker: int, *, copy: bool = True) -> Read:
        """Begin ``worker``'s next iteration (the gate must be open) and serve its read.

        ``copy=False`` lets an eager read return the server's own vector, for a caller that
        uses it before anything else commits (the simulator computes the gradient at once).
        """
        table = self.table
        table.begin(worker)
        c = table.clock(worker) + 1
        whole = read_cutoff(self.policy, c, self.staleness, table.min_clock)  # clocks the read holds whole
        visible = read_visible(whole, c, self.workers)
        if self.policy == "eager":  # a prefix of the commit order: every commit so far
            cutoff, prefix = -1, self.commits
            updates = self.commits
            params = None if self.x is None else (self.x.copy() if copy else self.x)
        else:
            cutoff, prefix = whole, -1
            updates = read_count(cutoff, c, self.workers)
            params = self._compose(worker, cutoff) if self._keeps_own else None
        self._read_updates[worker] = updates
        return Read(c, params, visible, c - 1 - visible, updates, prefix, cutoff)

    def _compose(self, worker: int, cutoff: int) -> np.ndarray:
        """Snapshot of clocks <= cutoff plus the worker's own later updates."""
        params = self._snap[cutoff].copy()
        for clock, u in self._own[worker]:  # in clock order, so a replay can match it bit for bit
            if clock > cutoff:
                params += u
        return params

    # -- commits -------------------------------------------------------------------------
    def commit(self, worker: int, gradient: np.ndarray | None) -> Commit:
        """Apply ``worker``'s update ``-eta * d`` (d its momentum direction of ``gradient``) and
        advance its clock."""
        table = self.table
        c = table.clock(worker) + 1
        self.commits += 1
        index = self.commits
        tau = index - 1 - self._read_updates[worker]
        eta = self._eta(worker, c, tau)
        update = None
        if self.x is not None and gradient is not None:
            d = self.momentum[worker].direction(gradient)
            if self._block is not None:
                add_scaled(self.x, -eta, d, self._block)
            else:
                update = -eta * d
                self.x += update
            if self._keeps_own:
                assert update is not None
                self._remember(worker, c, update)
        old_min = table.min_clock
        released = table.commit(worker)
        new_min = table.min_clock
        completed = new_min if new_min != old_min else None
        if completed is not None and self._keeps_own:
            self._complete(completed)
        return Commit(index, tau, eta, update, released, completed)

    def commit_eager(self, worker: int, gradient: np.ndarray, read_updates: int) -> tuple[float, tuple[int, ...]]:
        """:meth:`commit` for a caller that served an eager read itself, the simulator's hot path.

        The caller began the iteration with :meth:`~sspsim.ssp.ClockTable.enter` and computed
        ``gradient`` at :attr:`x` itself when :attr:`commits` was ``read_updates``, before
        anything else committed (what :meth:`read` with ``copy=False`` serves).  The server must
        be ``in_place`` with the eager policy.  Returns the step eta and the released workers;
        makes no :class:`Read` or :class:`Commit` and keeps no update vector.
        """
        self.commits += 1
        eta = self._eta(worker, self.table.clock(worker) + 1, self.commits - 1 - read_updates)
        add_scaled(self.x, -eta, self.momentum[worker].direction(gradient), self._block)  # type: ignore[arg-type]
        return eta, self.table.commit(worker)

    def _eta(self, worker: int, clock: int, tau: int) -> float:
        """The step of ``worker``'s update at ``clock`` with update staleness ``tau``."""
        return self.step(round_robin_index(worker, clock, self.workers), tau)

    def _remember(self, worker: int, clock: int, update: np.ndarray) -> None:
        pending = self._pending.get(clock)
        if pending is None:
            self._pending[clock] = update.copy()
        else:
            pending += update
        own = self._own[worker]
        own.append((clock, update))
        if self.policy == "lazy" and len(own) > self.staleness:  # lazy reads need only the last s own updates
            own.popleft()

    def _complete(self, clock: int) -> None:
        """Clock ``clock`` is now complete everywhere: snapshot it, drop what no read needs."""
        self._snap[clock] = self._snap[clock - 1] + self._pending.pop(clock)
        oldest = clock - (0 if self.policy == "push" else int(self.staleness))
        for k in [k for k in self._snap if k < oldest]:
            del self._snap[k]
        if self.policy == "push":  # push reads start from the newest snapshot: drop what it holds
            for own in self._own:
                while own and own[0][0] <= clock:
                    own.popleft()


    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume: clocks, parameters, snapshots, momentum buffers.

        Iterations that were running are not part of it: after a resume they begin again.
        Values are numpy arrays and Python numbers, in plain dicts and lists.
        """
        state: dict = {
            "clocks": self.table.state(),
            "commits": self.commits,
            "x": None if self.x is None else self.x.copy(),
            "momentum": [m.buffer for m in self.momentum],
        }
        if self._keeps_own:
            state["snapshots"] = dict(self._snap)
            state["pending"] = dict(self._pending)
            state["own"] = [[(c, u) for c, u in own] for own in self._own]
        return state

    def load_state_dict(self, state: dict) -> None:
        """Resume from :meth:`state_dict` (same workers, staleness and read policy)."""
        self.table = ClockTable.restore(list(state["clocks"]), self.staleness)
        self.commits = int(state["commits"])
        self.x = None if state["x"] is None else np.array(state["x"], dtype=float)
        for m, buffer in zip(self.momentum, state["momentum"]):
            m.buffer = None if buffer is None else np.array(buffer, dtype=float)
        if self._keeps_own:
            self._snap = {int(k): np.array(v, dtype=float) for k, v in state["snapshots"].items()}
            self._pending = {int(k): np.array(v, dtype=float) for k, v in state["pending"].items()}
            self._own = [deque((int(c), np.array(u, dtype=float)) for c, u in own) for own in state["own"]]
