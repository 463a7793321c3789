"""Speed models, stragglers and transient slowdowns (sspsim.speeds)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from sspsim import speeds as sp
from sspsim.speeds import compute_times

from tests.strategies import budget

N = 200_000

MODELS = [
    (sp.Constant(1.5), 1.5),
    (sp.Exponential(2.0), 2.0),
    (sp.ShiftedExponential(0.5, 1.0), 1.5),
    (sp.LogNormal(1.0, 0.8), 1.0),
    (sp.Pareto(3.0, 1.0), 1.5),
    (sp.Uniform(0.5, 2.5), 1.5),
]


@pytest.mark.parametrize("model,mean", MODELS, ids=lambda v: getattr(v, "kind", None))
def test_sample_mean_matches_model_mean(model: sp.SpeedModel, mean: float) -> None:
    """Each speed model's sample mean over many draws is within 5% of its mean."""
    times = compute_times(model, workers=2, clocks=N // 2, seed=1)
    assert times.mean() == pytest.approx(mean, rel=0.05)
    assert (times >= 0).all()
    assert model.mean == pytest.approx(mean)


def test_lower_bounds_of_shifted_models() -> None:
    """Shifted exponential never goes below its shift, Pareto below its scale, uniform outside [low, high]."""
    assert compute_times(sp.ShiftedExponential(0.7, 1.0), workers=3, clocks=1000, seed=2).min() >= 0.7
    assert compute_times(sp.Pareto(2.0, 0.3), workers=3, clocks=1000, seed=2).min() >= 0.3
    u = compute_times(sp.Uniform(0.2, 0.4), workers=3, clocks=1000, seed=2)
    assert u.min() >= 0.2 and u.max() <= 0.4


@budget(0.75)
@given(seed=st.integers(0, 2**32), P=st.integers(1, 8), C=st.integers(1, 20),
       who=st.integers(0, 7), slowdown=st.floats(0.1, 10.0))
def test_stragglers_multiply_exactly(seed: int, P: int, C: int, who: int, slowdown: float) -> None:
    """A straggler's times are exactly its base draws times its slowdown; others are untouched."""
    who %= P
    base = compute_times(sp.Exponential(1.0), workers=P, clocks=C, seed=seed)
    slow = compute_times(sp.Exponential(1.0), workers=P, clocks=C, seed=seed, stragglers=(sp.Straggler(who, slowdown),))
    assert np.array_equal(slow[who], base[who] * slowdown)
    others = [p for p in range(P) if p != who]
    assert np.array_equal(slow[others], base[others])


@budget(0.75)
@given(seed=st.integers(0, 2**32), P=st.integers(1, 6), C=st.integers(1, 30))
def test_adding_a_worker_keeps_other_draws(seed: int, P: int, C: int) -> None:
    """Adding a worker (or clocks) does not change the other workers' compute-time draws."""
    small = compute_times(sp.LogNormal(1.0, 0.5), workers=P, clocks=C, seed=seed)
    big = compute_times(sp.LogNormal(1.0, 0.5), workers=P + 1, clocks=C + 5, seed=seed)
    assert np.array_equal(big[:P, :C], small)
    other = compute_times(sp.LogNormal(1.0, 0.5), workers=P, clocks=C, seed=seed + 1)
    assert not np.array_equal(other, small)


@pytest.mark.parametrize("probability,duration,factor", [(0.01, 5, 3.0), (0.05, 2, 10.0), (0.1, 1, 2.0)])
def test_transient_slowdowns(probability: float, duration: int, factor: float) -> None:
    """Transient slowdowns hit about probability*duration of iterations and multiply them by factor exactly."""
    P, C = 20, 10_000
    base = compute_times(sp.Exponential(1.0), workers=P, clocks=C, seed=5)
    tr = sp.Transient(probability=probability, factor=factor, duration=duration)
    slowed = compute_times(sp.Exponential(1.0), workers=P, clocks=C, seed=5, transient=tr)
    ratio = slowed / base
    hit = ~np.isclose(ratio, 1.0, rtol=0, atol=0)
    assert np.allclose(ratio[hit], factor, rtol=1e-12)  # slowed by exactly the factor, never compounded
    expected = 1 - (1 - probability) ** duration  # P(some start among the last `duration` iterations)
    assert hit.mean() == pytest.approx(expected, rel=0.1)
    assert hit.mean() == pytest.approx(probability * duration, rel=0.15)
    # slowdowns last `duration` iterations: every run of slowed iterations is at least that long (except at the end)
    for p in range(P):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], hit[p].astype(int), [0]])))
        lengths = edges[1::2] - edges[::2]
        ends = edges[1::2]
        assert (lengths[ends < C] >= duration).all()


def test_transient_streams_independent_of_base() -> None:
    """Switching transients on (or a zero probability) leaves the unslowed iterations' draws unchanged."""
    base = compute_times(sp.Exponential(1.0), workers=3, clocks=100, seed=9)
    none = compute_times(sp.Exponential(1.0), workers=3, clocks=100, seed=9, transient=sp.Transient(0.0, 5.0, 2))
    assert np.array_equal(base, none)


def test_trace_times_replayed() -> None:
    """Trace-driven times are the CSV values (first workers x clocks block), times the straggler slowdown."""
    times = np.arange(12, dtype=float).reshape(3, 4)
    model = sp.TraceTimes(file=None, times=times)  # type: ignore[arg-type]
    out = compute_times(model, workers=2, clocks=3, seed=0, stragglers=(sp.Straggler(1, 2.0),))
    assert np.array_equal(out, np.array([[0.0, 1.0, 2.0], [8.0, 10.0, 12.0]]))
    assert np.array_equal(times, np.arange(12, dtype=float).reshape(3, 4))  # the model is not modified


@pytest.mark.parametrize("raw", [
    {"kind": "constant", "value": 1.5},
    {"kind": "exponential", "mean": 2.0},
    {"kind": "shifted_exponential", "shift": 0.5, "mean": 1.0},
    {"kind": "lognormal", "mean": 1.0, "sigma": 0.8},
    {"kind": "pareto", "alpha": 3.0, "scale": 1.0},
    {"kind": "uniform", "low": 0.5, "high": 2.5},
])
def test_speed_dict_round_trip(raw: dict, tmp_path) -> None:
    """parse_speed and speed_to_dict are inverse for every drawn kind."""
    model = sp.parse_speed(raw, "workers.speed", tmp_path)
    assert sp.speed_to_dict(model) == raw
    assert sp.parse_speed(sp.speed_to_dict(model), "workers.speed", tmp_path) == model
