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

The SSP gate is the same :class:`~sspsim.ssp.ClockTable` the SimPy engine's server asks;
reads follow :meth:`sspsim.server.ParameterServer.read` (counted, with no parameters).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush

import numpy as np

from sspsim.config import Config
from sspsim.evaluate import Evaluator
from sspsim.problems import Problem
from sspsim.ssp import ClockTable, Proceed, read_count, read_cutoff, read_visible
from sspsim.trace import Recording

__all__ = ["simulate_heapq"]

_URGENT, _NORMAL, _LATE = 0, 1, 2  # SimPy's priorities (_LATE: the engine's _AFTER_SAME_TIME)
_BEGIN, _READ, _COMPUTED, _GRANTED, _APPLIED, _RELEASE, _END = range(7)


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
    push_cost = config.network.push_cost(problem.n_params)
    apply_time = config.network.apply_time
    staleness = config.consistency.staleness
    policy = config.consistency.read_policy
    table = ClockTable(workers, staleness)
    evaluator = Evaluator(problem, config, clocks)
    evaluator.rows.append(evaluator.row(None, 0.0, 0, 0))
    tie_sensitive = policy != "lazy"
    times = compute.tolist()
    total = workers * clocks
    tick = max(1, total // 200)
    # per iteration, flat index p * clocks + (c - 1); numpy arrays are built once at the end
    admit = [0.0] * total
    commit = [0.0] * total
    wait = [0.0] * total
    visible = [0] * total
    reads = [0] * total
    index = [0] * total
    last_commit = [0.0] * workers
    heap: list[tuple[float, int, int, int, int]] = []
    push, pop = heappush, heappop
    eid = 0
    waiting: deque[int] = deque()  # requests for the apply queue, FIFO
    busy = False  # a request holds the apply queue
    commits = 0
    now = 0.0
    for p in range(workers):
        push(heap, (0.0, _URGENT, eid, _BEGIN, p))  # process start
        eid += 1
    while heap:
        now, _, _, action, p = pop(heap)
        if action == _COMPUTED:
            if apply_time > 0:  # a request; SimPy's resource tries only the head of its queue
                waiting.append(p)
                if not busy:
                    busy = True
                    push(heap, (now, _NORMAL, eid, _GRANTED, waiting.popleft()))
                    eid += 1
                continue
        elif action == _GRANTED:
            push(heap, (now + apply_time, _NORMAL, eid, _APPLIED, p))
            eid += 1
            continue
        elif action == _APPLIED:
            busy = False  # leaving the `with` block: the release is an event, whose processing grants the next
            push(heap, (now, _NORMAL, eid, _RELEASE, -1))
            eid += 1
        elif action == _RELEASE:
            if waiting and not busy:
                busy = True
                push(heap, (now, _NORMAL, eid, _GRANTED, waiting.popleft()))
                eid += 1
            continue
        elif action == _END:
            continue
        if action == _COMPUTED or action == _APPLIED:  # the commit
            commits += 1
            at = p * clocks + table.clock(p)
            old_min = table.min_clock
            for q in table.commit(p):  # released workers read late in this instant
                push(heap, (now, _LATE, eid, _READ, q))
                eid += 1
            commit[at] = now
            index[at] = commits
            last_commit[p] = now
            if table.min_clock != old_min and evaluator.due(table.min_clock):
                evaluator.rows.append(evaluator.row(None, now, table.min_clock, commits))
            if progress is not None and commits % tick == 0:
                progress(commits, total)
            action = _BEGIN
        if action == _BEGIN:  # the top of the worker's loop
            if table.clock(p) == clocks:
                push(heap, (now, _NORMAL, eid, _END, p))  # the process ends: an event nobody waits for
                eid += 1
                continue
            if not isinstance(table.admit(p), Proceed):
                table.hold(p)
                continue
            if tie_sensitive and heap and heap[0][0] == now:
                push(heap, (now, _LATE, eid, _READ, p))
                eid += 1
                continue
        # the read, by the controller's rule (ssp.read_cutoff): eager holds every commit so far;
        # lazy and push every update of clocks <= cutoff plus the reader's own
        table.begin(p)
        c = table.clock(p) + 1
        at = p * clocks + c - 1
        if policy == "eager":
            visible[at] = table.min_clock
            reads[at] = commits
        else:
            cutoff = read_cutoff(policy, c, staleness, table.min_clock)
            visible[at] = read_visible(cutoff, c, workers)
            reads[at] = read_count(cutoff, c, workers)
        admit[at] = now
        wait[at] = now - last_commit[p]
        push(heap, (now + (cost + times[p][c - 1] + push_cost), _NORMAL, eid, _COMPUTED, p))
        eid += 1
    if commits != total:  # pragma: no cover - would be a deadlock in the protocol
        raise RuntimeError(f"simulation stalled after {commits} of {total} commits")
    if progress is not None:
        progress(total, total)
    shape = (workers, clocks)
    rec = Recording.empty(workers, clocks)
    rec.compute[:] = compute
    rec.admit[:] = np.reshape(admit, shape)
    rec.start[:] = rec.admit + cost
    rec.commit[:] = np.reshape(commit, shape)
    rec.wait[:] = np.reshape(wait, shape)
    rec.visible[:] = np.reshape(visible, shape)
    rec.read_updates[:] = np.reshape(reads, shape)
    rec.commit_index[:] = np.reshape(index, shape)
    rec.update_staleness[:] = rec.commit_index - 1 - rec.read_updates
    rec.step[:] = np.nan
    return rec, evaluator.rows
