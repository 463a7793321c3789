"""The planning run: 10,000 workers x 1,000 clocks (10^7 iterations) of timing-only SSP, and the
batch schedule's speed relative to the event simulator.

What is measured, in one process:

1. ``sspsim.simulate(config)`` on the planning config (problem.kind = "none", s = 3, eager
   reads, exponential speeds of mean 1, run.trace = "summary", engine auto -> batch).  Printed:
   the wall time of the whole call (compute-time draws, schedule, summary; what a user waits
   for), the engine's own time (``summary["wall_time"]``), iterations/s and peak memory growth.
   Goal: the whole call <= 10 s.
2. At sizes both engines can do (100 x 200 and 1000 x 100), iterations/s of ``engine = "batch"``
   vs ``engine = "event"`` (best of ``--repeat`` whole ``simulate`` calls), and a check that both
   give identical summary figures (time_per_clock, mean_staleness, mean_update_staleness).
   Goal: batch >= 10x the event simulator's iterations/s (it exists to make planning cheap).

Run: ``.venv/bin/python benchmarks/bench_planning.py [--workers 10000 --clocks 1000 --repeat 3]``
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import sspsim
from sspsim import config_from_dict

PLAN_GOAL_S = 10.0
SPEEDUP_GOAL = 10.0
CHECKED = ("time_per_clock", "mean_staleness", "mean_update_staleness", "max_staleness", "total_time")


def planning_config(workers: int, clocks: int, engine: str = "auto"):  # type: ignore[no-untyped-def]
    return config_from_dict({
        "run": {"seed": 0, "clocks": clocks, "trace": "summary", "engine": engine},
        "problem": {"kind": "none"},
        "consistency": {"staleness": 3, "read_policy": "eager"},
        "workers": {"count": workers, "speed": {"kind": "exponential", "mean": 1.0}},
    })


def timed_simulate(config, repeat: int):  # type: ignore[no-untyped-def]
    """Best wall time of ``repeat`` calls, the engine's own best time, and the last summary."""
    best, best_engine, summary = float("inf"), float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        run = sspsim.simulate(config)
        best = min(best, time.perf_counter() - t0)
        summary = run.meta["summary"]
        best_engine = min(best_engine, summary["wall_time"])
        del run
    return best, best_engine, summary


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=10_000)
    ap.add_argument("--clocks", type=int, default=1_000)
    ap.add_argument("--plan-repeat", type=int, default=1, help="repeats of the 10^7 planning run (best of)")
    ap.add_argument("--repeat", type=int, default=3, help="repeats of each comparison run (best of)")
    ap.add_argument("--sizes", default="100x200,1000x100", help="comparison sizes, WORKERSxCLOCKS,...")
    args = ap.parse_args()

    # -- the comparison first (small, leaves the peak-memory reading to the planning run) --------
    rows, speedups, mismatches = [], [], []
    for size in args.sizes.split(","):
        P, C = (int(v) for v in size.lower().split("x"))
        res = {}
        for engine in ("batch", "event"):
            cfg = planning_config(P, C, engine)
            wall, eng, summary = timed_simulate(cfg, args.repeat)
            res[engine] = (wall, eng, summary)
            rows.append((f"{P}x{C}", engine, P * C, wall, eng, P * C / wall, summary["time_per_clock"],
                         summary["mean_staleness"]))
        sb, se = res["batch"][2], res["event"][2]
        same = all(sb[k] == se[k] for k in CHECKED)
        if not same:
            mismatches.append((size, {k: (sb[k], se[k]) for k in CHECKED if sb[k] != se[k]}))
        speedups.append((f"{P}x{C}", res["event"][0] / res["batch"][0], same))

    # -- the planning run ---------------------------------------------------------------------------
    cfg = planning_config(args.workers, args.clocks)
    engine = sspsim.sim.choose_engine(cfg)
    rss0 = max_rss_mib()
    wall, eng, summary = timed_simulate(cfg, args.plan_repeat)
    rss = max_rss_mib() - rss0
    iters = args.workers * args.clocks
    rows.append((f"{args.workers}x{args.clocks}", engine, iters, wall, eng, iters / wall,
                 summary["time_per_clock"], summary["mean_staleness"]))

    print(f"{'size':<12} {'engine':<6} {'iters':>9} {'wall s':>8} {'engine s':>8} {'iters/s':>11} "
          f"{'time/clock':>11} {'staleness':>9}")
    for size, e, n, w, es, ips, tpc, st in rows:
        print(f"{size:<12} {e:<6} {n:>9} {w:>8.3f} {es:>8.3f} {ips:>11.3g} {tpc:>11.6f} {st:>9.5f}")
    print(f"planning run: {iters:.3g} iterations, wall {wall:.2f} s, {iters / wall:.3g} iterations/s, "
          f"peak memory growth {rss:.0f} MiB")
    for size, _, same in speedups:
        print(f"summary figures {size}: batch {'==' if same else '!='} event ({', '.join(CHECKED)})")
    for size, diff in mismatches:
        print(f"MISMATCH {size}: {diff}")
    print(f"RATIO planning_wall_s = {wall:.2f} (goal <= {PLAN_GOAL_S:g})")
    for size, s, _ in speedups:
        print(f"RATIO batch_over_event_{size} = {s:.1f} (goal >= {SPEEDUP_GOAL:g})")
    if mismatches:
        sys.exit("batch and event summaries differ")


if __name__ == "__main__":
    main()
