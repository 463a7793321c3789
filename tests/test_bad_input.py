"""Reproducers of issue 9 (items 4 and 7): input that once gave a traceback, exit 0 or exit 1
now gives one line naming the field and exit 2, with no output written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sspsim
from tests.cli_harness import BASE_CONFIG, run_cli

HUGE_INT = "9" * 401  # 10**401 - 1: beyond the float range
HIDDEN = 1099511627776  # 2**40 units in one layer


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small valid config file."""
    path = tmp_path_factory.mktemp("cfg") / "base.toml"
    path.write_text(BASE_CONFIG)
    return path


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory, base: Path) -> Path:
    """A complete run directory of the base config."""
    out = tmp_path_factory.mktemp("runs") / "good"
    sspsim.simulate(sspsim.load_config(base), out)
    return out


def _one_line_exit_2(argv: list[str], *must_name: str, out: Path | None = None) -> str:
    """Run the CLI in-process: exit 2, exactly one stderr line naming ``must_name``, ``out`` not created."""
    code, _, err = run_cli(argv)
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("sspsim: error: "), err
    for name in must_name:
        assert name in lines[0], (name, lines[0])
    if out is not None:
        assert not out.exists()
    return lines[0]


@pytest.mark.parametrize(
    ("sets", "field"),
    [
        ([f"optimizer.lr={HUGE_INT}"], "optimizer.lr"),  # OverflowError
        (["problem.dim=" + "9" * 30], "problem.dim"),  # numpy: maximum dimension exceeded
        (["problem.kind=timit_like", f"problem.hidden=[{HIDDEN}]"], "problem.hidden"),  # MemoryError
        (['workers.speed={kind="lognormal", mean=1.0, sigma=1e300}'], "workers.speed.sigma"),  # OverflowError
        (["workers.count=1000000", "run.clocks=200"], "workers.count"),  # allocates until memory runs out
        (["run.clocks=1000000000"], "run.clocks"),
        (["run.audit=true", "problem.dim=5000", "run.clocks=100000"], "run.audit"),
        (['workers.speed={kind="exponential", mean=1e307}', 'workers.stragglers=[{worker=0, slowdown=1e300}]'],
         "workers.speed"),  # times overflow to inf
        (["run.seed=" + "[" * 1000 + "]" * 1000], "--set"),  # RecursionError
        (["run.seed=" + "7" * 5000], "--set"),  # ValueError: past Python's integer digit limit
        ([f'workers.speed={{kind="empirical", samples=[1.0, {HUGE_INT}]}}'], "workers.speed.samples"),
    ],
)
def test_set_values_give_one_line(base: Path, tmp_path: Path, sets: list[str], field: str) -> None:
    out = tmp_path / "run"
    argv = ["simulate", str(base), "--out", str(out), "-q"]
    for s in sets:
        argv += ["--set", s]
    _one_line_exit_2(argv, field, out=out)


def test_a_transient_longer_than_the_run_completes(base: Path, tmp_path: Path) -> None:
    """A transient slowdown of 10^12 clocks used to allocate a 10^12 kernel; it lasts the run."""
    out = tmp_path / "run"
    code, _, err = run_cli(["simulate", str(base), "--out", str(out), "-q",
                            "--set", "workers.transient={probability=0.5, factor=2.0, duration=1000000000000}"])
    assert code == 0, err
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_toml_nested_1000_deep(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 1000 + "]" * 1000 + "\n")
    line = _one_line_exit_2(["simulate", str(deep), "--out", str(tmp_path / "run")], "config", out=tmp_path / "run")
    assert "nested too deeply" in line


def test_toml_with_an_integer_past_the_digit_limit(tmp_path: Path) -> None:
    cfg = tmp_path / "big.toml"
    cfg.write_text("[run]\nseed = " + "1" * 5000 + "\n")
    _one_line_exit_2(["simulate", str(cfg), "--out", str(tmp_path / "run")], "config", out=tmp_path / "run")


@pytest.mark.parametrize(
    ("content", "rule"),
    [(b"1.0,2.0,\xff\xfe,3.0\n", "UTF-8"), (b"1" * 200_000 + b"\n", "CSV")],
    ids=["non-utf8", "huge-cell"],
)
def test_speed_trace_csv_unreadable(base: Path, tmp_path: Path, content: bytes, rule: str) -> None:
    csv = tmp_path / "times.csv"
    csv.write_bytes(content)
    out = tmp_path / "run"
    line = _one_line_exit_2(["simulate", str(base), "--out", str(out), "-q",
                             "--set", f'workers.speed={{kind="trace", file="{csv}"}}'], "workers.speed.file", out=out)
    assert rule in line


def test_out_name_over_255_bytes(base: Path, tmp_path: Path) -> None:
    out = tmp_path / ("x" * 300)
    _one_line_exit_2(["simulate", str(base), "--out", str(out), "-q"], "--out")
    assert list(tmp_path.iterdir()) == []


