"""Rank 0: the parameter server.  The gate, the read policies and the optimizer state are the
simulator's own :class:`sspsim.server.ParameterServer`; this module only moves messages,
stamps wall-clock times, watches for dead workers, checkpoints, and writes the run directory.

Times in the trace are seconds since the run started (``time.time()`` on the server; workers on
other hosts convert theirs with a clock offset measured at start-up, see ``sspsim.real.main``).
"""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from sspsim.real.checkpoint import load_checkpoint, save_checkpoint
from sspsim.real.rundir import RealRun
from sspsim.real.transport import HELLO, LAST, PUSH, READ, GlooTransport
from sspsim.config import Config
from sspsim.evaluate import Evaluator
from sspsim.optimizer import StepSize
from sspsim.problems import make_problem, problem_facts
from sspsim.server import ParameterServer
from sspsim.ssp import Proceed
from sspsim.trace import Recording

__all__ = ["DONE", "Server"]

DONE = 3.0  # server -> worker: nothing left to do (a resumed run whose worker had finished)
POLL = 0.2  # seconds between checks for dead workers while no message arrives


class Terminated(Exception):
    """The launcher (torchrun) asked this process to stop, usually because another rank failed."""


class Server:
    """Serve reads and commit updates until every worker has pushed its last clock."""

    def __init__(self, config: Config, out: Path, *, facts: dict[str, Any], resume: bool = False) -> None:
        self.config = config
        self.out = Path(out)
        self.P, self.C = config.workers.count, config.run.clocks
        self.problem = make_problem(config.problem, config.problem_seed)
        self.math = self.problem.has_math
        self.transport = GlooTransport(self.problem.n_params)
        x0 = self.problem.initial_params() if self.math else None
        self.server = ParameterServer(
            x0, workers=self.P, staleness=config.consistency.staleness, read_policy=config.consistency.read_policy,
            step=StepSize.from_config(config.optimizer), momentum=config.optimizer.momentum,
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
        self.run_dir = RealRun(self.out, config, facts, engine="ps", problem=problem_facts(self.problem, None))
        self.t0 = time.time() - self.elapsed_before
        self.request_time = [0.0] * self.P
        self.read_info: dict[int, tuple[float, int, int]] = {}
        self.outstanding: dict[int, float] = {}  # worker -> when its read was sent (it is computing)
        self.done: set[int] = set()
        self.greeted: set[int] = set()
        self.busy: list[float] = []  # seconds the server spent on each push (commit + the reads it served)

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> int:
        """Exit status: 0 complete, 1 incomplete (the reason is in run.json)."""
        previous = {sig: signal.signal(sig, self._terminate) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.run_dir.mark_running(resumed_from=self.resumed_from)
            if not self.snapshots:
                self._snapshot(0.0)
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
            p, kind = msg.source - 1, msg.header[0]
            if kind == HELLO:
                self.greeted.add(p)
            if kind in (PUSH, LAST):
                self._commit(p, msg, now)
            if kind == LAST:
                self.done.add(p)
            if kind in (HELLO, PUSH):
                self.request_time[p] = now
                if self.server.table.clock(p) >= self.C:  # resumed after this worker had finished
                    self.transport.send(msg.source, [DONE], None)
                    self.done.add(p)
                elif isinstance(self.server.admit(p), Proceed):
                    self._serve(p)
                else:
                    self.server.hold(p)
            if kind in (PUSH, LAST):
                self.busy.append(time.time() - now)

    def _serve(self, p: int) -> None:
        read = self.server.read(p)
        now = time.time()
        rel = now - self.t0
        self.read_info[p] = (rel, read.visible_clock, read.updates)
        self.rec.wait[p, read.iteration - 1] = now - self.request_time[p]
        self.outstanding[p] = now
        self.transport.send(p + 1, [READ, read.iteration, rel, read.visible_clock, read.updates, now], read.params)

    def _commit(self, p: int, msg, now: float) -> None:  # type: ignore[no-untyped-def]
        header = msg.header
        c = int(header[2])
        expected = self.server.table.clock(p) + 1
        if c != expected:
            raise ConnectionError(f"worker {p} pushed clock {c} while the server expected {expected}")
        done = self.server.commit(p, msg.payload.copy() if self.math else None)
        self.outstanding.pop(p, None)
        read_rel, visible, updates = self.read_info.pop(p)
        i = c - 1
        rec = self.rec
        rec.admit[p, i] = read_rel
        rec.start[p, i] = float(header[5]) - self.t0
        rec.commit[p, i] = now - self.t0
        rec.compute[p, i] = float(header[4])
        self.real_compute[p, i] = float(header[6])
        rec.visible[p, i] = visible
        rec.read_updates[p, i] = updates
        rec.commit_index[p, i] = done.index
        rec.update_staleness[p, i] = done.update_staleness
        rec.step[p, i] = done.step if self.math else math.nan
        rec.loss[p, i] = float(header[3]) if self.math else math.nan
        self.committed[p, i] = True
        for q in done.released:
            self._serve(q)
        if done.completed is not None:
            if self.evaluator.due(done.completed):
                self._snapshot(now - self.t0)
            every = self.config.real.checkpoint_every
            if every and done.completed % every == 0 and done.completed < self.C:
                save_checkpoint(self.out, self._state(now))
                self._write_progress(now)

    def _snapshot(self, rel: float) -> None:
        x = None if self.server.x is None else self.server.x.copy()
        self.snapshots.append((x, rel, self.server.table.min_clock, self.server.commits))

    # -- ends ----------------------------------------------------------------------------
    def _terminate(self, signum, frame) -> None:  # type: ignore[no-untyped-def]
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
                "server": {"busy_per_push": float(np.mean(self.busy)) if self.busy else None,
                           "pushes": len(self.busy)}}

    def _finish(self) -> None:
        self.run_dir.write(self.rec, self.committed, self._evals(), status="complete", wall=time.time() - self.t0,
                           extra={"real_compute_time": self.real_compute}, **self._facts())

    def _fail(self, reason: str) -> int:
        self.run_dir.write(self.rec, self.committed, self._evals(), status="incomplete", reason=reason,
                           wall=time.time() - self.t0, extra={"real_compute_time": self.real_compute}, **self._facts())
        return 1

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
        for name, value in state["recording"].items():
            setattr(self.rec, name, np.array(value))
        self.committed = np.array(state["committed"], dtype=bool)
        self.real_compute = np.array(state["real_compute"])
        # iterations that were running at the checkpoint begin again: forget their half rows
        running = ~self.committed
        self.rec.wait[running] = 0.0
        self.snapshots = [(None if x is None else np.array(x), float(t), int(c), int(u)) for x, t, c, u in state["snapshots"]]
        self.elapsed_before = float(state["elapsed"])
        self.resumed_from = int(min(self.server.table.state()))
