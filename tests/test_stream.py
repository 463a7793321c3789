"""The streaming planner gives the full batch schedule's summary figures (sspsim.sim.stream)."""

from __future__ import annotations

import math
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sspsim
from sspsim.evaluate import eval_clocks
from sspsim.problems import make_problem
from sspsim.sim import stream
from sspsim.sim.run import streams
from sspsim.sim.stream import ZeroDuration, stream_schedule
from sspsim.speeds import compute_time_blocks
from sspsim.trace import summary_figures
from tests.strategies import budget, materialize, sim_configs

ROUNDED = {"mean_compute_time", "wait_fraction"}  # sums taken in another order: equal to float rounding


def full_summary(raw: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, float]]]:
    raw = {**raw, "run": {**raw["run"], "engine": "batch", "trace": "full"}}
    with materialize(raw) as config:
        run = sspsim.simulate(config)
    return run.summary, run.evals.to_dict("records") if hasattr(run.evals, "to_dict") else run.evals


def streamed(config: sspsim.Config, block: int, draw_block: int) -> tuple[dict[str, Any], list[dict[str, float]]]:
    P, T = config.workers.count, config.run.clocks
    cost = config.network.message_cost(make_problem(config.problem, config.problem_seed).n_params)
    blocks = compute_time_blocks(
        config.workers.speed, workers=P, clocks=T, seed=config.run.seed, stragglers=config.workers.stragglers,
        transient=config.workers.transient, compute=config.workers.compute, block=draw_block,
    )
    totals, evals, _ = stream_schedule(
        blocks, workers=P, clocks=T, staleness=config.consistency.staleness, read_policy=config.consistency.read_policy,
        message_cost=cost, eval_every=eval_clocks(config, T), block=block,
    )
    return summary_figures(totals, evals, target=None, message_cost=cost), evals


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    for key, value in want.items():
        if key in ("engine", "wall_time"):
            continue
        if key == "per_worker":
            for part in ("compute", "wait", "finish"):
                np.testing.assert_allclose(got[key][part], value[part], rtol=1e-12, atol=1e-12, err_msg=part)
        elif key in ROUNDED:
            assert math.isclose(got[key], value, rel_tol=1e-12, abs_tol=1e-12), (key, got[key], value)
        else:
            assert got[key] == value, (key, got[key], value)


@budget(1.0)
@given(
    raw=sim_configs(problems=("none",), apply_time=False, max_workers=12, max_clocks=14, stalenesses=st.integers(0, 4)),
    block=st.integers(1, 6), draw_block=st.integers(1, 5), every=st.integers(1, 4), ranked=st.booleans(),
)
def test_streaming_equals_full_batch_summary(raw: dict, block: int, draw_block: int, every: int, ranked: bool) -> None:
    """Every summary figure and evaluation row of a streamed run equals the full batch schedule's
    (``ranked``: lazy and push reads too go through the sorted window instead of direct counts)."""
    raw["run"]["eval_every"] = every
    want, want_evals = full_summary(raw)
    with materialize(raw) as config, patch.object(stream, "FAST_STALENESS", -1 if ranked else stream.FAST_STALENESS):
        got, got_evals = streamed(config, block, draw_block)
    assert_same(got, want)
    assert got_evals == list(want_evals)


