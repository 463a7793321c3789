"""``sspsim export DIR --perfetto FILE.json``: a run's timeline for Perfetto / chrome://tracing."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``export`` subcommand; returns its parser."""
    p = subparsers.add_parser(
        "export",
        help="a run's timeline (one track per worker: wait, read, compute, push; the server's applies) for Perfetto",
        description="Write a run directory's timeline in the Chrome trace-event format "
        "(open it at ui.perfetto.dev or chrome://tracing).",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="a run directory with a trace.csv")
    p.add_argument("--perfetto", type=Path, required=True, metavar="FILE.json",
                   help="the JSON file to write (never over a file sspsim did not write)")
    p.add_argument("--force", action="store_true", help="replace a timeline sspsim wrote at FILE.json")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Write the timeline; print where it is."""
    from sspsim.export import write_perfetto
    from sspsim.rundir import read_run

    out = write_perfetto(read_run(args.dir), args.perfetto, force=args.force)
    print(f"timeline: {out} (open it at ui.perfetto.dev or chrome://tracing)")
    return 0
