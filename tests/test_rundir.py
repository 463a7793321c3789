"""Run directories (DESIGN §Run directory) and determinism of simulated runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sspsim
from sspsim.trace import TRACE_COLUMNS

RAW = {
    "run": {"seed": 5, "clocks": 12},
    "problem": {"kind": "logistic", "dim": 5, "samples": 100, "batch_size": 4},
    "consistency": {"staleness": 2},
    "workers": {"count": 4, "speed": {"kind": "lognormal", "mean": 1.0, "sigma": 0.7},
                "transient": {"probability": 0.2, "factor": 3.0, "duration": 2}},
    "network": {"latency": 0.05, "apply_time": 0.01},
}


def _config(**changes: dict) -> sspsim.Config:
    raw = {k: dict(v) for k, v in RAW.items()}
    for section, values in changes.items():
        raw[section].update(values)
    return sspsim.config_from_dict(raw)


def test_run_json_contents(tmp_path: Path) -> None:
    """run.json holds status complete, backend sim, the resolved config, versions, seed and the summary."""
    run = sspsim.simulate(_config(), tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["status"] == "complete" and meta["backend"] == "sim" and meta["seed"] == 5
    assert meta["config"] == _config().to_dict()
    assert {"python", "numpy", "simpy", "sspsim"} <= set(meta["versions"])
    assert meta["summary"]["iterations"] == 48 and meta["summary"]["engine"] == "event"
    assert meta["files"] == {"trace": "trace.csv", "evals": "evals.csv", "audit": None}
    assert run.complete and run.path == tmp_path / "run"
    trace = pd.read_csv(tmp_path / "run" / "trace.csv")
    assert tuple(trace.columns) == TRACE_COLUMNS and len(trace) == 48
    evals = pd.read_csv(tmp_path / "run" / "evals.csv")
    assert {"time", "updates", "objective"} <= set(evals.columns)
    assert evals.updates.iloc[-1] == 48 and evals.time.iloc[-1] == pytest.approx(trace.commit_time.max())
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no partial folders left behind


def test_read_run_round_trip(tmp_path: Path) -> None:
    """read_run gives back the same metadata, trace and evaluations that simulate returned."""
    run = sspsim.simulate(_config(), tmp_path / "run")
    back = sspsim.read_run(tmp_path / "run")
    assert back.complete and back.meta == json.loads((tmp_path / "run" / "run.json").read_text())
    assert back.summary == run.summary
    pd.testing.assert_frame_equal(back.trace, run.trace, check_exact=False, rtol=1e-15)
    pd.testing.assert_frame_equal(back.evals, run.evals, check_exact=False, rtol=1e-15)
    assert back.config == _config()


def test_read_run_errors(tmp_path: Path) -> None:
    """read_run on a missing directory, a folder without run.json or broken JSON raises InputError."""
    with pytest.raises(sspsim.InputError, match="not found"):
        sspsim.read_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(sspsim.InputError, match=r"has no run\.json"):
        sspsim.read_run(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{not json")
    with pytest.raises(sspsim.InputError, match="not valid JSON"):
        sspsim.read_run(tmp_path / "broken")


def test_refuses_to_overwrite_non_run_directory(tmp_path: Path) -> None:
    """simulate refuses an existing non-empty folder that is not a run directory, and leaves it intact."""
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("precious")
    with pytest.raises(sspsim.InputError, match=r"^--out = .*exists and was not created by sspsim"):
        sspsim.simulate(_config(), target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "precious"
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(sspsim.InputError):
        sspsim.simulate(_config(), afile)
    assert afile.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "mine"]


def test_replaces_existing_run_directory(tmp_path: Path) -> None:
    """Simulating into an existing run directory needs force, then replaces it completely."""
    out = tmp_path / "run"
    sspsim.simulate(_config(run={"audit": True}), out)
    assert (out / "audit.npz").is_file()
    with pytest.raises(sspsim.InputError, match="add --force"):
        sspsim.simulate(_config(run={"seed": 6}), out)
    assert sspsim.read_run(out).meta["seed"] != 6
    sspsim.simulate(_config(run={"seed": 6, "trace": "summary"}), out, force=True)
    back = sspsim.read_run(out)
    assert back.meta["seed"] == 6
    assert not (out / "audit.npz").exists() and not (out / "trace.csv").exists()
    with pytest.raises(sspsim.InputError, match=r"no trace\.csv"):
        _ = back.trace


def test_empty_directory_is_a_valid_target(tmp_path: Path) -> None:
    """An existing empty folder may be used as the run directory."""
    (tmp_path / "run").mkdir()
    sspsim.simulate(_config(), tmp_path / "run")
    assert sspsim.read_run(tmp_path / "run").complete


def test_same_seed_gives_byte_identical_trace(tmp_path: Path) -> None:
    """The same config and seed write byte-identical trace.csv and evals.csv; another seed differs."""
    sspsim.simulate(_config(), tmp_path / "a")
    sspsim.simulate(_config(), tmp_path / "b")
    sspsim.simulate(_config(run={"seed": 6}), tmp_path / "c")
    for name in ("trace.csv", "evals.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "trace.csv").read_bytes() != (tmp_path / "c" / "trace.csv").read_bytes()
    a, b = (json.loads((tmp_path / d / "run.json").read_text()) for d in "ab")
    a["summary"].pop("wall_time"), b["summary"].pop("wall_time")
    assert a == b


def test_adding_a_worker_keeps_other_workers_compute_times() -> None:
    """In a simulation, adding a worker leaves the other workers' compute_time draws unchanged."""
    small = sspsim.simulate(_config(workers={"count": 3})).trace.sort_values(["worker", "clock"])
    big = sspsim.simulate(_config(workers={"count": 4})).trace.sort_values(["worker", "clock"])
    kept = big[big.worker < 3]
    assert np.array_equal(kept.compute_time.to_numpy(), small.compute_time.to_numpy())


