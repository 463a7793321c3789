"""The SSP controller: the one place where the Stale Synchronous Parallel rule lives.

Convention (DESIGN §Semantics; Ho et al. 2013, rules 1-4, read in the NIPS paper as recalled in
reference/theorems.md §1 [R]):

* P workers; the *clock* ``c_p`` of worker p is the number of iterations it has **committed**
  (the server has applied them).  Iterations are numbered 1, 2, 3, ...
* **Gate.**  Worker p may *begin* iteration ``c = c_p + 1`` only if ``c_p - min_q c_q <= s``,
  i.e. ``min_q c_q >= c - 1 - s``.  s = 0 is BSP, s = inf is ASP.  Right after a commit the
  spread of committed clocks can momentarily be s + 1; no worker ever *begins* more than s
  clocks ahead of the slowest committed clock.
* **Read guarantee.**  The read for iteration c holds every update of every worker from
  iterations <= c - 1 - s (the *guaranteed clock*), plus all of p's own earlier updates.
* ``visible_clock`` of a read = min over workers q of the largest k such that q's updates
  1..k are all in the read; ``staleness = (c - 1) - visible_clock`` and the guarantee says
  ``staleness <= s``.
* **Read rule.**  A ``lazy`` or ``push`` read holds every update of clocks <= its *cutoff*
  plus the reader's own: lazy reads exactly the guarantee (cutoff ``max(0, c - 1 - s)``, the
  SSP-legal worst case), push (ESSP, Dai et al. 2015) every completed clock (cutoff = the
  slowest committed clock).  An ``eager`` read holds every commit so far, so its complete
  clocks are again the slowest committed clock.  :func:`read_cutoff`, :func:`read_visible`
  and :func:`read_count` state this once, on ints and numpy arrays alike.

The gate waits for exactly the clock the read guarantee needs: both are
:func:`guaranteed_clock`.  Nothing in this module reads a clock, sleeps, or knows about
SimPy or torch; the simulator and the real backend both ask it.

:class:`ClockTable` finds the slowest clock without scanning the workers: it keeps a count
of workers per clock value, and since clocks only grow by one the minimum only moves up,
so each commit costs O(1) amortised (10,000 workers stay cheap).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, TypeVar, cast

from sspsim.errors import ProtocolError

__all__ = [
    "INF",
    "ClockTable",
    "Decision",
    "Proceed",
    "Staleness",
    "Wait",
    "guaranteed_clock",
    "may_begin",
    "read_count",
    "read_cutoff",
    "read_visible",
    "staleness_of",
    "visible_clock",
]

Staleness: TypeAlias = "int | float"
"""A staleness bound s: a non-negative int, or ``math.inf`` for ASP."""

INF: Final = math.inf


def guaranteed_clock(iteration, staleness):  # type: ignore[no-untyped-def]
    """The clock ``c - 1 - s`` that a read for ``iteration`` must fully contain.

    It is also the clock the slowest worker must have committed before ``iteration`` may
    begin.  Works on ints and, element-wise, on numpy arrays (the batch schedule uses it).
    Values below 1 mean "nothing is required".

    >>> guaranteed_clock(5, 3)
    1
    >>> guaranteed_clock(5, 0)          # BSP: everything of the previous clock
    4
    >>> guaranteed_clock(5, INF)        # ASP: nothing
    -inf
    """
    return iteration - 1 - staleness


def may_begin(iteration: int, min_clock: int, staleness: Staleness) -> bool:
    """Whether a worker may begin ``iteration`` when the slowest committed clock is ``min_clock``.

    >>> may_begin(4, min_clock=0, staleness=3)   # 3 clocks ahead of the slowest: allowed
    True
    >>> may_begin(5, min_clock=0, staleness=3)   # 4 ahead: blocked
    False
    >>> may_begin(1, min_clock=0, staleness=0)   # everybody may begin iteration 1
    True
    """
    return min_clock >= guaranteed_clock(iteration, staleness)


Clocks = TypeVar("Clocks", int, Any)
"""A clock, or a numpy array of clocks (the batch schedule works on whole arrays at once).
Typed loosely on purpose: this module stays free of numpy, arrays are used by duck typing."""


def read_cutoff(policy: str, iteration: Clocks, staleness: Staleness, min_clock: Clocks) -> Clocks:
    """The clock k such that the read for ``iteration`` holds every update of clocks <= k.

    ``lazy`` reads exactly what the guarantee forces: ``max(0, c - 1 - s)``.  ``push`` (ESSP)
    and ``eager`` hold every completed clock: ``min_clock``, the slowest committed clock when
    the read is served (an eager read holds later commits too, but no further complete clock).
    ``iteration`` and ``min_clock`` may be ints or numpy arrays (broadcast together).

    >>> read_cutoff("lazy", 5, 3, min_clock=4)
    1
    >>> read_cutoff("lazy", 3, 3, min_clock=2)   # nothing guaranteed yet
    0
    >>> read_cutoff("push", 5, 3, min_clock=4)
    4
    >>> import numpy as np
    >>> read_cutoff("lazy", np.array([1, 4, 6]), 2, min_clock=np.array([0, 3, 5])).tolist()
    [0, 1, 3]
    """
    if policy != "lazy":
        return min_clock
    need = guaranteed_clock(iteration, staleness)
    if isinstance(need, (int, float)):
        return cast(Clocks, int(max(0, need)))
    return cast(Clocks, need.clip(0).astype(int))  # a numpy array, element-wise


def read_visible(cutoff: Clocks, iteration: Clocks, workers: int) -> Clocks:
    """``visible_clock`` of a read holding every update of clocks <= ``cutoff`` plus the reader's own.

    Every other worker's prefix is ``cutoff``; the reader's own is ``c - 1`` >= cutoff.  A lone
    worker has no other: its read holds all its updates.

    >>> read_visible(2, 5, workers=3)
    2
    >>> read_visible(2, 5, workers=1)
    4
    """
    return iteration - 1 if workers == 1 else cutoff


def read_count(cutoff: Clocks, iteration: Clocks, workers: int) -> Clocks:
    """Updates in a read holding every update of clocks <= ``cutoff`` plus the reader's own.

    The P - 1 other workers contribute ``cutoff`` each, the reader its ``c - 1`` earlier updates.

    >>> read_count(2, 5, workers=3)
    8
    >>> import numpy as np
    >>> read_count(np.array([0, 2]), np.array([1, 5]), workers=3).tolist()
    [0, 8]
    """
    return (workers - 1) * cutoff + (iteration - 1)


def visible_clock(prefixes: Iterator[int] | list[int] | tuple[int, ...]) -> int:
    """Min over workers of the largest k with that worker's updates 1..k all in the read.

    ``prefixes[q]`` is that k for worker q.

    >>> visible_clock([4, 2, 7])
    2
    """
    return min(prefixes)


def staleness_of(iteration: int, visible: int) -> int:
    """Clock staleness of a read for ``iteration``: ``(iteration - 1) - visible_clock``.

    >>> staleness_of(10, visible=6)
    3
    """
    return iteration - 1 - visible


@dataclass(frozen=True, slots=True)
class Proceed:
    """The gate is open: the worker may begin its next iteration now."""


@dataclass(frozen=True, slots=True)
class Wait:
    """The gate is closed until the slowest committed clock reaches ``min_clock``."""

    min_clock: int


Decision: TypeAlias = "Proceed | Wait"
_PROCEED: Final = Proceed()
_IDLE, _ADMITTED, _RUNNING = 0, 1, 2  # a worker's state in the clock table


class ClockTable:
    """Committed clocks of P workers, the SSP gate, and the queue of workers held at it.

    A worker's life is ``admit`` (ask), ``begin`` (start an iteration the gate allows),
    ``commit`` (the server applied it).  A worker the gate holds calls ``hold``; the
    ``commit`` that lifts the slowest clock far enough returns it as released, and admitted:
    its ``begin`` does not ask the gate again.  ``admit_or_hold`` asks and admits or holds in one
    evaluation of the gate; ``enter`` also begins (the event engines' hot path).

    >>> table = ClockTable(workers=2, staleness=0)
    >>> table.begin(0); table.begin(1)
    >>> table.commit(0)
    ()
    >>> table.admit(0)                  # BSP: worker 0 waits for worker 1's first commit
    Wait(min_clock=1)
    >>> table.hold(0)
    >>> table.commit(1)                 # releases worker 0
    (0,)
    >>> table.min_clock, table.clock(0), table.clock(1)
    (1, 1, 1)
    """

    __slots__ = ("_clocks", "_counts", "_held", "_max", "_min", "_state", "staleness", "workers")

    def __init__(self, workers: int, staleness: Staleness) -> None:
        if workers < 1:
            raise ProtocolError(f"workers = {workers}: need at least one worker")
        if staleness < 0:
            raise ProtocolError(f"staleness = {staleness}: must be >= 0")
        self.workers = workers
        self.staleness = staleness
        self._clocks = [0] * workers
        self._counts: dict[int, int] = {0: workers}  # clock value -> how many workers hold it
        self._min = 0
        self._max = 0
        self._state = [_IDLE] * workers  # idle, admitted (the gate let it through) or running
        self._held: dict[int, list[int]] = {}  # required min clock -> workers held for it

    # -- queries -----------------------------------------------------------------------
    @property
    def min_clock(self) -> int:
        """The slowest committed clock, O(1)."""
        return self._min

    @property
    def max_clock(self) -> int:
        """The fastest committed clock, O(1)."""
        return self._max

    def clock(self, worker: int) -> int:
        """Iterations ``worker`` has committed."""
        return self._clocks[worker]

    def clocks(self) -> tuple[int, ...]:
        """All committed clocks (O(P): for tests and checkpoints, not for the hot path)."""
        return tuple(self._clocks)

    def running(self, worker: int) -> bool:
        """Whether ``worker`` has begun an iteration that is not committed yet."""
        return self._state[worker] == _RUNNING

    def admit(self, worker: int) -> Decision:
        """May ``worker`` begin its next iteration now?  :class:`Proceed` or :class:`Wait`."""
        need = guaranteed_clock(self._clocks[worker] + 1, self.staleness)
        if self._min >= need:
            return _PROCEED
        return Wait(min_clock=int(need))

    # -- checkpoints ---------------------------------------------------------------------
    def state(self) -> list[int]:
        """What a checkpoint needs: the committed clocks (running iterations are redone)."""
        return list(self._clocks)

    @classmethod
    def restore(cls, clocks: list[int], staleness: Staleness) -> ClockTable:
        """A table with these committed clocks, nobody running or held.

        >>> t = ClockTable.restore([3, 5, 4], staleness=2)
        >>> t.min_clock, t.max_clock, t.admit(1)
        (3, 5, Proceed())
        """
        table = cls(len(clocks), staleness)
        table._clocks = list(clocks)
        table._counts = {}
        for c in clocks:
            table._counts[c] = table._counts.get(c, 0) + 1
        table._min, table._max = min(clocks), max(clocks)
        return table

    # -- transitions -------------------------------------------------------------------
    def admit_or_hold(self, worker: int) -> bool:
        """Admit ``worker``'s next iteration (True), or hold it at the gate (False) until a
        :meth:`commit` releases it; one evaluation of the gate either way.

        An admitted or released worker then calls :meth:`begin`, which does not ask the gate again.
        """
        state = self._state
        if state[worker]:
            raise ProtocolError(f"worker {worker} asks the gate before committing its last iteration")
        need = self._clocks[worker] - self.staleness  # guaranteed_clock(clock + 1, s), inlined: the hot path
        if self._min >= need:
            state[worker] = _ADMITTED
            return True
        self._held.setdefault(int(need), []).append(worker)
        return False

    def enter(self, worker: int) -> bool:
        """:meth:`begin` ``worker``'s next iteration if the gate is open (True), else hold it
        (False) until a :meth:`commit` releases it, admitted, for its :meth:`begin`; one
        evaluation of the gate either way (what :meth:`admit_or_hold` and :meth:`begin` do, in
        one call).

        >>> table = ClockTable(workers=2, staleness=0)
        >>> table.enter(0), table.enter(1)
        (True, True)
        >>> table.commit(0)
        ()
        >>> table.enter(0)                  # BSP: held until worker 1 commits clock 1
        False
        >>> table.commit(1)
        (0,)
        """
        state = self._state
        if state[worker]:
            raise ProtocolError(f"worker {worker} asks the gate before committing its last iteration")
        need = self._clocks[worker] - self.staleness  # guaranteed_clock(clock + 1, s), inlined: the hot path
        if self._min >= need:
            state[worker] = _RUNNING
            return True
        self._held.setdefault(int(need), []).append(worker)
        return False

    def hold(self, worker: int) -> None:
        """Queue ``worker`` at the gate; a later :meth:`commit` returns it when it may begin."""
        need = guaranteed_clock(self._clocks[worker] + 1, self.staleness)
        if self._min >= need:
            raise ProtocolError(f"worker {worker} held although the gate is open")
        self._held.setdefault(int(need), []).append(worker)

    def begin(self, worker: int) -> None:
        """Record that ``worker`` begins iteration ``clock(worker) + 1``; the gate must allow it
        (asked here unless :meth:`admit_or_hold` admitted the worker or a :meth:`commit` released it)."""
        state = self._state[worker]
        if state == _ADMITTED:
            self._state[worker] = _RUNNING
            return
        if state == _RUNNING:
            raise ProtocolError(f"worker {worker} begins an iteration before committing the last one")
        if self._min < guaranteed_clock(self._clocks[worker] + 1, self.staleness):
            raise ProtocolError(
                f"worker {worker} begins iteration {self._clocks[worker] + 1} "
                f"with min clock {self._min}, beyond staleness {self.staleness}"
            )
        self._state[worker] = _RUNNING

    def commit(self, worker: int) -> tuple[int, ...]:
        """Count ``worker``'s running iteration as committed; return the workers it releases.

        Released workers come out in the order they were held (deterministic), admitted.
        """
        state = self._state
        if state[worker] != _RUNNING:
            raise ProtocolError(f"worker {worker} commits without a running iteration")
        state[worker] = _IDLE
        old = self._clocks[worker]
        new = old + 1
        self._clocks[worker] = new
        counts = self._counts
        counts[new] = counts.get(new, 0) + 1
        if new > self._max:
            self._max = new
        left = counts[old] - 1
        if left:
            counts[old] = left
            return ()
        del counts[old]
        if old != self._min:
            return ()
        # The last worker at the slowest clock moved up by one, and so does the minimum.
        self._min = new
        held = self._held.pop(new, None)
        if not held:
            return ()
        for q in held:
            state[q] = _ADMITTED
        return tuple(held)
