"""The real backend against its limit and against DDP, measured in one process run.

What is measured (4 workers + the server under torchrun, Gloo on loopback, digits MLP):

(a) clocks per second and time to a target objective for s = 0, 3, inf through sspsim's server,
    and for DDP, with injected compute times (base 20 ms): (i) each iteration 4x slower with
    probability 0.1; (ii) exponential times.  The *ideal* throughput speedup of SSP over BSP is
    what the exact SSP timing (:mod:`sspsim.schedule`, the closed form of the gate) predicts
    for the same injected delays; goal: measured speedup >= 0.9 of ideal, and SSP's time to
    target ahead of DDP's.  Then the persistent straggler (one worker always 4x slower), where
    no finite s helps.
(b) equal speeds: throughput of the server (s = 0 and s = 3) against DDP; goal >= 0.9.
(c) server cost per push + pull against model size (problem "none", no injected delay).

Run: ``.venv/bin/python benchmarks/bench_real.py [--clocks 120 --base 0.02]`` (about 3 minutes).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import sspsim
from sspsim.real.launch import deploy
from sspsim.schedule import batch_schedule
from sspsim.speeds import compute_times


def config(speed: dict, *, s, clocks: int, transient: dict | None = None, stragglers: list | None = None,
           kind: str = "mlp", dim: int | None = None, inject: bool = True) -> sspsim.Config:
    workers: dict = {"count": 4, "speed": speed}
    if transient:
        workers["transient"] = transient
    if stragglers:
        workers["stragglers"] = stragglers
    problem: dict = {"kind": kind}
    if kind == "mlp":
        problem.update(hidden=[32], batch_size=16)
    if dim:
        problem["dim"] = dim
    return sspsim.config_from_dict({
        "run": {"clocks": clocks, "target": 0.5, "eval_every": 2},
        "problem": problem,
        "optimizer": {"lr": 0.05, "schedule": "constant", "momentum": 0.5},
        "consistency": {"staleness": s},
        "workers": workers,
        "real": {"timeout": 120, "inject_delays": inject},
    })


def predicted_time_per_clock(cfg: sspsim.Config) -> float:
    """The exact SSP schedule of the injected delays alone (no compute, no network)."""
    w = cfg.workers
    times = compute_times(w.speed, workers=w.count, clocks=cfg.run.clocks, seed=cfg.run.seed,
                          stragglers=w.stragglers, transient=w.transient)
    _, M = batch_schedule(times, staleness=cfg.consistency.staleness, read_policy="eager", message_cost=0.0)
    return float(M[-1] / cfg.run.clocks)


def measure(cfg: sspsim.Config, root: Path, name: str, baseline: str | None = None) -> dict:
    meta = deploy(cfg, root / name, baseline=baseline)
    if meta["status"] != "complete":
        raise SystemExit(f"{name}: {meta.get('reason')}")
    run = sspsim.read_run(root / name)
    s = run.summary
    return {"time_per_clock": s["time_per_clock"], "clocks_per_s": 1.0 / s["time_per_clock"],
            "time_to_target": s.get("time_to_target"), "final": s.get("final_objective"), "wait": s["wait_fraction"]}


def scenario(title: str, speed: dict, root: Path, args, *, transient=None, stragglers=None) -> list[str]:  # type: ignore[no-untyped-def]
    print(f"\n{title}")
    print(f"{'run':<8} {'pred s/clock':>12} {'meas s/clock':>12} {'clocks/s':>9} {'wait':>6} {'time to 0.5':>11} {'final':>7}")
    rows = {}
    for label, s in (("BSP", 0), ("SSP s=3", 3), ("ASP", "inf")):
        cfg = config(speed, s=s, clocks=args.clocks, transient=transient, stragglers=stragglers)
        m = measure(cfg, root, f"{title[:3]}-{label}".replace(" ", "").replace("=", ""))
        m["pred"] = predicted_time_per_clock(cfg)
        rows[label] = m
    rows["DDP"] = measure(config(speed, s=0, clocks=args.clocks, transient=transient, stragglers=stragglers), root,
                          f"{title[:3]}-ddp", baseline="ddp")
    rows["DDP"]["pred"] = rows["BSP"]["pred"]
    for label, m in rows.items():
        ttt = "-" if m["time_to_target"] is None else f"{m['time_to_target']:.2f}"
        print(f"{label:<8} {m['pred']:>12.4f} {m['time_per_clock']:>12.4f} {m['clocks_per_s']:>9.2f} {m['wait']:>6.1%} {ttt:>11} {m['final']:>7.3f}")
    ideal = rows["BSP"]["pred"] / rows["SSP s=3"]["pred"]
    measured = rows["BSP"]["time_per_clock"] / rows["SSP s=3"]["time_per_clock"]
    tag = title.split(":")[0]
    out = [f"RATIO {tag}_ssp_speedup_vs_ideal = {measured / ideal:.2f} (measured {measured:.2f}x, ideal {ideal:.2f}x; goal >= 0.9)"]
    ssp_t, ddp_t = rows["SSP s=3"]["time_to_target"], rows["DDP"]["time_to_target"]
    if ssp_t and ddp_t:
        out.append(f"RATIO {tag}_ddp_time_to_target_over_ssp = {ddp_t / ssp_t:.2f} (goal > 1: SSP reaches 0.5 first)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clocks", type=int, default=120)
    ap.add_argument("--base", type=float, default=0.02, help="injected compute time per iteration, seconds")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="sspsim-bench-real-"))
    b = args.base
    ratios: list[str] = []
    ratios += scenario("(i): 4x slower with probability 0.1", {"kind": "constant", "value": b}, root, args,
                       transient={"probability": 0.1, "factor": 4.0, "duration": 1})
    ratios += scenario("(ii): exponential times", {"kind": "exponential", "mean": b}, root, args)
    print("\npersistent straggler (worker 0 always 4x slower)")
    for label, s in (("BSP", 0), ("SSP s=3", 3), ("SSP s=10", 10), ("ASP", "inf")):
        cfg = config({"kind": "constant", "value": b}, s=s, clocks=args.clocks, stragglers=[{"worker": 0, "slowdown": 4.0}])
        m = measure(cfg, root, f"strag-{label}".replace(" ", "").replace("=", ""))
        per_worker = sspsim.read_run(root / f"strag-{label}".replace(" ", "").replace("=", "")).trace.groupby("worker").commit_time.max()
        print(f"{label:<9} time/clock {m['time_per_clock']:.4f} s (predicted {predicted_time_per_clock(cfg):.4f}); "
              f"fast workers finish at {per_worker.iloc[1:].mean():.2f} s, the straggler at {per_worker.iloc[0]:.2f} s")
    print("  every finite s is held to the straggler's pace; ASP lets the others run on (and so would dropping")
    print("  or rebalancing the slow worker: give it a smaller batch or fewer samples)")

    print("\n(b) equal speeds (constant injected time)")
    eq = {}
    for label, s, base in (("server s=0", 0, None), ("server s=3", 3, None), ("DDP", 0, "ddp")):
        eq[label] = measure(config({"kind": "constant", "value": b}, s=s, clocks=args.clocks), root,
                            f"eq-{label}".replace(" ", "").replace("=", ""), baseline=base)
        print(f"{label:<11} {eq[label]['clocks_per_s']:.2f} clocks/s")
    for label in ("server s=0", "server s=3"):
        ratios.append(f"RATIO equal_speeds_{label.replace(' ', '_').replace('=', '')}_over_ddp = "
                      f"{eq[label]['clocks_per_s'] / eq['DDP']['clocks_per_s']:.2f} (goal >= 0.9)")

    print("\n(c) server cost per push + pull (problem 'none', no injected delay, 4 workers, s = inf)")
    for dim in (1_000, 10_000, 100_000, 1_000_000):
        cfg = config({"kind": "constant", "value": 0.0}, s="inf", clocks=max(20, args.clocks // 2), kind="none",
                     dim=dim, inject=False)
        m = measure(cfg, root, f"cost-{dim}")
        per_update = m["time_per_clock"] / 4
        mb = 2 * 8 * (dim + 8) / 1e6
        print(f"dim {dim:>9}: {per_update * 1e3:8.3f} ms per push+pull ({mb:.3f} MB moved, {mb / per_update:8.1f} MB/s)")
    for line in ratios:
        print(line)


if __name__ == "__main__":
    main()
