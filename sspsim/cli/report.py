"""``sspsim report DIR... -o FILE.html [--title T] [--pair SIM REAL]...``: one self-contained HTML report.

DIRs are run directories or sweep directories (folders of run directories).  The figures are
embedded in the HTML and also written beside it, in ``<FILE stem>_files/`` (PNG, SVG and PDF).
Each real run is compared with its prediction as ``sspsim compare`` would be (a calibrated
simulation of the same experiment first); ``--pair SIM REAL`` chooses the pairs.  The ``reports``
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
    p.add_argument("--pair", nargs=2, action="append", type=Path, metavar=("SIM", "REAL"), default=None,
                   help="compare the simulated run SIM with the real run REAL (both among the DIRs' runs; "
                        "repeatable); default: each real run with its calibrated simulation, as compare pairs them")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Build the report; print where it is and how many figures it holds.  Bad input raises InputError."""
    for d in args.dirs:
        if not Path(d).exists():
            raise InputError("DIR", str(d), "not found")
    if args.out.suffix.lower() not in (".html", ".htm"):
        raise InputError("-o", str(args.out), "must name an .html file")
    for pair in args.pair or ():
        for d, role in zip(pair, ("SIM", "REAL")):
            if not Path(d).is_dir():
                raise InputError("--pair", str(d), f"{role} is not a run directory (not found)")
    from sspsim.outdir import check_file

    check_file(args.out, force=args.force, option="-o")
    _check_writable(args.out)
    try:
        from sspsim.reports.build import check_figures_folder, make_report
    except ImportError as exc:  # pragma: no cover - the reports extra is not installed
        raise InputError("report", MISSING, f"needs the reports extra (pip install 'sspsim[reports]'): {exc}") from None
    check_figures_folder(args.out)
    pairs = [(sim, real) for sim, real in args.pair] if args.pair else None
    report = make_report(args.dirs, args.out, title=args.title, pairs=pairs)
    print(f"report: {report.path}")
    print(f"figures: {len(report.figures)}, each as PNG, SVG and PDF in "
          f"{report.path.with_name(report.path.stem + '_files')}")
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
