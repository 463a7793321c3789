"""``deploy --tensorboard`` and ``simulate --tensorboard`` (issue 12, item 6): the same tags from a
real and a simulated run, read back with TensorBoard's own event reader."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import sspsim
from sspsim import tblog
from tests.cli_harness import run_cli

pytest.importorskip("torch")
pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.real.test_deploy import CONFIG  # the fast deploy config: 3 workers, 16 clocks

WORKERS, CLOCKS = 3, 16


def _scalars(logdir: Path) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, value, wall time)] of every scalar under ``logdir``."""
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {tag: [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _expected_tags() -> set[str]:
    per_worker = {tblog.worker_tag(m, p) for m in tblog.PER_WORKER for p in range(WORKERS)}
    return per_worker | {tblog.OBJECTIVE, tblog.THROUGHPUT}


def _check_against_trace(scalars: dict[str, list[tuple[int, float, float]]], run_dir: Path) -> None:
    """Every per-worker scalar is the run's trace.csv at that clock (float32 in the event file)."""
    run = sspsim.read_run(run_dir)
    trace = run.trace.sort_values(["worker", "clock"])
    assert set(scalars) == _expected_tags()
    for p in range(WORKERS):
        rows = trace[trace.worker == p]
        commit = rows.commit_time.to_numpy()
        expected = {
            tblog.ITERATION_TIME: np.diff(commit, prepend=0.0),
            tblog.WAIT_TIME: rows.wait_time.to_numpy(),
            tblog.STALENESS: rows.staleness.to_numpy(dtype=float),
        }
        for metric, values in expected.items():
            got = scalars[tblog.worker_tag(metric, p)]
            assert [s for s, _, _ in got] == list(range(1, CLOCKS + 1))
            np.testing.assert_allclose([v for _, v, _ in got], values, rtol=1e-6, atol=1e-7)
    assert [s for s, _, _ in scalars[tblog.THROUGHPUT]] == list(range(1, CLOCKS + 1))
    last = scalars[tblog.THROUGHPUT][-1][1]
    assert last == pytest.approx(WORKERS * CLOCKS / run.trace.commit_time.max(), rel=1e-6)
    objective = scalars[tblog.OBJECTIVE]
    assert [s for s, _, _ in objective] == run.evals.clock.tolist()
    np.testing.assert_allclose([v for _, v, _ in objective], run.evals.objective.to_numpy(), rtol=1e-6)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tbcfg") / "c.toml"
    path.write_text(CONFIG)
    return path


def test_deploy_writes_the_scalars_while_it_runs(config_file: Path, tmp_path: Path) -> None:
    out, logdir = tmp_path / "real", tmp_path / "tb"
    code, _, err = run_cli(["deploy", str(config_file), "--out", str(out), "--tensorboard", str(logdir), "-q"])
    assert code == 0, err
    scalars = _scalars(logdir)
    _check_against_trace(scalars, out)
    started = sspsim.read_run(out).meta["started_at"]
    commit = sspsim.read_run(out).trace.commit_time.max()
    assert scalars[tblog.THROUGHPUT][-1][2] == pytest.approx(started + commit, abs=1e-3)  # wall time: the run's own
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the staging folder was renamed in


def test_simulate_writes_the_same_tags(config_file: Path, tmp_path: Path) -> None:
    out, logdir = tmp_path / "sim", tmp_path / "tb"
    code, _, err = run_cli(["simulate", str(config_file), "--out", str(out), "--tensorboard", str(logdir), "-q"])
    assert code == 0, err
    _check_against_trace(_scalars(logdir), out)
    code, _, err = run_cli(["simulate", str(config_file), "--out", str(out), "--tensorboard", str(logdir), "-q", "--force"])
    assert code == 0, err
    assert len(list(logdir.glob("events.out.tfevents.*"))) == 1  # replaced, not appended to


def test_clock_log_flushes_before_it_is_closed(tmp_path: Path) -> None:
    """A live run's scalars reach the disk every flush_seconds, not only at the end."""
    log = tblog.ClockLog(tmp_path, start=1000.0, flush_seconds=0.0)
    ones = np.ones(2)
    log.clock(1, commit=ones, previous=np.zeros(2), wait=ones * 0.5, staleness=np.zeros(2),
              present=np.array([True, False]), iterations=1)
    scalars = _scalars(tmp_path)
    assert scalars[tblog.worker_tag(tblog.ITERATION_TIME, 0)] == [(1, 1.0, 1001.0)]
    assert tblog.worker_tag(tblog.WAIT_TIME, 1) not in scalars  # worker 1 did not run clock 1
    assert scalars[tblog.THROUGHPUT] == [(1, 1.0, 1001.0)]
    log.close()


def test_a_budgeted_flush_writes_the_oldest_clocks_and_close_the_rest(tmp_path: Path) -> None:
    """Clocks are written in order, each once: a flush over budget leaves the rest for the next one."""
    log = tblog.ClockLog(tmp_path, start=0.0, flush_seconds=1e9)
    ones = np.ones(1)
    for c in range(1, 6):
        log.clock(c, commit=ones * c, previous=ones * (c - 1), wait=ones, staleness=ones, present=np.ones(1, dtype=bool),
                  iterations=c)
    log.flush(budget=0.0)  # over budget at once: one clock, the oldest
    assert [s for s, _, _ in _scalars(tmp_path)[tblog.THROUGHPUT]] == [1]
    log.evals([{"clock": 0, "time": 0.0, "objective": 2.0}, {"clock": 5, "time": 5.0, "objective": 1.0}])
    log.close()
    scalars = _scalars(tmp_path)
    assert [s for s, _, _ in scalars[tblog.THROUGHPUT]] == [1, 2, 3, 4, 5]
    assert [(s, v) for s, v, _ in scalars[tblog.OBJECTIVE]] == [(0, 2.0), (5, 1.0)]


@pytest.mark.parametrize("case", ["user-folder", "inside-out", "non-tensorboard-sspsim-folder", "bad-out"])
def test_tensorboard_folder_rules(config_file: Path, tmp_path: Path, case: str) -> None:
    """A folder sspsim did not make, one inside --out, or another sspsim folder: one line, exit 2, nothing written."""
    out, logdir = tmp_path / "run", tmp_path / "tb"
    if case == "user-folder":
        logdir.mkdir()
        (logdir / "notes.txt").write_text("mine")
    if case == "inside-out":
        logdir = out / "tb"
    if case == "non-tensorboard-sspsim-folder":
        sspsim.simulate(sspsim.load_config(config_file), logdir)
    if case == "bad-out":  # the folder is fine, --out is not: the events folder made for the run goes again
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    before = sorted(p.name for p in tmp_path.iterdir())
    for command in ("simulate", "deploy"):
        code, _, err = run_cli([command, str(config_file), "--out", str(out), "--tensorboard", str(logdir), "-q"])
        assert code == 2 and err.count("\n") == 1, err
        assert ("--out" if case == "bad-out" else "--tensorboard") in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if case == "user-folder":
        assert (logdir / "notes.txt").read_text() == "mine"


def test_missing_tensorboard_is_one_line_with_the_install_command(config_file: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real_find_spec(name, *a))
    for command in ("simulate", "deploy"):
        code, _, err = run_cli([command, str(config_file), "--out", str(tmp_path / "run"), "--tensorboard",
                                str(tmp_path / "tb"), "-q"])
        assert code == 2 and err.strip().endswith("pip install 'sspsim[tensorboard]'"), err
    assert list(tmp_path.iterdir()) == []