def test_summary_trace_mode_matches_full(tmp_path: Path) -> None:
    """trace = "summary" writes no trace.csv but the same summary figures as a full run."""
    full = sspsim.simulate(_config(), tmp_path / "full")
    short = sspsim.simulate(_config(run={"trace": "summary"}), tmp_path / "short")
    assert not (tmp_path / "short" / "trace.csv").exists()
    assert short.meta["files"]["trace"] is None
    a, b = dict(full.summary), dict(short.summary)
    a.pop("wall_time"), b.pop("wall_time")
    assert a == b


# -- the one reader: read_runs and format ------------------------------------------------------------

def _small(seed: int) -> sspsim.Config:
    return _config(run={"seed": seed, "clocks": 3})


def test_read_runs_of_a_run_directory(tmp_path: Path) -> None:
    """read_runs on a run directory gives that one run."""
    sspsim.simulate(_small(1), tmp_path / "run")
    runs = sspsim.read_runs(tmp_path / "run")
    assert [r.path for r in runs] == [tmp_path / "run"] and runs[0].meta["seed"] == 1


def test_read_runs_follows_sweep_json_order(tmp_path: Path) -> None:
    """A sweep directory's runs come back in sweep.json order, not name order; unlisted folders are not runs of it."""
    from sspsim.rundir import SWEEP_FORMAT

    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        sspsim.simulate(_small(seed), tmp_path / "sweep" / name)
    rows = [{"name": n, "path": n} for n in ("c", "a")]
    (tmp_path / "sweep" / "sweep.json").write_text(json.dumps({"format": SWEEP_FORMAT, "runs": rows}))
    assert [r.meta["seed"] for r in sspsim.read_runs(tmp_path / "sweep")] == [3, 1]
    (tmp_path / "sweep" / "sweep.json").unlink()  # a plain folder of runs: name order
    assert [r.meta["seed"] for r in sspsim.read_runs(tmp_path / "sweep")] == [1, 2, 3]


def test_read_runs_errors(tmp_path: Path) -> None:
    """Missing paths, empty folders, a sweep.json naming a missing run or of another format: one-line InputError."""
    with pytest.raises(sspsim.InputError, match="not found"):
        sspsim.read_runs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(sspsim.InputError, match="neither a run directory"):
        sspsim.read_runs(tmp_path / "empty")
    sweep = tmp_path / "sweep"
    sspsim.simulate(_small(1), sweep / "a")
    (sweep / "sweep.json").write_text(json.dumps({"format": "sspsim-sweep/1", "runs": [{"path": "a"}, {"path": "gone"}]}))
    with pytest.raises(sspsim.InputError, match=r"gone.*not found"):
        sspsim.read_runs(sweep)
    (sweep / "sweep.json").write_text(json.dumps({"format": "sspsim-sweep/2", "runs": [{"path": "a"}]}))
    with pytest.raises(sspsim.InputError, match=r"sweep.json format = 'sspsim-sweep/2': must be sspsim-sweep/1") as err:
        sspsim.read_runs(sweep)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("found", ["sspsim-run/2", "sspsim-run/10", "other-run/1", None, 1])
def test_read_run_checks_the_format(tmp_path: Path, found: object) -> None:
    """run.json with an unknown or missing major format is refused in one line naming the field; 1.x is read."""
    sspsim.simulate(_small(1), tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    if found is None:
        del meta["format"]
    else:
        meta["format"] = found
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    with pytest.raises(sspsim.InputError, match=r"run.json format = .*: must be sspsim-run/1") as err:
        sspsim.read_run(tmp_path / "run")
    assert "\n" not in str(err.value)
    meta["format"] = "sspsim-run/1.3"  # a minor revision of the same major format stays readable
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    assert sspsim.read_run(tmp_path / "run").meta["seed"] == 1


def test_one_metadata_builder_for_both_backends() -> None:
    """run_meta gives every backend's run.json the same leading fields, with the backend's extras after."""
    from sspsim.rundir import FORMAT, run_meta

    cfg = _small(4)
    sim = run_meta(cfg, backend="sim", problem={"n_params": 6}, summary={"x": 1})
    real = run_meta(cfg, backend="real", problem={"n_params": 6}, extra_versions={"torch": "9"}, engine="ps", status="running")
    for meta in (sim, real):
        assert meta["format"] == FORMAT and meta["seed"] == 4 and meta["config"] == cfg.to_dict()
        assert {"python", "numpy", "sspsim"} <= set(meta["versions"])
    assert sim["backend"] == "sim" and sim["summary"] == {"x": 1}
    assert real["backend"] == "real" and real["versions"]["torch"] == "9" and real["engine"] == "ps"
