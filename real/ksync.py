"""Rank 0 for ``consistency.model = "ksync"``: backup workers (Chen et al. 2016), as deployed.

Round r serves the parameters ``x_{r-1}`` to every idle worker; the first K gradients computed
from ``x_{r-1}`` that arrive are applied (one after another, ``x <- x - eta_t d``, as the
simulator's :class:`~sspsim.sim.rounds.RoundServer` does), and the K-th ends the round: the
workers that pushed them get ``x_r`` at once.  A worker still computing is not interrupted (a
real worker cannot be, cheaply): its gradient, from an older round, arrives later, is dropped
(``discarded = 1``), and the worker joins the current round then.  After round ``run.clocks``
every worker is told DONE when it next reports.

The trace's ``clock`` is the worker's own iteration number (a slow worker runs fewer than
``run.clocks``); ``visible_clock`` is ``clock - 1`` (every read is the newest parameters:
staleness 0); ``commit_time`` is when the server applied or dropped the gradient.  The
simulator's ksync restarts every worker each round, so a deployed run is slower than its
prediction where a worker is slower than the round: the gap ``sspsim compare`` shows.
Checkpoints and ``--resume`` are SSP's; this server takes neither.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from sspsim.config import Config
from sspsim.errors import ConfigError
from sspsim.optimizer import Momentum, StepSize
from sspsim.problems import Problem
from sspsim.real.server import Server
from sspsim.real.transport import Kind, Message, ServerHeader, Transport, WorkerHeader
from sspsim.server import BLOCK, add_scaled

__all__ = ["KSyncServer"]


class KSyncServer(Server):
    """:class:`~sspsim.real.server.Server` with K-sync rounds instead of the SSP gate."""

    def __init__(
        self, config: Config, out: Path, *, facts: dict[str, Any], transport: Transport,
        resume: bool = False, problem: Problem | None = None, tensorboard: Path | None = None,
    ) -> None:
        if resume:
            raise ConfigError("consistency.model", "ksync", "a K-sync run cannot be resumed (checkpoints are SSP's)")
        super().__init__(config, out, facts=facts, transport=transport, problem=problem, tensorboard=tensorboard)
        k = config.consistency.k
        assert k is not None
        self.k = k
        self.round = 1
        self.applied = 0  # gradients applied in this round
        self.commits = 0
        self.pushes = 0
        self.x = None if self.server.x is None else self.server.x.copy()
        self._block = np.empty(min(BLOCK, self.x.size if self.x is not None else 0))
        self.step = StepSize.from_config(config.optimizer)
        self.momentum = [Momentum(config.optimizer.momentum) for _ in range(self.P)]
        self.iterations = [0] * self.P  # iterations each worker has begun
        self.read_round = [0] * self.P
        self.read_commits = [0] * self.P
        self.idle: list[int] = []  # pushed this round's gradient: waiting for the round to end
        self.rec.discarded = np.zeros((self.P, self.C), dtype=np.int64)

    def _params_on_the_wire(self) -> None:
        """Every read sends x itself: keep it in the transport's outgoing payload (see Server)."""
        out = getattr(self.transport, "outgoing", None)
        if out is not None and self.x is not None and out.shape == self.x.shape:
            out[:] = self.x
            self.x = out

    def _request(self, p: int) -> None:
        if self.round > self.C:
            self.transport.send(p + 1, ServerHeader(Kind.DONE))
            self.done.add(p)
        elif self.read_round[p] == self.round:  # its gradient counted: it waits for the next round
            self.idle.append(p)
        else:
            self._serve(p)

    def _serve(self, p: int) -> None:
        now = time.time()
        rel = now - self.t0
        self.iterations[p] += 1
        c = self.iterations[p]
        self.read_round[p] = self.round
        self.read_commits[p] = self.commits
        self.read_info[p] = (rel, c - 1, self.commits)  # every read is the newest x: staleness 0
        self.rec.wait[p, c - 1] = now - self.request_time[p]
        self.outstanding[p] = now
        header = ServerHeader(Kind.READ, clock=c, read_time=rel, visible_clock=c - 1,
                              read_updates=self.commits, server_now=now)
        self.transport.send(p + 1, header, self.x)

    def _commit(self, p: int, msg: Message, now: float) -> None:
        self._count(p, msg, now)
        self.request_time[p] = time.time()  # its waiting starts once the push is handled (and a round it ended)

    def _count(self, p: int, msg: Message, now: float) -> None:
        """Apply p's gradient if it is among the round's first K from the round's parameters, else drop it."""
        header = msg.header
        assert isinstance(header, WorkerHeader)
        c = header.clock
        if c != self.iterations[p]:
            raise ConnectionError(f"worker {p} pushed clock {c} while the server expected {self.iterations[p]}")
        kept = self.read_round[p] == self.round and self.applied < self.k
        self.pushes += 1
        i = c - 1
        rec = self.rec
        self._record(p, header, now, commit_index=self.pushes,
                     update_staleness=self.commits - self.read_commits[p] if kept else 0,
                     step=math.nan, loss=header.loss if (self.math and kept) else math.nan)
        assert rec.discarded is not None
        rec.discarded[p, i] = int(not kept)
        if not kept:
            self.read_round[p] = 0  # nothing of this round counted: serve it the current round
            return
        self.commits += 1
        self.applied += 1
        eta = self.step(self.commits, 0)
        if self.x is not None:
            add_scaled(self.x, -eta, self.momentum[p].direction(msg.payload), self._block)  # x - eta d, in place
            rec.step[p, i] = eta
        if self.applied == self.k:
            self._end_round(now)

    def _end_round(self, now: float) -> None:
        finished = self.round
        self.round += 1
        self.applied = 0
        if self.evaluator.due(finished):
            self._snapshot(now - self.t0)
        waiting, self.idle = self.idle, []
        for q in waiting:
            self._request(q)

    def _snapshot(self, rel: float) -> None:
        x = None if self.x is None else self.x.copy()
        self.snapshots.append((x, rel, self.round - 1, self.commits))

    def _finish(self) -> None:
        # iterations a slow worker never ran (not in trace.csv): for the summary, no staleness, and
        # its finish is its last commit
        missing = ~self.committed
        rec = self.rec
        rec.visible[missing] = np.broadcast_to(np.arange(self.C)[None, :], rec.visible.shape)[missing]
        for p in range(self.P):
            for i in range(1, self.C):
                if missing[p, i]:
                    rec.commit[p, i] = rec.commit[p, i - 1]
        super()._finish()
