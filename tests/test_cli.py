"""The sspsim command line: simulate, sweep, one module per command, and the exit codes (2 bad input, 3 a bug, 130 Ctrl-C)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pandas as pd
import pytest

import sspsim
from sspsim.cli import COMMANDS, _parser, main
from sspsim.cli import compare as cli_compare

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


# -- the entry point: one module per command, exit codes in one place ------------------------------

def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_is_a_module_with_add_parser_and_run() -> None:
    """Each name in COMMANDS is a module whose parser is registered and dispatches to its own run()."""
    parsers = _subparsers()
    assert list(parsers) == list(COMMANDS)
    assert "DESIGN" not in _parser().format_help()
    assert {"simulate", "sweep", "check", "deploy", "calibrate", "plan", "compare", "demo", "report"} <= set(COMMANDS)
    for name in COMMANDS:
        module = importlib.import_module(f"sspsim.cli.{name}")
        assert parsers[name].get_default("handler") is module.run, name
        assert "DESIGN" not in parsers[name].format_help(), f"sspsim {name} --help cites the design notes"


@pytest.fixture
def crash_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp folder, where crash reports go, is tmp_path/tmp during the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_bug_exits_3_with_one_line_and_saves_the_traceback(
    crash_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unexpected exception prints one line naming it and the traceback file, and exits 3."""
    def broken_handler(args: argparse.Namespace) -> int:
        raise RuntimeError("index out of step\nsecond line")

    monkeypatch.setattr(cli_compare, "run", broken_handler)
    code, out, err = _cli(["compare", "a", "b"], capsys)
    assert code == 3 and out == ""
    [line] = err.splitlines()
    m = re.fullmatch(r"sspsim: internal error \(a bug\): RuntimeError: index out of step second line; "
                     r"traceback saved to (\S+)", line)
    assert m, line
    saved = Path(m.group(1))
    assert saved.parent == crash_dir and saved.name.startswith("sspsim-crash-") and saved.suffix == ".txt"
    text = saved.read_text()
    assert "Traceback (most recent call last)" in text and "in broken_handler" in text
    assert "command: sspsim compare a b" in text


def test_ctrl_c_exits_130_with_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_compare, "run", interrupted)
    code, _, err = _cli(["compare", "a", "b"], capsys)
    assert code == 130
    assert err.splitlines() == ["sspsim: interrupted; unfinished run directories were not written"]


@pytest.fixture
def dead_pipe() -> Iterator[TextIO]:
    """The writing end of a pipe whose reader has gone: writing to it raises BrokenPipeError."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as stream:
        yield stream


def test_closed_stdout_keeps_the_command_exit_code(
    dead_pipe: TextIO, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sspsim ... | head`: output after the reader left is dropped, the command finishes with its own code."""
    finished = []

    def chatty(args: argparse.Namespace) -> int:
        for i in range(10_000):
            print(f"line {i} of a long listing")
        finished.append(True)
        return 1

    monkeypatch.setattr(cli_compare, "run", chatty)
    monkeypatch.setattr(sys, "stdout", dead_pipe)  # here: capsys resets sys.stdout when the test starts
    assert main(["compare", "a", "b"]) == 1
    assert finished and capsys.readouterr().err == ""


def test_compare_json_into_a_closed_pipe(config_file: Path, tmp_path: Path) -> None:
    """`sspsim compare --json A B | head -c 10` with head already gone: exit 0, nothing on stderr."""
    run = tmp_path / "run"
    assert main(["simulate", str(config_file), "--out", str(run), "-q"]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "sspsim", "compare", "--json", str(run), str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the child has imported anything, let alone printed
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert err == ""


@pytest.mark.parametrize("out", ["/proc/x.html", "{config}/x.html"])
def test_report_into_an_unwritable_place_exits_2(
    out: str, config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report -o /proc/x.html` (and a path below a file) is refused in one line, before any plotting."""
    if out.startswith("/proc") and not Path("/proc").is_dir():
        pytest.skip("no /proc on this system")
    run = tmp_path / "run"
    assert main(["simulate", str(config_file), "--out", str(run), "-q"]) == 0
    target = out.format(config=config_file)
    code, _, err = _cli(["report", str(run), "-o", target], capsys)
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith(f"sspsim: error: -o = '{target}': cannot write into {Path(target).parent}")
    assert not Path(f"{Path(target).parent}/x_files").exists()


@pytest.mark.parametrize("content,rule", [
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "is nested too deeply to read"),
    (b"\xff\xfe[run]".decode("latin-1"), "not valid TOML"),
])
def test_unreadable_config_exits_2_with_one_line(
    content: str, rule: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config too deeply nested, or not UTF-8, is bad input: one line naming the file, exit 2."""
    path = tmp_path / "c.toml"
    path.write_bytes(content.encode("latin-1"))
    for command in (["simulate"], ["sweep", "--grid", "run.seed=1,2"], ["plan"]):
        code, _, err = _cli([*command, str(path), "--out", str(tmp_path / "out"), "-q"], capsys)
        assert code == 2, (command, err)
        [line] = err.splitlines()
        assert line.startswith(f"sspsim: error: config = '{path}': {rule}"), line


def test_unreadable_run_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run.json nested too deeply for the JSON reader: one line naming DIR, exit 2 (check and compare)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    for argv in (["check", str(run)], ["compare", str(run), str(run)]):
        code, _, err = _cli(argv, capsys)
        assert code == 2, err
        [line] = err.splitlines()
        assert line.startswith("sspsim: error: ") and "is nested too deeply to read" in line, line


def test_an_os_error_outside_the_readers_exits_2_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An OSError no command turned into InputError still gives one line with the file name, exit 2."""
    def full_disk(args: argparse.Namespace) -> int:
        raise OSError(28, "No space left on device", "/data/run/trace.csv")

    monkeypatch.setattr(cli_compare, "run", full_disk)
    code, _, err = _cli(["compare", "a", "b"], capsys)
    assert code == 2
    assert err.splitlines() == [
        "sspsim: error: file = '/data/run/trace.csv': cannot be read or written (No space left on device)"
    ]
