"""The DataFrame API for notebooks: sweep, read_sweep, check, compare, and how a run displays."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import sspsim
from sspsim.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _config() -> sspsim.Config:
    return sspsim.config_from_dict({
        "run": {"clocks": 12}, "problem": {"kind": "logistic", "samples": 200},
        "workers": {"count": 3}, "consistency": {"staleness": 1}})


def test_sweep_returns_a_tidy_frame_with_typed_grid_columns(tmp_path: Path) -> None:
    frame = sspsim.sweep(_config(), {"consistency.staleness": [0, 2, "inf"], "workers.count": [2, 3]}, tmp_path / "s")
    assert len(frame) == 6 and list(frame["run"]) == [r["path"] for r in json.loads((tmp_path / "s" / "sweep.json").read_text())["runs"]]
    assert frame["consistency.staleness"].tolist() == [0, 0, 2, 2, math.inf, math.inf]
    assert frame["workers.count"].tolist() == [2, 3, 2, 3, 2, 3]
    assert pd.api.types.is_float_dtype(frame["consistency.staleness"]) and pd.api.types.is_integer_dtype(frame["workers.count"])
    assert {"time_per_clock", "wait_fraction", "max_staleness"} <= set(frame.columns)
    # max staleness never exceeds the grid's bound: the frame is usable as is
    bounded = frame[frame["consistency.staleness"] < math.inf]
    assert (bounded["max_staleness"] <= bounded["consistency.staleness"]).all()
    # the same as the command line's sweep, read back
    assert main(["sweep", str(ROOT / "examples" / "design.toml"), "--grid", "consistency.staleness=0,inf",
                 "--set", "run.clocks=10", "--set", "problem.samples=200", "--out", str(tmp_path / "cli"), "-q"]) == 0
    cli = sspsim.read_sweep(tmp_path / "cli")
    assert cli["consistency.staleness"].tolist() == [0, math.inf]


def test_check_and_compare_as_values(tmp_path: Path) -> None:
    a = sspsim.simulate(_config(), tmp_path / "a")
    b = sspsim.simulate(_config().replace(run=sspsim.RunConfig(clocks=12, seed=1)), tmp_path / "b")
    verdicts = sspsim.check(a)
    assert {"theorem", "outcome", "measured", "bound"} <= set(verdicts.columns)
    assert "ssp.I1_gate" in set(verdicts["theorem"]) and "violated" not in set(verdicts["outcome"])
    assert sspsim.check(tmp_path / "a").equals(verdicts)
    result = sspsim.compare(a, b)
    assert result.max_timing_error is not None and result.max_timing_error > 0
    with pytest.raises(sspsim.InputError, match="has no run directory"):
        sspsim.check(sspsim.simulate(_config()))


def test_a_run_displays_as_a_summary_table(tmp_path: Path) -> None:
    run = sspsim.simulate(_config(), tmp_path / "a")
    html = run._repr_html_()
    assert html.startswith("<table>") and "time per clock" in html and "staleness" in html and str(tmp_path) in html