def test_simulate_streams_summary_only_timing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """``simulate`` takes the streaming path for trace = "summary" timing runs, and its summary is the full one."""
    raw = {
        "run": {"seed": 3, "clocks": 40, "trace": "summary"},
        "problem": {"kind": "none"},
        "consistency": {"staleness": 2, "read_policy": "eager"},
        "workers": {"count": 30, "speed": {"kind": "lognormal", "mean": 1.0, "sigma": 0.6},
                    "stragglers": [{"worker": 4, "slowdown": 2.0}]},
        "network": {"latency": 0.01},
    }
    config = sspsim.config_from_dict(raw)
    assert streams(config)
    import sspsim.sim.run as run_module

    calls = []
    real = run_module.stream_schedule
    monkeypatch.setattr(run_module, "stream_schedule", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = sspsim.simulate(config).summary
    assert calls and got["engine"] == "batch"
    want, _ = full_summary(raw)
    assert_same(got, want)
    assert not streams(sspsim.config_from_dict({**raw, "run": {**raw["run"], "trace": "full"}}))
    assert not streams(sspsim.config_from_dict({**raw, "consistency": {"staleness": "inf"}}))


def test_zero_length_iterations_leave_the_stream() -> None:
    """A zero-length iteration stops the stream; simulate then runs the event engine as before."""
    blocks = iter([np.zeros((2, 3))])
    with pytest.raises(ZeroDuration):
        stream_schedule(blocks, workers=2, clocks=3, staleness=1, read_policy="eager", message_cost=0.0, eval_every=1)
    raw = {
        "run": {"clocks": 3, "trace": "summary"}, "problem": {"kind": "none"},
        "workers": {"count": 2, "speed": {"kind": "constant", "value": 0.0}},
    }
    assert sspsim.simulate(sspsim.config_from_dict(raw)).summary["engine"] == "event"


def test_blocks_equal_compute_times() -> None:
    """compute_time_blocks, side by side, is compute_times for every model and any block size."""
    from sspsim.speeds import (
        Empirical,
        Exponential,
        LogNormal,
        Pareto,
        Straggler,
        Transient,
        Uniform,
        compute_times,
    )

    cases = [
        {"speed": Exponential(1.0)},
        {"speed": LogNormal(1.0, 0.5), "stragglers": (Straggler(1, 3.0),), "transient": Transient(0.2, 4.0, 3), "compute": Uniform(0, 1)},
        {"speed": Empirical((1.0, 2.0, 3.0)), "compute": Empirical((0.5, 1.5))},
        {"speed": Pareto(2.0, 1.0), "transient": Transient(0.5, 2.0, 1)},
        {"speed": Uniform(1.0, 2.0), "transient": Transient(0.3, 2.0, 7)},
    ]
    for kw in cases:
        full = compute_times(workers=4, clocks=23, seed=5, **kw)
        for block in (1, 2, 5, 64):
            got = np.concatenate(list(compute_time_blocks(workers=4, clocks=23, seed=5, block=block, **kw)), axis=1)
            assert np.array_equal(full, got), (kw, block)


COLUMNS = ("admit", "start", "commit", "wait", "visible", "read_updates", "commit_index", "update_staleness")


@budget(1.0)
@given(raw=sim_configs(problems=("none",), max_workers=8, max_clocks=8))
def test_heapq_engine_equals_simpy_engine(raw: dict) -> None:
    """On identical draws the heapq loop and the SimPy engine give identical recordings and evaluations,
    ties (trace times, apply queue, zero costs) included."""
    from sspsim.sim.engine import simulate_events
    from sspsim.sim.heapq_engine import simulate_heapq
    from sspsim.speeds import compute_times

    raw["network"].pop("serve_time", None)  # a read queue runs on SimPy only
    if raw["workers"]["speed"]["kind"] != "trace" and "apply_time" not in raw["network"]:
        raw["network"]["apply_time"] = 0.25  # contention: what the heapq loop exists for
    with materialize(raw) as config:
        problem = make_problem(config.problem, config.problem_seed)
        w = config.workers
        compute = compute_times(w.speed, workers=w.count, clocks=config.run.clocks, seed=config.run.seed,
                                stragglers=w.stragglers, transient=w.transient, compute=w.compute)
        want, want_evals, _ = simulate_events(config, problem, compute)
        got, got_evals = simulate_heapq(config, problem, compute)
    for name in COLUMNS:
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    assert got_evals == want_evals


def test_auto_engine_takes_the_heapq_loop_for_contention(monkeypatch: pytest.MonkeyPatch) -> None:
    """A timing-only run with apply time goes to the heapq loop under auto, to SimPy when forced; same summary."""
    import sspsim.sim.run as run_module

    raw = {
        "run": {"seed": 1, "clocks": 20}, "problem": {"kind": "none"},
        "consistency": {"staleness": 1, "read_policy": "eager"},
        "workers": {"count": 6, "speed": {"kind": "exponential", "mean": 1.0}},
        "network": {"apply_time": 0.1},
    }
    calls = []
    real = run_module.simulate_heapq
    monkeypatch.setattr(run_module, "simulate_heapq", lambda *a, **k: calls.append(1) or real(*a, **k))
    auto = sspsim.simulate(sspsim.config_from_dict(raw)).summary
    assert calls == [1]
    forced = sspsim.simulate(sspsim.config_from_dict({**raw, "run": {**raw["run"], "engine": "event"}})).summary
    assert calls == [1]
    assert {k: v for k, v in auto.items() if k != "wall_time"} == {k: v for k, v in forced.items() if k != "wall_time"}


@budget(1.0)
@given(raw=sim_configs(problems=("none",), max_workers=10, max_clocks=10), apply_time=st.sampled_from([0.0, 0.05, 0.25, 1.0]),
       every=st.integers(1, 4))
def test_heapq_summary_mode_equals_its_recording(raw: dict, apply_time: float, every: int) -> None:
    """The heapq loop's summary-only mode gives the summary figures and evaluation rows of its
    recording (summarised by sspsim.trace.summarize), over read policies, s, apply times and P."""
    from sspsim.sim.heapq_engine import simulate_heapq, summarize_heapq
    from sspsim.speeds import compute_times
    from sspsim.trace import summarize

    raw["network"].pop("serve_time", None)  # a read queue runs on SimPy only
    if raw["workers"]["speed"]["kind"] != "trace":
        raw["network"]["apply_time"] = apply_time
    raw["run"]["eval_every"] = every
    with materialize(raw) as config:
        problem = make_problem(config.problem, config.problem_seed)
        w = config.workers
        compute = compute_times(w.speed, workers=w.count, clocks=config.run.clocks, seed=config.run.seed,
                                stragglers=w.stragglers, transient=w.transient, compute=w.compute)
        cost = config.network.message_cost(problem.n_params)
        rec, want_evals = simulate_heapq(config, problem, compute)
        totals, got_evals = summarize_heapq(config, problem, compute)
    assert got_evals == want_evals
    assert_same(summary_figures(totals, got_evals, target=None, message_cost=cost),
                summarize(rec, want_evals, target=None, message_cost=cost))


@pytest.mark.parametrize("policy", ["eager", "lazy", "push"])
def test_summary_only_runs_take_the_heapq_summary_mode(monkeypatch: pytest.MonkeyPatch, policy: str) -> None:
    """``trace = "summary"`` with contention runs the heapq loop's summary mode, whose summary equals
    the recorded run's; a broken accumulator (one read's staleness miscounted) is caught."""
    import sspsim.sim.run as run_module

    raw = {
        "run": {"seed": 3, "clocks": 30, "trace": "summary"}, "problem": {"kind": "none"},
        "consistency": {"staleness": 2, "read_policy": policy},
        "workers": {"count": 7, "speed": {"kind": "exponential", "mean": 1.0}},
        "network": {"apply_time": 0.2},
    }
    calls = []
    real = run_module.summarize_heapq
    monkeypatch.setattr(run_module, "summarize_heapq", lambda *a, **k: calls.append(1) or real(*a, **k))
    summary = sspsim.simulate(sspsim.config_from_dict(raw)).summary
    assert calls == [1]
    full = sspsim.simulate(sspsim.config_from_dict({**raw, "run": {**raw["run"], "trace": "full"}})).summary
    assert calls == [1]
    assert summary["engine"] == full["engine"] == "event"
    assert_same(summary, full)

    def broken(*a: Any, **k: Any) -> Any:  # the premise broken: one read counted one clock staler
        totals, evals = real(*a, **k)
        totals.staleness_histogram = np.append(totals.staleness_histogram, 0)
        totals.staleness_histogram[-1] += 1
        totals.staleness_histogram[0] -= 1
        return totals, evals

    monkeypatch.setattr(run_module, "summarize_heapq", broken)
    with pytest.raises(AssertionError):
        assert_same(sspsim.simulate(sspsim.config_from_dict(raw)).summary, full)


@budget(0.5)
@given(P=st.integers(1, 9), n_rows=st.integers(1, 6), data=st.data())
def test_commit_order_is_the_stable_worker_major_sort(P: int, n_rows: int, data: st.DataObject) -> None:
    """The packed-key sort orders a window by (time, worker, clock), as the full schedule's stable argsort
    of worker-major commits does, also for ties and for times that differ only in their lowest bits;
    and it counts the commits at or before any instant exactly."""
    from sspsim.sim.stream import _CommitOrder

    base = data.draw(st.sampled_from([1.0, 3.5, 1e-3, 2.0**40]))
    steps = data.draw(st.lists(st.integers(0, 6), min_size=P * n_rows, max_size=P * n_rows))
    spacing = data.draw(st.sampled_from([1, 2**10, 2**30]))  # ulps between distinct times
    window = np.array([base + k * spacing * math.ulp(base) for k in steps])  # clock-major rows of P
    worker_major = window.reshape(n_rows, P).T.reshape(-1)
    want = np.argsort(worker_major, kind="stable")  # index p * n_rows + row
    ordered = _CommitOrder(window, P, n_rows)
    got = ordered.order  # index row * P + p
    assert np.array_equal((got % P) * n_rows + got // P, want)
    values = window[got]
    equal = np.flatnonzero(values[1:] == values[:-1])
    assert np.array_equal(ordered.tied, np.union1d(equal, equal + 1))
    queries = np.concatenate([window, np.nextafter(window, 0), np.nextafter(window, np.inf), [0.0, 2 * window.max()]])
    counts = (window[None, :] <= queries[:, None]).sum(axis=1)
    assert np.array_equal(ordered.at_or_before(queries), counts)
