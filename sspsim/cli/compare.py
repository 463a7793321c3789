"""``sspsim compare SIM_DIR REAL_DIR [REAL_DIR ...]``: predicted (a simulated run) against measured
(a real run, or the median of several with their spread)."""

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
    p.add_argument("real_dir", type=Path, nargs="+",
                   help="a real run; several real runs of the config: compared through their median, with their spread")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--max-error", type=_fraction, default=None, metavar="X",
                   help="exit 1 when the largest timing error exceeds X (a fraction: 0.1 is 10 %%)")
    p.set_defaults(handler=run)
    return p


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a fraction >= 0")
    return value


def run(args: argparse.Namespace) -> int:
    """Print each metric's predicted and measured values and relative error, the largest timing error
    as the headline, and the metrics that are equal by construction apart.  Exit 1 when ``--max-error``
    is exceeded, else 0."""
    from sspsim.cli.console import print_table
    from sspsim.comparison import EXACT_TITLE, compare_runs

    reals = args.real_dir
    with reading("SIM_DIR, REAL_DIR", f"{args.sim_dir}, {', '.join(map(str, reals))}"):
        result = compare_runs(args.sim_dir, *reals)
    headline = result.max_timing_error
    exceeded = args.max_error is not None and (headline is None or headline > args.max_error)
    if args.json:
        print(json.dumps({**result.to_dict(), "max_error": args.max_error, "exceeded": exceeded}, indent=2))
        return 1 if exceeded else 0
    title = f"predicted ({args.sim_dir}) against measured ({result.measured_label})"
    caption = result.headline
    if args.max_error is not None:
        caption += f"; limit {100 * args.max_error:.1f} %: {'EXCEEDED' if exceeded else 'within'}"
    print_table(title, result.columns, result.rows(), caption=caption)
    exact = result.rows(by_construction=True)
    if exact:
        print_table(EXACT_TITLE, result.columns, exact)
    return 1 if exceeded else 0
