"""``sspsim sweep CONFIG --grid KEY=V1,V2,... --out DIR``: the cartesian product of the grid, in parallel
(a local process pool, or Ray with ``--executor ray``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sspsim.cli.common import add_config_options, add_executor_options, executor, overrides, read_toml
from sspsim.errors import MISSING, InputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``sweep`` on an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser("sweep", help="simulate the cartesian product of --grid values, in parallel")
    p.add_argument("config", type=Path)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a key and its values, e.g. --grid consistency.staleness=0,3,inf (repeatable; "
                        "default: the config's [sweep] table)")
    p.add_argument("--out", type=Path, required=True, help="sweep directory: one run directory per point")
    add_executor_options(p)
    add_config_options(p)
    p.add_argument("--force", action="store_true", help="replace an sspsim sweep at --out (never other files)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Validate every point, run them, print one row per run unless ``--quiet``.  Exit 0."""
    from sspsim.cli.console import interactive, print_table, progress_bar
    from sspsim.sim.sweep import expand_grid, grids_from_config, run_sweep

    runner = executor(args)
    raw, base = read_toml(args.config)
    grids, variants = args.grid, None
    if not grids:
        if "sweep" not in raw:
            raise InputError("--grid", MISSING, "give at least one --grid KEY=V1,V2,... or a [sweep] table in the config")
        grids, variants = grids_from_config(raw)
    points = expand_grid(raw, base, grids, overrides(args), variants)
    with progress_bar(f"{len(points)} runs", enabled=interactive() and not args.quiet) as progress:
        rows = run_sweep(points, args.out, executor=runner, force=args.force, progress=progress)
    if not args.quiet:
        cols = ("run", "time/clock", "wait", "staleness", "final objective", "time to target")
        print_table(
            f"sweep: {len(rows)} runs in {args.out}",
            cols,
            [(r["name"], r["time_per_clock"], r["wait_fraction"], r["mean_staleness"], r["final_objective"],
              r["time_to_target"]) for r in rows],
        )
    return 0
