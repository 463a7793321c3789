"""Run every check of the catalogue on honest runs built to satisfy its premises; print, per
check, how many verdicts applied, how many held, and the tightest measured/bound ratio.

    .venv/bin/python examples/catalogue_ratios.py [--out runs/catalogue]

Takes about a minute.  Nothing here is violated on an honest run; the tightest ratio says how
much room each bound left.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np

import sspsim
from sspsim.proofs_check import CATALOGUE, check_path
from sspsim.proofs_check.ho2013 import theorem_step
from sspsim.sim.sweep import expand_grid, run_sweep


def ho_logistic(s: int, policy: str, P: int = 4, clocks: int = 120) -> dict:
    raw = {"run": {"clocks": clocks, "audit": True}, "problem": {"kind": "logistic", "seed": 0},
           "consistency": {"staleness": s, "read_policy": policy}, "workers": {"count": P},
           "network": {"latency": 0.05}}
    config = sspsim.config_from_dict(raw)
    F = sspsim.make_problem(config.problem, 0).constants().diameter
    assert F is not None  # logistic regression states its region's diameter
    raw["optimizer"] = {"lr": theorem_step(config, F), "schedule": "inv_sqrt"}
    return raw


def staggered_times(path: Path, P: int, clocks: int) -> str:
    times = np.ones((P, clocks))
    times[:, 0] = 1.0 + np.arange(P) / P
    np.savetxt(path, times, delimiter=",")
    return str(path)


def runs(tmp: Path) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    for policy in ("eager", "lazy", "push"):
        out.append((f"ho-{policy}", ho_logistic(2, policy)))
    out.append(("bsp-lazy", ho_logistic(0, "lazy")))
    out.append(("serial", ho_logistic(0, "eager", P=1)))
    out.append(("lian", {"run": {"clocks": 150}, "problem": {"kind": "nonconvex"},
                         "optimizer": {"lr": 0.05, "schedule": "constant"}, "consistency": {"staleness": 3},
                         "workers": {"count": 4}}))
    out.append(("asp-law", {"run": {"clocks": 400, "trace": "full"}, "problem": {"kind": "none"},
                            "consistency": {"staleness": "inf"}, "workers": {"count": 4}}))
    out.append(("bsp-runtime", {"run": {"clocks": 400}, "problem": {"kind": "none"},
                                "consistency": {"staleness": 0}, "workers": {"count": 4}}))
    times = staggered_times(tmp / "staggered.csv", 4, 2000)
    out.append(("delay-stable", {"run": {"clocks": 300}, "problem": {"kind": "quadratic", "batch_size": 1},
                                 "optimizer": {"lr": 0.4, "schedule": "constant"}, "consistency": {"staleness": "inf"},
                                 "workers": {"count": 4, "speed": {"kind": "trace", "file": times}}}))
    out.append(("delay-noise", {"run": {"clocks": 2000, "eval_every": 1},
                                "problem": {"kind": "quadratic", "batch_size": 1, "noise": 1.0},
                                "optimizer": {"lr": 0.2, "schedule": "constant"}, "consistency": {"staleness": "inf"},
                                "workers": {"count": 4, "speed": {"kind": "trace", "file": times}}}))
    out.append(("mlp", {"run": {"clocks": 150, "audit": True}, "problem": {"kind": "mlp", "hidden": [16]},
                        "optimizer": {"lr": 0.3, "schedule": "inv_sqrt"}, "consistency": {"staleness": 2},
                        "workers": {"count": 4}}))
    return out


def sweeps() -> list[tuple[str, dict, list[str]]]:
    base_none = {"run": {"clocks": 200}, "problem": {"kind": "none"}, "workers": {"count": 4}}
    logistic = {"run": {"clocks": 60}, "problem": {"kind": "logistic", "seed": 0, "dim": 10, "samples": 500},
                "optimizer": {"lr": 0.5, "schedule": "inv_sqrt"}, "workers": {"count": 4}, "consistency": {"staleness": 2}}
    return [
        ("ssp-runtime", base_none, ["consistency.staleness=0,1,3,inf"]),
        ("essp", {**logistic, "consistency": {"staleness": 2}}, ["consistency.read_policy=lazy,push"]),
        ("same-optimum", logistic, ["workers.count=1,4", "consistency.staleness=0,3"]),
        ("tail", logistic, [f"run.seed={','.join(map(str, range(20)))}"]),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="sspsim-catalogue-"))
    verdicts = []
    for name, raw in runs(root):
        sspsim.simulate(sspsim.config_from_dict(raw), root / name)
        verdicts += check_path(root / name)
    for name, raw, grid in sweeps():
        run_sweep(expand_grid(raw, root, grid), root / name, jobs=2)
        verdicts += [v for v in check_path(root / name) if v.n_runs > 1 or v.theorem.startswith("kumar2015.weights")]
    wip = {"run": {"clocks": 60}, "problem": {"kind": "mlp", "hidden": [8], "seed": 0},
           "optimizer": {"lr": 0.3, "schedule": "inv_sqrt"}, "workers": {"count": 4}, "consistency": {"staleness": 2}}
    run_sweep(expand_grid(wip, root, [f"run.seed={','.join(map(str, range(10)))}"]), root / "weights", jobs=2)
    verdicts += [v for v in check_path(root / "weights", ["kumar2015.weights_in_probability"])]

    print(f"{'theorem':<34} {'applied':>7} {'held':>5} {'violated':>8}  tightest measured / bound")
    for theorem in CATALOGUE:
        mine = [v for v in verdicts if v.theorem == theorem.name]
        applied = [v for v in mine if v.outcome.value != "not_applicable"]
        held = [v for v in applied if v.outcome.value == "holds"]
        ratios = [v.ratio for v in held if v.ratio is not None and math.isfinite(v.ratio)]
        tight = max(held, key=lambda v: (v.ratio if v.ratio is not None else -1.0), default=None)
        text = "-"
        if tight is not None and tight.measured is not None:
            text = f"{tight.measured:.4g} / {tight.bound:.4g}" + (f" = {max(ratios):.3g}" if ratios else "")
        print(f"{theorem.name:<34} {len(applied):>7} {len(held):>5} {len(applied) - len(held):>8}  {text}")
    if args.out is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
