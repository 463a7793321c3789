"""``sspsim deploy CONFIG --out DIR``: run the config for real (torchrun: one server and P workers)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sspsim.cli.boundary import reading
from sspsim.cli.common import add_config_options, add_tensorboard_option, load_config, print_summary
from sspsim.errors import MISSING, InputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``deploy`` on an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser("deploy", help="run the config for real: torchrun, one server and P worker processes")
    p.add_argument("config", type=Path, nargs="?", help="TOML config (not needed with --resume)")
    p.add_argument("--out", type=Path, help="run directory to write")
    p.add_argument("--baseline", choices=("ddp",), help="train the same problem with DistributedDataParallel (BSP all-reduce)")
    p.add_argument("--resume", type=Path, metavar="DIR", help="continue an incomplete run from DIR/checkpoint.pt")
    p.add_argument("--print-command", action="store_true",
                   help="print the torchrun command of one node of a multi-node run and exit")
    p.add_argument("--nnodes", type=int, default=1)
    p.add_argument("--nproc-per-node", type=int, default=None)
    p.add_argument("--rdzv-endpoint", default=None, metavar="HOST:PORT")
    add_config_options(p)
    p.add_argument("--force", action="store_true", help="replace an sspsim run at --out (never other files)")
    add_tensorboard_option(p)
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Exit 0: the run completed; 1: it ended incomplete (run.json says why); 2 (InputError): bad input."""
    if args.resume is not None:
        from sspsim.real.launch import resume_config

        if args.overrides or args.seed is not None or args.config is not None:
            raise InputError("--resume", str(args.resume), "continues with the run's own config: drop CONFIG, --set and --seed")
        with reading("--resume", str(args.resume)):
            out, config = args.resume, resume_config(args.resume)
    else:
        if args.config is None or args.out is None:
            raise InputError("deploy", MISSING, "needs CONFIG and --out DIR (or --resume DIR)")
        out, config = args.out, load_config(args.config, args)
    if args.print_command:
        return _print_command(args, config)
    from sspsim.real.launch import deploy

    meta = deploy(config, out, resume=args.resume is not None, baseline=args.baseline, force=args.force,
                  tensorboard=args.tensorboard)
    if meta.get("status") != "complete":
        sys.stderr.write(f"sspsim: run incomplete: {meta.get('reason', 'unknown reason')} (see {out})\n")
        return 1
    if not args.quiet:
        from sspsim.rundir import read_run

        print_summary(read_run(out))
    return 0


def _print_command(args: argparse.Namespace, config: Any) -> int:
    """Print one node's ``torchrun`` command of a multi-node run."""
    from sspsim.real.launch import torchrun_command

    if args.config is None or args.out is None:
        raise InputError("--print-command", MISSING, "needs CONFIG and --out DIR")
    need = config.workers.count + (0 if args.baseline else 1)
    nproc = args.nproc_per_node
    if nproc is None:
        if need % args.nnodes:
            raise InputError("--nproc-per-node", MISSING, f"{need} processes do not split evenly over {args.nnodes} "
                             f"nodes: give each node's count (they must add up to {need})")
        nproc = need // args.nnodes
    cmd = torchrun_command(args.config, args.out, nproc=nproc, nnodes=args.nnodes,
                           endpoint=args.rdzv_endpoint or "HOST:29500", baseline=args.baseline, tensorboard=args.tensorboard)
    print(" ".join(["torchrun", *cmd[3:]]))
    return 0
