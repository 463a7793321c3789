"""Speed models, stragglers and transient slowdowns (sspsim.speeds)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sspsim
from sspsim import speeds as sp
from sspsim.fields import Num, spec
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


@pytest.mark.parametrize("model", [m for m, _ in MODELS], ids=lambda v: v.kind)
def test_cdf_matches_draws(model: sp.SpeedModel) -> None:
    """Each model's own CDF agrees with its draws (Kolmogorov distance below 0.02) on its support."""
    F, lo, hi = model.cdf()
    x = np.sort(model.draw(np.random.default_rng(3), 20_000))
    assert x.min() >= lo and x.max() <= hi
    points = x[::97]
    empirical = np.searchsorted(x, points, side="right") / x.size  # fraction of draws <= each point
    assert max(abs(F(v) - e) for v, e in zip(points, empirical)) < 0.02


def test_models_without_a_distribution_say_so() -> None:
    with pytest.raises(TypeError, match="trace"):
        sp.TraceTimes(file=None, times=np.ones((1, 1))).cdf()  # type: ignore[arg-type]
    assert sp.Constant(2.0).constant_value == 2.0 and sp.Uniform(1.0, 1.0).constant_value == 1.0
    assert sp.Exponential(1.0).constant_value is None


# -- a new speed model: one class, defined here and nowhere else ---------------------------------


@pytest.fixture
def erlang2() -> Iterator[type[sp.SpeedModel]]:
    """Erlang-2 times: the sum of two independent exponentials of mean ``mean / 2`` each."""

    @dataclass(frozen=True)
    class Erlang2(sp.SpeedModel):
        """Erlang-2 times with the given ``mean``: F(x) = 1 - e^{-x/t} (1 + x/t), t = mean / 2."""

        mean: float = spec(rule=Num(0.0, strict=True), doc="mean seconds per iteration")
        kind = "erlang2"

        def cdf(self) -> tuple[Callable[[float], float], float, float]:
            t = self.mean / 2.0
            return (lambda x: -math.expm1(-x / t) - (x / t) * math.exp(-x / t) if x > 0 else 0.0), 0.0, math.inf

        def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
            return rng.gamma(2.0, self.mean / 2.0, n)

        @classmethod
        def tables(cls, st: Any, max_mean: float) -> Any:
            return st.builds(lambda m: {"kind": cls.kind, "mean": m}, st.floats(0.05, max_mean))

    yield Erlang2
    del sp.SPEED_MODELS["erlang2"]


def test_new_speed_model_is_one_class(erlang2: type[sp.SpeedModel], tmp_path: Path) -> None:
    """A model defined only here parses from TOML, is checked, written back, has a mean and a CDF that
    the Dutta runtime check integrates, appears in the JSON Schema, and is drawn by sspsim.testing."""
    from hypothesis import Phase, settings

    from sspsim.proofs_check.dutta2018 import expected_max
    from sspsim.testing import configs, drawable_speed_kinds, speed_models

    path = tmp_path / "c.toml"
    path.write_text('[problem]\nkind = "none"\n[workers]\ncount = 2\nspeed = { kind = "erlang2", mean = 2.0 }\n')
    config = sspsim.load_config(path)
    assert isinstance(config.workers.speed, erlang2) and config.workers.speed.mean == 2.0
    assert config.to_dict()["workers"]["speed"] == {"kind": "erlang2", "mean": 2.0}
    assert sspsim.config_from_dict(config.to_dict()) == config
    with pytest.raises(sspsim.ConfigError, match=r"^workers\.speed\.mean = -1: must be > 0$"):
        sspsim.load_config(path, ["workers.speed.mean=-1"])
    with pytest.raises(sspsim.ConfigError, match=r"^workers\.speed\.mean = -1\.0: must be > 0$"):
        sspsim.Config(workers=sspsim.config.WorkersConfig(speed=erlang2(-1.0)))  # type: ignore[call-arg]

    times = compute_times(config.workers.speed, workers=2, clocks=50_000, seed=1)
    assert times.mean() == pytest.approx(2.0, rel=0.02)
    e2, how = expected_max(config.workers.speed, np.ones(2))
    assert how == "numerical order-statistic integral"
    assert e2 == pytest.approx(times.max(axis=0).mean(), rel=0.02)  # E[max of 2] by the CDF vs by the draws
    assert expected_max(config.workers.speed, np.ones(1))[0] == pytest.approx(2.0, rel=1e-8)

    schema = sspsim.config.json_schema()["properties"]["workers"]["properties"]["speed"]["oneOf"]
    assert {"kind": {"enum": ["erlang2"]}, "mean": {"type": "number", "exclusiveMinimum": 0.0,
                                                     "description": "mean seconds per iteration"}} in [b["properties"] for b in schema]

    assert "erlang2" in drawable_speed_kinds()
    quick = settings(database=None, max_examples=60, phases=[Phase.generate], derandomize=True)
    seen: set[str] = set()

    @quick
    @given(speed_models())
    def tables(table: dict[str, Any]) -> None:
        seen.add(table["kind"])
        if table["kind"] == "erlang2":
            assert 0.05 <= table["mean"] <= 3.0

    @quick
    @given(configs(speed_kinds=("erlang2",), max_workers=2, max_clocks=2))
    def drawn(config: sspsim.Config) -> None:
        assert isinstance(config.workers.speed, erlang2)

    tables()
    drawn()
    assert "erlang2" in seen


def test_speed_kinds_are_unique() -> None:
    """A second class cannot take a kind that is already registered."""
    with pytest.raises(TypeError, match="'exponential' is taken by Exponential"):
        class Again(sp.SpeedModel):
            kind = "exponential"
