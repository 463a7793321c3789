"""Fidelity of the calibrated simulator: calibrate -> simulate -> deploy (several times) -> compare.

For each case: ``calibrate`` profiles this machine with short real runs and writes a
simulator config; the calibrated config is simulated; the original is deployed ``--repeats``
times back to back.  Printed per timing metric: the simulation's error against the **median**
of the real runs, and the real runs' spread ``(max - min) / median`` (the noise floor: a
prediction cannot be judged finer than the real runs agree with each other).

Run (about 1-2 minutes per case on a quiet 2-core machine)::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/fidelity.py [--cases a,b,c,d,e] [--repeats 3] [--json FILE]

The cases are the three of issue 12 plus configurations no test tunes to (other P, speeds, s,
read policy, model size).  Nothing here is tuned to them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sspsim
from sspsim.comparison import TIMING_METRICS, compare_runs
from sspsim.real.calibrate import calibrate
from sspsim.real.launch import deploy

CASES: dict[str, dict[str, Any]] = {
    # issue 12 (a): 4 workers on 2 cores, 154 kB messages, eager reads
    "a": {"run": {"clocks": 50, "target": 1.2}, "problem": {"kind": "mlp", "hidden": [256]},
          "optimizer": {"lr": 0.1, "schedule": "constant"}, "consistency": {"staleness": 2, "read_policy": "eager"},
          "workers": {"count": 4, "speed": {"kind": "lognormal", "mean": 0.015, "sigma": 0.5}}},
    # issue 12 (b): transient 4x slowdowns, lazy reads
    "b": {"run": {"clocks": 50, "target": 1.5}, "problem": {"kind": "mlp", "hidden": [16]},
          "optimizer": {"lr": 0.1, "schedule": "constant"}, "consistency": {"staleness": 1, "read_policy": "lazy"},
          "workers": {"count": 3, "speed": {"kind": "uniform", "low": 0.01, "high": 0.03},
                      "transient": {"probability": 0.1, "factor": 4.0, "duration": 2}}},
    # issue 12 (c): BSP with a persistent 2.5x straggler, least squares
    "c": {"run": {"clocks": 50, "target": 0.5}, "problem": {"kind": "least_squares"},
          "optimizer": {"lr": 0.05, "schedule": "constant"}, "consistency": {"staleness": 0},
          "workers": {"count": 3, "speed": {"kind": "shifted_exponential", "shift": 0.01, "mean": 0.01},
                      "stragglers": [{"worker": 1, "slowdown": 2.5}]}},
    # own: 5 workers (6 processes on 2 cores), exponential, ASP-ish s = 4, eager, medium model
    "d": {"run": {"clocks": 40, "target": 1.5}, "problem": {"kind": "mlp", "hidden": [64]},
          "optimizer": {"lr": 0.1, "schedule": "constant"}, "consistency": {"staleness": 4, "read_policy": "eager"},
          "workers": {"count": 5, "speed": {"kind": "exponential", "mean": 0.02}}},
    # own: 2 workers, fast constant compute (communication-heavy), s = 3, push reads, large messages.
    # Not in the default list: its problem (4,000 x 20,000 logistic) takes about a minute to set up in
    # every deploy.  (Its deploys once timed out: the server's set-up decomposed a 20,000 x 20,000
    # matrix while the workers' first sends waited; now it decomposes the 4,000 x 4,000 one.)
    "e": {"run": {"clocks": 60, "target": 0.6}, "problem": {"kind": "logistic", "dim": 20000},
          "optimizer": {"lr": 0.1, "schedule": "constant"}, "consistency": {"staleness": 3, "read_policy": "push"},
          "workers": {"count": 2, "speed": {"kind": "constant", "value": 0.008}}},
}


def spread(values: list[float]) -> float | None:
    """``(max - min) / median`` of the real runs' values."""
    vals = [v for v in values if v is not None]
    if len(vals) < 2 or statistics.median(vals) == 0:
        return None
    return (max(vals) - min(vals)) / abs(statistics.median(vals))


def run_case(name: str, raw: dict[str, Any], root: Path, repeats: int, cal_clocks: int) -> dict[str, Any]:
    config = sspsim.config_from_dict(raw)
    work = root / name
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    facts = calibrate(config, work / "cal.toml", workdir=work / "profile", clocks=cal_clocks)
    cal = sspsim.load_config(work / "cal.toml")
    sim = sspsim.simulate(cal, work / "sim")
    reals = []
    for i in range(repeats):
        meta = deploy(config, work / f"real{i}")
        if meta.get("status") != "complete":
            raise RuntimeError(f"case {name}: real run {i} incomplete: {meta.get('reason')}")
        reals.append(sspsim.read_run(work / f"real{i}"))
    rows: dict[str, Any] = {}
    singles = [compare_runs(sim, r) for r in reals]
    for metric in singles[0].metrics:
        measured = [next(m.measured for m in c.metrics if m.name == metric.name) for c in singles]
        present = [v for v in measured if v is not None]
        med = statistics.median(present) if present else None
        err = None if med in (None, 0) or metric.predicted is None else abs(metric.predicted - med) / abs(med)
        rows[metric.name] = {"predicted": metric.predicted, "real": measured, "median": med, "error": err,
                             "spread": spread(present), "timing": metric.name in TIMING_METRICS,
                             "by_construction": metric.by_construction}
    timing = [r["error"] for r in rows.values() if r["timing"] and not r["by_construction"] and r["error"] is not None]
    return {"case": name, "metrics": rows, "max_timing_error": max(timing) if timing else None,
            "calibration": {k: facts[k] for k in facts if k != "compute"} | {"compute_mean": facts["compute"]["mean"]},
            "seconds": time.time() - t0}


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="a,b,c,d", help=f"comma-separated, of {','.join(CASES)}")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cal-clocks", type=int, default=40, help="the profile's clocks (sspsim calibrate's default)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="keep the run directories here")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for name in args.cases.split(","):
            res = run_case(name, CASES[name], root, args.repeats, args.cal_clocks)
            results.append(res)
            print(f"case {name} ({res['seconds']:.0f} s): max timing error {_pct(res['max_timing_error'])}")
            for metric, r in res["metrics"].items():
                tag = " (by construction)" if r["by_construction"] else ""
                print(f"  {metric:22s} pred {r['predicted'] if r['predicted'] is not None else float('nan'):10.5f}"
                      f"  real median {r['median'] if r['median'] is not None else float('nan'):10.5f}"
                      f"  error {_pct(r['error'])}  spread {_pct(r['spread'])}{tag}")
            sys.stdout.flush()
            if args.json:
                args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
