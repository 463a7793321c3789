"""`sspsim check DIR [--json] [--theorem NAME]`: exit 0 nothing violated, 1 something violated,
2 unreadable input with one `sspsim: error:` line (DESIGN §Command line)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sspsim
from sspsim.cli import main
from sspsim.problems import make_problem
from sspsim.proofs_check import CATALOGUE
from sspsim.proofs_check.ho2013 import theorem_step

KEYS = {"theorem", "outcome", "measured", "bound", "reference"}


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def ho_config(clocks: int = 20) -> sspsim.Config:
    """Logistic regression under Ho et al.'s Theorem 1: eta_t = sigma / sqrt(t) with
    sigma = F / (L sqrt(2 (s+1) P)), s = 2, P = 4, audit log on."""
    raw = {
        "run": {"clocks": clocks, "seed": 0, "audit": True},
        "problem": {"kind": "logistic", "dim": 5, "samples": 400, "batch_size": 4},
        "optimizer": {"schedule": "inv_sqrt"},
        "consistency": {"staleness": 2, "read_policy": "eager"},
        "workers": {"count": 4, "speed": {"kind": "exponential", "mean": 1.0}},
    }
    cfg = sspsim.config_from_dict(raw)
    raw["optimizer"]["lr"] = theorem_step(cfg, make_problem(cfg.problem, cfg.problem_seed).constants().diameter)
    return sspsim.config_from_dict(raw)


@pytest.fixture(scope="module")
def ho_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = sspsim.simulate(ho_config(), tmp_path_factory.mktemp("ho") / "run")
    assert run.path is not None
    return run.path


@pytest.fixture
def run_copy(tmp_path: Path, ho_run: Path) -> Path:
    """A private copy of the honest run, to doctor."""
    return Path(shutil.copytree(ho_run, tmp_path / "run"))


def test_honest_run_exits_0(ho_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An honest run: exit 0, a table on stdout, nothing on stderr."""
    code, out, err = _cli(["check", str(ho_run)], capsys)
    assert code == 0, out + err
    assert "ssp.I1_gate" in out and "violated" not in out.replace("0 violated", "")
    assert err == ""


def test_json_lists_numeric_verdicts_of_at_least_8_theorems(ho_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints a list of objects with theorem/outcome/measured/bound/reference; on the
    Ho-step logistic run at least 8 distinct theorems hold with a numeric measured and bound."""
    code, out, err = _cli(["check", str(ho_run), "--json"], capsys)
    assert code == 0, err
    verdicts = json.loads(out)
    assert isinstance(verdicts, list) and len(verdicts) == len(CATALOGUE)
    for v in verdicts:
        assert isinstance(v, dict) and KEYS <= set(v), v
        assert v["outcome"] in ("holds", "violated", "not_applicable")
        assert isinstance(v["reference"], str) and v["reference"]
    numeric = {
        v["theorem"] for v in verdicts
        if v["outcome"] == "holds" and all(isinstance(v[k], (int, float)) and math.isfinite(v[k]) for k in ("measured", "bound"))
    }
    assert len(numeric) >= 8, numeric
    assert {"ho2013.regret", "ho2013.regret_rate", "ssp.I5_replay"} <= numeric  # Theorem 1 applies; I5 used the audit log
    assert not [v for v in verdicts if v["outcome"] == "violated"]


def test_far_staler_iteration_exits_1(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A trace doctored so one iteration is far staler than s: exit 1, and --json says which."""
    trace = pd.read_csv(run_copy / "trace.csv")
    r = trace.index[trace.clock >= 10][0]
    trace.loc[r, ["visible_clock", "staleness"]] = [0, trace.loc[r, "clock"] - 1]
    trace.to_csv(run_copy / "trace.csv", index=False)
    code, out, _ = _cli(["check", str(run_copy)], capsys)
    assert code == 1
    code, out, _ = _cli(["check", str(run_copy), "--json"], capsys)
    assert code == 1
    violated = {v["theorem"] for v in json.loads(out) if v["outcome"] == "violated"}
    assert "ssp.I2_read_guarantee" in violated


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4000))


def _edit(fn):  # type: ignore[no-untyped-def]
    def apply(path: Path) -> None:
        trace = pd.read_csv(path)
        fn(trace).to_csv(path, index=False)
    return apply


def _set(col: str, value: object, row: int = 3):  # type: ignore[no-untyped-def]
    def fn(trace: pd.DataFrame) -> pd.DataFrame:
        trace[col] = trace[col].astype(object)
        trace.loc[row, col] = value
        return trace
    return fn


UNREADABLE = {
    "garbage bytes": _garbage,
    "empty file": lambda p: p.write_text(""),
    "header only": lambda p: p.write_text(p.read_text().splitlines()[0] + "\n"),
    "missing clock column": _edit(lambda t: t.drop(columns=["clock"])),
    "missing commit_time column": _edit(lambda t: t.drop(columns=["commit_time"])),
    "non-numeric start_time": _edit(_set("start_time", "soon")),
    "non-numeric worker": _edit(_set("worker", "w1")),
    "non-integer clock": _edit(_set("clock", 2.5)),
    "empty visible_clock": _edit(_set("visible_clock", np.nan)),
    "worker out of range": _edit(_set("worker", 9)),
    "clock 0": _edit(_set("clock", 0, row=0)),
    "infinite commit_time": _edit(_set("commit_time", np.inf)),
}


