"""The SimPy engine: workers as processes around one :class:`~sspsim.server.ParameterServer`.

One iteration of worker p (DESIGN §Semantics):

1. ask the server's gate (the shared controller); if it says Wait, sleep until a commit
   releases p;
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
from sspsim.server import ParameterServer
from sspsim.ssp import Proceed
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


def _fill(rec: Recording, log: list[tuple], cost: float, math_: bool) -> None:
    """Move the per-iteration log into the recording's (workers x clocks) arrays."""
    cols = list(zip(*log))
    at = (np.array(cols[0]), np.array(cols[1]))
    rec.admit[at] = cols[2]
    rec.start[at] = np.array(cols[2]) + cost
    rec.commit[at] = cols[3]
    rec.wait[at] = cols[4]
    rec.visible[at] = cols[5]
    rec.read_updates[at] = cols[6]
    rec.commit_index[at] = cols[7]
    rec.update_staleness[at] = cols[8]
    rec.step[at] = cols[9] if math_ else np.nan
    rec.loss[at] = cols[10]


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
    """
    workers, clocks = compute.shape
    cost = config.network.message_cost(problem.n_params)
    push = config.network.push_cost(problem.n_params)
    apply_time = config.network.apply_time
    policy = config.consistency.read_policy
    math_ = problem.has_math
    x0 = problem.initial_params() if math_ else None
    server = server_class(
        x0, workers=workers, staleness=config.consistency.staleness, read_policy=policy,
        step=StepSize.from_config(config.optimizer), momentum=config.optimizer.momentum,
    )
    env = simpy.Environment()
    apply_queue = simpy.Resource(env, capacity=1) if apply_time > 0 else None
    rec = Recording.empty(workers, clocks)
    rec.compute[:] = compute
    audit = Audit(x0, workers, clocks) if (config.run.audit and x0 is not None) else None
    evaluator = Evaluator(problem, config, clocks)
    evaluator.record(server, 0.0)
    gates: dict[int, LateEvent] = {}
    log: list[tuple] = []  # one tuple per iteration; arrays are filled once at the end
    nan = float("nan")
    tie_sensitive = policy != "lazy"
    copy_reads = audit is not None  # otherwise the gradient is computed before anything else commits
    seed, batch, n = config.problem_seed, config.problem.batch_size, problem.n_samples
    total = workers * clocks
    tick = max(1, total // 200)

    def worker(p: int):  # type: ignore[no-untyped-def]
        times = compute[p].tolist()
        last_commit = 0.0
        for c in range(1, clocks + 1):
            if not isinstance(server.admit(p), Proceed):
                server.hold(p)
                gate = gates[p] = LateEvent(env)
                yield gate  # released late in the instant (LateEvent.succeed_late)
            elif tie_sensitive and env.peek() == env.now:
                yield LateEvent(env).succeed_late()
            admitted = env.now
            read = server.read(p, copy=copy_reads)
            grad = None
            loss = nan
            if math_:
                assert read.params is not None  # a server with math always returns the parameters
                loss, grad = problem.loss_grad(read.params, sample_indices(seed, p, c, batch, n))
            yield env.timeout(cost + times[c - 1] + push)
            if apply_queue is not None:
                with apply_queue.request() as slot:
                    yield slot
                    yield env.timeout(apply_time)
            done = server.commit(p, grad)
            now = env.now
            for q in done.released:
                gates.pop(q).succeed_late()
            log.append((p, c - 1, admitted, now, admitted - last_commit, read.visible_clock, read.updates,
                        done.commit_index, done.update_staleness, done.step, loss))
            if audit is not None:
                assert read.params is not None and done.update is not None
                audit.params[p, c - 1] = read.params
                audit.update[p, c - 1] = done.update
                audit.prefix[p, c - 1] = read.prefix
                audit.cutoff[p, c - 1] = read.cutoff
            last_commit = now
            if done.completed is not None:
                evaluator.on_clock(server, done.completed, now)
            if progress is not None and done.commit_index % tick == 0:
                progress(done.commit_index, total)

    for p in range(workers):
        env.process(worker(p))
    env.run()
    _fill(rec, log, cost, math_)
    if progress is not None:
        progress(total, total)
    if server.commits != total:  # pragma: no cover - would be a deadlock in the protocol
        raise RuntimeError(f"simulation stalled after {server.commits} of {total} commits")
    return rec, evaluator.rows, audit
