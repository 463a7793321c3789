"""``sspsim deploy --baseline ddp``: the same problem trained with DistributedDataParallel.

P ranks, no parameter server: each rank computes its minibatch gradient on the samples
``sample_indices(seed, p, c)``, DDP all-reduces (NCCL when every rank has a GPU of its own,
Gloo otherwise), and every rank applies the same step.  Each rank scales its loss by
``P * eta_t(p, c)`` so that DDP's *average* is the BSP update ``sum_p eta_t(p, c) g_p`` of the
simulator (momentum then acts on that sum: the same as per-worker buffers for a constant step).
Injected delays are those of the parameter-server runs, so the two compare directly.
A user's task (``problem.kind = "torch"``) is trained the same way: the flat vector holds its
module's parameters and the forward is its loss through ``functional_call``
(:class:`sspsim.real.models.TaskOnDevice`), in the model's dtype.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from sspsim.config import Config
from sspsim.evaluate import Evaluator
from sspsim.optimizer import StepSize
from sspsim.problems import make_problem, problem_facts
from sspsim.real.exchange import gather_json
from sspsim.real.models import torch_problem
from sspsim.real.rundir import RealRun
from sspsim.real.worker import DTYPES
from sspsim.sampling import sample_indices
from sspsim.speeds import base_times, slowdown_factors
from sspsim.trace import Recording

__all__ = ["train_ddp"]


class _Flat(torch.nn.Module):
    """The flat parameter vector as a module whose forward is the minibatch loss (DDP hooks
    its all-reduce into the backward pass of what forward returns)."""

    def __init__(self, model, x0: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.model = model
        self.x = torch.nn.Parameter(x0)

    def forward(self, indices: np.ndarray, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        loss = self.model.loss(self.x, indices)
        return loss, loss * scale


def train_ddp(config: Config, out: Path, *, device: torch.device, hardware: dict) -> int:
    rank, P, C = dist.get_rank(), config.workers.count, config.run.clocks
    problem = make_problem(config.problem, config.problem_seed)
    if not problem.has_math:
        raise SystemExit("sspsim: error: --baseline ddp needs a problem with math (problem.kind != 'none')")
    dtype = DTYPES[config.real.dtype]
    model = torch_problem(problem, device, dtype)
    module = _Flat(model, torch.as_tensor(problem.initial_params(), dtype=model.dtype, device=device))
    own_gpus = device.type == "cuda" and torch.cuda.device_count() >= P
    group = dist.new_group(backend="nccl") if own_gpus else None
    ddp = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None, process_group=group)
    step = StepSize.from_config(config.optimizer)
    beta = config.optimizer.momentum
    buffer = None
    w, seed = config.workers, config.run.seed
    base = base_times(w.speed, workers=P, clocks=C, seed=seed)[rank] if config.real.inject_delays else np.zeros(C)
    factor = (slowdown_factors(workers=P, clocks=C, seed=seed, stragglers=w.stragglers, transient=w.transient)[rank]
              if config.real.inject_delays else np.ones(C))
    evaluator = Evaluator(problem, config, C)
    snapshots = []
    dist.barrier()
    start_at = torch.tensor([time.time()], dtype=torch.float64)
    dist.broadcast(start_at, src=0)  # one host: one clock; several: rank 0's start, each rank's own clock
    t0 = float(start_at.item())
    rows = []
    if rank == 0:
        snapshots.append((problem.initial_params(), 0.0, 0, 0))
    batch, n = config.problem.batch_size, problem.n_samples
    for c in range(1, C + 1):
        start = time.time()
        scale = P * step(P * (c - 1) + rank + 1, 0)  # DDP averages: the mean of these is the BSP sum
        loss, scaled = ddp(sample_indices(config.problem_seed, rank, c, batch, n), scale)
        value = float(loss.detach())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        real = time.time() - start
        k = factor[c - 1]
        delay = k * base[c - 1] + (k - 1.0) * real
        if delay > 0:
            time.sleep(delay)
        computed = time.time()
        scaled.backward()
        with torch.no_grad():
            g = ddp.module.x.grad
            buffer = g.clone() if (beta == 0 or buffer is None) else g + beta * buffer
            ddp.module.x -= buffer
            ddp.module.x.grad = None
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        done = time.time()
        rows.append((rank, c, start - t0, computed - start, done - computed, done - t0, value))
        if rank == 0 and (evaluator.due(c)):
            snapshots.append((ddp.module.x.detach().to("cpu", torch.float64).numpy().copy(), done - t0, c, P * c))
    gathered = gather_json(rows, dst=0)
    if gathered is None:
        return 0
    rec = Recording.empty(P, C)
    # Every update of clock c is in once the all-reduce is: the first rank to come out of it
    # proves that instant (no rank starts clock c + 1 before it).
    finished = np.full(C, np.inf)
    for rank_rows in gathered:
        for _, c, _, _, _, commit, _ in rank_rows:
            finished[c - 1] = min(finished[c - 1], commit)
    for rank_rows in gathered:
        for p, c, start, compute, _, _, value in rank_rows:
            i = c - 1
            rec.admit[p, i] = rec.start[p, i] = start
            rec.compute[p, i] = compute
            rec.wait[p, i] = finished[i] - (start + compute)  # blocked in the all-reduce: the BSP barrier
            rec.commit[p, i] = finished[i]
            rec.visible[p, i] = c - 1
            rec.read_updates[p, i] = P * (c - 1)
            rec.commit_index[p, i] = P * (c - 1) + p + 1
            rec.update_staleness[p, i] = p
            rec.step[p, i] = step(P * (c - 1) + p + 1, 0)
            rec.loss[p, i] = value
    evals = [evaluator.row(x, t, clock, updates) for x, t, clock, updates in snapshots]
    run = RealRun(Path(out), config, hardware, engine="ddp", problem=problem_facts(problem, None))
    run.out.mkdir(parents=True, exist_ok=True)
    run.write(rec, np.ones((P, C), dtype=bool), evals, status="complete", wall=time.time() - t0,
              baseline="ddp", process_group="nccl" if own_gpus else "gloo")
    return 0