@pytest.mark.parametrize("damage", list(UNREADABLE), ids=list(UNREADABLE))
def test_unreadable_trace_exits_2_with_one_error_line(run_copy: Path, damage: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A trace that cannot be read (garbage, missing required column, non-numeric, ...): exit 2
    and exactly one stderr line, starting "sspsim: error:"."""
    UNREADABLE[damage](run_copy / "trace.csv")
    code, out, err = _cli(["check", str(run_copy)], capsys)
    assert code == 2, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sspsim: error:"), err
    assert "trace.csv" in lines[0]


def test_unreadable_trace_in_a_fresh_process(run_copy: Path) -> None:
    """The same through the console entry point: exit status 2, one line, no traceback."""
    _garbage(run_copy / "trace.csv")
    proc = subprocess.run([sys.executable, "-m", "sspsim", "check", str(run_copy)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("sspsim: error:"), proc.stderr


@pytest.mark.parametrize("damage", ["run.json garbage", "run.json missing"])
def test_unreadable_run_json_exits_2(run_copy: Path, damage: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A run.json that is not JSON, or a folder without one (and no run sub-folders): exit 2."""
    if damage == "run.json garbage":
        (run_copy / "run.json").write_text("{not json")
    else:
        (run_copy / "run.json").unlink()
    code, _, err = _cli(["check", str(run_copy)], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("sspsim: error:"), err


@pytest.mark.parametrize("fmt", ["sspsim-run/2", None])
def test_run_json_of_another_format_exits_2(run_copy: Path, fmt: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    """check reads through the one reader, which refuses a run.json whose format is missing or of another major version."""
    meta = json.loads((run_copy / "run.json").read_text())
    meta["format"] = fmt
    (run_copy / "run.json").write_text(json.dumps(meta))
    code, _, err = _cli(["check", str(run_copy)], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and "run.json format" in err and "sspsim-run/1" in err, err


def test_trace_disagreeing_with_audit_log_gives_a_verdict_or_exit_2(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A trace with one row removed beside an intact audit.npz: a verdict (exit 1, I0) or exit 2, never a traceback."""
    trace = pd.read_csv(run_copy / "trace.csv")
    trace.drop(index=5).to_csv(run_copy / "trace.csv", index=False)
    proc = subprocess.run([sys.executable, "-m", "sspsim", "check", str(run_copy)], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (1, 2)


def test_missing_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(["check", str(tmp_path / "nowhere")], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("sspsim: error:") and "nowhere" in err


SWEEP_CONFIG = """
[run]
clocks = 8
[problem]
kind = "least_squares"
dim = 4
samples = 60
batch_size = 4
[consistency]
staleness = 1
read_policy = "push"
[workers]
count = 3
speed = { kind = "lognormal", mean = 1.0, sigma = 0.5 }
"""


def test_sweep_directory_checks_every_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sspsim sweep ... --grid run.seed=0,1` then `sspsim check SWEEP`: every run is checked, exit 0."""
    (tmp_path / "c.toml").write_text(SWEEP_CONFIG)
    code, _, err = _cli(["sweep", str(tmp_path / "c.toml"), "--grid", "run.seed=0,1", "--out", str(tmp_path / "sweep"), "-q"], capsys)
    assert code == 0, err
    code, out, err = _cli(["check", str(tmp_path / "sweep"), "--json"], capsys)
    assert code == 0, err
    verdicts = json.loads(out)
    sweep = str(tmp_path / "sweep")
    assert all(v["run"] == sweep for v in verdicts if v["n_runs"] > 1)  # sweep-scope theorems, if any
    runs = {v["run"] for v in verdicts if v["n_runs"] == 1}
    assert len(runs) == 2 and all(Path(r).parent == tmp_path / "sweep" for r in runs)
    run_scope = [t.name for t in CATALOGUE if t.scope == "run"]
    for run in runs:
        assert sorted(v["theorem"] for v in verdicts if v["run"] == run) == sorted(run_scope)
    assert not [v for v in verdicts if v["outcome"] == "violated"]
    code, out, _ = _cli(["check", str(tmp_path / "sweep")], capsys)
    assert code == 0


def test_theorem_prefix_selects_only_those(ho_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--theorem ho2013 checks only Ho et al. 2013's statements; repeating --theorem adds more."""
    code, out, _ = _cli(["check", str(ho_run), "--json", "--theorem", "ho2013"], capsys)
    assert code == 0
    names = [v["theorem"] for v in json.loads(out)]
    assert names and all(n.startswith("ho2013.") for n in names)
    assert sorted(names) == sorted(t.name for t in CATALOGUE if t.name.startswith("ho2013"))
    code, out, _ = _cli(["check", str(ho_run), "--json", "--theorem", "ssp.I1_gate", "--theorem", "ho2013.regret"], capsys)
    assert code == 0
    assert {v["theorem"] for v in json.loads(out)} == {"ssp.I1_gate", "ho2013.regret", "ho2013.regret_rate"}


def test_theorem_selection_decides_the_exit_code(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A violation outside the selected theorems does not fail the check."""
    trace = pd.read_csv(run_copy / "trace.csv")
    r = trace.index[trace.clock >= 10][0]
    trace.loc[r, ["visible_clock", "staleness"]] = [0, trace.loc[r, "clock"] - 1]
    trace.to_csv(run_copy / "trace.csv", index=False)
    assert _cli(["check", str(run_copy), "--theorem", "ssp.I2"], capsys)[0] == 1
    assert _cli(["check", str(run_copy), "--theorem", "ssp.I0"], capsys)[0] == 0


def test_unknown_theorem_exits_2(ho_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(["check", str(ho_run), "--theorem", "nosuch.theorem"], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("sspsim: error:") and "nosuch.theorem" in err


def test_list_prints_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(["check", "unused", "--list"], capsys)
    assert code == 0
    for t in CATALOGUE:
        assert t.name in out
