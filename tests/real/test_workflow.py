"""Simulate-then-deploy: calibrate on this machine, simulate the calibrated config, deploy the
original, compare.  The prediction must land within 15 % (geometric mean of the errors)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("torch")

import sspsim
from sspsim.comparison import compare_runs

CONFIG = """
[run]
clocks = 60
target = 1.0
[problem]
kind = "mlp"
hidden = [16]
[optimizer]
lr = 0.1
schedule = "constant"
[consistency]
staleness = 2
[workers]
count = 3
speed = { kind = "exponential", mean = 0.015 }
stragglers = [ { worker = 0, slowdown = 2.0 } ]
"""


def _sspsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sspsim", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workflow")
    (root / "cfg.toml").write_text(CONFIG)
    for args in (
        ("calibrate", str(root / "cfg.toml"), "--out", str(root / "cal.toml"), "--clocks", "20", "-q"),
        ("simulate", str(root / "cal.toml"), "--out", str(root / "sim"), "-q"),
        ("deploy", str(root / "cfg.toml"), "--out", str(root / "real"), "-q"),
    ):
        proc = _sspsim(*args)
        assert proc.returncode == 0, proc.stderr
    return root


def test_calibrated_config_keeps_the_experiment_and_adds_the_measurements(workflow: Path) -> None:
    """The calibrated config: the same workers, speeds and stragglers, plus compute, network and server costs."""
    cal = tomllib.loads((workflow / "cal.toml").read_text())
    original = sspsim.load_config(workflow / "cfg.toml")
    config = sspsim.load_config(workflow / "cal.toml")
    assert config.workers.speed == original.workers.speed and config.workers.stragglers == original.workers.stragglers
    assert config.workers.compute.kind == "empirical" and len(config.workers.compute.samples) == 3 * 20
    assert config.network.latency > 0 and config.network.apply_time > 0 and config.network.message_bytes > 0
    facts = cal["calibration"]
    assert facts["compute"]["n"] == 60 and "ks" in facts["compute"]["lognormal"]
    assert len(facts["pull_seconds"]) == 3 and facts["startup_time"] > 0


def test_prediction_within_15_percent(workflow: Path) -> None:
    """calibrate -> simulate -> deploy -> compare: geometric-mean error <= 15 % on this machine."""
    result = compare_runs(workflow / "sim", workflow / "real")
    errors = {m.name: m.error for m in result.metrics}
    assert set(errors) == {"mean_iteration_time", "wait_fraction", "mean_staleness", "time_to_target", "throughput",
                           "final_objective"}
    assert not any(m.by_construction for m in result.metrics)  # eager reads: every metric is a prediction
    assert result.geomean_error is not None and result.geomean_error <= 0.15, result.to_dict()
    assert errors["mean_iteration_time"] <= 0.15


def test_compare_json_shape(workflow: Path) -> None:
    """--json prints {"metrics": [{name, predicted, measured, error}], "geomean_error": x}."""
    proc = _sspsim("compare", str(workflow / "sim"), str(workflow / "real"), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"metrics", "geomean_error", "max_timing_error"} <= set(data)
    assert all({"name", "predicted", "measured", "error"} <= set(m) for m in data["metrics"])


def test_compare_refuses_different_experiments(workflow: Path, tmp_path: Path) -> None:
    """Two runs of different staleness are not a prediction and its measurement: exit 2, one line."""
    sspsim.simulate(sspsim.load_config(workflow / "cal.toml", ["consistency.staleness=0"]), tmp_path / "other")
    proc = _sspsim("compare", str(tmp_path / "other"), str(workflow / "real"))
    assert proc.returncode == 2 and proc.stderr.startswith("sspsim: error: consistency.staleness")


def test_report_pairs_the_real_run_with_the_calibrated_simulation(workflow: Path, tmp_path: Path) -> None:
    """Beside the uncalibrated simulation of cfg.toml, the report compares the real run with the
    calibrated one, and prints what `sspsim compare` prints for that pair."""
    pytest.importorskip("seaborn", reason="the reports extra is not installed")
    from sspsim.reports import make_report

    sspsim.simulate(sspsim.load_config(workflow / "cfg.toml"), tmp_path / "plain")
    report = make_report([tmp_path / "plain", workflow / "sim", workflow / "real"], tmp_path / "r.html", vectors=False)
    section = report.path.read_text().split('id="predicted-measured"')[1].split("</section>")[0]
    assert f"sspsim compare {workflow / 'sim'} {workflow / 'real'}" in section
    assert f"sspsim compare {tmp_path / 'plain'} " not in section
    assert f'<p class="headline">{compare_runs(workflow / "sim", workflow / "real").headline}</p>' in section
