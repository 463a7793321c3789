"""``sspsim simulate CONFIG --out DIR``: one simulation into a run directory, and its summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sspsim.cli.common import add_config_options, add_tensorboard_option, load_config, print_summary
from sspsim.errors import InputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``simulate`` on an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser("simulate", help="simulate one config into a run directory")
    p.add_argument("config", type=Path, help="TOML config")
    p.add_argument("--out", type=Path, required=True, help="run directory to write")
    add_config_options(p)
    p.add_argument("--force", action="store_true", help="replace an sspsim run at --out (never other files)")
    add_tensorboard_option(p)
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Simulate; print the run's summary unless ``--quiet``.  Exit 0."""
    from sspsim.cli.console import interactive, progress_bar
    from sspsim.sim import simulate

    config = load_config(args.config, args)
    if args.tensorboard is None:
        with progress_bar("simulating", enabled=interactive() and not args.quiet) as progress:
            result = simulate(config, args.out, progress=progress, force=args.force)
    else:
        from sspsim import tblog

        if config.run.trace != "full":
            raise InputError(tblog.OPTION, str(args.tensorboard), 'logs from the trace: needs run.trace = "full"')
        with tblog.output_folder(args.tensorboard, force=args.force, run_dir=args.out) as logdir:
            with progress_bar("simulating", enabled=interactive() and not args.quiet) as progress:
                result = simulate(config, args.out, progress=progress, force=args.force)
            tblog.write_trace(logdir, result.trace, result.evals.to_dict("records"),
                              workers=config.workers.count, clocks=config.run.clocks)
    if not args.quiet:
        print_summary(result)
    return 0
