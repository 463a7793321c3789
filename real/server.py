"""Rank 0: the parameter server.  The gate, the read policies and the optimizer state are the
simulator's own :class:`sspsim.server.ParameterServer`; this module only moves messages,
stamps wall-clock times, watches for dead workers, checkpoints, and writes the run directory.

Times in the trace are seconds since the run started (``time.time()`` on the server; workers on
other hosts convert theirs with a clock offset measured at start-up, see ``sspsim.real.main``).
The run starts when every worker has reported in (HELLO): processes come up seconds apart on a
busy machine, and a worker that starts late would make the others wait at the gate for a reason
that is start-up, not SSP (the simulator starts every worker at time 0).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from sspsim.config import Config
from sspsim.evaluate import Evaluator
from sspsim.optimizer import StepSize
from sspsim.problems import Problem, make_problem, problem_facts
from sspsim.real.checkpoint import load_checkpoint, save_checkpoint
from sspsim.real.rundir import RealRun
from sspsim.real.transport import Kind, Message, ServerHeader, Transport, WorkerHeader
from sspsim.server import ParameterServer
from sspsim.ssp import Proceed
from sspsim.tblog import ClockLog, log_clocks
from sspsim.trace import Recording

__all__ = ["Server"]

POLL = 0.2  # seconds between checks for dead workers while no message arrives


class Terminated(Exception):
    """The launcher (torchrun) asked this process to stop, usually because another rank failed."""


class Server:
    """Serve reads and commit updates until every worker has pushed its last clock.

    ``transport`` carries the messages: a :class:`~sspsim.real.transport.GlooTransport` under
    torchrun, an :class:`~sspsim.real.transport.InProcessTransport` when the workers are threads.
    Workers are ranks 1..P of it.  ``problem`` is built from the config unless given.
    """

    def __init__(
        self, config: Config, out: Path, *, facts: dict[str, Any], transport: Transport,
        resume: bool = False, problem: Problem | None = None, tensorboard: Path | None = None,
    ) -> None:
        self.config = config
        self.out = Path(out)
        self.P, self.C = config.workers.count, config.run.clocks
        self.problem = problem if problem is not None else make_problem(config.problem, config.problem_seed)
        self.math = self.problem.has_math
        self.transport = transport
        x0 = self.problem.initial_params() if self.math else None
        self.server = ParameterServer(
            x0, workers=self.P, staleness=config.consistency.staleness, read_policy=config.consistency.read_policy,
            step=StepSize.from_config(config.optimizer), momentum=config.optimizer.momentum, in_place=True,
        )
        self.rec = Recording.empty(self.P, self.C)
        self.committed = np.zeros((self.P, self.C), dtype=bool)
        self.real_compute = np.zeros((self.P, self.C))  # the measured computation alone, without injected delay
        self.evaluator = Evaluator(self.problem, config, self.C)
        self.snapshots: list[tuple[np.ndarray | None, float, int, int]] = []
        self.eval_rows: list[dict[str, float]] = []  # evaluations of snapshots[:len(eval_rows)]
        self.elapsed_before = 0.0
        self.resumed_from: int | None = None
        if resume:
            self._restore(load_checkpoint(self.out))
        import pandas  # noqa: F401 - now, not while a failure waits to be written (seconds on a busy machine)

        self.run_dir = RealRun(self.out, config, facts, engine="ps", problem=problem_facts(self.problem, None))
        self.tb = None if tensorboard is None else ClockLog(tensorboard, start=0.0)  # before t0: its imports take seconds
        self.t0 = time.time() - self.elapsed_before
        if self.tb is not None:
            self.tb.start = self.t0
            self._log_clocks(range(1, self.server.table.min_clock + 1))  # resumed: the clocks done before, first
        self.request_time = [0.0] * self.P
        self.read_info: dict[int, tuple[float, int, int]] = {}
        self.outstanding: dict[int, float] = {}  # worker -> when its read was sent (it is computing)
        self.done: set[int] = set()
        self.greeted: set[int] = set()
        self.ready: list[int] = []  # workers that reported in before the last one did: served at the start
        self.busy: list[float] = []  # seconds the server spent on each push (commit + the reads it served)
        self.applying: list[float] = []  # seconds each commit took (the update applied, nothing sent)
        self.sending: list[float] = []  # seconds each read's send took (the server's thread blocked)
        self.ending = False  # set once the run's record is being written

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> int:
        """Exit status: 0 complete, 1 incomplete (the reason is in run.json)."""
        on_main = threading.current_thread() is threading.main_thread()  # only there can Python handle signals
        previous = {sig: signal.signal(sig, self._terminate) for sig in (signal.SIGTERM, signal.SIGINT)} if on_main else {}
        try:
            self.run_dir.mark_running(resumed_from=self.resumed_from)
            if not self.snapshots:
                self._snapshot(0.0)
            self._params_on_the_wire()
            self.transport.start_receiving()
            self._loop()
        except Terminated:
            return self._fail("stopped by the launcher (another process of the run failed or was interrupted)")
        except ConnectionError as exc:
            return self._fail(f"lost a worker: {exc}")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self._finish()
        return 0

    def _loop(self) -> None:
        timeout = self.config.real.timeout
        started = time.time()
        while len(self.done) < self.P:
            msg = self.transport.next_message(POLL)
            now = time.time()
            if msg is None:
                late = [p for p, t in self.outstanding.items() if now - t > timeout]
                if late:
                    raise ConnectionError(f"worker {late[0]} sent nothing for {timeout:g} s during an iteration (real.timeout)")
                missing = sorted(set(range(self.P)) - self.greeted)
                if missing and now - started > timeout:
                    raise ConnectionError(f"worker {missing[0]} never reported in within {timeout:g} s (real.timeout)")
                continue
            p, header = msg.source - 1, msg.header
            if not isinstance(header, WorkerHeader) or not 0 <= p < self.P:
                raise ConnectionError(f"rank {msg.source} sent {header.kind.name}, not a worker's message")
            kind = header.kind
            if kind is Kind.HELLO:
                self.greeted.add(p)
                self.ready.append(p)
                if len(self.greeted) == self.P:
                    self._start()
                continue
            if kind in (Kind.PUSH, Kind.LAST):
                self._commit(p, msg, now)  # sets request_time[p]: waiting starts once the push is applied
            if kind is Kind.LAST:
                self.done.add(p)
            if kind is Kind.PUSH:
                self._request(p)
            self.busy.append(time.time() - now)  # applying the update and sending the reads it let through

    def _start(self) -> None:
        """Every worker has reported in: the run's clock starts now, and each gets its first read."""
        now = time.time()
        self.t0 = now - self.elapsed_before
        if self.tb is not None:
            self.tb.start = self.t0  # TensorBoard's wall times are the run's own clock
        for p in self.ready:
            self.request_time[p] = now
            self._request(p)
        self.ready.clear()

    def _params_on_the_wire(self) -> None:
        """Eager reads send the parameters themselves: keep x in the transport's outgoing payload
        (when it has one), so a READ copies nothing.  Every READ's payload is then x itself, so no
        other payload overwrites it; the commits update it in place."""
        out = getattr(self.transport, "outgoing", None)
        x = self.server.x
        if out is not None and x is not None and self.server.policy == "eager" and out.shape == x.shape:
            out[:] = x
            self.server.x = out

    def _request(self, p: int) -> None:
        """Worker ``p`` asks for its next read: serve it, hold it at the gate, or tell it the run is done."""
        if self.server.table.clock(p) >= self.C:  # resumed after this worker had finished
            self.transport.send(p + 1, ServerHeader(Kind.DONE))
            self.done.add(p)
        elif isinstance(self.server.admit(p), Proceed):
            self._serve(p)
        else:
            self.server.hold(p)

    def _serve(self, p: int) -> None:
        read = self.server.read(p, copy=False)  # the send below copies it before anything else commits
        now = time.time()
        rel = now - self.t0
        self.read_info[p] = (rel, read.visible_clock, read.updates)
        self.rec.wait[p, read.iteration - 1] = now - self.request_time[p]
        self.outstanding[p] = now
        header = ServerHeader(Kind.READ, clock=read.iteration, read_time=rel, visible_clock=read.visible_clock,
                              read_updates=read.updates, server_now=now)
        self.transport.send(p + 1, header, read.params)
        self.sending.append(time.time() - now)

    def _commit(self, p: int, msg: Message, now: float) -> None:
        header = msg.header
        assert isinstance(header, WorkerHeader)
        c = header.clock
        expected = self.server.table.clock(p) + 1
        if c != expected:
            raise ConnectionError(f"worker {p} pushed clock {c} while the server expected {expected}")
        done = self.server.commit(p, msg.payload if self.math else None)  # a view: valid until the next message
        applied = self.request_time[p] = time.time()  # the pusher's next read is asked for now
        self.applying.append(applied - now)
        self._record(p, header, now, commit_index=done.commit_index, update_staleness=done.update_staleness,
                     step=done.step if self.math else math.nan, loss=header.loss if self.math else math.nan)
        for q in done.released:
            self._serve(q)
        if done.completed is not None:
            if self.tb is not None:
                self._log_clock(done.completed)
            if self.evaluator.due(done.completed):
                self._snapshot(now - self.t0)
            every = self.config.real.checkpoint_every
            if every and done.completed % every == 0 and done.completed < self.C:
                save_checkpoint(self.out, self._state(now))
                self._write_progress(now)

    def _record(self, p: int, header: WorkerHeader, now: float, *, commit_index: int, update_staleness: int,
                step: float, loss: float) -> None:
        """The trace row of worker p's push ``header`` received at ``now`` (its read was served earlier)."""
        self.outstanding.pop(p, None)
        read_rel, visible, updates = self.read_info.pop(p)
        i = header.clock - 1
        rec = self.rec
        rec.admit[p, i] = read_rel
        rec.start[p, i] = header.start_time - self.t0
        rec.commit[p, i] = now - self.t0
        rec.compute[p, i] = header.compute_time
        self.real_compute[p, i] = header.real_compute
        rec.visible[p, i] = visible
        rec.read_updates[p, i] = updates
        rec.commit_index[p, i] = commit_index
        rec.update_staleness[p, i] = update_staleness
        rec.step[p, i] = step
        rec.loss[p, i] = loss
        self.committed[p, i] = True

    def _log_clock(self, c: int) -> None:
        """TensorBoard scalars of clock ``c``, which every worker has just pushed (buffered: cheap)."""
        assert self.tb is not None
        rec, i = self.rec, c - 1
        previous = rec.commit[:, i - 1] if i > 0 else np.zeros(self.P)
        self.tb.clock(c, commit=rec.commit[:, i], previous=previous, wait=rec.wait[:, i], staleness=(c - 1) - rec.visible[:, i],
                      present=self.committed[:, i], iterations=self.P * c)

    def _log_clocks(self, clocks: range) -> None:
        """Buffer the TensorBoard scalars of ``clocks`` not logged yet, from the record."""
        assert self.tb is not None
        rec = self.rec
        staleness = np.arange(self.C)[None, :] - rec.visible
        log_clocks(self.tb, clocks, commit=rec.commit, wait=rec.wait, staleness=staleness, present=self.committed)

    def _close_log(self) -> None:
        """At the end (after the run directory is written): the clocks not logged yet, the objective, close.
        Best effort: a failure to write events is reported and does not change the run's outcome."""
        if self.tb is None:
            return
        try:
            self._log_clocks(range(1, self.C + 1))
            self.tb.evals(self.eval_rows)
            self.tb.close()
        except Exception as exc:  # the run's record is written; the events are extra
            sys.stderr.write(f"sspsim: warning: TensorBoard events not fully written: {exc}\n")
        self.tb = None

    def _snapshot(self, rel: float) -> None:
        x = None if self.server.x is None else self.server.x.copy()
        self.snapshots.append((x, rel, self.server.table.min_clock, self.server.commits))

    # -- ends ----------------------------------------------------------------------------
    def _terminate(self, signum, frame) -> None:  # type: ignore[no-untyped-def]
        if not self.ending:  # already writing the run's record: let it finish
            raise Terminated()

    def _evals(self) -> list[dict[str, float]]:
        """Evaluation rows of the snapshots (each evaluated once: checkpoints ask again)."""
        rows = self.eval_rows
        rows.extend(self.evaluator.row(x, t, clock, updates) for x, t, clock, updates in self.snapshots[len(rows):])
        return list(rows)

    def _write_progress(self, now: float) -> None:
        """At a checkpoint: the trace and evaluations so far, so a crashed server's run directory holds them."""
        self.run_dir.write(self.rec, self.committed, self._evals(), status="running", wall=now - self.t0,
                           extra={"real_compute_time": self.real_compute}, **self._facts())

    def _facts(self) -> dict[str, Any]:
        return {"resumed_from": self.resumed_from, "started_at": self.t0 + self.elapsed_before,
                "server": {"busy_per_push": _mean(self.busy), "apply_per_push": _mean(self.applying),
                           "send_per_read": _mean(self.sending), "pushes": len(self.busy), "reads": len(self.sending)}}

    def _finish(self) -> None:
        self.ending = True
        self.run_dir.write(self.rec, self.committed, self._evals(), status="complete", wall=time.time() - self.t0,
                           extra={"real_compute_time": self.real_compute}, **self._facts())
        self._close_log()

    def _fail(self, reason: str) -> int:
        self.ending = True
        self.run_dir.write(self.rec, self.committed, self._evals(), status="incomplete", reason=reason,
                           wall=time.time() - self.t0, extra={"real_compute_time": self.real_compute}, **self._facts())
        self._stop_workers()
        self._close_log()
        return 1

    def _stop_workers(self) -> None:
        """Tell every unfinished worker to stop (STOP), best effort: on a daemon thread, because a
        send to a worker that hangs may never complete (under torchrun the launcher ends them anyway)."""
        left = [p for p in range(self.P) if p not in self.done]

        def stop() -> None:
            for p in left:
                try:
                    self.transport.send(p + 1, ServerHeader(Kind.STOP))
                except Exception:
                    pass

        threading.Thread(target=stop, name="sspsim-stop", daemon=True).start()

    # -- checkpoints ---------------------------------------------------------------------
    def _state(self, now: float) -> dict[str, Any]:
        return {
            "server": self.server.state_dict(),
            "recording": {f: getattr(self.rec, f) for f in self.rec.__dataclass_fields__},
            "committed": self.committed,
            "real_compute": self.real_compute,
            "snapshots": self.snapshots,
            "elapsed": now - self.t0,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.server.load_state_dict(state["server"])
        for name, value in state["recording"].items():  # None: a column this engine does not keep (discarded)
            setattr(self.rec, name, None if value is None else np.array(value))
        self.committed = np.array(state["committed"], dtype=bool)
        self.real_compute = np.array(state["real_compute"])
        # iterations that were running at the checkpoint begin again: forget their half rows
        running = ~self.committed
        self.rec.wait[running] = 0.0
        self.snapshots = [(None if x is None else np.array(x), float(t), int(c), int(u)) for x, t, c, u in state["snapshots"]]
        self.elapsed_before = float(state["elapsed"])
        self.resumed_from = int(min(self.server.table.state()))


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None
