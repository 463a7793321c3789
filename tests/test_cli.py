"""The sspsim command line: simulate, sweep, and the one-line exit-2 contract for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import sspsim
from sspsim.cli import main

CONFIG = """
[run]
seed = 1
clocks = 6
[problem]
kind = "least_squares"
dim = 4
samples = 50
batch_size = 4
[consistency]
staleness = 1
[workers]
count = 3
speed = { kind = "exponential", mean = 1.0 }
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    return path


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_writes_run_directory(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sspsim simulate` exits 0 and writes run.json, trace.csv and evals.csv."""
    code, out, err = _cli(["simulate", str(config_file), "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    for name in ("run.json", "trace.csv", "evals.csv"):
        assert (tmp_path / "run" / name).is_file()
    run = sspsim.read_run(tmp_path / "run")
    assert run.complete and len(run.trace) == 18
    assert "time per clock" in out


def test_set_and_seed_override_config(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--set and --seed override config keys, and trace = "summary" writes no trace.csv."""
    out_dir = tmp_path / "run"
    code, _, err = _cli(["simulate", str(config_file), "--out", str(out_dir), "-q", "--seed", "9",
                         "--set", "consistency.staleness=inf", "--set", "workers.count=2",
                         "--set", 'run.trace="summary"'], capsys)
    assert code == 0, err
    meta = json.loads((out_dir / "run.json").read_text())
    assert meta["seed"] == 9 and meta["config"]["consistency"]["staleness"] == "inf"
    assert meta["config"]["workers"]["count"] == 2 and meta["summary"]["workers"] == 2
    assert not (out_dir / "trace.csv").exists() and (out_dir / "evals.csv").is_file()


@pytest.mark.parametrize("extra,match", [
    (["--set", "consistency.staleness=-2"], "consistency.staleness = -2: must be an integer >= 0"),
    (["--set", "consistency.staleness"], "--set = 'consistency.staleness': must look like section.key=value"),
    (["--set", "workers.speed={kind=\"gamma\"}"], "workers.speed.kind = 'gamma': must be one of"),
    (["--set", "consistency.read_policy=lazy", "--set", "consistency.staleness=inf"], "consistency.read_policy = 'lazy'"),
    (["--set", "run.clockz=3"], "run.clockz = 3: unknown key; did you mean 'clocks'?"),
    (["--bogus-flag"], "unrecognized arguments: --bogus-flag"),
    (["--seed", "x"], "argument --seed: invalid int value"),
])
def test_bad_input_exits_2_with_one_line(
    extra: list[str], match: str, config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input exits 2 with exactly one stderr line starting 'sspsim: error:' and creates no run directory."""
    out_dir = tmp_path / "run"
    code, _, err = _cli(["simulate", str(config_file), "--out", str(out_dir), "-q", *extra], capsys)
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sspsim: error:")
    assert match in lines[0]
    assert not out_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


def test_missing_config_and_bad_out(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing config file and an --out that is not a run directory both give exit 2 and one line."""
    code, _, err = _cli(["simulate", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("sspsim: error: config = ")
    assert "file not found" in err and not (tmp_path / "run").exists()
    code, _, err = _cli(["simulate", str(config_file), "--out", str(config_file), "-q"], capsys)
    assert code == 2 and err.count("\n") == 1 and "exists and is a file, not a folder" in err
    assert config_file.read_text() == CONFIG


def test_module_entry_point_bad_input(config_file: Path, tmp_path: Path) -> None:
    """`python -m sspsim` with bad input prints one 'sspsim: error:' line, no traceback, and exits 2."""
    proc = subprocess.run(
        [sys.executable, "-m", "sspsim", "simulate", str(config_file), "--out", str(tmp_path / "run"),
         "--set", "workers.stragglers=[{worker=7, slowdown=2.0}]"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "sspsim: error: workers.stragglers[0].worker = 7: must be < workers.count = 3"
    ]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "run").exists()


def test_sweep_grid_jobs(config_file: Path, tmp_path: Path) -> None:
    """`sspsim sweep --grid consistency.staleness=0,inf --jobs 2` writes sweep.json and one run directory per point."""
    out = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "sspsim", "sweep", str(config_file), "--grid", "consistency.staleness=0,inf",
         "--grid", "workers.count=2,3", "--out", str(out), "--jobs", "2", "-q"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    sweep = json.loads((out / "sweep.json").read_text())
    names = [r["name"] for r in sweep["runs"]]
    assert names == ["staleness=0_count=2", "staleness=0_count=3", "staleness=inf_count=2", "staleness=inf_count=3"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted([*names, "sweep.json"])
    for row in sweep["runs"]:
        run = sspsim.read_run(out / row["path"])
        assert run.complete
        assert row["time_per_clock"] == run.summary["time_per_clock"]
        s = 0 if "staleness=0" in row["name"] else float("inf")
        assert run.config.consistency.staleness == s
        assert run.config.workers.count == int(row["name"][-1])
        trace = pd.read_csv(out / row["path"] / "trace.csv")
        assert trace.staleness.max() <= s
    # BSP waits, ASP never does
    by = {r["name"]: r for r in sweep["runs"]}
    assert by["staleness=inf_count=3"]["wait_fraction"] == 0 < by["staleness=0_count=3"]["wait_fraction"]


def test_sweep_bad_grid(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A sweep with an invalid grid value exits 2 before running anything."""
    code, _, err = _cli(["sweep", str(config_file), "--grid", "consistency.staleness=0,-1",
                         "--out", str(tmp_path / "sweep")], capsys)
    assert code == 2 and err.count("\n") == 1 and "consistency.staleness = -1" in err
    assert not (tmp_path / "sweep").exists()


def test_run_sweep_directory_rules(tmp_path: Path) -> None:
    """run_sweep refuses a folder sspsim did not create; re-running over a finished sweep needs force, then replaces it."""
    from sspsim.sim.sweep import expand_grid, run_sweep

    raw = {"run": {"clocks": 3}, "problem": {"kind": "none"}, "workers": {"count": 2}}
    points = expand_grid(raw, tmp_path, ["consistency.staleness=0,2", "workers.speed={kind=\"constant\", value=1},"
                                         "{kind=\"exponential\", mean=2}"])
    assert [p.name for p in points] == ["staleness=0_speed=constant-1", "staleness=0_speed=exponential-2",
                                        "staleness=2_speed=constant-1", "staleness=2_speed=exponential-2"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    with pytest.raises(sspsim.InputError, match="exists and was not created by sspsim"):
        run_sweep(points, mine)
    assert [p.name for p in mine.iterdir()] == ["keep.txt"]
    out = tmp_path / "sweep"
    rows = run_sweep(points, out)
    assert [r["name"] for r in rows] == [p.name for p in points]
    with pytest.raises(sspsim.InputError, match="add --force"):
        run_sweep(points[:1], out)
    assert len(json.loads((out / "sweep.json").read_text())["runs"]) == 4
    run_sweep(points[:1], out, force=True)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted([points[0].name, "sweep.json"])


@pytest.mark.parametrize("grids,match", [
    (["consistency.staleness=0,1", "consistency.staleness=2"], "names the same key twice"),
    (["consistency.staleness=0,,1"], "has an empty value"),
    (["consistency.staleness"], "must look like section.key=v1,v2"),
    (['consistency.staleness=inf,"inf"'], "gives two runs the same name"),
])
def test_expand_grid_rejects(grids: list[str], match: str, tmp_path: Path) -> None:
    """Malformed or ambiguous --grid values raise InputError before anything runs."""
    from sspsim.sim.sweep import expand_grid

    with pytest.raises(sspsim.InputError, match=match):
        expand_grid({"problem": {"kind": "none"}}, tmp_path, grids)
