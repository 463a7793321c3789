"""A plain ``heapq`` event loop for timing-only runs: the SimPy engine's schedule, without SimPy.

Runs the batch form cannot express (server apply time, so commits queue for the server)
but that have no math need only times, reads and commit order.  This loop replays exactly
the events :mod:`sspsim.sim.engine` schedules in SimPy, in the same order, so both give
identical recordings on identical draws (a property test checks it):

* SimPy pops ``(time, priority, id)``; ids grow with every scheduled event.  Here the same
  events are scheduled at the same moments: process start (priority 0), compute timeouts,
  the apply queue's grants and releases (priority 1), the gate's late releases and the
  tie-breaking yield (priority 2), and process ends (priority 1), which matter because a
  worker's "is another event due now?" look sees them.  Only timeouts wait on the heap,
  as ``(time, priority * 2^48 + id, worker * 8 + action)``; events of the current instant
  wait in two FIFO queues (one per priority), and an event that is certain to come next
  (a grant or release with nothing else due now before it) is handled on the spot, which
  leaves the order of everything else, and so the recording, unchanged.
* The apply queue is SimPy's ``Resource(capacity=1)``: a request is granted when it is
  made and the server is free, or when the release before it is processed, FIFO.

The SSP gate is the same :class:`~sspsim.ssp.ClockTable` the SimPy engine's server asks;
reads follow :meth:`sspsim.server.ParameterServer.read` (counted, with no parameters).
:func:`simulate_heapq` records every iteration; :func:`summarize_heapq` (runs with
``trace = "summary"``) keeps only the summary's running totals, from a leaner loop that is exact
while no two events fall at the same instant (one heap event per computation and at most one per
apply, SimPy's same-instant order left out), or, after a tie, from these same events replayed.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable
from heapq import heapify, heappop, heappush

import numpy as np

from sspsim.config import Config
from sspsim.evaluate import Evaluator
from sspsim.problems import Problem
from sspsim.ssp import ClockTable, read_count, read_cutoff, read_visible
from sspsim.trace import Recording, Totals

__all__ = ["simulate_heapq", "summarize_heapq"]

_URGENT, _NORMAL, _LATE = 0, 1, 2  # SimPy's priorities (_LATE: the engine's _AFTER_SAME_TIME)
# _TIED: a read deferred past the other events of its instant, its iteration begun; rare events last
_READ, _TIED, _BEGIN, _COMPUTED, _APPLIED, _GRANTED, _RELEASE, _END = range(8)
_RANK = 1 << 48  # event ids stay below it; a priority counts for more than any id


def simulate_heapq(
    config: Config,
    problem: Problem,
    compute: np.ndarray,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Recording, list[dict[str, float]]]:
    """Run a timing-only event simulation; return the recording and the evaluation rows."""
    rec, _, evals = _run(config, problem, compute, progress, record=True)
    assert rec is not None
    return rec, evals


def summarize_heapq(
    config: Config,
    problem: Problem,
    compute: np.ndarray,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Totals, list[dict[str, float]]]:
    """:func:`simulate_heapq` that keeps only the summary's :class:`~sspsim.trace.Totals`.

    The same events in the same order; instead of the per-iteration columns it accumulates
    what :func:`sspsim.trace.summarize` takes from them: per-worker waits (sums in event order,
    so equal to float rounding), the clock-staleness histogram of the reads and the update
    staleness ``commit_index - 1 - read_updates`` of each commit (its sum and maximum, exact;
    a worker has one iteration in flight, so one pending read count per worker suffices).

    It first runs :func:`_summary_without_ties`, a loop shaped like a minimal heapq loop that is
    exact while no two events fall at the same instant (continuous draws: almost surely); at the
    first tie (constant speeds, trace replays, zero-length iterations) it gives up and the exact
    loop reruns the whole run, its progress reports resuming where the fast loop's stopped.
    """
    _timing_only(config, problem)
    onward = _Onward(progress) if progress is not None else None
    fast = _summary_without_ties(config, problem, compute, onward)
    if fast is not None:
        return fast
    _, totals, evals = _run(config, problem, compute, onward, record=False)
    assert totals is not None
    return totals, evals


class _Onward:
    """A progress callback that passes on only counts beyond those already reported (so a rerun's
    reports resume where the first loop's stopped)."""

    def __init__(self, progress: Callable[[int, int], None]) -> None:
        self.progress = progress
        self.reported = -1

    def __call__(self, done: int, total: int) -> None:
        if done > self.reported:
            self.reported = done
            self.progress(done, total)


def _timing_only(config: Config, problem: Problem) -> None:
    """Refuse what the heapq loops do not model: math, and reads queued at the server."""
    if problem.has_math:
        raise ValueError("the heapq engine runs timing-only problems (problem.kind = \"none\")")
    if config.network.serve_time > 0:
        raise ValueError("the heapq engine has no read queue at the server (network.serve_time = 0); the SimPy engine has")


def _summary_without_ties(
    config: Config,
    problem: Problem,
    compute: np.ndarray,
    progress: Callable[[int, int], None] | None,
    *,
    fall_back: bool = True,
) -> tuple[Totals, list[dict[str, float]]] | None:
    """The summary-only run as a minimal heapq loop; None at the first tie (two events at one instant).

    The heap holds ``(end, p)`` per computation and ``(end, ~p)`` per apply.  The server is
    SimPy's ``Resource(capacity=1)``: one apply in progress, the other requests waiting FIFO; an
    apply starts at its request if the server is free, else at the commit before it, and ends
    ``apply_time`` later (the float sum SimPy's timeout makes).  An apply's end goes on the heap
    only if some event there is due first (or then); otherwise its commit is the next event and
    is handled on the spot, and so on down the queue.  At a commit, the workers it releases from
    the gate read at its instant, and so does the committer, right after.  Without apply time an
    apply ends as it starts: a computation's end is its commit.

    Why this is SimPy's order of effects (and the exact loop's) when no two events fall at the same
    instant, the start at time 0 aside:

    * Every instant other than 0 holds one computation's end (a request) or one apply's end (a
      commit), and the same-instant consequences of that one event, which are the exact loop's
      other events (grant, release, released reads, the committer's read, process end).  Here
      those instants come in time order: an apply's end handled on the spot is earlier than
      everything on the heap, and nothing else can be scheduled before it (only events being
      handled schedule events, none earlier than their own instant).
    * The apply queue: requests come at distinct instants, so FIFO is the order of computation
      ends, as SimPy's resource serves them; with apply time > 0 commits are serialized, so a
      commit's instant holds no other commit.
    * Reads happen at commit instants (or at 0).  Between a commit and the reads of its instant
      nothing commits, so the released workers and the committer all see the same committed
      clocks and the same commit count, whatever order SimPy serves them in; each read's
      figures (:func:`~sspsim.ssp.read_cutoff`, :func:`~sspsim.ssp.read_visible`,
      :func:`~sspsim.ssp.read_count`; eager: the slowest clock and the commit count) are then
      equal.  The committer waits 0 (it reads at its own commit), and each worker's waits are
      added in its own iteration order, so every per-worker sum is the same float sum.
    * At time 0 every worker starts and reads before anything commits (slowest clock 0, no
      commits): the order of these reads changes nothing either.

    A tie shows itself as a popped time equal to the current instant: events due at one instant
    leave the heap one after another, and an event scheduled for the current instant (a
    zero-length iteration) is popped at it; an apply time too small to move the clock is refused
    up front.  Then SimPy's priorities and event ids decide the
    queue's order and what each read sees, so the caller reruns the exact loop.
    ``fall_back=False`` carries on through ties (ordering them by worker), for tests.
    """
    workers, clocks = compute.shape
    apply_time = config.network.apply_time
    staleness = config.consistency.staleness
    policy = config.consistency.read_policy
    table = ClockTable(workers, staleness)
    evaluator = Evaluator(problem, config, clocks)
    evaluator.rows.append(evaluator.row(None, 0.0, 0, 0))
    due, rows, row = evaluator.due, evaluator.rows, evaluator.row
    spans = _durations(config, problem, compute)
    total = workers * clocks
    # Every instant of the run lies in some computation or apply, so the run ends by the sum of their
    # lengths; an apply time of at least one ulp there never ends an apply at the instant it starts
    # (a tie the heap would not see, as such an apply's commit is handled on the spot).
    if 0 < apply_time < math.ulp(2 * (float(spans.sum()) + total * apply_time)):
        return None
    durations = spans.tolist()  # durations[p][c - 1]
    tick = max(1, total // 200)
    eager, lazy = policy == "eager", policy == "lazy"
    # a read for iteration c + 1, in clock staleness c - visible and updates held: lazy reads do
    # not depend on the slowest clock (their cutoff is the guarantee), so they are tabled by c
    lazy_lag, lazy_got = [0] * clocks, [0] * clocks
    if lazy:
        for c in range(clocks):
            cut = read_cutoff(policy, c + 1, staleness, 0)
            lazy_lag[c] = c - read_visible(cut, c + 1, workers)
            lazy_got[c] = read_count(cut, c + 1, workers)
    last = [0.0] * workers  # each worker's last commit
    waited = [0.0] * workers
    pending = [0] * workers  # updates in each worker's last read
    hist = [0] * (clocks + 1)
    spent = 0
    most = -1
    commits = 0
    slowest = 0
    report = tick if progress is not None else -1  # the commit count of the next progress report
    clock_of, enter, begin, commit_to = table.clock, table.enter, table.begin, table.commit
    push, pop = heappush, heappop
    heap: list[tuple[float, int]] = []
    for p in range(workers):  # time 0: everybody passes the gate and reads nothing (staleness 0, no updates)
        enter(p)
        hist[0] += 1
        heap.append((durations[p][0], p))
    heapify(heap)
    now = 0.0
    busy = False  # an apply is in progress (its end on the heap, or its commit being handled)
    waiting: deque[int] = deque()  # workers whose applies wait for the server, FIFO
    while heap:
        t, code = pop(heap)
        if t == now and fall_back:
            return None
        now = t
        if code >= 0:  # a computation ends: its apply queues for the server
            if busy:
                waiting.append(code)
                continue
            busy = True
            end = t + apply_time
            if heap and heap[0][0] <= end:  # something else is due first (or then: a tie, found when popped)
                push(heap, (end, ~code))
                continue
            now = t = end  # the apply's end is the next event: its commit, handled on the spot
            p = code
        else:
            p = ~code
        while True:  # commit p at t; then the next apply starts, and its commit may come next too
            commits += 1
            us = commits - 1 - pending[p]  # this commit's update staleness
            spent += us
            if us > most:
                most = us
            last[p] = t
            c = clock_of(p)
            released = commit_to(p)
            if c == slowest and table.min_clock != slowest:  # only the last worker at the slowest clock moves it
                slowest += 1
                if due(slowest):
                    rows.append(row(None, t, slowest, commits))
            if commits == report:
                assert progress is not None
                progress(commits, total)
                report += tick
            # the read's figures are written out twice below (released workers, then the committer)
            # rather than called: this loop is measured against a minimal loop with no calls to spare
            for q in released:
                begin(q)
                cq = clock_of(q)
                if eager:
                    hist[cq - slowest] += 1
                    pending[q] = commits
                elif lazy:
                    hist[lazy_lag[cq]] += 1
                    pending[q] = lazy_got[cq]
                else:
                    cut = read_cutoff(policy, cq + 1, staleness, slowest)
                    hist[cq - read_visible(cut, cq + 1, workers)] += 1
                    pending[q] = read_count(cut, cq + 1, workers)
                waited[q] += t - last[q]
                push(heap, (t + durations[q][cq], q))
            c += 1
            if c < clocks and enter(p):  # the committer reads at its own commit: it waits 0
                if eager:
                    hist[c - slowest] += 1
                    pending[p] = commits
                elif lazy:
                    hist[lazy_lag[c]] += 1
                    pending[p] = lazy_got[c]
                else:
                    cut = read_cutoff(policy, c + 1, staleness, slowest)
                    hist[c - read_visible(cut, c + 1, workers)] += 1
                    pending[p] = read_count(cut, c + 1, workers)
                push(heap, (t + durations[p][c], p))
            if not waiting:
                busy = False
                break
            p = waiting.popleft()  # the next apply starts now
            end = t + apply_time
            if heap and heap[0][0] <= end:
                push(heap, (end, ~p))
                break
            now = t = end
    if commits != total:  # pragma: no cover - would be a deadlock in the protocol
        raise RuntimeError(f"simulation stalled after {commits} of {total} commits")
    if progress is not None:
        progress(total, total)
    return _totals(compute, waited, last, hist, spent, most), rows


def _durations(config: Config, problem: Problem, compute: np.ndarray) -> np.ndarray:
    """Per worker and iteration: pull, compute, push (the SimPy engine's sum)."""
    return config.network.message_cost(problem.n_params) + compute + config.network.push_cost(problem.n_params)


def _totals(compute: np.ndarray, waited: list[float], last: list[float], hist: list[int], spent: int, most: int) -> Totals:
    """The summary's totals from a loop's running sums."""
    workers, clocks = compute.shape
    per_worker = np.array(waited)
    finish = np.array(last)
    return Totals(
        workers=workers, clocks=clocks, total_time=float(finish.max()), finish=finish,
        compute_mean=float(compute.mean()), compute_per_worker=compute.sum(axis=1),
        wait_total=float(per_worker.sum()), wait_per_worker=per_worker,
        staleness_histogram=np.trim_zeros(np.array(hist, dtype=np.int64), "b"),
        update_staleness_sum=spent, update_staleness_max=most,
    )


def _run(
    config: Config, problem: Problem, compute: np.ndarray, progress: Callable[[int, int], None] | None, *, record: bool,
) -> tuple[Recording | None, Totals | None, list[dict[str, float]]]:
    """The event loop; ``record``: the per-iteration columns, else only the summary's totals."""
    _timing_only(config, problem)
    workers, clocks = compute.shape
    cost = config.network.message_cost(problem.n_params)
    apply_time = config.network.apply_time
    staleness = config.consistency.staleness
    policy = config.consistency.read_policy
    table = ClockTable(workers, staleness)
    evaluator = Evaluator(problem, config, clocks)
    evaluator.rows.append(evaluator.row(None, 0.0, 0, 0))
    tie_sensitive = policy != "lazy"
    durations = _durations(config, problem, compute).reshape(-1).tolist()
    total = workers * clocks
    tick = max(1, total // 200)
    # per iteration, flat index p * clocks + (c - 1): typed buffers, which numpy then reads in place
    size = total if record else 0
    admit, commit, wait = array("d", [0.0]) * size, array("d", [0.0]) * size, array("d", [0.0]) * size
    visible, reads, index = array("q", [0]) * size, array("q", [0]) * size, array("q", [0]) * size
    last_commit = [0.0] * workers
    # summary only: per worker the wait so far and the pending read's update count; reads per clock staleness
    waited = [0.0] * workers
    pending = [0] * workers
    hist = [0] * (clocks + 1)
    spent = 0  # update staleness, summed
    most = -1  # and its maximum (at least 0 once anything commits)
    # Events are (time, rank, code): rank = priority * _RANK + id orders equal times as SimPy does,
    # code = worker * 8 + action.  Only timeouts (computations, applies) go on the heap; every other
    # event happens at the current instant, so two FIFO queues hold them (ids grow, so each stays
    # sorted) and the next event is the least of the heap's top and their heads.  An event that is
    # sure to come next (nothing else due now before it) is handled at once instead of queued:
    # the apply queue's grants and releases, mostly.
    heap: list[tuple[float, int, int]] = []
    now_normal: deque[tuple[int, int]] = deque()  # (rank, code) at priority _NORMAL, this instant
    now_late: deque[tuple[int, int]] = deque()  # the same at _LATE: reads after a release or a tie
    push, pop = heappush, heappop
    normal_append, late_append = now_normal.append, now_late.append
    clock_of, enter, begin, commit_to = table.clock, table.enter, table.begin, table.commit
    due = evaluator.due
    eager = policy == "eager"
    eid = 0
    waiting: deque[int] = deque()  # requests for the apply queue, FIFO
    busy = False  # a request holds the apply queue
    release_next = False  # the apply queue's release is the next event
    commits = 0
    slowest = 0  # table.min_clock, kept up to date after each commit
    now = 0.0
    NORMAL, LATE = _NORMAL * _RANK, _LATE * _RANK
    for p in range(workers):
        push(heap, (0.0, _URGENT * _RANK + eid, p * 8 + _BEGIN))  # process start
        eid += 1
    while True:
        if release_next:  # processing the release grants the next request
            release_next = False
            if waiting and not busy:
                busy = True
                if now_normal or (heap and heap[0][0] == now):
                    normal_append((NORMAL + eid, waiting.popleft() * 8 + _GRANTED))
                else:  # the grant comes next too: the apply starts now
                    push(heap, (now + apply_time, NORMAL + eid + 1, waiting.popleft() * 8 + _APPLIED))
                eid += 2
            continue
        if not now_normal and not now_late:
            if not heap:
                break
            now, _, code = pop(heap)
        elif now_normal:
            rank, code = now_normal[0]
            if heap and heap[0][0] == now and heap[0][1] < rank:
                code = pop(heap)[2]
            else:
                now_normal.popleft()
        elif now_late:
            rank, code = now_late[0]
            if heap and heap[0][0] == now and heap[0][1] < rank:
                code = pop(heap)[2]
            else:
                now_late.popleft()
        action = code & 7
        p = code >> 3
        if action == _COMPUTED:
            if apply_time > 0:  # a request; SimPy's resource tries only the head of its queue
                if not busy and not waiting:  # granted at once: the queue's head is p
                    busy = True
                    if now_normal or (heap and heap[0][0] == now):
                        normal_append((NORMAL + eid, p * 8 + _GRANTED))
                    else:  # the grant comes next: the apply starts now
                        push(heap, (now + apply_time, NORMAL + eid + 1, p * 8 + _APPLIED))
                    eid += 2
                    continue
                waiting.append(p)
                if not busy:
                    busy = True
                    if now_normal or (heap and heap[0][0] == now):
                        normal_append((NORMAL + eid, waiting.popleft() * 8 + _GRANTED))
                    else:  # the grant comes next: the apply starts now
                        push(heap, (now + apply_time, NORMAL + eid + 1, waiting.popleft() * 8 + _APPLIED))
                    eid += 2
                continue
        elif action == _APPLIED:
            busy = False  # leaving the `with` block: the release is an event, whose processing grants the next
            if now_normal or (heap and heap[0][0] == now):
                normal_append((NORMAL + eid, _RELEASE))
            elif waiting:  # with nobody waiting the release, due next, changes nothing
                release_next = True
            eid += 1
        elif action >= _GRANTED:
            if action == _GRANTED:
                push(heap, (now + apply_time, NORMAL + eid, code + (_APPLIED - _GRANTED)))
                eid += 1
            elif action == _RELEASE and waiting and not busy:
                busy = True
                normal_append((NORMAL + eid, waiting.popleft() * 8 + _GRANTED))
                eid += 1
            continue  # _END: nothing happens
        if action >= _COMPUTED:  # the commit (_COMPUTED without an apply queue, or _APPLIED)
            commits += 1
            c = clock_of(p)
            for q in commit_to(p):  # released workers read late in this instant
                late_append((LATE + eid, q * 8 + _READ))
                eid += 1
            if record:
                at = p * clocks + c
                commit[at] = now
                index[at] = commits
            else:
                us = commits - 1 - pending[p]  # this commit's update staleness
                spent += us
                if us > most:
                    most = us
            last_commit[p] = now
            if table.min_clock != slowest:  # only a commit moves the slowest clock
                slowest = table.min_clock
                if due(slowest):
                    evaluator.rows.append(evaluator.row(None, now, slowest, commits))
            if progress is not None and commits % tick == 0:
                progress(commits, total)
            c += 1
            action = _BEGIN
        elif action == _BEGIN:  # the process starts
            c = clock_of(p)
        if action == _BEGIN:  # the top of the worker's loop
            if c == clocks:  # the process ends: an event nobody waits for
                normal_append((NORMAL + eid, p * 8 + _END))
                eid += 1
                continue
            if not enter(p):  # the gate, evaluated once: held until a commit releases p
                continue
            if not tie_sensitive:
                pass
            elif release_next and not now_late:
                # only the apply queue's release is due first (the commit found nothing else due now and
                # queued nothing at priority 1): process it, then this read comes next
                release_next = False
                if waiting:
                    busy = True
                    push(heap, (now + apply_time, NORMAL + eid + 1, waiting.popleft() * 8 + _APPLIED))
                eid += 3
            elif release_next or now_normal or now_late or (heap and heap[0][0] == now):
                late_append((LATE + eid, p * 8 + _TIED))  # read after what else happens now
                eid += 1
                continue
        else:
            c = clock_of(p)
            if action == _READ:  # released from the gate
                begin(p)
        # the read, by the controller's rule (ssp.read_cutoff): eager holds every commit so far;
        # lazy and push every update of clocks <= cutoff plus the reader's own
        at = p * clocks + c
        if eager:  # the slowest clock has not moved since it was read in this event
            seen, got = slowest, commits
        else:
            cutoff = read_cutoff(policy, c + 1, staleness, slowest)
            seen, got = read_visible(cutoff, c + 1, workers), read_count(cutoff, c + 1, workers)
        if record:
            visible[at] = seen
            reads[at] = got
            admit[at] = now
            wait[at] = now - last_commit[p]
        else:  # iteration c + 1 sees clock `seen`: clock staleness c - seen
            hist[c - seen] += 1
            pending[p] = got
            waited[p] += now - last_commit[p]
        push(heap, (now + durations[at], NORMAL + eid, p * 8 + _COMPUTED))
        eid += 1
    if commits != total:  # pragma: no cover - would be a deadlock in the protocol
        raise RuntimeError(f"simulation stalled after {commits} of {total} commits")
    if progress is not None:
        progress(total, total)
    if not record:
        return None, _totals(compute, waited, last_commit, hist, spent, most), evaluator.rows
    shape = (workers, clocks)
    rec = Recording.empty(workers, clocks)
    rec.compute[:] = compute
    rec.admit[:] = np.frombuffer(admit, dtype=np.float64).reshape(shape)
    rec.start[:] = rec.admit + cost
    rec.commit[:] = np.frombuffer(commit, dtype=np.float64).reshape(shape)
    rec.wait[:] = np.frombuffer(wait, dtype=np.float64).reshape(shape)
    rec.visible[:] = np.frombuffer(visible, dtype=np.int64).reshape(shape)
    rec.read_updates[:] = np.frombuffer(reads, dtype=np.int64).reshape(shape)
    rec.commit_index[:] = np.frombuffer(index, dtype=np.int64).reshape(shape)
    rec.update_staleness[:] = rec.commit_index - 1 - rec.read_updates
    rec.step[:] = np.nan
    return rec, None, evaluator.rows
