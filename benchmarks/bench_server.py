"""The real server's push + pull against the raw Gloo round trip, in one launch.

One server rank and ``--workers`` worker ranks (Gloo on loopback, a private FileStore), the
same processes for both sides, interleaved ``--repeat`` times per model size:

(raw)    each worker sends ``8 + n`` float64 (the protocol's header + n parameters) to rank 0,
         which receives it (any source) into a reused buffer and sends ``8 + n`` float64 back;
(sspsim) each worker pushes a gradient of n float64 and receives its next read through
         :class:`~sspsim.real.transport.GlooTransport`, served by the real
         :class:`~sspsim.real.server.Server` (problem quadratic of dimension n, s = inf, eager
         reads, constant step: the SGD step applied to the server's parameters per push).  The
         gradient sits in the transport's outgoing payload, where a worker's
         :class:`~sspsim.real.staging.Staging` writes it (its copy from the model is computation,
         as the raw side's filling of its buffer is).

Each worker times ``--round-trips`` consecutive round trips (after one untimed one); a side's
figure for one repeat is the mean over workers of seconds per round trip, and the ratio is
the median over repeats of sspsim / raw.  Goal at 1M parameters: <= 1.2.

Run: ``.venv/bin/python benchmarks/bench_server.py [--workers 4 --repeat 5]`` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

SIZES = (10_000, 100_000, 1_000_000)
HEADER_FLOATS = 8  # sspsim.real.transport.HEADER, checked in the ranks


def round_trips(n: int, scale: int) -> int:
    """Round trips timed per repeat: ``scale`` at 1M parameters, more for smaller messages."""
    return scale * {10_000: 4, 100_000: 2}.get(n, 1)


def config(n: int, workers: int, clocks: int):  # type: ignore[no-untyped-def]
    import sspsim

    return sspsim.config_from_dict({
        "run": {"clocks": clocks, "eval_every": clocks},
        "problem": {"kind": "quadratic", "dim": n, "samples": 2, "batch_size": 1},
        "optimizer": {"lr": 0.01, "schedule": "constant"},
        "consistency": {"staleness": "inf", "read_policy": "eager"},
        "workers": {"count": workers, "speed": {"kind": "constant", "value": 0.0}},
        "real": {"timeout": 120, "inject_delays": False},
    })


def raw_server(n: int, messages: int) -> None:
    import torch
    import torch.distributed as dist

    inbox = torch.empty(HEADER_FLOATS + n, dtype=torch.float64)
    reply = torch.zeros(HEADER_FLOATS + n, dtype=torch.float64)
    for _ in range(messages):
        src = dist.recv(inbox)
        dist.send(reply, dst=src)


def raw_worker(n: int, k: int) -> float:
    import torch
    import torch.distributed as dist

    out = torch.full((HEADER_FLOATS + n,), 1e-3, dtype=torch.float64)
    back = torch.empty(HEADER_FLOATS + n, dtype=torch.float64)
    dist.send(out, dst=0)
    dist.recv(back, src=0)
    start = time.perf_counter()
    for _ in range(k):
        dist.send(out, dst=0)
        dist.recv(back, src=0)
    return (time.perf_counter() - start) / k


def sspsim_worker(transport, worker: int, n: int, k: int) -> float:  # type: ignore[no-untyped-def]
    import numpy as np

    from sspsim.real.transport import Kind, WorkerHeader

    grad = getattr(transport, "outgoing", None)  # where a worker's Staging writes its gradient (sspsim.real.worker)
    if grad is None:  # a transport without one (before issue 11): the gradient is an array of the worker's
        grad = np.empty(n)
    grad[:] = 1e-3
    transport.send(0, WorkerHeader(Kind.HELLO, worker))
    msg = transport.recv_from(0)
    assert msg.header.kind is Kind.READ and msg.header.clock == 1
    transport.send(0, WorkerHeader(Kind.PUSH, worker, clock=1), grad)  # untimed
    transport.recv_from(0)
    start = time.perf_counter()
    for c in range(2, k + 2):
        transport.send(0, WorkerHeader(Kind.PUSH, worker, clock=c), grad)
        msg = transport.recv_from(0)
    elapsed = (time.perf_counter() - start) / k
    assert msg.header.kind is Kind.READ and msg.header.clock == k + 2, msg.header
    transport.send(0, WorkerHeader(Kind.LAST, worker, clock=k + 2), grad)
    return elapsed


def rank_main(args: argparse.Namespace) -> None:
    import torch.distributed as dist

    from sspsim.problems import make_problem
    from sspsim.real.exchange import gather_json
    from sspsim.real.server import Server
    from sspsim.real.transport import HEADER, GlooTransport

    assert HEADER == HEADER_FLOATS
    rank, world = args.rank, args.workers + 1
    dist.init_process_group("gloo", store=dist.FileStore(args.store, world), rank=rank, world_size=world,
                            timeout=timedelta(seconds=300))
    results: dict[str, dict[str, list[float]]] = {}
    for n in SIZES:
        k = round_trips(n, args.scale)
        cfg = config(n, args.workers, clocks=k + 2)
        problem = make_problem(cfg.problem, cfg.problem_seed) if rank == 0 else None
        sides: dict[str, list[float]] = {"raw": [], "sspsim": []}
        for rep in range(args.repeat):
            for side in (("raw", "sspsim") if rep % 2 == 0 else ("sspsim", "raw")):
                # a fresh group per sspsim run: its server's receiving thread stays blocked in the old one
                group = dist.new_group(backend="gloo") if side == "sspsim" else None
                dist.barrier()
                if side == "raw":
                    if rank == 0:
                        raw_server(n, args.workers * (k + 1))
                        t = float("nan")
                    else:
                        t = raw_worker(n, k)
                else:
                    transport = GlooTransport(n, group=group)
                    if rank == 0:
                        out = Path(args.out) / f"n{n}-r{rep}"
                        code = Server(cfg, out, facts={}, transport=transport, problem=problem).run()
                        assert code == 0, f"server exit {code}: {(out / 'run.json').read_text()}"
                        t = float("nan")
                    else:
                        t = sspsim_worker(transport, rank - 1, n, k)
                times = gather_json(t)
                if rank == 0:
                    assert times is not None
                    sides[side].append(statistics.fmean(times[1:]))
        results[str(n)] = sides
    if rank == 0:
        Path(args.result).write_text(json.dumps(results))


def report(results: dict[str, dict[str, list[float]]], workers: int) -> None:
    print(f"push + pull per round trip, {workers} workers + 1 server, Gloo on loopback (median of repeats)")
    print(f"{'params':>9} {'raw ms':>9} {'sspsim ms':>10} {'ratio':>6}  per-repeat ratios")
    lines = []
    for n, sides in results.items():
        per = [s / r for s, r in zip(sides["sspsim"], sides["raw"])]
        ratio = statistics.median(per)
        print(f"{int(n):>9} {statistics.median(sides['raw']) * 1e3:>9.3f} {statistics.median(sides['sspsim']) * 1e3:>10.3f} "
              f"{ratio:>6.2f}  {' '.join(f'{x:.2f}' for x in per)}")
        label = {10_000: "10k", 100_000: "100k", 1_000_000: "1M"}.get(int(n), n)
        goal = " (goal <= 1.2)" if int(n) == 1_000_000 else " (context)"
        lines.append(f"RATIO server_push_pull_{label} = {ratio:.2f}{goal}")
    for line in lines:
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5, help="interleaved repeats per size (median)")
    ap.add_argument("--scale", type=int, default=20, help="round trips per repeat at 1M parameters (4x at 10k, 2x at 100k)")
    ap.add_argument("--rank", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--store", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rank is not None:
        rank_main(args)
        return
    with tempfile.TemporaryDirectory(prefix="sspsim-bench-server-") as tmp:
        env = dict(os.environ, GLOO_SOCKET_IFNAME=os.environ.get("GLOO_SOCKET_IFNAME", "lo"),
                   OMP_NUM_THREADS="1")
        argv = [sys.executable, __file__, "--workers", str(args.workers), "--repeat", str(args.repeat),
                "--scale", str(args.scale), "--store", f"{tmp}/store", "--out", f"{tmp}/runs", "--result", f"{tmp}/result.json"]
        procs = [subprocess.Popen([*argv, "--rank", str(r)], env=env) for r in range(args.workers + 1)]
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SystemExit(f"a rank failed: exit codes {codes}")
        report(json.loads(Path(f"{tmp}/result.json").read_text()), args.workers)


if __name__ == "__main__":
    main()
