"""``sspsim report DIR... -o FILE.html [--title T]``: one self-contained HTML report.

DIRs are run directories or sweep directories (folders of run directories).  The figures are
embedded in the HTML and also written beside it, in ``<FILE stem>_files/``.  The ``reports``
package (seaborn, matplotlib) is imported only when the command runs, so ``sspsim --help`` and
the core never load it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from sspsim.errors import MISSING, InputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``report`` subcommand on an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "report",
        help="an HTML report (figures, theorem verdicts, the seed paper's claims) of run or sweep directories",
        description="Build one self-contained HTML file from run directories and sweep directories.",
    )
    p.add_argument("dirs", type=Path, nargs="+", metavar="DIR", help="a run directory, or a sweep directory")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="FILE.html", help="the HTML file to write")
    p.add_argument("--force", action="store_true", help="replace FILE.html if sspsim wrote it (a file sspsim did not write is never overwritten)")
    p.add_argument("--title", default=None, help="the report's title (default: 'sspsim report: N runs')")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Build the report; print where it is and how many figures it holds.  Bad input raises InputError."""
    for d in args.dirs:
        if not Path(d).exists():
            raise InputError("DIR", str(d), "not found")
    if args.out.suffix.lower() not in (".html", ".htm"):
        raise InputError("-o", str(args.out), "must name an .html file")
    from sspsim.outdir import check_file

    check_file(args.out, force=args.force, option="-o")
    _check_writable(args.out)
    try:
        from sspsim.reports.build import make_report
    except ImportError as exc:  # pragma: no cover - the reports extra is not installed
        raise InputError("report", MISSING, f"needs the reports extra (pip install 'sspsim[reports]'): {exc}") from None
    report = make_report(args.dirs, args.out, title=args.title)
    print(f"report: {report.path}")
    print(f"figures: {len(report.figures)} (also in {report.path.with_name(report.path.stem + '_files')})")
    return 0


def _check_writable(out: Path) -> None:
    """Refuse, before minutes of plotting, an output whose folder cannot take a new file (``-o /proc/x.html``)."""
    folder = out.parent
    while not folder.exists() and folder != folder.parent:  # make_report creates the missing folders
        folder = folder.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise InputError("-o", str(out), f"cannot write into {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)
