"""``sspsim plan CONFIG --out DIR``: predict the best staleness and worker count over seeds, and say why."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from sspsim.cli.common import add_config_options, add_executor_options, executor, overrides, read_toml
from sspsim.errors import InputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``plan`` on an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser("plan", help="predict the best staleness and worker count (sweep over seeds) and say why")
    p.add_argument("config", type=Path, help="a (calibrated) config with run.target set, or --target")
    p.add_argument("--out", type=Path, required=True, help="sweep directory for the plan's runs (plan.json inside)")
    p.add_argument("--staleness", default="0,1,3,inf", help="values of consistency.staleness (default 0,1,3,inf)")
    p.add_argument("--workers", default=None, help="values of workers.count (default: the config's)")
    p.add_argument("--read-policy", default=None, help="values of consistency.read_policy (default: the config's)")
    p.add_argument("--backup", default="1",
                   help="backup-worker counts b compared with SSP (ksync, K = P - b; default 1; 'none' to skip)")
    p.add_argument("--kbatch", default=None, help="values of K for K-batch-sync runs beside SSP (default: none)")
    p.add_argument("--local-sgd", default=None, help="local SGD periods H run beside SSP (default: none)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per configuration (default 5)")
    p.add_argument("--target", type=float, default=None, help="objective to reach (default: run.target)")
    add_executor_options(p)
    add_config_options(p)
    p.add_argument("--force", action="store_true", help="replace an sspsim sweep at --out (never other files)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the plan's sweep; print the configurations ranked by median time to target unless ``--quiet``.  Exit 0."""
    import numpy as np

    from sspsim.cli.console import interactive, print_table, progress_bar
    from sspsim.config import apply_overrides
    from sspsim.sim.plan import Alternative, plan

    if args.seeds < 1:
        raise InputError("--seeds", args.seeds, "must be >= 1")
    runner = executor(args)
    if args.seed is not None or any(o.startswith("run.seed=") for o in args.overrides):
        raise InputError("--seed", args.seed, "plan runs seeds 0..N-1 of every configuration: set how many with --seeds")
    raw, base = read_toml(args.config)
    axes = {"consistency.staleness": _values(args.staleness)}
    if args.workers:
        axes["workers.count"] = _values(args.workers)
    if args.read_policy:
        axes["consistency.read_policy"] = [f'"{v}"' for v in _values(args.read_policy)]
    alternatives = tuple(
        Alternative(kind, _count(flag, v))
        for kind, flag, text in (("backup", "--backup", args.backup), ("kbatch_sync", "--kbatch", args.kbatch),
                                 ("local_sgd", "--local-sgd", args.local_sgd))
        if text and text.strip() != "none"
        for v in _values(text)
    )
    raw = apply_overrides(raw, overrides(args))
    with progress_bar("planning", enabled=interactive() and not args.quiet) as progress:
        result = plan(raw, base, args.out, axes=axes, seeds=args.seeds, target=args.target, executor=runner,
                      progress=progress, force=args.force, alternatives=alternatives)
    if not args.quiet:
        best = result.best
        rows = []
        for p in sorted(result.points, key=lambda p: p.median):
            lo, hi = p.spread
            mark = " <- best" if p is best else ""
            rows.append((p.label + mark, _time(p.median), f"{_time(lo)} .. {_time(hi)}", f"{100 * p.reached:.0f} %",
                         float(np.median(p.time_per_clock)), f"{100 * np.median(p.wait_fraction):.1f} %",
                         float(np.median(p.mean_staleness))))
        print_table(f"plan: time to objective {result.target:g}, {args.seeds} seeds each ({args.out})",
                    ("configuration", "median time", "p10 .. p90", "reached", "time/clock", "waiting", "staleness"), rows,
                    caption=f"{result.diagnosis['kind']}: {result.diagnosis['advice']}")
    return 0


def _values(text: str) -> list[str]:
    """``"0, 1,inf"`` -> ``["0", "1", "inf"]`` (empty items dropped)."""
    return [v.strip() for v in text.split(",") if v.strip()]


def _count(flag: str, text: str) -> int:
    """A whole number >= 1 (b = 0 would be plain BSP) given to ``flag``."""
    if not text.isdigit() or int(text) < 1:
        raise InputError(flag, text, "must be whole numbers >= 1, separated by commas, or 'none'")
    return int(text)


def _time(seconds: float) -> str:
    return "not reached" if math.isinf(seconds) else f"{seconds:.4g}"
