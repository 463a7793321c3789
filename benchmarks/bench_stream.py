"""Streaming planner and heapq event loop against their bare baselines, side by side in one process.

What is measured (CPU time, the sides interleaved in one process, medians of ``--repeat``):

1. The streaming planner (``sspsim.simulate`` of a summary-only timing run: s = 3, exponential
   speeds of mean 1; engine auto streams it) at ``--workers x --clocks`` (default 10^4 x 10^3),
   with eager reads (update staleness needs every commit's rank) and with lazy reads (it does
   not), against the bare vectorised max-plus recursion ``A = max(C_prev, M[c-1-s])``,
   ``C = A + X`` with its draws:
   (a) one generator drawing the whole matrix (the issue's baseline), goal streaming <= 2x;
   (b) the run's own draws (one stream per worker, block by block, as the planner uses), shown
   for reference: the per-worker streams alone cost several times (a).
   Peak memory of the streaming run in a fresh subprocess (ru_maxrss).
2. The heapq event loop (timing-only, apply time 0.01 so commits queue at the server) against a
   minimal heapq loop with the same gate (:meth:`~sspsim.ssp.ClockTable.enter`) and the same FIFO
   apply queue, recording nothing: microseconds per iteration at P = 10, 100, 1000.
   Goal: the heapq loop's summary-only mode (what ``trace = "summary"`` runs: its fast path, which
   these untied exponential draws never leave; checked) / minimal <= 1.2.  For reference, the exact
   summary loop (SimPy's event order, what a tie falls back to), the recording heapq loop
   (``trace = "full"``) and the minimal loop that also writes the columns the recording must return
   (what recording alone costs).

Run: ``.venv/bin/python benchmarks/bench_stream.py [--workers 10000 --clocks 1000 --repeat 3]``;
``--heapq-only`` runs part 2 alone; ``--big`` also runs the 10^5 x 10^4 plan (10^9 iterations; minutes) in a subprocess and prints
its time and peak memory.
"""

from __future__ import annotations

import argparse
import heapq
import json
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Callable

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


def planning_config(workers: int, clocks: int, policy: str = "eager", **network: float):  # type: ignore[no-untyped-def]
    return config_from_dict(planning_raw(workers, clocks, policy, **network))


def planning_raw(workers: int, clocks: int, policy: str = "eager", **network: float) -> dict:
    return {
        "run": {"seed": 0, "clocks": clocks, "trace": "summary"},
        "problem": {"kind": "none"},
        "consistency": {"staleness": S, "read_policy": policy},
        "workers": {"count": workers, "speed": {"kind": "exponential", "mean": 1.0}},
        "network": dict(network),
    }


