"""The real backend on a user's torch model (the digits CNN example), on CPU: SSP against BSP
under transient slowdowns, against the ideal from the exact timing recursion; and the cost of
staging parameters and gradients through reused (pinned on CUDA) host buffers.

(a) 4 workers + the server under torchrun (Gloo on loopback, one torch thread per process),
    ``[problem] kind = "torch"`` with ``examples/digits_cnn`` (1898 parameters at 8 channels,
    batch 32), injected compute time ``--base`` per iteration, each iteration 4x slower with
    probability 0.1 (``[workers] transient``).  Measured: seconds per clock for s = 0 (BSP) and
    s = 3.  Ideal: the SSP speedup over BSP that the exact SSP timing recursion
    (:func:`sspsim.schedule.batch_schedule`, the closed form of the gate) gives for the same
    injected delays.  Goal: measured speedup >= 0.9 of ideal.
(b) per message, ``Staging.to_device`` + ``Staging.to_host`` (reused buffers) against a plain
    ``torch.as_tensor(params, device=...)`` + ``grad.to("cpu").numpy()`` (new tensors per
    message), on the CPU and on CUDA when there is one, for the CNN's size and for 1M parameters.

Run: ``.venv/bin/python benchmarks/bench_real_torch.py [--clocks 80 --base 0.03]`` (about 2 minutes).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import sspsim
from sspsim.real.launch import deploy
from sspsim.real.staging import Staging
from sspsim.schedule import batch_schedule
from sspsim.speeds import compute_times

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits_cnn"
GOAL = 0.9


def config(*, s: int, clocks: int, base: float, workers: int) -> sspsim.Config:
    return sspsim.config_from_dict({
        "run": {"clocks": clocks, "eval_every": clocks},
        "problem": {"kind": "torch", "factory": "tasks:make_task", "factory_dir": str(EXAMPLE), "batch_size": 32,
                    "device": "cpu", "eval_samples": 256, "options": {"channels": 8}},
        "optimizer": {"lr": 0.1, "schedule": "constant"},
        "consistency": {"staleness": s},
        "workers": {"count": workers, "speed": {"kind": "constant", "value": base},
                    "transient": {"probability": 0.1, "factor": 4.0, "duration": 1}},
        "real": {"timeout": 120, "device": "cpu"},
    })


def ideal_time_per_clock(cfg: sspsim.Config) -> float:
    """The exact SSP schedule of the injected delays alone (no compute, no network)."""
    w = cfg.workers
    times = compute_times(w.speed, workers=w.count, clocks=cfg.run.clocks, seed=cfg.run.seed,
                          stragglers=w.stragglers, transient=w.transient)
    _, finish = batch_schedule(times, staleness=cfg.consistency.staleness, read_policy="eager", message_cost=0.0)
    return float(finish[-1] / cfg.run.clocks)


def measured_ideal_time_per_clock(run: sspsim.Run, cfg: sspsim.Config) -> float:
    """The exact SSP schedule of the iteration times this run measured (real compute and injected
    delay together, as the workers timed them): what the gate alone would make of them, with no
    message or server cost."""
    trace = run.trace
    times = np.zeros((cfg.workers.count, cfg.run.clocks))
    times[trace["worker"].to_numpy(), trace["clock"].to_numpy() - 1] = trace["compute_time"].to_numpy()
    _, finish = batch_schedule(times, staleness=cfg.consistency.staleness, read_policy="eager", message_cost=0.0)
    return float(finish[-1] / cfg.run.clocks)


def measure(cfg: sspsim.Config, out: Path) -> sspsim.Run:
    meta = deploy(cfg, out)
    if meta["status"] != "complete":
        raise SystemExit(f"{out.name}: {meta.get('reason')}")
    return sspsim.read_run(out)


def throughput(args: argparse.Namespace, root: Path) -> list[str]:
    print(f"(a) digits CNN on CPU, {args.workers} workers x {args.clocks} clocks, injected {args.base * 1e3:.0f} ms, "
          "4x slower with probability 0.1")
    print(f"{'run':<8} {'ideal s/clock':>13} {'ideal (meas.)':>13} {'meas s/clock':>12} {'clocks/s':>9} {'wait':>6} "
          f"{'real compute':>12} {'objective':>15}")
    rows = {}
    for label, s in (("BSP", 0), ("SSP s=3", 3)):
        cfg = config(s=s, clocks=args.clocks, base=args.base, workers=args.workers)
        run = measure(cfg, root / label.replace(" ", "").replace("=", ""))
        summary = run.summary
        compute = float(np.nanmean(run.trace["real_compute_time"])) if "real_compute_time" in run.trace else float("nan")
        objective = run.evals["objective"].to_numpy()
        rows[label] = (ideal_time_per_clock(cfg), measured_ideal_time_per_clock(run, cfg), summary["time_per_clock"])
        ideal, ideal_measured, took = rows[label]
        print(f"{label:<8} {ideal:>13.4f} {ideal_measured:>13.4f} {took:>12.4f} {1 / took:>9.2f} "
              f"{summary['wait_fraction']:>6.1%} {compute * 1e3:>9.1f} ms {objective[0]:>6.3f} -> {objective[-1]:.3f}")
    measured = rows["BSP"][2] / rows["SSP s=3"][2]
    lines = []
    for name, i, what in (("torch_cnn_ssp_speedup_vs_ideal", 0, "the injected delays"),
                          ("torch_cnn_ssp_speedup_vs_ideal_of_measured_times", 1, "each run's measured iteration times")):
        ideal = rows["BSP"][i] / rows["SSP s=3"][i]
        verdict = "meets" if measured / ideal >= GOAL else "misses"
        lines.append(f"RATIO {name} = {measured / ideal:.2f} (measured {measured:.2f}x, ideal {ideal:.2f}x from the exact "
                     f"recursion on {what}; goal >= {GOAL}: {verdict})")
    for label, (_, ideal_measured, took) in rows.items():
        lines.append(f"RATIO torch_cnn_{label.replace(' ', '').replace('=', '')}_efficiency = {ideal_measured / took:.2f} "
                     "(exact recursion on the measured iteration times over the measured time per clock)")
    return lines


def _per_message(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def staging(repeats: int) -> list[str]:
    devices = [torch.device("cpu")] + ([torch.device("cuda:0")] if torch.cuda.is_available() else [])
    print("\n(b) one read + one push through the worker's device: staged (reused buffers) vs plain (new tensors)")
    if len(devices) == 1:
        print("    no CUDA GPU here: the CPU path only (the pinned path runs where a GPU is)")
    print(f"{'device':<8} {'params':>9} {'staged us':>10} {'plain us':>10} {'plain/staged':>13}")
    lines = []
    for device in devices:
        for n in (1898, 1_000_000):
            params = np.random.default_rng(0).standard_normal(n)
            stage = Staging(n, device, torch.float32)

            def staged(stage: Staging = stage, params: np.ndarray = params) -> None:
                x = stage.to_device(params)
                stage.to_host(x)

            def plain(params: np.ndarray = params, device: torch.device = device) -> None:
                x = torch.as_tensor(params, device=device).to(torch.float32)
                x.to(dtype=torch.float64, device="cpu").numpy()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)

            t_staged, t_plain = _per_message(staged, repeats), _per_message(plain, repeats)
            print(f"{device.type:<8} {n:>9} {t_staged * 1e6:>10.1f} {t_plain * 1e6:>10.1f} {t_plain / t_staged:>13.2f}")
            lines.append(f"RATIO staging_{device.type}_{n}_plain_over_staged = {t_plain / t_staged:.2f}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clocks", type=int, default=80)
    ap.add_argument("--base", type=float, default=0.03, help="injected compute time per iteration, seconds")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = args.out or Path(tempfile.mkdtemp(prefix="sspsim-bench-real-torch-"))
    ratios = throughput(args, root)
    ratios += staging(args.repeats)
    print()
    print("\n".join(ratios))


if __name__ == "__main__":
    main()
