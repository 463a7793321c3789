"""The SimPy engine: workers as processes around one :class:`~sspsim.server.ParameterServer`.

One iteration of worker p (DESIGN §Semantics):

1. ask the server's gate (the shared controller) once (:meth:`~sspsim.ssp.ClockTable.admit_or_hold` or :meth:`~sspsim.ssp.ClockTable.enter`):
   admitted, or held until a commit releases p;
2. read the parameters (the read policy decides what the read holds); the pull travels for
   ``latency + bytes/bandwidth``;
3. compute for the drawn time X[p, c]: the minibatch gradient at the parameters read;
4. push the update (the message cost plus ``receive_time``); the server applies it, FIFO, taking
   ``apply_time`` each: that instant is the **commit**.

Simultaneous events: an eager or push read taken at instant a sees every commit at instant a,
whatever order SimPy pops same-time events in (the read waits behind them with a lower
priority), so reads are a function of the times alone and match the batch schedule.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy
from simpy.events import PENDING, Event, EventPriority

from sspsim.config import Config
from sspsim.evaluate import Evaluator
from sspsim.optimizer import StepSize
from sspsim.problems import Problem
from sspsim.sampling import sample_indices
from sspsim.server import ParameterServer, Read
from sspsim.ssp import read_count, read_cutoff, read_visible
from sspsim.trace import Recording

__all__ = ["Audit", "LateEvent", "simulate_events"]

_AFTER_SAME_TIME = EventPriority(2)  # SimPy pops (time, priority, id); NORMAL = 1, so 2 runs after every NORMAL event


class LateEvent(Event):
    """An event that succeeds late: processed at the current instant, after every ordinary
    event of that instant.

    :meth:`succeed_late` is SimPy's own :meth:`~simpy.events.Event.succeed` with a lower
    priority; like SimPy's Timeout and Initialize, the subclass sets its own state.
    """

    def succeed_late(self) -> LateEvent:
        """Trigger this pending event now, behind every ordinary event of the instant."""
        if self._value is not PENDING:
            raise RuntimeError(f"{self} has already been triggered")
        self._ok = True
        self._value = None
        self.env.schedule(self, priority=_AFTER_SAME_TIME)
        return self


class Audit:
    """Read sets, parameters read and applied updates of every iteration (``[run] audit = true``)."""

    def __init__(self, x0: np.ndarray, workers: int, clocks: int) -> None:
        self.x0 = x0.copy()
        shape = (workers, clocks)
        self.params = np.zeros((*shape, x0.size))
        self.update = np.zeros((*shape, x0.size))
        self.prefix = np.zeros(shape, dtype=np.int64)
        self.cutoff = np.zeros(shape, dtype=np.int64)


def simulate_events(
    config: Config,
    problem: Problem,
    compute: np.ndarray,
    *,
    progress: Callable[[int, int], None] | None = None,
    server_class: type[ParameterServer] = ParameterServer,
) -> tuple[Recording, list[dict[str, float]], Audit | None]:
    """Run the event simulation; return the recording, the evaluations and the audit log.

    ``server_class`` swaps in another server (mutation tests run deliberately broken ones).

    Each iteration asks the gate once (:meth:`~sspsim.ssp.ClockTable.admit_or_hold` or :meth:`~sspsim.ssp.ClockTable.enter`) and records into
    flat lists (index ``p * clocks + c - 1``) turned into arrays at the end.  A timing-only run
    on the stock server makes no per-iteration objects but SimPy's events (no Read or Commit
    tuples, no step sizes): it keeps the slowest clock and the commit count at each read, and
    the read rule of :mod:`sspsim.ssp` gives the read sets from them, on whole arrays, at the end.
    An eager run with math and no audit does the same: its read is the server's x itself (the
    gradient is taken at once, before anything else commits), and
    :meth:`~sspsim.server.ParameterServer.commit_eager` applies the update in place, with the
    rounding of ``x += -eta * d``, so the run is bit for bit the one through ``read``/``commit``.
    """
    workers, clocks = compute.shape
    cost = config.network.message_cost(problem.n_params)
    push = config.network.push_cost(problem.n_params)
    apply_time = config.network.apply_time
    staleness = config.consistency.staleness
    policy = config.consistency.read_policy
    math_ = problem.has_math
    x0 = problem.initial_params() if math_ else None
    audit = Audit(x0, workers, clocks) if (config.run.audit and x0 is not None) else None
    # lean: the stock server's reads hold nothing but counts (timing only), or the current x
    # (eager reads, no audit): the engine keeps the counts and the server updates x in place
    serve_time = config.network.serve_time  # > 0: reads queue for the server too (served_worker below)
    lean = server_class is ParameterServer and serve_time == 0 and (not math_ or (policy == "eager" and audit is None))
    server = server_class(
        x0, workers=workers, staleness=staleness, read_policy=policy,
        step=StepSize.from_config(config.optimizer), momentum=config.optimizer.momentum,
        **({"in_place": True} if lean and math_ else {}),
    )
    env = simpy.Environment()
    apply_queue = simpy.Resource(env, capacity=1) if apply_time > 0 and serve_time == 0 else None  # (served: server_thread)
    evaluator = Evaluator(problem, config, clocks)
    evaluator.record(server, 0.0)
    table = server.table
    gates: list[LateEvent | None] = [None] * workers
    total = workers * clocks
    nan = float("nan")
    admit, commit = [0.0] * total, [0.0] * total
    index = [0] * total
    visible, reads = [0] * total, [0] * total  # lean: the slowest clock and the commits when the read was served
    if not lean:
        tau = [0] * total
    if math_ or not lean:
        step, loss = [nan] * total, [nan] * total
    tie_sensitive = policy != "lazy"
    copy_reads = audit is not None  # otherwise the gradient is computed before anything else commits
    seed, batch, n = config.problem_seed, config.problem.batch_size, problem.n_samples
    tick = max(1, total // 200)
    durations = (cost + compute + push).tolist()  # pull, compute, push
    enter = table.enter if lean else table.admit_or_hold
    begin, release, peek, timeout = table.begin, table.commit, env.peek, env.timeout
    x, loss_grad, commit_eager = server.x, problem.loss_grad, server.commit_eager  # lean with math: x changes in place
    commits = 0  # lean: the server's commit count
    slowest = 0  # lean: the slowest committed clock after the last commit

    def worker(p: int):  # type: ignore[no-untyped-def]
        nonlocal commits, slowest
        first = p * clocks
        for at, duration in enumerate(durations[p], first):
            if not enter(p):
                gate = gates[p] = LateEvent(env)
                yield gate  # released late in the instant (LateEvent.succeed_late)
                if lean:
                    begin(p)
                admit[at] = env.now
            else:
                admit[at] = now = env.now
                if tie_sensitive and peek() == now:
                    yield LateEvent(env).succeed_late()  # the same instant, after its other events
            if lean:
                visible[at] = slowest
                reads[at] = commits
                if math_:  # the eager read is x itself: the gradient is taken before anything else commits
                    assert x is not None
                    loss[at], g = loss_grad(x, sample_indices(seed, p, at - first + 1, batch, n))
                yield timeout(duration)
                if apply_queue is not None:
                    with apply_queue.request() as slot:
                        yield slot
                        yield timeout(apply_time)
                if math_:
                    step[at], released = commit_eager(p, g, reads[at])
                else:
                    released = release(p)
                for q in released:  # the commit: the workers it lets through
                    gates[q].succeed_late()  # type: ignore[union-attr]
                commits += 1
                now = commit[at] = env.now
                index[at] = commits
                if table.min_clock != slowest:
                    slowest = table.min_clock
                    if evaluator.due(slowest):
                        evaluator.rows.append(evaluator.row(x, float(now), slowest, commits))
                if progress is not None and commits % tick == 0:
                    progress(commits, total)
                continue
            read = server.read(p, copy=copy_reads)
            visible[at] = read.visible_clock
            reads[at] = read.updates
            grad = None
            if math_:
                assert read.params is not None  # a server with math always returns the parameters
                loss[at], grad = problem.loss_grad(read.params, sample_indices(seed, p, at - first + 1, batch, n))
            yield timeout(duration)
            if apply_queue is not None:
                with apply_queue.request() as slot:
                    yield slot
                    yield timeout(apply_time)
            done = server.commit(p, grad)
            now = commit[at] = env.now
            for q in done.released:
                gates[q].succeed_late()  # type: ignore[union-attr]
            index[at] = done.commit_index
            tau[at] = done.update_staleness
            step[at] = done.step
            if audit is not None:
                assert read.params is not None and done.update is not None
                c = at - first
                audit.params[p, c] = read.params
                audit.update[p, c] = done.update
                audit.prefix[p, c] = read.prefix
                audit.cutoff[p, c] = read.cutoff
            if done.completed is not None:
                evaluator.on_clock(server, done.completed, now)
            if progress is not None and done.commit_index % tick == 0:
                progress(done.commit_index, total)

    in_flight: list[Read | None] = [None] * workers  # served: each worker's read of its iteration in flight
    grads: list[np.ndarray | None] = [None] * workers  # and the gradient at it

    def serve(p: int) -> None:
        """The server begins sending worker p its read, now (the admission; the send keeps the
        server busy for ``serve_time``, while the pull's cost runs); the gradient is taken at once."""
        read = in_flight[p] = server.read(p, copy=copy_reads)
        at = p * clocks + read.iteration - 1
        admit[at] = env.now
        visible[at] = read.visible_clock
        reads[at] = read.updates
        if math_:
            assert read.params is not None
            loss[at], grads[p] = problem.loss_grad(read.params, sample_indices(seed, p, read.iteration, batch, n))

    inbox: simpy.Store = simpy.Store(env)  # served: pushes waiting for the server's thread, FIFO
    served_at: list[Event | None] = [None] * workers  # served: succeeds when the worker's read is sent

    def send_read(p: int):  # type: ignore[no-untyped-def]
        serve(p)
        event = served_at[p]
        assert event is not None
        event.succeed()
        yield timeout(serve_time)

    def server_thread():  # type: ignore[no-untyped-def]
        """The server when reads queue for it (``serve_time > 0``), as the real one is: one thread
        that applies a push (``apply_time``; the commit), then sends the reads the commit released,
        in release order, then the pusher's own next read, ``serve_time`` each, then takes the next
        push, FIFO.  A read is admitted when its send begins, and the worker's pull runs from there
        (so the k-th read after a commit at t is admitted at ``t + k * serve_time``).  The first
        reads go out at time 0, in worker order."""
        for p in range(workers):
            table.admit_or_hold(p)  # the first clock: always admitted
            yield from send_read(p)
        for _ in range(total):
            p = yield inbox.get()
            if apply_time > 0:
                yield timeout(apply_time)
            done = server.commit(p, grads[p])
            c = table.clock(p)
            at = p * clocks + c - 1
            now = commit[at] = env.now
            index[at] = done.commit_index
            tau[at] = done.update_staleness
            step[at] = done.step
            read = in_flight[p]
            if audit is not None:
                assert read is not None and read.params is not None and done.update is not None
                audit.params[p, c - 1] = read.params
                audit.update[p, c - 1] = done.update
                audit.prefix[p, c - 1] = read.prefix
                audit.cutoff[p, c - 1] = read.cutoff
            if done.completed is not None:
                evaluator.on_clock(server, done.completed, now)
            if progress is not None and done.commit_index % tick == 0:
                progress(done.commit_index, total)
            for q in done.released:
                yield from send_read(q)
            if c < clocks and table.admit_or_hold(p):
                yield from send_read(p)

    def served_worker(p: int):  # type: ignore[no-untyped-def]
        """A worker when reads queue for the server: wait for the read, compute, push, repeat."""
        for duration in durations[p]:
            yield served_at[p]
            served_at[p] = env.event()
            yield timeout(duration)
            inbox.put(p)

    if serve_time > 0:
        served_at[:] = [env.event() for _ in range(workers)]
        env.process(server_thread())
    for p in range(workers):
        env.process(served_worker(p) if serve_time > 0 else worker(p))
    env.run()
    done_commits = commits if lean else server.commits
    if done_commits != total:  # pragma: no cover - would be a deadlock in the protocol
        raise RuntimeError(f"simulation stalled after {done_commits} of {total} commits")
    if progress is not None:
        progress(total, total)
    shape = (workers, clocks)
    rec = Recording.empty(workers, clocks)
    rec.compute[:] = compute
    rec.admit[:] = _array(admit, float, shape)
    rec.start[:] = rec.admit + cost
    rec.commit[:] = _array(commit, float, shape)
    rec.wait[:, 0] = rec.admit[:, 0]
    rec.wait[:, 1:] = rec.admit[:, 1:] - rec.commit[:, :-1]  # admitted minus the worker's previous commit
    rec.commit_index[:] = _array(index, np.int64, shape)
    if lean:  # the read rule on whole arrays: what ParameterServer.read serves one read at a time
        iteration = np.arange(1, clocks + 1)
        whole = read_cutoff(policy, iteration, staleness, _array(visible, np.int64, shape))
        rec.visible[:] = read_visible(whole, iteration, workers)
        rec.read_updates[:] = _array(reads, np.int64, shape) if policy == "eager" else read_count(whole, iteration, workers)
        rec.update_staleness[:] = rec.commit_index - 1 - rec.read_updates
    else:
        rec.visible[:] = _array(visible, np.int64, shape)
        rec.read_updates[:] = _array(reads, np.int64, shape)
        rec.update_staleness[:] = _array(tau, np.int64, shape)
    if math_:
        rec.step[:] = _array(step, float, shape)
        rec.loss[:] = _array(loss, float, shape)
    else:
        rec.step[:] = np.nan
    return rec, evaluator.rows, audit


def _array(values: list, dtype: type, shape: tuple[int, int]) -> np.ndarray:
    """A flat list of Python numbers as a (workers x clocks) array."""
    return np.fromiter(values, dtype, len(values)).reshape(shape)
