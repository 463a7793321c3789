"""``sspsim check DIR``: theorem verdicts for a run directory or a sweep directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sspsim.cli.boundary import EXIT_OK, EXIT_VIOLATED, reading
from sspsim.errors import MISSING, InputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``check`` on an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser("check", help="theorem verdicts for a run directory or a sweep directory")
    p.add_argument("dir", type=Path, nargs="?", help="a run directory, or a folder of run directories (a sweep)")
    p.add_argument("--json", action="store_true", help="print the verdicts as a JSON list")
    p.add_argument("--theorem", action="append", default=[], metavar="NAME",
                   help="check only this theorem (a name or a prefix such as ho2013; repeatable)")
    p.add_argument("--list", action="store_true", help="list the catalogue and exit")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Exit 0: nothing violated; 1: something violated; 2 (InputError): input that cannot be read."""
    from sspsim.cli.console import print_table, print_verdicts
    from sspsim.proofs_check import CATALOGUE, check_path

    if args.list:
        print_table("theorem catalogue", ("theorem", "reference", "scope", "statement"),
                    [(t.name, str(t.reference), t.scope, t.summary) for t in CATALOGUE])
        return EXIT_OK
    if args.dir is None:
        raise InputError("DIR", MISSING, "give a run directory or a sweep directory to check (or --list)")
    with reading("DIR", str(args.dir)):
        verdicts = check_path(args.dir, args.theorem, complete_only=True)
    if args.json:
        print(json.dumps([v.to_dict() for v in verdicts], indent=2))
    else:
        print_verdicts(verdicts)
    return EXIT_VIOLATED if any(v.violated for v in verdicts) else EXIT_OK
