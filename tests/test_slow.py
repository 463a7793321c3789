"""Long simulations: larger-scale invariants, engine agreement and planning-size runs (marked slow)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import sspsim
from tests.simcheck import check_trace
from tests.strategies import budget, materialize, sim_configs

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("policy,staleness", [("eager", 3), ("lazy", 2), ("push", 5), ("eager", "inf"), ("push", 0)])
def test_large_event_run_invariants(policy: str, staleness: object) -> None:
    """A 48-worker, 300-clock event run with math, transients, stragglers and contention obeys every trace invariant."""
    raw = {
        "run": {"seed": 21, "clocks": 300},
        "problem": {"kind": "least_squares", "dim": 10, "samples": 500, "batch_size": 8},
        "optimizer": {"lr": 0.2, "staleness_aware": True},
        "consistency": {"staleness": staleness, "read_policy": policy},
        "workers": {"count": 48, "speed": {"kind": "lognormal", "mean": 1.0, "sigma": 1.0},
                    "stragglers": [{"worker": 3, "slowdown": 3.0}],
                    "transient": {"probability": 0.05, "factor": 5.0, "duration": 3}},
        "network": {"latency": 0.02, "bandwidth": 1e4, "apply_time": 0.005},
    }
    config = sspsim.config_from_dict(raw)
    run = sspsim.simulate(config)
    check_trace(run, config)
    assert run.summary["final_objective"] < run.summary["initial_objective"]


@pytest.mark.parametrize("policy,staleness", [("eager", 4), ("lazy", 1), ("push", 2), ("eager", "inf")])
def test_engines_agree_at_scale(policy: str, staleness: object) -> None:
    """Event and batch engines agree on a 100-worker, 400-clock Pareto-timed run, per (worker, clock)."""
    raw = {
        "run": {"seed": 4, "clocks": 400},
        "problem": {"kind": "none", "dim": 500},
        "consistency": {"staleness": staleness, "read_policy": policy},
        "workers": {"count": 100, "speed": {"kind": "pareto", "alpha": 2.5, "scale": 1.0}},
        "network": {"latency": 0.01, "bandwidth": 1e6},
    }
    traces = {}
    for engine in ("event", "batch"):
        raw["run"]["engine"] = engine
        traces[engine] = sspsim.simulate(sspsim.config_from_dict(raw)).trace.sort_values(["worker", "clock"])
    ev, ba = traces["event"], traces["batch"]
    for col in ("start_time", "commit_time", "wait_time"):
        np.testing.assert_allclose(ev[col], ba[col], rtol=1e-12, atol=1e-12)
    for col in ("visible_clock", "staleness", "read_updates", "commit_index", "update_staleness"):
        assert np.array_equal(ev[col].to_numpy(), ba[col].to_numpy()), col


def test_planning_run_ten_thousand_workers() -> None:
    """A 10^4-worker summary-only planning run finishes on the batch engine with s-bounded staleness."""
    raw = {
        "run": {"seed": 0, "clocks": 50, "trace": "summary"},
        "problem": {"kind": "none"},
        "consistency": {"staleness": 2},
        "workers": {"count": 10_000, "speed": {"kind": "exponential", "mean": 1.0}},
    }
    run = sspsim.simulate(sspsim.config_from_dict(raw))
    s = run.summary
    assert s["engine"] == "batch" and s["iterations"] == 500_000
    assert s["max_staleness"] <= 2 and sum(s["staleness_histogram"]) == 500_000
    # with 10^4 Exp(1) workers the slowest clock paces everything: about H_10000 ~ 9.8 per clock, minus slack
    assert 3.0 < s["time_per_clock"] < 9.8


@pytest.mark.parametrize("seed", range(5))
def test_bsp_time_per_clock_over_seeds(seed: int) -> None:
    """Across seeds, BSP with P = 8 Exp(1) workers takes H_8 per clock (batch engine, 4000 clocks), within 3%."""
    raw = {
        "run": {"seed": seed, "clocks": 4000},
        "problem": {"kind": "none"},
        "consistency": {"staleness": 0},
        "workers": {"count": 8, "speed": {"kind": "exponential", "mean": 1.0}},
    }
    h8 = sum(1 / k for k in range(1, 9))
    assert sspsim.simulate(sspsim.config_from_dict(raw)).summary["time_per_clock"] == pytest.approx(h8, rel=0.03)


@budget(2.0)
@given(raw=sim_configs(max_workers=64, max_clocks=40))
def test_trace_invariants_bigger_configs(raw: dict) -> None:
    """Generated configs with up to 64 workers and 40 clocks obey every trace invariant."""
    with materialize(raw) as config:
        run = sspsim.simulate(config)
        check_trace(run, config)
