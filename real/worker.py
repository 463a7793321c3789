"""Ranks 1..P: a worker.  Ask for a read, compute the minibatch gradient on the samples
``sample_indices(seed, p, c)``, sleep the injected delay, push, repeat.

Injected delays make one config mean the same experiment in both backends: iteration c of
worker p takes ``factor[p, c] * (real + base[p, c])`` seconds, where ``base`` is the config's
speed-model draw and ``factor`` its persistent and transient slowdowns (a worker with slowdown
3 takes three times as long, its real computation included).
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from sspsim.config import Config
from sspsim.problems import Problem, make_problem
from sspsim.real.models import torch_problem
from sspsim.real.staging import Staging
from sspsim.real.transport import Kind, ServerHeader, Transport, WorkerHeader
from sspsim.sampling import sample_indices
from sspsim.speeds import base_times, slowdown_factors

__all__ = ["FAULT_ENV", "Worker", "pick_device"]

FAULT_ENV = "SSPSIM_FAULT"
"""Fault injection for tests: ``"worker:clock:die"`` exits that worker at that clock,
``"worker:clock:hang"`` makes it stop talking (the server's timeout must notice)."""


def _fault(worker: int) -> tuple[int, str] | None:
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return None
    who, clock, how = spec.split(":")
    return (int(clock), how) if int(who) == worker else None

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def pick_device(setting: str, local_rank: int) -> torch.device:
    """``cuda:{local_rank mod GPUs}`` when GPUs are wanted and present (shared when fewer than
    workers), else the CPU."""
    if setting != "cpu" and torch.cuda.is_available():
        return torch.device(f"cuda:{local_rank % torch.cuda.device_count()}")
    return torch.device("cpu")


class Worker:
    """One worker's loop.  Exit status 0 when it pushed its last clock, had before a resume, or
    the server stopped the run: the server reports the run's outcome and why, and under torchrun
    the first process to fail is what the launcher names, so a stopped worker must not fail first.

    ``worker`` is the index 0..P-1; its rank on ``transport`` is ``worker + 1`` (the server is
    rank 0).  ``problem`` is built from the config unless given.
    """

    def __init__(
        self, config: Config, worker: int, device: torch.device, *, transport: Transport,
        clock_offset: float = 0.0, problem: Problem | None = None,
    ) -> None:
        self.config = config
        self.offset = -clock_offset  # add to our timestamps to get the server's time
        self.p = worker
        self.device = device
        if problem is None:
            problem = make_problem(config.problem, config.problem_seed)
        self.model = torch_problem(problem, device, DTYPES[config.real.dtype]) if problem.has_math else None
        # gradients go straight into the transport's outgoing payload when it has one: a push copies nothing more
        outgoing = getattr(transport, "outgoing", None)
        self.staging = (Staging(problem.n_params, device, self.model.dtype, host_out=outgoing)
                        if self.model is not None else None)
        self.n_samples = problem.n_samples
        self.transport = transport
        P, C, seed = config.workers.count, config.run.clocks, config.run.seed
        w = config.workers
        if config.real.inject_delays:
            self.base = base_times(w.speed, workers=P, clocks=C, seed=seed)[worker]
            self.factor = slowdown_factors(workers=P, clocks=C, seed=seed, stragglers=w.stragglers, transient=w.transient)[worker]
        else:
            self.base, self.factor = np.zeros(C), np.ones(C)

    def run(self) -> int:
        cfg = self.config
        seed, batch, C = cfg.problem_seed, cfg.problem.batch_size, cfg.run.clocks
        offset = self.offset
        self.transport.send(0, WorkerHeader(Kind.HELLO, self.p, sent=time.time() + offset))
        header, params = self._receive()
        fault = _fault(self.p)
        while header.kind is Kind.READ:
            c = header.clock
            if fault is not None and fault[0] == c:
                if fault[1] == "die":
                    os._exit(17)
                time.sleep(10**6)
            start = time.time()
            loss, grad = 0.0, None
            if self.model is not None and self.staging is not None:
                x = self.staging.to_device(params)
                loss, g = self.model.loss_grad(x, sample_indices(seed, self.p, c, batch, self.n_samples))
                grad = self.staging.to_host(g)  # waits for the device
            real = time.time() - start
            k = self.factor[c - 1]
            delay = k * self.base[c - 1] + (k - 1.0) * real
            if delay > 0:
                time.sleep(delay)
            compute = time.time() - start
            kind = Kind.LAST if c == C else Kind.PUSH
            pushed = WorkerHeader(kind, self.p, clock=c, loss=float(loss), compute_time=compute, start_time=start + offset,
                                  real_compute=real, sent=time.time() + offset)
            self.transport.send(0, pushed, grad)
            if kind is Kind.LAST:
                return 0
            header, params = self._receive()
        return 0  # DONE (finished before a resume) or STOP (the server ended the run)

    def _receive(self) -> tuple[ServerHeader, np.ndarray]:
        """The server's next message: its header and payload (a READ's parameters)."""
        msg = self.transport.recv_from(0)
        if not isinstance(msg.header, ServerHeader):
            raise ConnectionError(f"the server sent {msg.header.kind.name}, a worker's message")
        return msg.header, msg.payload
