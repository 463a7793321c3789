"""The SimPy engine's bookkeeping against a minimal SimPy model with the same gate, side by side in one process.

What is measured: CPU microseconds per iteration of

* ``engine``: ``sspsim.sim.engine.simulate_events`` on a timing-only run (``problem.kind =
  "none"``, s = 3, eager reads, exponential speeds of mean 1, no network cost) -- the SimPy
  engine itself, not the batch schedule or the heapq loop, with its parameter server, its
  recording and its evaluations;
* ``minimal``: the least a SimPy model of SSP needs: one process per worker, a timeout for each
  compute time, a plain event to wait on when the gate is closed, and the clock table's
  semantics written inline (a count of workers per clock, the slowest clock, the workers held
  for each clock); it records nothing.

Both run on the same compute-time matrix; the minimal model's last commit must equal the
engine's (a correctness check: the script exits 1 if they differ).  P = 10, 100, 1000, 10^4
at a fixed ``--iterations`` (clocks = iterations / P).  The two sides are interleaved
``--repeat`` times; the table gives the median of each side.

Goal: ``engine / minimal <= 1.3`` at every P (issue 11: one gate evaluation per iteration, no
per-iteration allocations without math).

Run: ``.venv/bin/python benchmarks/bench_engine.py [--workers 10,100,1000,10000 --iterations 20000 --repeat 3]``
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import simpy

from sspsim import config_from_dict, make_problem
from sspsim.sim.engine import simulate_events
from sspsim.speeds import compute_times

GOAL = 1.3
S = 3


def timing_config(workers: int, clocks: int):  # type: ignore[no-untyped-def]
    return config_from_dict({
        "run": {"seed": 0, "clocks": clocks, "trace": "summary", "engine": "event"},
        "problem": {"kind": "none"},
        "consistency": {"staleness": S, "read_policy": "eager"},
        "workers": {"count": workers, "speed": {"kind": "exponential", "mean": 1.0}},
    })


def minimal_simpy(compute: np.ndarray, staleness: float) -> float:
    """SSP in SimPy with nothing else: returns the last commit time."""
    workers, _ = compute.shape
    env = simpy.Environment()
    timeout, event = env.timeout, env.event
    count = {0: workers}  # clock value -> workers that have committed exactly that many iterations
    held: dict[float, list[simpy.Event]] = {}  # required slowest clock -> events of the workers waiting for it
    slowest = 0

    def worker(times: list[float]):  # type: ignore[no-untyped-def]
        nonlocal slowest
        for c, x in enumerate(times, 1):
            need = c - 1 - staleness  # the gate: the slowest committed clock must reach c - 1 - s
            if slowest < need:
                gate = event()
                held.setdefault(need, []).append(gate)
                yield gate
            yield timeout(x)
            count[c] = count.get(c, 0) + 1  # the commit
            left = count[c - 1] - 1
            if left:
                count[c - 1] = left
            else:
                del count[c - 1]
                if c - 1 == slowest:
                    slowest = c
                    for gate in held.pop(c, ()):
                        gate.succeed()

    for row in compute.tolist():
        env.process(worker(row))
    env.run()
    return float(env.now)


def interleaved_medians(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median CPU time of each function, running them in turn ``repeat`` times."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            t0 = time.process_time()
            fn()
            times[k].append(time.process_time() - t0)
    return [statistics.median(t) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="10,100,1000,10000")
    ap.add_argument("--iterations", type=int, default=20_000, help="iterations per run (workers x clocks)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    rows, failed = [], False
    for workers in (int(v) for v in args.workers.split(",")):
        clocks = max(2, args.iterations // workers)
        config = timing_config(workers, clocks)
        problem = make_problem(config.problem, config.problem_seed)
        compute = compute_times(config.workers.speed, workers=workers, clocks=clocks, seed=0)
        rec, _, _ = simulate_events(config, problem, compute)  # warm-up, and the check below
        last = minimal_simpy(compute, S)
        if float(rec.commit.max()) != last:
            print(f"P={workers}: the engine's last commit {rec.commit.max()!r} != the minimal model's {last!r}")
            failed = True
        engine, minimal = interleaved_medians(
            [functools.partial(simulate_events, config, problem, compute), functools.partial(minimal_simpy, compute, S)],
            args.repeat,
        )
        rows.append((workers, clocks, engine, minimal))

    print(f"{'P':>6} {'clocks':>7} {'engine us/it':>13} {'minimal us/it':>14} {'ratio':>6}")
    for workers, clocks, e, m in rows:
        n = workers * clocks
        print(f"{workers:>6} {clocks:>7} {e / n * 1e6:>13.2f} {m / n * 1e6:>14.2f} {e / m:>6.2f}")
    for workers, _, e, m in rows:
        print(f"RATIO engine_over_minimal_simpy_P{workers} = {e / m:.2f} (goal <= {GOAL:g})")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
