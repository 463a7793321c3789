"""The ``trace`` speed model's two CSV layouts (issue 12, item 6): wide (one row per worker, one
column per clock) and long (a header; one row per iteration: worker, clock, seconds), which is
also how a run directory's own ``trace.csv`` is replayed."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sspsim
from sspsim.speeds import read_times_layout
from tests.cli_harness import run_cli

TIMES = np.array([[0.5, 1.25, 0.75, 2.0, 0.125], [1.5, 0.25, 1.0, 0.5, 3.0], [0.0625, 0.875, 1.75, 0.375, 1.125]])


def _raw(file: str, *, workers: int = 3, clocks: int = 5, **workers_keys: object) -> dict:
    return {
        "run": {"clocks": clocks, "seed": 4},
        "problem": {"kind": "logistic", "dim": 5, "samples": 200, "batch_size": 8},
        "consistency": {"staleness": 1},
        "workers": {"count": workers, "speed": {"kind": "trace", "file": file}, **workers_keys},
        "network": {"latency": 0.01},
    }


def _wide(times: np.ndarray) -> str:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in times)


def _long(times: np.ndarray, *, seed: int = 0) -> str:
    """A header with the columns in another order and an extra one, then the cells in shuffled order."""
    rows = [f"{c},x{p},{float(times[p, c - 1])!r},{p}\n" for p in range(times.shape[0]) for c in range(1, times.shape[1] + 1)]
    random.Random(seed).shuffle(rows)
    return "# measured on the cluster\nclock,note,seconds,worker\n" + "".join(rows)


def test_long_layout_reads_the_same_matrix(tmp_path: Path) -> None:
    (tmp_path / "wide.csv").write_text(_wide(TIMES))
    (tmp_path / "long.csv").write_text(_long(TIMES))
    wide, wl = read_times_layout(tmp_path / "wide.csv", "f")
    long, ll = read_times_layout(tmp_path / "long.csv", "f")
    assert (wl, ll) == ("wide", "long")
    assert np.array_equal(wide, TIMES) and np.array_equal(long, TIMES)


def test_simulate_with_a_long_csv_equals_the_wide_one_bit_for_bit(tmp_path: Path) -> None:
    (tmp_path / "wide.csv").write_text(_wide(TIMES))
    (tmp_path / "long.csv").write_text(_long(TIMES, seed=3))
    a = sspsim.simulate(sspsim.config_from_dict(_raw("wide.csv"), base_dir=tmp_path))
    b = sspsim.simulate(sspsim.config_from_dict(_raw("long.csv"), base_dir=tmp_path))
    pd.testing.assert_frame_equal(a.trace, b.trace, check_exact=True)
    pd.testing.assert_frame_equal(a.evals, b.evals, check_exact=True)
    assert a.summary["total_time"] == b.summary["total_time"]


def test_a_runs_own_trace_csv_replays_its_compute_times(tmp_path: Path) -> None:
    """Replaying a run's trace.csv (its compute_time column, slowdowns included) with no slowdowns of
    its own gives every iteration the recorded compute time, exactly."""
    (tmp_path / "wide.csv").write_text(_wide(TIMES))
    recorded = tmp_path / "recorded"
    first = _raw("wide.csv", stragglers=[{"worker": 1, "slowdown": 2.5}],
                 transient={"probability": 0.3, "factor": 4.0, "duration": 2})
    sspsim.simulate(sspsim.config_from_dict(first, base_dir=tmp_path), recorded)
    config = sspsim.config_from_dict(_raw("recorded/trace.csv"), base_dir=tmp_path)
    assert config.workers.speed.layout == "long"
    replay = sspsim.simulate(config)
    key = ["worker", "clock"]
    before = sspsim.read_run(recorded).trace.sort_values(key).reset_index(drop=True)
    after = replay.trace.sort_values(key).reset_index(drop=True)
    assert (before.compute_time != TIMES.reshape(-1)).any()  # the slowdowns are in the recorded times
    assert np.array_equal(after.compute_time.to_numpy(), before.compute_time.to_numpy())
    assert np.array_equal(after.commit_time.to_numpy(), before.commit_time.to_numpy())  # same times, same schedule


LONG_HEADER = "worker,clock,seconds\n"
BAD_LONG = [
    ("missing cell", LONG_HEADER + "0,1,1\n0,2,1\n1,1,1\n", r"^t\.csv = 'worker 1 clock 2': missing: a long-format trace"),
    ("missing worker", LONG_HEADER + "0,1,1\n2,1,1\n", r"^t\.csv = 'worker 1 clock 1': missing"),
    ("duplicate", LONG_HEADER + "0,1,1\n1,1,1\n0,1,2\n", r"^t\.csv:4 = 'worker 0 clock 1': appears twice \(first on line 2\)"),
    ("bad number", LONG_HEADER + "0,1,1\n1,1,fast\n", r"^t\.csv:3 = 'column seconds': must be a number of seconds$"),
    ("negative", LONG_HEADER + "0,1,1\n1,1,-0.5\n", r"^t\.csv:3 = 'column seconds': times must be finite and >= 0$"),
    ("infinite", LONG_HEADER + "0,1,inf\n1,1,1\n", r"^t\.csv:2 = 'column seconds': times must be finite and >= 0$"),
    ("fractional worker", LONG_HEADER + "0.5,1,1\n", r"^t\.csv:2 = 'column worker': must be an integer >= 0$"),
    ("clock 0", LONG_HEADER + "0,0,1\n", r"^t\.csv:2 = 'column clock': must be an integer >= 1$"),
    ("short row", LONG_HEADER + "0,1\n", r"^t\.csv:2 = 'column seconds': missing: the row is shorter than the header$"),
    ("no time column", "worker,clock,start_time\n0,1,1\n", r"^t\.csv:1 = 'header': a header row needs columns worker, clock and seconds"),
    ("header only", LONG_HEADER, r"^workers\.speed\.file = .*t\.csv': the CSV holds a header but no rows$"),
    ("fewer workers", LONG_HEADER + "0,1,1\n", r"^workers\.speed\.file = .*: holds workers 0\.\.0 but workers\.count = 2"),
    ("fewer clocks", LONG_HEADER + "0,1,1\n1,1,1\n", r"^workers\.speed\.file = .*: holds clocks 1\.\.1 but run\.clocks = 2"),
]


@pytest.mark.parametrize(("text", "match"), [pytest.param(t, m, id=name) for name, t, m in BAD_LONG])
def test_bad_long_csv_is_one_line_naming_the_file_and_cell(text: str, match: str, tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(sspsim.InputError, match=match) as info:
        sspsim.config_from_dict(_raw("t.csv", workers=2, clocks=2), base_dir=tmp_path)
    assert "\n" not in str(info.value)


def test_a_huge_worker_index_is_refused_without_allocating(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(LONG_HEADER + "0,1,1\n" + f"{10**23},{10**23},1\n")
    with pytest.raises(sspsim.InputError, match=r"^t\.csv = 'worker 1 clock 1': missing"):
        sspsim.config_from_dict(_raw("t.csv", workers=2, clocks=2), base_dir=tmp_path)


def test_simulate_cli_exits_2_on_a_bad_long_csv(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(LONG_HEADER + "0,1,1\n1,1,-1\n")
    config = tmp_path / "c.toml"
    config.write_text('[run]\nclocks = 1\n[problem]\nkind = "none"\n[workers]\ncount = 2\n'
                      'speed = { kind = "trace", file = "t.csv" }\n')
    code, _, err = run_cli(["simulate", str(config), "--out", str(tmp_path / "run"), "-q"])
    assert code == 2 and err.strip() == "sspsim: error: t.csv:3 = 'column seconds': times must be finite and >= 0"
    assert not (tmp_path / "run").exists()
