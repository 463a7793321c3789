"""Streaming planner and heapq event loop against their bare baselines, side by side in one process.

What is measured:

1. The streaming planner (``sspsim.simulate`` of a summary-only timing run: s = 3, eager reads,
   exponential speeds of mean 1; engine auto streams it) at ``--workers x --clocks``
   (default 10^4 x 10^3), CPU time of the whole call, against the bare vectorised max-plus
   recursion ``A = max(C_prev, M[c-1-s])``, ``C = A + X`` with its draws:
   (a) one generator drawing the whole matrix (the issue's baseline), goal streaming <= 2x;
   (b) the run's own draws (one stream per worker, block by block, as the planner uses), shown
   for reference.  Peak memory of the streaming run in a fresh subprocess (ru_maxrss).
2. The heapq event loop (timing-only, apply time 0.01 so commits queue at the server) against a
   minimal heapq loop with the same gate (:class:`~sspsim.ssp.ClockTable`) and the same FIFO
   apply queue, recording nothing: microseconds per iteration at P = 10, 100, 1000.
   Goal heapq / minimal <= 1.2.

Run: ``.venv/bin/python benchmarks/bench_stream.py [--workers 10000 --clocks 1000 --repeat 3]``;
``--big`` also runs the 10^5 x 10^4 plan (10^9 iterations; minutes) in a subprocess and prints
its time and peak memory.
"""

from __future__ import annotations

import argparse
import heapq
import json
import subprocess
import sys
import time

import numpy as np

import sspsim
from sspsim import config_from_dict
from sspsim.sim.run import streams
from sspsim.speeds import Exponential, compute_time_blocks
from sspsim.ssp import ClockTable

STREAM_GOAL = 2.0
HEAPQ_GOAL = 1.2
MEMORY_GOAL_MIB = 1024.0
S = 3


def planning_config(workers: int, clocks: int, **network: float):  # type: ignore[no-untyped-def]
    return config_from_dict(planning_raw(workers, clocks, **network))


def planning_raw(workers: int, clocks: int, **network: float) -> dict:
    return {
        "run": {"seed": 0, "clocks": clocks, "trace": "summary"},
        "problem": {"kind": "none"},
        "consistency": {"staleness": S, "read_policy": "eager"},
        "workers": {"count": workers, "speed": {"kind": "exponential", "mean": 1.0}},
        "network": dict(network),
    }


