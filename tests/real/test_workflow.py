"""Simulate-then-deploy: calibrate on this machine, simulate the calibrated config, compare with
the real run.

The default test compares the prediction with the calibration's own profile run, a full deploy
of the config (``--clocks`` = ``run.clocks``): the costs are measured under exactly the load the
run had, so the test holds on a busy machine and still fails when the simulator misses what the
real backend does (before the start barrier, the push's receive time and the sleep overshoot
were modelled, the wait fraction of this very run was off by 40 %).  The slow test predicts
runs that calibration did not see: three deploys after it, compared through their median.  It
measures the machine as much as the simulator (a load that changes between calibration and the
deploys moves every timing metric), so it runs only when asked:

    SSPSIM_FIDELITY=1 PYTHONPATH=$PWD .venv/bin/python -m pytest -n 0 -m slow tests/real/test_workflow.py

``benchmarks/fidelity.py`` runs the same for several configurations and prints the table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("torch")

import sspsim
from sspsim.comparison import TIMING_METRICS, compare_runs
from sspsim.real.calibrate import replay_config

MAX_TIMING_ERROR = 0.10
PROFILED_ERROR = 0.20  # measured under a load average of 15-22 on 2 cores: up to 7 % (iteration), 13 % (throughput)

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
    """calibrate (its profile run is a full deploy of the config: ``real``) -> simulate (``sim``)."""
    root = tmp_path_factory.mktemp("workflow")
    (root / "cfg.toml").write_text(CONFIG)
    for args in (
        ("calibrate", str(root / "cfg.toml"), "--out", str(root / "cal.toml"), "--clocks", "60", "--workdir",
         str(root / "profile"), "-q"),
        ("simulate", str(root / "cal.toml"), "--out", str(root / "sim"), "-q"),
    ):
        proc = _sspsim(*args)
        assert proc.returncode == 0, proc.stderr
    (root / "real").symlink_to(root / "profile" / "profile")
    return root


def test_calibrated_config_keeps_the_experiment_and_adds_the_measurements(workflow: Path) -> None:
    """The calibrated config: the same workers, speeds and stragglers, plus compute, network and server costs."""
    cal = tomllib.loads((workflow / "cal.toml").read_text())
    original = sspsim.load_config(workflow / "cfg.toml")
    config = sspsim.load_config(workflow / "cal.toml")
    assert config.workers.speed == original.workers.speed and config.workers.stragglers == original.workers.stragglers
    assert config.workers.compute.kind == "empirical" and len(config.workers.compute.samples) == 3 * 59  # clock 1 apart
    assert config.network.latency > 0 and config.network.apply_time > 0 and config.network.message_bytes > 0
    assert config.network.serve_time > 0  # the server's time to send one read
    assert config.network.receive_time >= 0 and config.workers.warmup >= 0  # 0 when the load made later iterations slower
    facts = cal["calibration"]
    assert facts["compute"]["n"] == 3 * 59 and "ks" in facts["compute"]["lognormal"]
    assert len(facts["pull_seconds"]) == 3 and facts["startup_time"] > 0
    assert facts["push_seconds"] >= facts["receive_time"] and facts["warmup"] == config.workers.warmup
    assert facts["server_apply_per_push"] == config.network.apply_time and facts["server_send_per_read"] == config.network.serve_time
    assert facts["server_busy_per_push"] > config.network.apply_time  # applying, then sending the reads it let through


def test_simulator_replays_the_measured_run(workflow: Path) -> None:
    """The simulator's mechanics, whatever the load: the real run's own iterations replayed
    (``replay_config``) give its iteration time, throughput and time to target within 10 %.

    The wait fraction is held to 20 %: the replay sends each read in the run's mean send time
    (``serve_time``), while a real send's time varies with the load (on a quiet machine the
    replay's wait fraction is within 2 %; it was 7-15 % off under load before the simulator
    queued reads at the server)."""
    config = replay_config(sspsim.load_config(workflow / "cal.toml"), sspsim.read_run(workflow / "real"))
    result = compare_runs(sspsim.simulate(config, workflow / "replay"), workflow / "real")
    errors = {m.name: m.error for m in result.metrics}
    assert all(errors[m] is not None for m in TIMING_METRICS), errors  # the target is reached in both
    for name in ("mean_iteration_time", "throughput", "time_to_target"):
        assert errors[name] <= MAX_TIMING_ERROR, result.to_dict()
    assert errors["wait_fraction"] <= 0.20, result.to_dict()


def test_prediction_of_the_profiled_run(workflow: Path) -> None:
    """calibrate -> simulate -> compare with the run calibration measured (resampled costs, not the
    replayed ones): iteration time and throughput within PROFILED_ERROR.

    The wait fraction and the time to target are held by the replay above and by the opt-in test
    below, not here: on a shared machine the load changes *within* a run (its first half fast,
    its second slow), which moves the time to target of the very run calibration measured by up
    to 43 % while a prediction from resampled costs spreads the load evenly."""
    result = compare_runs(workflow / "sim", workflow / "real")
    errors = {m.name: m.error for m in result.metrics}
    assert set(errors) == {"mean_iteration_time", "wait_fraction", "mean_staleness", "time_to_target", "throughput",
                           "final_objective"}
    assert not any(m.by_construction for m in result.metrics)  # eager reads: every metric is a prediction
    assert all(errors[m] is not None for m in TIMING_METRICS), errors  # the target is reached in both
    assert errors["mean_iteration_time"] <= PROFILED_ERROR and errors["throughput"] <= PROFILED_ERROR, result.to_dict()


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SSPSIM_FIDELITY"), reason="a measurement of this machine: SSPSIM_FIDELITY=1")
def test_prediction_of_three_later_runs_within_10_percent(workflow: Path) -> None:
    """The same prediction against three deploys after calibration (runs it did not see), through
    their median: every timing metric within 10 %, or within the real runs' own spread."""
    reals = []
    for i in range(3):
        proc = _sspsim("deploy", str(workflow / "cfg.toml"), "--out", str(workflow / f"later{i}"), "-q")
        assert proc.returncode == 0, proc.stderr
        reals.append(workflow / f"later{i}")
    result = compare_runs(workflow / "sim", *reals)
    for m in result.metrics:
        if m.timing and m.error is not None:
            assert m.error <= max(MAX_TIMING_ERROR, m.spread or 0.0), result.to_dict()


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
