"""Timing: commit times vs a brute-force event loop, batch vs event engine, BSP/ASP/SSP time per clock."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import sspsim
from sspsim.schedule import batch_schedule
from tests.strategies import CONTINUOUS_KINDS, budget, materialize, sim_configs, small_staleness, write_times

H4 = 1 + 1 / 2 + 1 / 3 + 1 / 4


def reference_commits(times: np.ndarray, s: float, cost: float) -> np.ndarray:
    """An independent event loop: start every idle worker whose gate is open, then pop the earliest commit(s)."""
    P, C = times.shape
    committed = [0] * P
    running: dict[int, float] = {}
    out = np.full((P, C), np.nan)
    now = 0.0
    while min(committed) < C:
        slowest = min(committed)
        for p in range(P):
            if p not in running and committed[p] < C and slowest >= committed[p] - s:
                running[p] = now + (cost + times[p, committed[p]] + cost)
        now = min(running.values())
        for p in [p for p, t in running.items() if t == now]:
            out[p, committed[p]] = now
            committed[p] += 1
            del running[p]
    return out


def _by_worker_clock(run: sspsim.Run, column: str, P: int, C: int) -> np.ndarray:
    tr = run.trace.sort_values(["worker", "clock"])
    return tr[column].to_numpy().reshape(P, C)


times_matrices = st.integers(1, 7).flatmap(
    lambda P: st.integers(1, 8).flatmap(
        lambda C: st.one_of(
            hnp.arrays(float, (P, C), elements=st.sampled_from([0.5, 1.0, 2.0, 3.0])),  # many ties
            hnp.arrays(float, (P, C), elements=st.floats(0.01, 10.0)),
        )
    )
)


@budget(1.0)
@given(times=times_matrices, s=small_staleness, latency=st.sampled_from([0.0, 0.125, 0.3]),
       policy=st.sampled_from(["eager", "push", "lazy"]), engine=st.sampled_from(["event", "batch"]))
def test_commit_times_match_brute_force(
    times: np.ndarray, s: object, latency: float, policy: str, engine: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Trace-driven commit times of both engines equal an independent brute-force event loop."""
    if policy == "lazy" and s == "inf":
        policy = "eager"
    P, C = times.shape
    d = tmp_path_factory.mktemp("times")
    write_times(d / "times.csv", times)
    raw = {
        "run": {"clocks": C, "engine": engine},
        "problem": {"kind": "none"},
        "consistency": {"staleness": s, "read_policy": policy},
        "workers": {"count": P, "speed": {"kind": "trace", "file": "times.csv"}},
        "network": {"latency": latency},
    }
    config = sspsim.config_from_dict(raw, base_dir=d)
    run = sspsim.simulate(config)
    assert run.summary["engine"] == engine
    ref = reference_commits(times, config.consistency.staleness, latency)
    got = _by_worker_clock(run, "commit_time", P, C)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    assert np.array_equal(_by_worker_clock(run, "compute_time", P, C), times)


COMPARED = ("start_time", "commit_time", "wait_time", "visible_clock", "staleness", "read_updates")


@budget(1.25)
@given(raw=sim_configs(problems=("none",), apply_time=False, max_clocks=8))
def test_event_and_batch_engines_agree(raw: dict) -> None:
    """On identical draws the event and batch engines give identical times and reads per (worker, clock)."""
    runs = {}
    for engine in ("event", "batch"):
        raw["run"]["engine"] = engine
        with materialize(raw) as config:
            runs[engine] = sspsim.simulate(config)
    P, C = config.workers.count, config.run.clocks
    ev, ba = runs["event"], runs["batch"]
    columns = COMPARED
    if raw["workers"]["speed"]["kind"] in CONTINUOUS_KINDS:
        columns += ("commit_index", "update_staleness")  # no simultaneous commits to order differently
    for column in columns:
        a, b = _by_worker_clock(ev, column, P, C), _by_worker_clock(ba, column, P, C)
        if column.endswith("_time"):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=column)
        else:
            assert np.array_equal(a, b), column
    for key in ("total_time", "time_per_clock", "mean_staleness", "max_staleness", "wait_fraction"):
        assert ev.summary[key] == pytest.approx(ba.summary[key], rel=1e-12, abs=1e-12), key
    assert ev.evals.clock.tolist() == ba.evals.clock.tolist()
    np.testing.assert_allclose(ev.evals.time, ba.evals.time, rtol=1e-12, atol=1e-12)
    if raw["workers"]["speed"]["kind"] in CONTINUOUS_KINDS:
        assert ev.evals.updates.tolist() == ba.evals.updates.tolist()


