"""`sspsim demo`: the whole workflow on the embedded default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sspsim.cli import main
from sspsim.rundir import read_run


def test_demo_simulates_checks_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three runs (BSP, SSP, ASP), no violated theorem, a report with at least 4 figures, SSP ahead of BSP."""
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    runs = {name: read_run(tmp_path / name) for name in ("bsp", "ssp", "asp")}
    assert all(r.complete for r in runs.values())
    assert runs["ssp"].summary["time_to_target"] < runs["bsp"].summary["time_to_target"]
    assert runs["ssp"].summary["max_staleness"] == 3 and runs["bsp"].summary["max_staleness"] == 0
    held, violated = map(int, re.search(r"theorem checks: (\d+) hold, (\d+) violated", out).groups())
    assert violated == 0 and held >= 9
    html = (tmp_path / "report.html").read_text()
    figures = list((tmp_path / "report_files").glob("*.png"))
    assert len(figures) >= 4 and html.count("<img") >= 4
    assert f"report: {tmp_path / 'report.html'}" in out