def interleaved(sides: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median CPU seconds of each side, the sides run in turn ``repeat`` times (load hits all alike)."""
    runs: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeat):
        for name, fn in sides.items():
            t0 = time.process_time()
            fn()
            runs[name].append(time.process_time() - t0)
    return {name: statistics.median(v) for name, v in runs.items()}


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


def recording_minimal_heapq(compute: np.ndarray, apply_time: float) -> float:
    """:func:`minimal_heapq` that also writes what the heapq loop returns per iteration (admission,
    commit, wait, visible clock, read, commit index): a reference for what recording costs."""
    workers, clocks = compute.shape
    times = compute.reshape(-1).tolist()
    total = workers * clocks
    admit, commits_at, wait = array("d", [0.0]) * total, array("d", [0.0]) * total, array("d", [0.0]) * total
    visible, reads, index = array("q", [0]) * total, array("q", [0]) * total, array("q", [0]) * total
    last = [0.0] * workers
    table = ClockTable(workers, S)
    enter, begin, commit, clock = table.enter, table.begin, table.commit, table.clock
    heap: list[tuple[float, int, int]] = []
    push, pop = heapq.heappush, heapq.heappop
    free_at, seq, now, commits = 0.0, 0, 0.0, 0

    def start(p: int, at: int) -> None:
        nonlocal seq
        visible[at], reads[at], admit[at], wait[at] = table.min_clock, commits, now, now - last[p]
        push(heap, (now + times[at], seq, p))
        seq += 1

    for p in range(workers):
        enter(p)
        start(p, p * clocks)
    while heap:
        now, _, p = pop(heap)
        if p >= 0:
            free_at = (free_at if free_at > now else now) + apply_time
            push(heap, (free_at, seq, ~p))
            seq += 1
            continue
        p = ~p
        commits += 1
        at = p * clocks + clock(p)
        for q in commit(p):
            begin(q)
            start(q, q * clocks + clock(q))
        commits_at[at], index[at], last[p] = now, commits, now
        if at % clocks + 1 < clocks and enter(p):
            start(p, at + 1)
    return now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=10_000)
    ap.add_argument("--clocks", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--event-iterations", type=int, default=20_000)
    ap.add_argument("--big", action="store_true", help="also run the 10^5 x 10^4 plan (minutes)")
    ap.add_argument("--heapq-only", action="store_true", help="run only the heapq loop against the minimal loop")
    args = ap.parse_args()
    rows = heapq_rows(args.event_iterations, args.repeat)
    if not args.heapq_only:
        planning(args.workers, args.clocks, args.repeat, args.big)
    for workers, _, e, summ, m, r, x in rows:
        print(f"RATIO heapq_summary_P{workers} = {summ / m:.2f} (goal <= {HEAPQ_GOAL:g})")
        print(f"RATIO heapq_summary_exact_loop_P{workers} = {x / m:.2f} (reference, no goal: after a tie)")
        print(f"RATIO heapq_recording_over_minimal_P{workers} = {e / m:.2f} (reference, no goal)")
        print(f"RATIO minimal_recording_over_minimal_P{workers} = {r / m:.2f} (reference, no goal)")


def heapq_rows(iterations: int, repeat: int) -> list[tuple[int, int, float, float, float, float, float]]:
    """Part 2: CPU seconds (medians) of the heapq loop, recording, summary-only and the exact summary
    loop, and the minimal loops."""
    from sspsim.problems import make_problem
    from sspsim.sim.heapq_engine import _run, _summary_without_ties, simulate_heapq, summarize_heapq
    from sspsim.speeds import compute_times

    rows = []
    for workers in (10, 100, 1000):
        clocks = max(2, iterations // workers)
        c = planning_config(workers, clocks, apply_time=0.01)
        problem = make_problem(c.problem, c.problem_seed)
        compute = compute_times(c.workers.speed, workers=workers, clocks=clocks, seed=0)
        assert _summary_without_ties(c, problem, compute, None) is not None, "a tie: the summary would run the exact loop"
        t = interleaved({
            "heapq": lambda c=c, problem=problem, compute=compute: simulate_heapq(c, problem, compute),
            "summary": lambda c=c, problem=problem, compute=compute: summarize_heapq(c, problem, compute),
            "minimal": lambda compute=compute: minimal_heapq(compute, 0.01),
            "recording": lambda compute=compute: recording_minimal_heapq(compute, 0.01),
            "exact": lambda c=c, problem=problem, compute=compute: _run(c, problem, compute, None, record=False),
        }, repeat)
        rows.append((workers, clocks, t["heapq"], t["summary"], t["minimal"], t["recording"], t["exact"]))
    print(f"{'P':>6} {'clocks':>7} {'summary us/it':>14} {'exact summary us/it':>20} {'recording us/it':>16} "
          f"{'minimal us/it':>14} {'ratio':>6} {'minimal+recording us/it':>24}")
    for workers, clocks, e, summ, m, r, x in rows:
        n = workers * clocks
        print(f"{workers:>6} {clocks:>7} {summ / n * 1e6:>14.2f} {x / n * 1e6:>20.2f} {e / n * 1e6:>16.2f} "
              f"{m / n * 1e6:>14.2f} {summ / m:>6.2f} {r / n * 1e6:>24.2f}")
    return rows


def planning(P: int, T: int, repeat: int, big: bool) -> None:
    """Part 1: the streaming planner against the bare recursion, and its peak memory."""
    eager, lazy = planning_config(P, T), planning_config(P, T, "lazy")
    assert streams(eager) and streams(lazy)
    cpu = interleaved({
        "streaming plan, eager reads (simulate, summary only)": lambda: sspsim.simulate(eager),
        "streaming plan, lazy reads": lambda: sspsim.simulate(lazy),
        "bare recursion, one generator": lambda: bare_one_generator(P, T),
        "bare recursion, the run's per-worker draws": lambda: bare_run_draws(P, T),
    }, repeat)
    stream_s, lazy_s, bare_a, bare_b = cpu.values()
    peak = peak_in_subprocess(P, T, timeout=600)
    print(f"{'median of ' + str(repeat):<54} {'CPU s':>8} {'ns/iter':>8}")
    for name, v in cpu.items():
        print(f"{name:<54} {v:>8.3f} {v / (P * T) * 1e9:>8.1f}")
    print(f"streaming plan {P}x{T} in a subprocess: wall {peak['wall']:.2f} s, CPU {peak['cpu']:.2f} s, "
          f"peak RSS {peak['peak_mib']:.0f} MiB")

    if big:
        big_run = peak_in_subprocess(100_000, 10_000, timeout=3600)
        print(f"10^9-iteration plan (10^5 x 10^4): wall {big_run['wall']:.0f} s, CPU {big_run['cpu']:.0f} s, "
              f"peak RSS {big_run['peak_mib']:.0f} MiB, time per clock {big_run['time_per_clock']:.4f}")
        print(f"RATIO big_plan_peak_mib = {big_run['peak_mib']:.0f} (goal < {MEMORY_GOAL_MIB:g})")

    print(f"RATIO stream_over_bare_recursion = {stream_s / bare_a:.2f} (goal <= {STREAM_GOAL:g})")
    print(f"RATIO stream_lazy_over_bare_recursion = {lazy_s / bare_a:.2f} (goal <= {STREAM_GOAL:g})")
    print(f"RATIO stream_over_bare_recursion_same_draws = {stream_s / bare_b:.2f} (reference, no goal)")
    print(f"RATIO stream_lazy_over_bare_recursion_same_draws = {lazy_s / bare_b:.2f} (reference, no goal)")
    print(f"RATIO stream_peak_mib_{P}x{T} = {peak['peak_mib']:.0f} (goal < {MEMORY_GOAL_MIB:g})")


if __name__ == "__main__":
    main()
