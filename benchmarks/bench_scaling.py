"""Scaling in the number of workers P at a fixed total number of iterations.

What is measured, in one process: iterations per second of ``sspsim.simulate(config)`` for
P = 10, 100, 1000, 10000 workers with clocks = total / P (default total 2 * 10^5), timing only
(problem.kind = "none", s = 3, eager reads, exponential speeds of mean 1, run.trace = "summary"),
once with ``run.engine = "event"`` (SimPy) and once with ``run.engine = "batch"`` (closed form);
best of ``--repeat`` whole calls.  Ratios are printed for the whole call (what a user waits for)
and for the engine alone (``summary["wall_time"]``: no compute-time draws, no summary).

Goal: the cost grows with the number of iterations, not with P x iterations.  A controller
that finds the slowest clock by scanning all P workers would make iterations/s fall like 1/P;
the event engine pays only SimPy's O(log P) event heap.  Printed:

* ``scaling_<engine>``: iterations/s at the slowest P over the fastest (1.0 = flat; 1/1000
  would be linear in P over 10..10^4).  Goal >= 0.2 for the event engine (log growth).
* ``event_over_scan_P=<P>``: the event engine against the same engine with an O(P)-scan
  controller (the limit a naive implementation hits), at the largest P.  Goal >= 3.

(The batch engine is vectorised over workers, so very few workers -- long per-clock loops over
short rows -- are its slow end.)

Run: ``.venv/bin/python benchmarks/bench_scaling.py [--total 200000 --workers 10,100,1000,10000]``
"""

from __future__ import annotations

import argparse
import time

import sspsim
import sspsim.server
from sspsim import config_from_dict
from sspsim.ssp import ClockTable

GOAL = 0.2
GOAL_SCAN = 3.0


class ScanClockTable(ClockTable):
    """The naive controller: finds the slowest clock by scanning all P clocks at every admission."""

    def admit(self, worker):  # type: ignore[no-untyped-def]
        self._min = min(self._clocks)  # O(P); the real table keeps it in O(1) amortised
        return super().admit(worker)


def config(workers: int, clocks: int, engine: str):  # type: ignore[no-untyped-def]
    return config_from_dict({
        "run": {"seed": 0, "clocks": clocks, "trace": "summary", "engine": engine},
        "problem": {"kind": "none"},
        "consistency": {"staleness": 3, "read_policy": "eager"},
        "workers": {"count": workers, "speed": {"kind": "exponential", "mean": 1.0}},
    })


def best_of(cfg, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Best wall time of whole ``simulate`` calls and best engine time (``summary["wall_time"]``)."""
    best, best_engine = float("inf"), float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run = sspsim.simulate(cfg)
        best = min(best, time.perf_counter() - t0)
        best_engine = min(best_engine, run.meta["summary"]["wall_time"])
    return best, best_engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--total", type=int, default=200_000, help="iterations per run (workers x clocks)")
    ap.add_argument("--workers", default="10,100,1000,10000")
    ap.add_argument("--engines", default="event,batch")
    ap.add_argument("--repeat", type=int, default=2, help="event engine repeats (best of)")
    ap.add_argument("--batch-repeat", type=int, default=5, help="batch engine repeats (best of)")
    ap.add_argument("--no-scan", action="store_true", help="skip the O(P)-scan controller baseline")
    args = ap.parse_args()

    counts = [int(v) for v in args.workers.split(",")]
    results: dict[str, list[tuple[int, int, float, float]]] = {}
    for engine in args.engines.split(","):
        repeat = args.batch_repeat if engine == "batch" else args.repeat
        for P in counts:
            clocks = max(1, args.total // P)
            wall, eng = best_of(config(P, clocks, engine), repeat)
            results.setdefault(engine, []).append((P, clocks, wall, eng))

    print(f"{'engine':<6} {'workers':>7} {'clocks':>6} {'iters':>7} {'wall s':>8} {'engine s':>8} "
          f"{'iters/s':>10} {'engine it/s':>11}")
    ratios = []
    for engine, rows in results.items():
        for P, clocks, wall, eng in rows:
            n = P * clocks
            print(f"{engine:<6} {P:>7} {clocks:>6} {n:>7} {wall:>8.3f} {eng:>8.3f} {n / wall:>10.3g} {n / eng:>11.3g}")
        rates = [P * c / w for P, c, w, _ in rows]
        engine_rates = [P * c / e for P, c, _, e in rows]
        ratios.append((engine, min(rates) / max(rates), min(engine_rates) / max(engine_rates)))
    scan = None
    if "event" in results and not args.no_scan:
        P, clocks, _, eng = results["event"][-1]
        sspsim.server.ClockTable = ScanClockTable  # type: ignore[misc]
        try:
            _, scan_eng = best_of(config(P, clocks, "event"), 1)
        finally:
            sspsim.server.ClockTable = ClockTable  # type: ignore[misc]
        scan = (P, scan_eng / eng)
        print(f"event engine with an O(P)-scan controller at P={P}: {P * clocks / scan_eng:.3g} it/s")
    for engine, r, _ in ratios:
        print(f"RATIO scaling_{engine} = {r:.2f} (goal >= {GOAL if engine == 'event' else 'n/a'})")
    for engine, _, r in ratios:  # the engine alone: no compute-time draws, no summary
        print(f"RATIO scaling_{engine}_engine_only = {r:.2f}")
    if scan is not None:
        print(f"RATIO event_over_scan_P={scan[0]} = {scan[1]:.2f} (goal >= {GOAL_SCAN})")


if __name__ == "__main__":
    main()
