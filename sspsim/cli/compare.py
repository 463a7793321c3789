"""``sspsim compare SIM_DIR REAL_DIR``: predicted (a simulated run) against measured (a real run)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sspsim.cli.boundary import reading

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``compare`` on an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser("compare", help="predicted (a simulated run) against measured (a real run)")
    p.add_argument("sim_dir", type=Path)
    p.add_argument("real_dir", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Print each metric's predicted and measured values and relative error.  Exit 0."""
    from sspsim.cli.console import print_table
    from sspsim.compare import METRICS, compare_runs

    with reading("SIM_DIR, REAL_DIR", f"{args.sim_dir}, {args.real_dir}"):
        result = compare_runs(args.sim_dir, args.real_dir)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    labels = dict(METRICS)
    rows = [(labels[m.name], m.predicted, m.measured, None if m.error is None else f"{100 * m.error:.1f} %")
            for m in result.metrics]
    g = result.geomean_error
    print_table(f"predicted ({args.sim_dir}) against measured ({args.real_dir})", ("metric", "predicted", "measured", "error"),
                rows, caption=None if g is None else f"geometric mean of the errors: {100 * g:.1f} %")
    return 0