@budget(1.0)
@given(times=hnp.arrays(float, st.tuples(st.integers(1, 6), st.integers(1, 12)), elements=st.floats(0.01, 10.0)),
       cost=st.sampled_from([0.0, 0.2]))
def test_commit_times_non_increasing_in_staleness(times: np.ndarray, cost: float) -> None:
    """On the same draws every commit time is non-increasing in s (0, 1, 2, 4, inf): pathwise, exactly."""
    previous = None
    for s in (0, 1, 2, 4, math.inf):
        rec, M = batch_schedule(times, staleness=s, read_policy="eager", message_cost=cost)
        if previous is not None:
            assert (rec.commit <= previous).all()
        previous = rec.commit
        # M[k] is when clock k completed everywhere
        assert np.array_equal(M[1:], rec.commit.max(axis=0)) and M[0] == 0


def _exp_run(staleness: object, *, clocks: int = 5000, engine: str = "batch", stragglers: list | None = None) -> sspsim.Run:
    raw = {
        "run": {"seed": 11, "clocks": clocks, "engine": engine},
        "problem": {"kind": "none"},
        "consistency": {"staleness": staleness},
        "workers": {"count": 4, "speed": {"kind": "exponential", "mean": 1.0}, "stragglers": stragglers or []},
    }
    return sspsim.simulate(sspsim.config_from_dict(raw))


def test_exponential_bsp_time_per_clock_is_h4() -> None:
    """BSP with P = 4 Exp(1) workers takes E[max] = H_4 per clock, within 3%."""
    assert _exp_run(0).summary["time_per_clock"] == pytest.approx(H4, rel=0.03)


def test_exponential_asp_time_per_clock_is_mean() -> None:
    """ASP with P = 4 Exp(1) workers takes about 1 per clock (max of sums, 1 + O(1/sqrt C)), within 3%."""
    run = _exp_run("inf")
    assert run.summary["time_per_clock"] == pytest.approx(1.0, rel=0.03)
    assert run.summary["time_per_clock"] >= run.summary["mean_iteration_time"]
    assert run.summary["mean_iteration_time"] == pytest.approx(1.0, rel=0.03)


def test_ssp_time_per_clock_non_increasing_in_staleness() -> None:
    """With the same seed, time per clock is non-increasing in s and lies between ASP and BSP."""
    tpc = [_exp_run(s, clocks=2000).summary["time_per_clock"] for s in (0, 1, 2, 4, "inf")]
    assert all(a >= b for a, b in itertools.pairwise(tpc)), tpc
    assert tpc[0] > 1.5 * tpc[-1]  # BSP is markedly slower than ASP with P = 4


@pytest.mark.parametrize("staleness", [3, "inf"])
def test_persistent_straggler_sets_the_pace(staleness: object) -> None:
    """A worker slowed 4x makes time per clock approach 4 (s >= 1), within 5%."""
    run = _exp_run(staleness, clocks=3000, stragglers=[{"worker": 0, "slowdown": 4.0}])
    assert run.summary["time_per_clock"] == pytest.approx(4.0, rel=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("staleness,expected", [(0, H4), ("inf", 1.0)])
def test_exponential_event_engine_time_per_clock(staleness: object, expected: float) -> None:
    """The SimPy engine also gives H_4 (BSP) and 1 (ASP) per clock for P = 4 Exp(1) workers, within 3%."""
    run = _exp_run(staleness, engine="event")
    assert run.summary["engine"] == "event"
    assert run.summary["time_per_clock"] == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("engine", ["event", "auto"])
def test_zero_length_iterations(engine: str) -> None:
    """Zero compute time with zero network cost (a valid config) simulates with staleness 0; auto picks the event engine."""
    raw = {
        "run": {"clocks": 2, "engine": engine},
        "problem": {"kind": "none"},
        "workers": {"count": 1, "speed": {"kind": "constant", "value": 0.0}},
    }
    run = sspsim.simulate(sspsim.config_from_dict(raw))
    assert run.summary["engine"] == "event"
    assert (run.trace.staleness == 0).all()
    assert (run.trace.visible_clock == run.trace.clock - 1).all()


def test_forced_batch_refuses_zero_length_iterations() -> None:
    """run.engine = "batch" with zero-length iterations is refused with a message naming the field and the rule."""
    raw = {
        "run": {"clocks": 2, "engine": "batch"},
        "problem": {"kind": "none"},
        "workers": {"count": 2, "speed": {"kind": "constant", "value": 0.0}},
    }
    with pytest.raises(sspsim.ConfigError, match=r"run\.engine = 'batch': some iterations take zero time"):
        sspsim.simulate(sspsim.config_from_dict(raw))
