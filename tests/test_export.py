"""``sspsim export --perfetto``: a run's timeline in the Chrome trace-event format."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sspsim
from sspsim.errors import InputError
from sspsim.export import PHASES, perfetto_events, write_perfetto

# The trace-event format (the JSON object form): the phases used here and the keys each needs.
_REQUIRED = {"X": {"name", "ph", "ts", "dur", "pid", "tid"}, "i": {"name", "ph", "ts", "pid", "tid", "s"},
             "M": {"name", "ph", "pid", "tid", "args"}}


def validate_trace_events(doc: object) -> None:
    """Raise AssertionError unless ``doc`` is a well-formed trace-event JSON object."""
    assert isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list)
    assert doc.get("displayTimeUnit", "ms") in ("ms", "ns")
    for e in doc["traceEvents"]:
        assert isinstance(e, dict) and e.get("ph") in _REQUIRED, e
        assert _REQUIRED[e["ph"]] <= set(e), e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int), e
        assert isinstance(e["name"], str) and e["name"], e
        if e["ph"] != "M":
            assert isinstance(e["ts"], (int, float)) and math.isfinite(e["ts"]) and e["ts"] >= 0, e
        if e["ph"] == "X":
            assert isinstance(e["dur"], (int, float)) and math.isfinite(e["dur"]) and e["dur"] > 0, e
        if e["ph"] == "i":
            assert e["s"] in ("g", "p", "t"), e
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name", "thread_sort_index", "process_sort_index"), e
    json.dumps(doc, allow_nan=False)  # strict JSON: no NaN or Infinity


def _run(tmp_path: Path, **network: float) -> sspsim.Run:
    config = sspsim.config_from_dict({
        "run": {"clocks": 12, "seed": 3}, "problem": {"kind": "logistic", "samples": 200},
        "consistency": {"staleness": 1}, "workers": {"count": 3, "speed": {"kind": "exponential", "mean": 1.0}},
        "network": {"latency": 0.05, **network},
    })
    return sspsim.simulate(config, tmp_path / "run")


def test_timeline_is_valid_and_accounts_for_every_second(tmp_path: Path) -> None:
    run = _run(tmp_path, apply_time=0.02)
    out = write_perfetto(sspsim.read_run(tmp_path / "run"), tmp_path / "t.json")
    doc = json.loads(out.read_text())
    validate_trace_events(doc)
    slices = pd.DataFrame([e for e in doc["traceEvents"] if e["ph"] == "X" and e["cat"] == "worker"])
    trace = run.trace
    assert set(slices["name"]) == set(PHASES)
    # per worker: compute and wait totals equal the trace's, and slices never overlap on a track
    for w, group in slices.groupby("tid"):
        rows = trace[trace.worker == w - 1]
        assert group[group.name == "compute"]["dur"].sum() == pytest.approx(rows.compute_time.sum() * 1e6)
        assert group[group.name == "wait"]["dur"].sum() == pytest.approx(rows.wait_time.sum() * 1e6)
        ordered = group.sort_values("ts")
        ends = (ordered.ts + ordered.dur).to_numpy()[:-1]
        assert (ordered.ts.to_numpy()[1:] >= ends - 1e-3).all()
        # the last slice of a worker ends at its last commit
        assert ends.max() <= rows.commit_time.max() * 1e6 + 1e-3
    applies = [e for e in doc["traceEvents"] if e.get("cat") == "server"]
    assert len(applies) == len(trace) and all(e["ph"] == "X" for e in applies)


def test_the_server_track_shows_its_sends_one_at_a_time(tmp_path: Path) -> None:
    """With reads queued at the server (serve_time), the server's applies and sends never overlap."""
    run = _run(tmp_path, apply_time=0.02, serve_time=0.03)
    doc = perfetto_events(run)
    validate_trace_events(doc)
    server = pd.DataFrame([e for e in doc["traceEvents"] if e.get("cat") == "server"])
    sends = server[server.name.str.startswith("send")]
    assert len(sends) == len(run.trace) and np.allclose(sends.dur, 0.03e6)
    ordered = server.sort_values(["ts", "dur"])
    ends = (ordered.ts + ordered.dur).to_numpy()[:-1]
    assert (ordered.ts.to_numpy()[1:] >= ends - 1e-3).all()


def test_without_apply_time_commits_are_instants(tmp_path: Path) -> None:
    doc = perfetto_events(_run(tmp_path))
    validate_trace_events(doc)
    assert {e["ph"] for e in doc["traceEvents"] if e.get("cat") == "server"} == {"i"}


def test_doctored_trace_is_refused(tmp_path: Path) -> None:
    _run(tmp_path)
    path = tmp_path / "run" / "trace.csv"
    trace = pd.read_csv(path)
    trace.loc[5, "commit_time"] = trace.loc[5, "start_time"] - 1.0
    trace.to_csv(path, index=False)
    with pytest.raises(InputError, match="before it begins"):
        perfetto_events(sspsim.read_run(tmp_path / "run"))


def test_validator_rejects_malformed_events() -> None:
    """The format check can fail."""
    good = {"ph": "X", "name": "compute", "ts": 0.0, "dur": 1.0, "pid": 1, "tid": 1}
    validate_trace_events({"traceEvents": [good]})
    for bad in ({**good, "dur": -1.0}, {**good, "ph": "Q"}, {k: v for k, v in good.items() if k != "ts"},
                {**good, "ts": float("nan")}):
        with pytest.raises(AssertionError):
            validate_trace_events({"traceEvents": [bad]})


def test_export_never_overwrites_a_file_sspsim_did_not_write(tmp_path: Path) -> None:
    run = _run(tmp_path)
    mine = tmp_path / "mine.json"
    mine.write_text('{"my": "data"}')
    for force in (False, True):
        with pytest.raises(InputError, match="not written by sspsim"):
            write_perfetto(run, mine, force=force)
    assert mine.read_text() == '{"my": "data"}'
    ours = write_perfetto(run, tmp_path / "t.json")
    with pytest.raises(InputError, match="add --force"):
        write_perfetto(run, ours)
    write_perfetto(run, ours, force=True)
