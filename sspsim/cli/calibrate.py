"""``sspsim calibrate CONFIG --out FILE.toml``: profile this machine with short real runs; write a calibrated config."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sspsim.cli.common import add_config_options, load_config
from sspsim.errors import InputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``calibrate`` on an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser("calibrate", help="profile this machine with short real runs; write a calibrated simulator config")
    p.add_argument("config", type=Path)
    p.add_argument("--out", type=Path, required=True, help="the calibrated config to write (TOML)")
    p.add_argument("--clocks", type=int, default=40, help="clocks of the profile run (default 40)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the profile runs here (default: beside --out)")
    add_config_options(p)
    p.add_argument("--force", action="store_true", help="replace the calibrated config and profile runs sspsim wrote at --out (never other files)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Profile, write the calibrated config, print what was measured unless ``--quiet``.  Exit 0."""
    config = load_config(args.config, args)
    if args.clocks < 4:
        raise InputError("--clocks", args.clocks, "must be >= 4")
    from sspsim.real.calibrate import calibrate

    workdir = args.workdir or args.out.with_suffix("").with_name(args.out.stem + "-profile")
    facts = calibrate(config, args.out, workdir=workdir, clocks=args.clocks, force=args.force)
    if not args.quiet:
        from sspsim.cli.console import print_table

        c = facts["compute"]
        rows = [
            ("real compute per iteration (s)", f"mean {c['mean']:.4g}, p50 {c['p50']:.4g}, p99 {c['p99']:.4g} (n = {c['n']})"),
            ("lognormal fit", f"KS {c['lognormal']['ks']:.3f}, p = {c['lognormal']['p_value']:.3g}" if "lognormal" in c else "-"),
            ("pull at 1x / 10x / 100x bytes (s)", " / ".join(f"{v:.4g}" for v in facts["pull_seconds"])),
            ("latency (s), bandwidth (B/s)", f"{facts['latency']:.4g}, {facts['bandwidth']:.4g}"),
            ("push receive time (s), beyond the pull", f"{facts['receive_time']:.4g}"),
            ("server busy per push (s)", f"{facts['server_busy_per_push']:.4g}"),
            ("of which: apply a push, send a read (s)", f"{facts['server_apply_per_push']:.4g}, {facts['server_send_per_read']:.4g}"),
            ("first iteration's extra time (s)", f"{facts['warmup']:.4g}"),
            ("start-up time (s)", f"{facts['startup_time']:.3g}"),
        ]
        print_table(f"calibrated config: {args.out} (profile runs in {workdir})", ("", "measured"), rows)
    return 0
