"""What ``deploy --tensorboard`` costs the parameter server, measured side by side in one process.

The server and worker loops run as threads over an in-process transport (the same messages as
Gloo, without torchrun), on the digits MLP with no injected delay, so the server is as busy as it
gets.  Runs with and without TensorBoard logging alternate; per run the server's mean busy time
per push (commit + the reads it serves, ``run.json`` ``server.busy_per_push``) and the wall time
are taken, and the medians compared.  Also: the time of one clock's logging call alone.

Run: ``.venv/bin/python benchmarks/bench_tensorboard.py [--workers 4 --clocks 300 --repeat 5]`` (~1 min).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

import sspsim
from sspsim import tblog
from sspsim.problems import make_problem
from sspsim.real.server import Server
from sspsim.real.transport import InProcessHub
from sspsim.real.worker import Worker


def config(workers: int, clocks: int) -> sspsim.Config:
    return sspsim.config_from_dict({
        "run": {"clocks": clocks},
        "problem": {"kind": "mlp", "hidden": [16], "batch_size": 16},
        "optimizer": {"lr": 0.05, "schedule": "constant"},
        "consistency": {"staleness": 2},
        "workers": {"count": workers, "speed": {"kind": "constant", "value": 0.0}},
        "real": {"timeout": 60},
    })


def run_once(cfg: sspsim.Config, out: Path, logdir: Path | None) -> tuple[float, float, float]:
    """(server busy seconds per push, wall seconds, seconds in the logging calls per push) of one in-process run."""
    problem = make_problem(cfg.problem, cfg.problem_seed)
    P = cfg.workers.count
    hub = InProcessHub(P + 1, problem.n_params, timeout=60)
    threads = [threading.Thread(target=lambda p=p: Worker(cfg, p, torch.device("cpu"), transport=hub.endpoint(p + 1),
                                                            problem=problem).run(), daemon=True) for p in range(P)]
    server = Server(cfg, out, facts={"ranks": []}, transport=hub.endpoint(0), problem=problem, tensorboard=logdir)
    spent = [0.0]
    if server.tb is not None:  # time the server's calls into the log (the flushes included), not the final close
        inner = server.tb.clock

        def timed(*a, **k):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            inner(*a, **k)
            spent[0] += time.perf_counter() - t

        server.tb.clock = timed  # type: ignore[method-assign]
    wall = time.perf_counter()
    for t in threads:
        t.start()
    try:
        code = server.run()
        for t in threads:
            t.join(timeout=60)
    finally:
        hub.close()
    wall = time.perf_counter() - wall
    if code != 0:
        raise SystemExit(f"the run ended with code {code}")
    return float(np.mean(server.busy)), wall, spent[0] / len(server.busy)


def clock_call(workers: int, n: int = 2000) -> float:
    """Seconds per ClockLog.clock call (buffered, no flush)."""
    with tempfile.TemporaryDirectory() as d:
        log = tblog.ClockLog(d, start=0.0, flush_seconds=1e9)
        v = np.ones(workers)
        present = np.ones(workers, dtype=bool)
        t = time.perf_counter()
        for c in range(1, n + 1):
            log.clock(c, commit=v * c, previous=v * (c - 1), wait=v, staleness=v, present=present, iterations=workers * c)
        per = (time.perf_counter() - t) / n
        log.raw.clear()
        log.close()
    return per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--clocks", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = config(args.workers, args.clocks)
    busy: dict[str, list[float]] = {"off": [], "on": []}
    walls: dict[str, list[float]] = {"off": [], "on": []}
    logging: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        run_once(cfg, root / "warm", None)  # imports, first-touch costs
        for i in range(args.repeat):
            for side in ("off", "on") if i % 2 == 0 else ("on", "off"):
                logdir = root / f"tb{i}" if side == "on" else None
                b, w, spent = run_once(cfg, root / f"{side}{i}", logdir)
                busy[side].append(b)
                walls[side].append(w)
                if side == "on":
                    logging.append(spent)
    per_call = clock_call(args.workers)
    med = {k: statistics.median(v) for k, v in busy.items()}
    wall = {k: statistics.median(v) for k, v in walls.items()}
    print(f"{'':12}{'busy/push (us)':>16}{'wall (s)':>10}")
    for side in ("off", "on"):
        print(f"{side:12}{med[side] * 1e6:16.1f}{wall[side]:10.3f}")
    print(f"one clock's logging call: {per_call * 1e6:.1f} us ({args.workers} workers), "
          f"{per_call / args.workers * 1e6:.1f} us per push")
    attributed = statistics.median(logging)
    print(f"in the logging calls during the run: {attributed * 1e6:.1f} us per push")
    print(f"RATIO tensorboard_logging_share = {attributed / med['off']:.3f} of the busy time per push without it (goal <= 0.10)")
    print(f"RATIO tensorboard_busy_per_push = {med['on'] / med['off']:.3f} (goal <= 1.10)")
    print(f"RATIO tensorboard_wall = {wall['on'] / wall['off']:.3f} (goal <= 1.10)")


if __name__ == "__main__":
    main()
