"""A plain ``heapq`` event loop for timing-only runs: the SimPy engine's schedule, without SimPy.

Runs the batch form cannot express (server apply time, so commits queue for the server)
but that have no math need only times, reads and commit order.  This loop replays exactly
the events :mod:`sspsim.sim.engine` schedules in SimPy, in the same order, so both give
identical recordings on identical draws (a property test checks it):

* SimPy pops ``(time, priority, id)``; ids count every scheduled event.  Here each event is
  ``(time, priority, id, action, worker)`` on one heap, scheduled at the same moments:
  process start (priority 0), compute timeouts, the apply queue's grants and releases
  (priority 1), the gate's late releases and the tie-breaking yield (priority 2), and
  process ends (priority 1), which matter because a worker's "is another event due now?"
  look at the heap sees them.
* The apply queue is SimPy's ``Resource(capacity=1)``: a request is granted when it is
  made and the server is free, or when the release before it is processed, FIFO.

The SSP gate is asked of the same :class:`~sspsim.server.ParameterServer` (and its
:class:`~sspsim.ssp.ClockTable`) as in the SimPy engine, so the rules stay in one place.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush
from typing import Callable

import numpy as np

from sspsim.config import Config
from sspsim.evaluate import Evaluator
from sspsim.optimizer import StepSize
from sspsim.problems import Problem
from sspsim.server import ParameterServer
from sspsim.ssp import Proceed
from sspsim.trace import Recording

__all__ = ["simulate_heapq"]

_URGENT, _NORMAL, _LATE = 0, 1, 2  # SimPy's priorities (_LATE: the engine's _AFTER_SAME_TIME)
_READ, _COMPUTED, _GRANTED, _APPLIED, _RELEASE, _END = range(6)


def simulate_heapq(
    config: Config,
    problem: Problem,
    compute: np.ndarray,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Recording, list[dict[str, float]]]:
    """Run a timing-only event simulation; return the recording and the evaluation rows."""
    if problem.has_math:
        raise ValueError("the heapq engine runs timing-only problems (problem.kind = \"none\")")
    workers, clocks = compute.shape
    cost = config.network.message_cost(problem.n_params)
    apply_time = config.network.apply_time
    server = ParameterServer(
        None, workers=workers, staleness=config.consistency.staleness, read_policy=config.consistency.read_policy,
        step=StepSize.from_config(config.optimizer),
    )
    evaluator = Evaluator(problem, config, clocks)
    evaluator.record(server, 0.0)
    tie_sensitive = config.consistency.read_policy != "lazy"
    times = compute.tolist()
    total = workers * clocks
    tick = max(1, total // 200)
    admit, commit, wait = np.zeros((workers, clocks)), np.zeros((workers, clocks)), np.zeros((workers, clocks))
    visible = np.zeros((workers, clocks), dtype=np.int64)
    read_updates, index, tau = (np.zeros((workers, clocks), dtype=np.int64) for _ in range(3))
    admitted = [0.0] * workers
    last_commit = [0.0] * workers
    clock = [0] * workers  # iterations begun
    heap: list[tuple[float, int, int, int, int]] = []
    eid = 0
    waiting: deque[int] = deque()  # requests for the apply queue, FIFO
    busy = False  # a request holds the apply queue
    now = 0.0

    def begin(p: int) -> None:
        """The top of the worker's loop: gate, or the tie-breaking yield, or the read."""
        nonlocal eid
        if clock[p] == clocks:
            heappush(heap, (now, _NORMAL, eid, _END, p))  # the process ends (an event nobody waits for)
            eid += 1
        elif not isinstance(server.admit(p), Proceed):
            server.hold(p)  # a commit releases p with a late event
        elif tie_sensitive and heap and heap[0][0] == now:
            heappush(heap, (now, _LATE, eid, _READ, p))
            eid += 1
        else:
            read(p)

    def read(p: int) -> None:
        nonlocal eid
        r = server.read(p, copy=False)
        c = clock[p]
        clock[p] = c + 1
        admitted[p] = now
        admit[p, c] = now
        wait[p, c] = now - last_commit[p]
        visible[p, c] = r.visible_clock
        read_updates[p, c] = r.updates
        heappush(heap, (now + (cost + times[p][c] + cost), _NORMAL, eid, _COMPUTED, p))
        eid += 1

    def request(p: int) -> None:
        """A request to the apply queue; SimPy tries only the head of the queue."""
        waiting.append(p)
        grant()

    def grant() -> None:
        nonlocal busy, eid
        if waiting and not busy:
            busy = True
            heappush(heap, (now, _NORMAL, eid, _GRANTED, waiting.popleft()))
            eid += 1

    def finish(p: int) -> None:
        nonlocal eid
        done = server.commit(p, None)
        for q in done.released:
            heappush(heap, (now, _LATE, eid, _READ, q))
            eid += 1
        c = clock[p] - 1
        commit[p, c] = now
        index[p, c] = done.index
        tau[p, c] = done.update_staleness
        last_commit[p] = now
        if done.completed is not None:
            evaluator.on_clock(server, done.completed, now)
        if progress is not None and done.index % tick == 0:
            progress(done.index, total)
        begin(p)

    for p in range(workers):
        heappush(heap, (0.0, _URGENT, eid, -1, p))  # process start
        eid += 1
    while heap:
        now, _, _, action, p = heappop(heap)
        if action == _READ:
            read(p)
        elif action == _COMPUTED:
            if apply_time > 0:
                request(p)
            else:
                finish(p)
        elif action == _GRANTED:
            heappush(heap, (now + apply_time, _NORMAL, eid, _APPLIED, p))
            eid += 1
        elif action == _APPLIED:
            busy = False  # leaving the `with` block: the release is an event whose processing grants the next
            heappush(heap, (now, _NORMAL, eid, _RELEASE, -1))
            eid += 1
            finish(p)
        elif action == _RELEASE:
            grant()
        elif action < 0:
            begin(p)
    if server.commits != total:  # pragma: no cover - would be a deadlock in the protocol
        raise RuntimeError(f"simulation stalled after {server.commits} of {total} commits")
    if progress is not None:
        progress(total, total)
    rec = Recording.empty(workers, clocks)
    rec.compute[:] = compute
    rec.admit[:], rec.start[:], rec.commit[:], rec.wait[:] = admit, admit + cost, commit, wait
    rec.visible[:], rec.read_updates[:], rec.commit_index[:], rec.update_staleness[:] = visible, read_updates, index, tau
    rec.step[:] = np.nan
    return rec, evaluator.rows
