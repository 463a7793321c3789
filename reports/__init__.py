"""Reports: one self-contained HTML file from run directories or sweeps (seaborn figures inside).

``reports`` is the only package that imports seaborn and matplotlib (DESIGN §Layout); the core
never imports it.  Users reach it through ``sspsim report DIR... -o FILE.html`` or
:func:`build_report`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_report", "kumar_section", "make_report"]


def __getattr__(name: str) -> Any:
    if name in ("build_report", "make_report"):
        from sspsim.reports import build

        return getattr(build, name)
    if name == "kumar_section":
        from sspsim.reports.kumar2015 import kumar_section

        return kumar_section
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
