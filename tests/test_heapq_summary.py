"""The heapq summary's fast path (a minimal heapq loop, exact without ties) against the exact loop."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import sspsim
from sspsim.problems import make_problem
from sspsim.sim import heapq_engine
from sspsim.sim.heapq_engine import _summary_without_ties, summarize_heapq
from sspsim.speeds import compute_times
from sspsim.trace import Totals
from tests.strategies import CONTINUOUS_KINDS, budget, materialize, sim_configs, small_staleness


def inputs(config: sspsim.Config) -> tuple[sspsim.Config, Any, np.ndarray]:
    problem = make_problem(config.problem, config.problem_seed)
    w = config.workers
    compute = compute_times(w.speed, workers=w.count, clocks=config.run.clocks, seed=config.run.seed,
                            stragglers=w.stragglers, transient=w.transient, compute=w.compute)
    return config, problem, compute


def exact(config: sspsim.Config, problem: Any, compute: np.ndarray) -> tuple[Totals, list[dict[str, float]]]:
    """The exact loop (SimPy's order, ties included), summary only."""
    _, totals, evals = heapq_engine._run(config, problem, compute, None, record=False)
    assert totals is not None
    return totals, evals


def same(got: tuple[Totals, list[dict[str, float]]], want: tuple[Totals, list[dict[str, float]]]) -> bool:
    """Every total bit for bit (the same float sums in the same order), and the same evaluation rows."""
    for f in fields(Totals):
        a, b = getattr(got[0], f.name), getattr(want[0], f.name)
        if not (np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b):
            return False
    return got[1] == want[1]


@st.composite
def heapq_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Summary-only timing configs, half with continuous speeds (no ties) and half tie-heavy: constant
    or trace speeds (trace times are multiples of 0.5, some of them 0), constant ones with no network
    noise and apply times that are multiples of the compute time."""
    tied = draw(st.booleans())
    raw = draw(sim_configs(problems=("none",), max_workers=8, max_clocks=10,
                           speed_kinds=("constant", "trace") if tied else CONTINUOUS_KINDS))
    raw["network"].pop("serve_time", None)  # a read queue runs on SimPy only
    policy = draw(st.sampled_from(["eager", "lazy", "push"]))  # each policy evenly, lazy with a finite s
    raw["consistency"] = {"staleness": draw(st.integers(0, 4) if policy == "lazy" else small_staleness),
                          "read_policy": policy}
    if tied and draw(st.integers(0, 3)) == 0:  # zero-length iterations among others
        P, T = raw["workers"]["count"], raw["run"]["clocks"]
        values = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=P * T, max_size=P * T))
        raw["workers"] = {"count": P, "speed": {"kind": "trace", "file": "times.csv",
                                                "_times": np.array(values).reshape(P, T)}}
    if tied and raw["workers"]["speed"]["kind"] == "constant":
        value = draw(st.sampled_from([0.5, 1.0, 2.0]))
        raw["workers"] = {"count": raw["workers"]["count"], "speed": {"kind": "constant", "value": value}}
        raw["network"] = {"apply_time": value * draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 3.0]))}
    else:
        apply_time = draw(st.sampled_from([None, 0.0, 0.05, 0.5, 1.0]))  # None: as drawn
        if apply_time is not None:
            raw["network"]["apply_time"] = apply_time
    raw["run"]["eval_every"] = draw(st.integers(1, 4))
    return raw


@budget(2.0)
@given(raw=heapq_configs())
def test_fast_summary_equals_the_exact_loop(raw: dict[str, Any]) -> None:
    """Where the fast loop finishes (no tie), its totals and evaluation rows are the exact loop's, bit for
    bit; summarize_heapq (fast, or the exact loop after a tie) always equals the exact loop; over speeds
    with and without ties, P = 1.., s = 0..4 and inf, every read policy, apply times, evaluation periods."""
    with materialize(raw) as config:
        args = inputs(config)
        want = exact(*args)
        fast = _summary_without_ties(*args, None)
        got = summarize_heapq(*args)
    event("fast loop finished" if fast is not None else "a tie: the exact loop reran")
    if fast is not None:
        assert same(fast, want)
    assert same(got, want)


def trace(times: list[list[float]]) -> dict[str, Any]:
    return {"kind": "trace", "file": "times.csv", "_times": np.array(times)}


RUNS = {  # speed, workers, apply time; whether two events fall at one instant
    "computations end together": ({"kind": "constant", "value": 1.0}, 5, 0.25, True),
    "a computation ends as an apply does": (trace([[1.0, 2.0, 1.0], [1.5, 1.0, 1.0]]), 2, 0.5, True),
    "a zero-length iteration": (trace([[1.0, 0.0, 1.0]]), 1, 0.5, True),
    "a zero-length iteration, no apply time": (trace([[1.0, 0.0, 1.0]]), 1, 0.0, True),
    "a zero-length iteration after a queued apply": (trace([[1.0, 1.0, 1.0], [1.2, 0.0, 1.0]]), 2, 0.5, True),
    "an apply time lost to rounding": ({"kind": "exponential", "mean": 1.0}, 5, 1e-20, True),
    "exponential speeds": ({"kind": "exponential", "mean": 1.0}, 5, 0.25, False),
    "exponential speeds, no apply time": ({"kind": "exponential", "mean": 1.0}, 5, 0.0, False),
}


@pytest.mark.parametrize("policy", ["eager", "lazy", "push"])
@pytest.mark.parametrize("case", RUNS)
def test_the_exact_loop_runs_only_after_a_tie(monkeypatch: pytest.MonkeyPatch, case: str, policy: str) -> None:
    """At a tie the fast loop gives up and the exact loop reruns, its progress reports going on where the
    fast loop's stopped; without one (continuous draws) the exact loop does not run."""
    speed, workers, apply_time, tied = RUNS[case]
    raw = {
        "run": {"seed": 4, "clocks": 3 if speed["kind"] == "trace" else 25, "trace": "summary", "eval_every": 2},
        "problem": {"kind": "none"}, "consistency": {"staleness": 1, "read_policy": policy},
        "workers": {"count": workers, "speed": speed}, "network": {"apply_time": apply_time},
    }
    calls = []
    real = heapq_engine._run
    monkeypatch.setattr(heapq_engine, "_run", lambda *a, **k: calls.append(1) or real(*a, **k))
    with materialize(raw) as config:
        args = inputs(config)
    assert (_summary_without_ties(*args, None) is None) == tied
    reports: list[tuple[int, int]] = []
    got = summarize_heapq(*args, progress=lambda done, total: reports.append((done, total)))
    assert calls == ([1] if tied else [])
    assert same(got, exact(*args))
    done = [d for d, _ in reports]
    total = workers * config.run.clocks
    assert done == sorted(done) and reports[-1] == (total, total)  # never back to 0 after the rerun


def test_ties_change_the_summary_without_the_fall_back() -> None:
    """Tie detection matters: two computations end at 3.5; SimPy queues first the one scheduled first
    (worker 1's, at 1.5), the fast loop carrying on would queue worker 0 first (ties by worker), and each
    worker's finish time would come out swapped."""
    raw = {
        "run": {"clocks": 2, "trace": "summary"}, "problem": {"kind": "none"},
        "consistency": {"staleness": "inf", "read_policy": "eager"},
        "workers": {"count": 2, "speed": {"kind": "trace", "file": "times.csv",
                                          "_times": np.array([[2.0, 1.0], [1.0, 2.0]])}},
        "network": {"apply_time": 0.5},
    }
    with materialize(raw) as config:
        args = inputs(config)
        want = exact(*args)
        carried_on = _summary_without_ties(*args, None, fall_back=False)
        assert carried_on is not None and not same(carried_on, want)
        assert carried_on[0].finish.tolist() == [4.0, 4.5] and want[0].finish.tolist() == [4.5, 4.0]
        assert _summary_without_ties(*args, None) is None
        assert same(summarize_heapq(*args), want)


def test_a_read_queue_is_refused_before_the_fast_loop() -> None:
    """Reads queued at the server (serve_time > 0) are SimPy's alone: summarize_heapq refuses them up front."""
    config = sspsim.config_from_dict({
        "run": {"clocks": 5, "trace": "summary"}, "problem": {"kind": "none"},
        "workers": {"count": 3, "speed": {"kind": "exponential", "mean": 1.0}},
        "network": {"apply_time": 0.1, "serve_time": 0.05},
    })
    with pytest.raises(ValueError, match="serve_time"):
        summarize_heapq(*inputs(config))
