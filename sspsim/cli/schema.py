"""``sspsim schema [-o FILE]``: the JSON Schema (draft 2020-12) of the config file, for editors.

Generated from the config's own field rules (:func:`sspsim.config.json_schema`), so it accepts
what ``config_from_dict`` accepts key by key (cross-key rules, such as a lazy read with
``staleness = "inf"``, are left to sspsim).  Point Taplo or VS Code's Even Better TOML at it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sspsim.errors import InputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``schema`` subcommand on an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "schema",
        help="the JSON Schema of the config, for editors (Taplo, VS Code)",
        description="Print the JSON Schema (draft 2020-12) of sspsim's TOML config, generated from its field rules.",
    )
    p.add_argument("-o", "--out", type=Path, default=None, metavar="FILE",
                   help="write the schema to FILE instead of printing it (never over a file sspsim did not write)")
    p.add_argument("--force", action="store_true", help="replace a schema sspsim wrote at FILE")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Print the schema, or write it to ``--out`` (which must not be an existing folder)."""
    from sspsim.config import json_schema
    from sspsim.outdir import FILE_MARK, check_file

    text = json.dumps({"$comment": f"{FILE_MARK} schema", **json_schema()}, indent=2) + "\n"
    if args.out is None:
        print(text, end="")
        return 0
    if args.out.is_dir():
        raise InputError("-o", str(args.out), "is a folder; name a file such as sspsim.schema.json")
    if not args.out.parent.is_dir():
        raise InputError("-o", str(args.out), "its folder does not exist")
    check_file(args.out, force=args.force, option="-o")
    args.out.write_text(text)
    print(f"schema: {args.out}")
    return 0