def test_sweep_refuses_a_point_too_large_before_running_any(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    _one_line_exit_2(["sweep", str(base), "--out", str(out), "-q", "--grid", "run.clocks=5,1000000000"],
                     "run.clocks", out=out)


def _copy(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def _edit_meta(run: Path, **changes: object) -> None:
    meta = json.loads((run / "run.json").read_text())
    for key, value in changes.items():
        if value is _DROP:
            del meta[key]
        else:
            meta[key] = value
    (run / "run.json").write_text(json.dumps(meta))


_DROP = object()


def _set_trace_cell(run: Path, column: str, value: str) -> None:
    lines = (run / "trace.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index(column)] = value
    lines[1] = ",".join(row)
    (run / "trace.csv").write_text("\n".join(lines) + "\n")


def test_report_on_a_trace_with_worker_10_to_the_23(good_run: Path, tmp_path: Path) -> None:
    run = _copy(good_run, tmp_path / "run")
    _set_trace_cell(run, "worker", str(10**23))
    out = tmp_path / "r.html"
    _one_line_exit_2(["report", str(run), "-o", str(out)], "worker", out=out)


def test_report_on_a_trace_of_random_bytes(good_run: Path, tmp_path: Path) -> None:
    """Random bytes in trace.csv: a report without the trace's figures, or one line; never a traceback."""
    run = _copy(good_run, tmp_path / "run")
    (run / "trace.csv").write_bytes(bytes(range(256)) * 8)
    out = tmp_path / "r.html"
    code, _, err = run_cli(["report", str(run), "-o", str(out)])
    assert code in (0, 2), err
    assert (code == 0) == out.is_file()
    assert len(err.strip().splitlines()) == (code == 2)


def test_report_into_proc(good_run: Path) -> None:
    _one_line_exit_2(["report", str(good_run), "-o", "/proc/x.html"], "-o")


@pytest.mark.parametrize(("change", "name"), [({"config": None}, "config"), ({"summary": _DROP}, "summary")],
                         ids=["config-null", "no-summary"])
def test_compare_on_a_broken_run_json(good_run: Path, tmp_path: Path, change: dict, name: str) -> None:
    run = _copy(good_run, tmp_path / "run")
    _edit_meta(run, **change)
    _one_line_exit_2(["compare", str(good_run), str(run)], name)


@pytest.mark.parametrize("case", ["trace-missing", "trace-is-a-folder", "incomplete"])
def test_check_refuses(good_run: Path, tmp_path: Path, case: str) -> None:
    """check used to exit 0 on these."""
    run = _copy(good_run, tmp_path / "run")
    if case != "incomplete":
        (run / "trace.csv").unlink()
    if case == "trace-is-a-folder":
        (run / "trace.csv").mkdir()
    if case == "incomplete":
        _edit_meta(run, status="incomplete", reason="worker 2 sent nothing for 3 s")
    line = _one_line_exit_2(["check", str(run)], str(run))
    assert ("trace.csv" in line) != (case == "incomplete")


def test_compare_json_into_a_closed_pipe(good_run: Path) -> None:
    """``sspsim compare --json | head -c 1``: no BrokenPipeError, exit 0."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = (f"{sys.executable} -m sspsim compare {good_run} {good_run} --json | head -c 1 >/dev/null; "
           "exit ${PIPESTATUS[0]}")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


@pytest.mark.parametrize("value", ["inf", "nan", "1.5"])
def test_check_on_a_trace_with_a_non_integer_clock_value(good_run: Path, tmp_path: Path, value: str) -> None:
    """inf in an integer column made numpy warn (a second line; an error under pytest's filter)."""
    run = _copy(good_run, tmp_path / "run")
    _set_trace_cell(run, "staleness", value)
    _one_line_exit_2(["check", str(run)], "staleness")


def test_the_memory_budget_names_the_largest_part() -> None:
    """check_memory: the estimate grows with P x T and the data; refused above ``available``, naming the fields."""
    from sspsim.budget import check_memory, estimate

    small = sspsim.config_from_dict({"run": {"clocks": 10}, "workers": {"count": 2}})
    big = small.replace(run=sspsim.RunConfig(clocks=10_000))
    assert check_memory(big, available=1 << 40) > check_memory(small, available=1 << 40)
    with pytest.raises(sspsim.ConfigError, match=r"workers\.count x run\.clocks = '2 x 10000'.*available"):
        check_memory(big, available=check_memory(big, available=1 << 40) - 1)
    wide = small.replace(problem=sspsim.ProblemConfig(kind="least_squares", dim=10_000, samples=10))
    assert estimate(wide)[0].fields == ("problem.dim",)  # its spectrum, d x d, outweighs the rest
    assert check_memory(big, copies=3, available=1 << 40) == 3 * check_memory(big, available=1 << 40)


def test_check_on_a_run_json_whose_problem_cannot_fit(good_run: Path, tmp_path: Path) -> None:
    """The checks replay the run's problem: problem.dim = 10**30 in run.json used to reach numpy."""
    run = _copy(good_run, tmp_path / "run")
    meta = json.loads((run / "run.json").read_text())
    meta["config"]["problem"]["dim"] = 10**30
    (run / "run.json").write_text(json.dumps(meta))
    _one_line_exit_2(["check", str(run)], "problem.dim")


def test_a_minibatch_that_cannot_fit(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _one_line_exit_2(["simulate", str(base), "--out", str(out), "-q", "--set", "problem.batch_size=" + "9" * 20],
                     "problem.batch_size", out=out)