def cpu(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def recursion(rows, workers: int, clocks: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The bare max-plus recursion over (b x workers) row blocks; returns M."""
    M = np.zeros(clocks + 1)
    prev = np.zeros(workers)
    c = 0
    for block in rows:
        for x in block:
            c += 1
            gate = M[c - 1 - S] if c - 1 - S >= 1 else 0.0
            prev = np.maximum(prev, gate) + x
            M[c] = prev.max()
    return M


def bare_one_generator(workers: int, clocks: int) -> None:
    x = np.random.default_rng(0).exponential(1.0, (clocks, workers))
    recursion([x], workers, clocks)


def bare_run_draws(workers: int, clocks: int) -> None:
    blocks = compute_time_blocks(Exponential(1.0), workers=workers, clocks=clocks, seed=0, block=max(8, (1 << 22) // workers))
    recursion((np.ascontiguousarray(b.T) for b in blocks), workers, clocks)


def peak_in_subprocess(workers: int, clocks: int, timeout: float) -> dict:
    code = (
        "import json, resource, time\n"
        "import sspsim\n"
        f"cfg = sspsim.config_from_dict({planning_raw(workers, clocks)!r})\n"
        "t0, c0 = time.perf_counter(), time.process_time()\n"
        "s = sspsim.simulate(cfg).summary\n"
        "print(json.dumps({'wall': time.perf_counter() - t0, 'cpu': time.process_time() - c0,"
        " 'peak_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " 'time_per_clock': s['time_per_clock'], 'max_update_staleness': s['max_update_staleness']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def minimal_heapq(compute: np.ndarray, apply_time: float) -> float:
    """Timing only, the same gate and FIFO apply queue, nothing recorded: returns the last commit.

    The least a timing-only loop can do: one heap event per computation and one per apply (the
    queue is a running "server free at" instant), the gate evaluated once per iteration
    (:meth:`ClockTable.enter`), bound methods in locals.
    """
    workers, clocks = compute.shape
    times = compute.tolist()
    table = ClockTable(workers, S)
    enter, begin, commit, clock = table.enter, table.begin, table.commit, table.clock
    heap: list[tuple[float, int, int]] = []
    push, pop = heapq.heappush, heapq.heappop
    free_at = 0.0
    seq = 0
    now = 0.0
    for p in range(workers):
        enter(p)
        push(heap, (times[p][0], seq, p))
        seq += 1
    while heap:
        now, _, p = pop(heap)
        if p >= 0:  # compute done: queue for the server
            free_at = (free_at if free_at > now else now) + apply_time
            push(heap, (free_at, seq, ~p))
            seq += 1
            continue
        p = ~p
        for q in commit(p):  # released from the gate
            begin(q)
            push(heap, (now + times[q][clock(q)], seq, q))
            seq += 1
        c = clock(p)
        if c < clocks and enter(p):
            push(heap, (now + times[p][c], seq, p))
            seq += 1
    return now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=10_000)
    ap.add_argument("--clocks", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--event-iterations", type=int, default=20_000)
    ap.add_argument("--big", action="store_true", help="also run the 10^5 x 10^4 plan (minutes)")
    args = ap.parse_args()
    P, T = args.workers, args.clocks

    # -- 1. streaming planner vs the bare recursion -----------------------------------------------
    cfg = planning_config(P, T)
    assert streams(cfg)
    stream_s = cpu(lambda: sspsim.simulate(cfg), args.repeat)
    bare_a = cpu(lambda: bare_one_generator(P, T), args.repeat)
    bare_b = cpu(lambda: bare_run_draws(P, T), args.repeat)
    peak = peak_in_subprocess(P, T, timeout=600)
    print(f"{'':<44} {'CPU s':>8} {'ns/iter':>8}")
    for name, v in (("streaming plan (simulate, summary only)", stream_s), ("bare recursion, one generator", bare_a),
                    ("bare recursion, the run's per-worker draws", bare_b)):
        print(f"{name:<44} {v:>8.3f} {v / (P * T) * 1e9:>8.1f}")
    print(f"streaming plan {P}x{T} in a subprocess: wall {peak['wall']:.2f} s, CPU {peak['cpu']:.2f} s, "
          f"peak RSS {peak['peak_mib']:.0f} MiB")

    # -- 2. heapq loop vs a minimal heapq loop ----------------------------------------------------
    from sspsim.problems import make_problem
    from sspsim.sim.heapq_engine import simulate_heapq
    from sspsim.speeds import compute_times

    rows = []
    for workers in (10, 100, 1000):
        clocks = max(2, args.event_iterations // workers)
        c = planning_config(workers, clocks, apply_time=0.01)
        problem = make_problem(c.problem, c.problem_seed)
        compute = compute_times(c.workers.speed, workers=workers, clocks=clocks, seed=0)
        engine = cpu(lambda c=c, problem=problem, compute=compute: simulate_heapq(c, problem, compute), args.repeat)
        minimal = cpu(lambda compute=compute: minimal_heapq(compute, 0.01), args.repeat)
        rows.append((workers, clocks, engine, minimal))
    print(f"{'P':>6} {'clocks':>7} {'heapq us/it':>12} {'minimal us/it':>14} {'ratio':>6}")
    for workers, clocks, e, m in rows:
        n = workers * clocks
        print(f"{workers:>6} {clocks:>7} {e / n * 1e6:>12.2f} {m / n * 1e6:>14.2f} {e / m:>6.2f}")

    if args.big:
        big = peak_in_subprocess(100_000, 10_000, timeout=3600)
        print(f"10^9-iteration plan (10^5 x 10^4): wall {big['wall']:.0f} s, CPU {big['cpu']:.0f} s, "
              f"peak RSS {big['peak_mib']:.0f} MiB, time per clock {big['time_per_clock']:.4f}")
        print(f"RATIO big_plan_peak_mib = {big['peak_mib']:.0f} (goal < {MEMORY_GOAL_MIB:g})")

    print(f"RATIO stream_over_bare_recursion = {stream_s / bare_a:.2f} (goal <= {STREAM_GOAL:g})")
    print(f"RATIO stream_over_bare_recursion_same_draws = {stream_s / bare_b:.2f} (reference, no goal)")
    print(f"RATIO stream_peak_mib_{P}x{T} = {peak['peak_mib']:.0f} (goal < {MEMORY_GOAL_MIB:g})")
    for workers, _, e, m in rows:
        print(f"RATIO heapq_over_minimal_P{workers} = {e / m:.2f} (goal <= {HEAPQ_GOAL:g})")


if __name__ == "__main__":
    main()
