"""What every process of a real run runs: rank 0 serves, ranks 1..P work (``--baseline ddp``:
ranks 0..P-1 all work, DDP all-reduces).  ``sspsim deploy`` starts them on one machine
(:mod:`sspsim.real.ranks`: a private FileStore, ``SSPSIM_STORE``); several machines use torchrun:

    torchrun --nnodes N --node-rank i --nproc-per-node K --rdzv-backend c10d \\
             --rdzv-endpoint HOST:PORT -m sspsim.real.main --config CONFIG --out DIR

CONFIG is the TOML file (each node reads its own copy) or the resolved JSON that
``sspsim deploy`` writes.  Only rank 0 writes DIR.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

import torch.distributed as dist

from sspsim.config import Config, config_from_dict, load_config
from sspsim.errors import InputError
from sspsim.real.exchange import broadcast_json, gather_json
from sspsim.real.ranks import STORE_ENV, die_with_parent

__all__ = ["main"]


def read_config(path: Path) -> Config:
    if path.suffix == ".json":
        if not path.is_file():
            raise InputError("--config", str(path), "file not found")
        return config_from_dict(json.loads(path.read_text()), base_dir=path.parent)
    return load_config(path)


def tensorboard_folder(path: Path) -> None:
    """Rank 0's TensorBoard folder: one sspsim made (``sspsim deploy`` passes its staging folder), or a new
    one (under torchrun directly); a folder of anyone else's is refused (InputError)."""
    from sspsim import outdir, tblog

    tblog.require(path)
    marker = outdir.read_marker(path)
    if marker is not None and marker.get("kind") == tblog.MARKER_KIND:
        return
    outdir.check_folder(path, force=False, option=tblog.OPTION)
    path.mkdir(parents=True, exist_ok=True)
    outdir.write_marker(path, tblog.MARKER_KIND)


def measure_clock_offset(rank: int, world: int, pings: int = 8) -> float:
    """This rank's clock minus rank 0's, for timestamps in the server's time.

    Zero on rank 0's host (one clock); elsewhere Cristian's method over a few round trips,
    keeping the one with the shortest round trip (error at most half of it).
    """
    import socket
    import time

    import torch

    host = broadcast_json(socket.gethostname(), src=0)
    remote = [r for r in range(1, world)]
    stamp = torch.zeros(1, dtype=torch.float64)
    if rank == 0:
        for r in remote:
            while True:
                dist.recv(stamp, src=r)
                if stamp.item() < 0:
                    break
                dist.send(torch.tensor([time.time()], dtype=torch.float64), dst=r)
        return 0.0
    same_host = host == socket.gethostname()
    best, offset = float("inf"), 0.0
    for _ in range(0 if same_host else pings):
        sent = time.time()
        dist.send(torch.tensor([sent], dtype=torch.float64), dst=0)
        dist.recv(stamp, src=0)
        back = time.time()
        if back - sent < best:
            best, offset = back - sent, (sent + back) / 2 - stamp.item()
    dist.send(torch.tensor([-1.0], dtype=torch.float64), dst=0)
    return offset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sspsim.real.main")
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    ap.add_argument("--baseline", choices=("ddp",), default=None)
    ap.add_argument("--tensorboard", type=Path, default=None, metavar="DIR",
                    help="rank 0 also writes TensorBoard scalars into DIR (new, empty, or an sspsim tensorboard folder)")
    args = ap.parse_args(argv)
    die_with_parent()  # the launcher (sspsim deploy or torchrun) gone: so is this rank
    try:
        config = read_config(args.config)
        if args.tensorboard is not None and int(os.environ.get("RANK", "0")) == 0:
            tensorboard_folder(args.tensorboard)
    except InputError as exc:
        sys.stderr.write(f"sspsim: error: {exc}\n")
        return 2
    from sspsim.real.rundir import hardware_facts
    from sspsim.real.worker import pick_device

    baseline = args.baseline == "ddp"
    if config.real.interface:  # every node reads its config: each binds Gloo to the interface named there
        os.environ.setdefault("GLOO_SOCKET_IFNAME", config.real.interface)
    timeout = datetime.timedelta(seconds=max(60.0, 3 * config.real.timeout))
    store = os.environ.get(STORE_ENV)
    if store:  # started by sspsim deploy: a private FileStore, nothing listening on the network
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        dist.init_process_group("gloo", store=dist.FileStore(store, world), rank=rank, world_size=world, timeout=timeout)
    else:  # torchrun: its rendezvous
        dist.init_process_group("gloo", timeout=timeout)
    rank, world = dist.get_rank(), dist.get_world_size()
    need = config.workers.count + (0 if baseline else 1)
    if world != need:
        if rank == 0:
            sys.stderr.write(f"sspsim: error: world size = {world}: workers.count = {config.workers.count} needs {need} processes\n")
        return 2
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    worker_index = rank if baseline else rank - 1
    device = pick_device(config.real.device, local_rank) if (baseline or rank > 0) else None
    facts = hardware_facts(str(device) if device is not None else "cpu (server)")
    gathered = gather_json({"rank": rank, **facts}, dst=0)
    hardware = {"ranks": gathered} if rank == 0 else {}
    offset = measure_clock_offset(rank, world)
    if baseline:
        from sspsim.real.ddp import train_ddp

        assert device is not None  # every DDP rank trains
        code = train_ddp(config, args.out, device=device, hardware=hardware)
        if rank == 0 and args.tensorboard is not None:  # no server sees the pushes: the scalars come from the trace
            from sspsim.rundir import read_run
            from sspsim.tblog import write_trace

            run = read_run(args.out)
            if run.has_trace:
                write_trace(args.tensorboard, run.trace, run.evals.to_dict("records"), workers=config.workers.count,
                            clocks=config.run.clocks, start=run.meta.get("started_at"))
        return code
    from sspsim.problems import make_problem
    from sspsim.real.transport import GlooTransport

    problem = make_problem(config.problem, config.problem_seed)
    transport = GlooTransport(problem.n_params)
    if rank == 0:
        transport.start_receiving()  # before the server's set-up (problem facts: minutes for a large problem)
        from sspsim.real.server import Server

        if config.consistency.model == "ksync":
            from sspsim.real.ksync import KSyncServer as Server  # type: ignore[assignment]
        code = Server(config, args.out, facts=hardware, transport=transport, resume=args.resume, problem=problem,
                      tensorboard=args.tensorboard).run()
    else:
        from sspsim.real.worker import Worker

        assert device is not None  # ranks 1..P are workers
        try:
            code = Worker(config, worker_index, device, transport=transport, clock_offset=offset, problem=problem).run()
        except ConnectionError as exc:  # the server is gone; it (or the launcher) reports the run
            sys.stderr.write(f"sspsim: worker {worker_index}: lost the server: {str(exc).splitlines()[0][:200]}\n")
            code = 1
    return code  # no destroy_process_group: the server's receiving thread may still sit in Gloo


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # do not wait for the server's receiving thread
