"""Simulation overhead: the event simulator with real gradient math vs the same math in a plain loop.

What is measured, side by side in one process (the two sides interleaved ``--repeat`` times;
the table gives the best and the median time of each, the ratio is of the medians).  Times are
CPU times of the process (``time.process_time``): on a shared machine, wall time also counts
the time other processes hold the core; the wall-time ratio is printed too, for reference:

* ``sim``: ``sspsim.sim.engine.simulate_events(config, problem, compute)`` -- the SimPy engine
  with the parameter server, the SSP gate, eager reads and the recording, on a problem with math;
* ``loop``: a plain Python loop that computes the *same* minibatch gradients: the same
  (worker, clock) pairs in the simulation's commit order, the same sample indices
  (``sspsim.sampling.sample_indices``), the same step sizes (``StepSize``, round-robin index),
  and the same two full-objective evaluations (start and end) the simulation makes with
  ``run.eval_every = clocks``.  It reads the current parameters (eager-like, no staleness), so
  it does the same amount of arithmetic but none of the bookkeeping.

Problem construction, x* and compute-time draws are constants and excluded from both timings.

Goal: ``sim / loop <= 1.1`` on ``logistic`` (dim 1000, batch 64) and on ``mlp`` (digits,
hidden [32], batch 16): the simulator should cost little more than the math it simulates.

BLAS runs on one thread unless ``--blas-threads`` (the products are small; threads only add noise).

Run: ``.venv/bin/python benchmarks/bench_overhead.py [--workers 8 --clocks 200 --repeat 5 --profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import os
import pstats
import statistics
import sys
import time

if "--blas-threads" not in " ".join(sys.argv):  # small products: one BLAS thread is faster and steadier
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import numpy as np

from sspsim import config_from_dict, make_problem
from sspsim.optimizer import StepSize, round_robin_index
from sspsim.sampling import sample_indices
from sspsim.sim.engine import simulate_events
from sspsim.speeds import compute_times

GOAL = 1.1


def make_config(kind: str, workers: int, clocks: int):  # type: ignore[no-untyped-def]
    problem: dict = {"kind": kind}
    if kind == "logistic":
        problem.update(dim=1000, batch_size=64, samples=4000)
    else:  # mlp: digits, default hidden [32]
        problem.update(batch_size=16)
    return config_from_dict({
        "run": {"seed": 0, "clocks": clocks, "trace": "summary", "eval_every": clocks, "engine": "event"},
        "problem": problem,
        "consistency": {"staleness": 3, "read_policy": "eager"},
        "workers": {"count": workers, "speed": {"kind": "exponential", "mean": 1.0}},
    })


def make_compute(config):  # type: ignore[no-untyped-def]
    return compute_times(
        config.workers.speed, workers=config.workers.count, clocks=config.run.clocks, seed=config.run.seed,
        stragglers=config.workers.stragglers, transient=config.workers.transient,
    )


def evaluate_like_sim(problem, x: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """The math of one ``Evaluator.record``: full objective and gradient, accuracy, layer norms."""
    _, grad = problem.evaluate(x)
    np.linalg.norm(grad)
    accuracy = getattr(problem, "accuracy", None)
    if accuracy is not None:
        accuracy(x)
    for layer in problem.layers:
        np.linalg.norm(x[layer.span])
        np.linalg.norm(grad[layer.span])


def plain_loop(problem, config, pairs: list[tuple[int, int]]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Serial SGD over ``pairs`` (worker, clock) in the given order, same samples and steps."""
    seed, batch, n = config.problem_seed, config.problem.batch_size, problem.n_samples
    workers = config.workers.count
    step = StepSize.from_config(config.optimizer)
    x = problem.initial_params()
    evaluate_like_sim(problem, x)
    for p, c in pairs:
        _, g = problem.loss_grad(x, sample_indices(seed, p, c, batch, n))
        x -= step(round_robin_index(p, c, workers), 0) * g
    evaluate_like_sim(problem, x)
    return x


def commit_order(rec) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    _, clocks = rec.shape
    order = np.argsort(rec.commit_index, axis=None, kind="stable")
    return [(int(i // clocks), int(i % clocks) + 1) for i in order]


def interleaved(fns, repeat: int) -> tuple[list[list[float]], list[list[float]]]:  # type: ignore[no-untyped-def]
    """CPU and wall times of each function, running them in turn ``repeat`` times (load drifts hit all alike)."""
    cpu: list[list[float]] = [[] for _ in fns]
    wall: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            cpu[k].append(time.process_time() - c0)
            wall[k].append(time.perf_counter() - w0)
    return cpu, wall


def profile_sim(config, problem, compute, top: int) -> str:  # type: ignore[no-untyped-def]
    prof = cProfile.Profile()
    prof.enable()
    simulate_events(config, problem, compute)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--clocks", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--problems", default="logistic,mlp")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of one simulation per problem")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--blas-threads", action="store_true", help="leave BLAS threading at its default")
    args = ap.parse_args()

    rows, ratios = [], []
    for kind in args.problems.split(","):
        config = make_config(kind, args.workers, args.clocks)
        problem = make_problem(config.problem, config.problem_seed)
        compute = make_compute(config)
        rec, _, _ = simulate_events(config, problem, compute)  # warm-up and the commit order
        pairs = commit_order(rec)
        iters = len(pairs)
        (sims, loops), (wall_sims, wall_loops) = interleaved(
            [functools.partial(simulate_events, config, problem, compute), functools.partial(plain_loop, problem, config, pairs)],
            args.repeat,
        )
        t_sim, t_loop = statistics.median(sims), statistics.median(loops)
        ratio = t_sim / t_loop
        wall_ratio = statistics.median(wall_sims) / statistics.median(wall_loops)
        rows.append((kind, problem.n_params, config.problem.batch_size, iters, min(sims), min(loops), t_sim, t_loop,
                     1e6 * (t_sim - t_loop) / iters, ratio, wall_ratio))
        ratios.append((kind, ratio, wall_ratio))
        if args.profile:
            print(f"--- cProfile of simulate_events, {kind} ({iters} iterations), by tottime ---")
            print(profile_sim(config, problem, compute, args.top))

    print(f"{'problem':<10} {'params':>7} {'batch':>5} {'iters':>6} {'best sim':>9} {'best loop':>9} "
          f"{'median sim':>10} {'median loop':>11} {'extra us/it':>11} {'sim/loop':>8} {'wall s/l':>8}")
    for kind, n_params, batch, iters, bs, bl, ts, tl, extra, r, wr in rows:
        print(f"{kind:<10} {n_params:>7} {batch:>5} {iters:>6} {bs:>9.3f} {bl:>9.3f} {ts:>10.3f} {tl:>11.3f} "
              f"{extra:>11.1f} {r:>8.2f} {wr:>8.2f}")
    for kind, r, wr in ratios:
        print(f"RATIO overhead_{kind} = {r:.2f} (CPU time; goal <= {GOAL})")
        print(f"RATIO overhead_{kind}_wall = {wr:.2f} (wall time, for reference)")


if __name__ == "__main__":
    main()
