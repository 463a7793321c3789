"""Simulation overhead with your own torch model: the event simulator vs a plain torch training loop.

What is measured, side by side in one process (best of ``--repeat``, the two sides interleaved):

* ``sim``: ``sspsim.sim.engine.simulate_events(config, problem, compute)`` on ``[problem] kind =
  "torch"`` -- the SimPy engine, the parameter server holding the flat float64 vector, the SSP
  gate, eager reads, the recording, and every gradient by autograd through
  ``torch.func.functional_call`` on the flat parameters (``sspsim.problems.torch_task``);
* ``loop``: a plain torch loop on the same model: ``zero_grad``, ``loss(model(inputs[B]),
  targets[B]).backward()``, ``p -= eta * p.grad`` for the *same* (worker, clock) pairs in the
  simulation's commit order, the same batches (``sspsim.sampling.sample_indices``), the same
  step sizes, and the same two full evaluations (objective, gradient, accuracy on the test set)
  the simulation makes with ``run.eval_every = clocks``.

Same device for both (``--device``; default cpu).  Task construction and compute-time draws are
excluded.  The models are the bundled examples: ``cnn`` (examples/digits_cnn: a small CNN on the
8x8 digits, batch 32) and ``gru`` (examples/sequence: a GRU reading 12 digits, batch 32).

Goal: ``sim / loop <= 1.2`` for both.

Run: ``.venv/bin/python benchmarks/bench_torch_overhead.py [--workers 8 --clocks 100 --repeat 3 --device cpu]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if "--threads" not in " ".join(sys.argv):  # small models: one intra-op thread is faster and steadier
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import numpy as np
import torch

from sspsim import config_from_dict, make_problem
from sspsim.optimizer import StepSize, round_robin_index
from sspsim.sampling import sample_indices
from sspsim.sim.engine import simulate_events
from sspsim.speeds import compute_times

GOAL = 1.2
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TASKS = {"cnn": ("digits_cnn", 0.1), "gru": ("sequence", 0.5)}  # example folder, learning rate


def make_config(name: str, workers: int, clocks: int, device: str):  # type: ignore[no-untyped-def]
    folder, lr = TASKS[name]
    return config_from_dict({
        "run": {"seed": 0, "clocks": clocks, "trace": "summary", "eval_every": clocks, "engine": "event"},
        "problem": {"kind": "torch", "factory": "tasks:make_task", "batch_size": 32, "device": device},
        "optimizer": {"lr": lr, "schedule": "constant"},
        "consistency": {"staleness": 3, "read_policy": "eager"},
        "workers": {"count": workers, "speed": {"kind": "exponential", "mean": 1.0}},
    }, base_dir=EXAMPLES / folder)


def make_compute(config):  # type: ignore[no-untyped-def]
    return compute_times(config.workers.speed, workers=config.workers.count, clocks=config.run.clocks,
                         seed=config.run.seed, stragglers=config.workers.stragglers, transient=config.workers.transient)


def commit_order(rec) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    clocks = rec.shape[1]
    order = np.argsort(rec.commit_index, axis=None, kind="stable")
    return [(int(i // clocks), int(i % clocks) + 1) for i in order]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class PlainLoop:
    """The same model (a fresh copy from the same factory), trained the ordinary torch way."""

    def __init__(self, problem, config) -> None:  # type: ignore[no-untyped-def]
        self.problem = problem  # its tensors (already on the device) and loss function
        self.model = problem.model
        self.config = config
        self.x0 = [p.detach().clone() for p in self.model.parameters()]

    def evaluate(self) -> None:
        """Full objective and gradient on the training set, accuracy on the test set."""
        pr = self.problem
        inputs, targets = pr._eval
        self.model.zero_grad()
        pr.loss_fn(self.model(inputs), targets).backward()
        torch.stack([p.grad.norm() for p in self.model.parameters()]).norm().item()
        with torch.no_grad():
            ti, tt = pr._test if pr._test is not None else pr._eval
            (self.model(ti).argmax(dim=-1) == tt).float().mean().item()

    def run(self, pairs: list[tuple[int, int]]) -> None:
        pr, cfg = self.problem, self.config
        with torch.no_grad():
            for p, p0 in zip(self.model.parameters(), self.x0):
                p.copy_(p0)
        seed, batch, n, workers = cfg.problem_seed, cfg.problem.batch_size, pr.n_samples, cfg.workers.count
        step = StepSize.from_config(cfg.optimizer)
        params = list(self.model.parameters())
        self.evaluate()
        for p, c in pairs:
            idx = torch.from_numpy(sample_indices(seed, p, c, batch, n)).to(pr.device)
            self.model.zero_grad()
            loss = pr.loss_fn(self.model(pr.inputs[idx]), pr.targets[idx])
            loss.backward()
            loss.item()  # the simulator records every loss
            eta = step(round_robin_index(p, c, workers), 0)
            with torch.no_grad():
                for w in params:
                    w.sub_(eta * w.grad)
        self.evaluate()
        sync(pr.device)


def best_of_interleaved(fns, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--clocks", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tasks", default="cnn,gru")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads or 1)

    rows = []
    for name in args.tasks.split(","):
        config = make_config(name, args.workers, args.clocks, args.device)
        problem = make_problem(config.problem, config.problem_seed)
        compute = make_compute(config)
        loop = PlainLoop(make_problem(config.problem, config.problem_seed), config)

        def sim(config=config, problem=problem, compute=compute) -> None:  # type: ignore[no-untyped-def]
            simulate_events(config, problem, compute)
            sync(problem.device)

        rec, _, _ = simulate_events(config, problem, compute)  # warm-up and the commit order
        pairs = commit_order(rec)
        loop.run(pairs)  # warm-up
        t_sim, t_loop = best_of_interleaved([sim, lambda loop=loop, pairs=pairs: loop.run(pairs)], args.repeat)
        rows.append((name, problem.n_params, str(problem.device), len(pairs), t_sim, t_loop,
                     1e6 * (t_sim - t_loop) / len(pairs), t_sim / t_loop))

    print(f"{'task':<5} {'params':>7} {'device':>6} {'iters':>6} {'sim s':>8} {'loop s':>8} {'extra us/it':>11} {'sim/loop':>8}")
    for name, n_params, device, iters, ts, tl, extra, r in rows:
        print(f"{name:<5} {n_params:>7} {device:>6} {iters:>6} {ts:>8.3f} {tl:>8.3f} {extra:>11.1f} {r:>8.2f}")
    for name, *_, r in rows:
        print(f"RATIO torch_overhead_{name} = {r:.2f} (goal <= {GOAL})")


if __name__ == "__main__":
    main()
