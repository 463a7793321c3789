"""The ``sspsim`` command line: one module per command, each with ``add_parser`` and ``run``.

This entry point builds the parser from ``COMMANDS``, dispatches to the chosen command's
``run(args) -> int``, and maps exceptions to exit codes, here and nowhere else:

- ``InputError`` (bad config, trace, run directory, command line): one line, exit 2;
- a file that cannot be read or written, or that is not UTF-8, too deep, too large: one line, exit 2;
- a closed stdout (``sspsim ... | head``): the rest of the output is dropped, the command's own code;
- Ctrl-C: one line, exit 130;
- anything else is a bug: one line, the traceback saved to a file, exit 3.

The reference is docs/reference/cli.md.  Progress bars appear on a terminal only.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn, Sequence

from sspsim.cli.boundary import (
    EXIT_BUG,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    UNREADABLE,
    closed_stdout_is_fine,
    save_traceback,
    unreadable_line,
)
from sspsim.errors import InputError

__all__ = ["COMMANDS", "main"]

COMMANDS: tuple[str, ...] = (
    "simulate",
    "sweep",
    "check",
    "deploy",
    "calibrate",
    "plan",
    "compare",
    "demo",
    "report",
    "export",
    "schema",
)
"""The subcommands, in ``--help`` order: each names a module ``sspsim.cli.<name>`` with
``add_parser(subparsers)`` (which sets ``handler=run``) and ``run(args) -> int``."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"sspsim: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_INPUT)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sspsim", description="Stale Synchronous Parallel SGD: simulate, check, deploy, report.")
    p.add_argument("--version", action="version", version=f"sspsim {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"sspsim.cli.{name}").add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sspsim`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with closed_stdout_is_fine():
        try:
            args = _parser().parse_args(argv)
            return int(args.handler(args))
        except InputError as exc:
            return _fail(f"sspsim: error: {exc}", EXIT_INPUT)
        except UNREADABLE as exc:
            return _fail(f"sspsim: error: {unreadable_line(exc)}", EXIT_INPUT)
        except KeyboardInterrupt as exc:
            return _fail(f"sspsim: {str(exc) or 'interrupted; unfinished run directories were not written'}", EXIT_INTERRUPTED)
        except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, keep the traceback
            where = save_traceback(exc, argv)
            message = " ".join(str(exc).split())
            return _fail(f"sspsim: internal error (a bug): {type(exc).__name__}: {message}; traceback saved to {where}",
                         EXIT_BUG)


def _fail(line: str, code: int) -> int:
    sys.stderr.write(line + "\n")
    return code


def _version() -> str:
    from sspsim import __version__

    return __version__


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
