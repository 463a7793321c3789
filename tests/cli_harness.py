"""Run ``sspsim`` in-process and capture what it says: the harness of the bad-input and fuzz tests."""

from __future__ import annotations

import contextlib
import io

from sspsim.cli import main

__all__ = ["BASE_CONFIG", "run_cli"]

BASE_CONFIG = """\
[run]
clocks = 4
[problem]
kind = "logistic"
dim = 3
samples = 40
[workers]
count = 3
"""
"""A config small enough that a run takes milliseconds."""


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``sspsim argv`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors (one line, exit 2), as the console script exits
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()
