"""Runtime and delay checks: Dutta et al. 2018 (runtime table, SSP limits), Zhang et al. 2016
(async staleness law) and the delayed-gradient facts (stability threshold, stationary loss).

Each check is shown to hold on honest runs, to be not_applicable when its premise fails, and to
be violated on a doctored trace or a mutated scheduler.  Seeds are fixed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sspsim
from sspsim import speeds as sp
from sspsim.proofs_check.delayed import StabilityThreshold, StationaryLoss, stationary_excess, threshold
from sspsim.proofs_check.dutta2018 import AsyncRuntime, SSPRuntime, SyncRuntime, expected_max
from sspsim.proofs_check.evidence import RunData, SweepData
from sspsim.proofs_check.zhang2016 import AsyncStalenessLaw, geometric_gof
from sspsim.server import ParameterServer
from sspsim.ssp import INF, ClockTable

EXP = {"kind": "exponential", "mean": 1.0}


# -- helpers ----------------------------------------------------------------------------------


def timing(P: int = 4, clocks: int = 1000, s: Any = 0, speed: dict | None = None, seed: int = 1, **more: Any) -> dict:
    """A timing-only config (problem.kind = none)."""
    raw: dict = {
        "run": {"seed": seed, "clocks": clocks},
        "problem": {"kind": "none"},
        "consistency": {"staleness": s},
        "workers": {"count": P, "speed": speed or EXP},
        "network": {"latency": more.pop("latency", 0.01)},
    }
    for key, value in more.items():
        section, _, name = key.partition("__")
        raw.setdefault(section, {})[name] = value
    return raw


def simulate(tmp_path: Path, name: str, raw: dict, server_class: type[ParameterServer] = ParameterServer) -> RunData:
    sspsim.simulate(sspsim.config_from_dict(raw, base_dir=tmp_path), tmp_path / name, server_class=server_class)
    return RunData.load(tmp_path / name)


def doctor(rd: RunData, edit: Callable[[pd.DataFrame], None]) -> RunData:
    """Edit the run directory's trace.csv in place and reload it."""
    path = rd.path / "trace.csv"
    df = pd.read_csv(path)
    edit(df)
    df.to_csv(path, index=False)
    return RunData.load(rd.path)


def staggered(tmp_path: Path, name: str, P: int, clocks: int, lr: float, *, noise: float = 0.0, dim: int = 1,
              eval_every: int | None = None, batch: int = 1, seed: int = 0,
              server_class: type[ParameterServer] = ParameterServer, speed: dict | None = None, **more: Any) -> RunData:
    """ASP on the quadratic with deterministic staggered workers: worker p's first iteration takes
    1 + p/P, every later one 1.0, so every update after the first round has delay P - 1."""
    times = np.ones((P, clocks))
    times[:, 0] = 1.0 + np.arange(P) / P
    np.savetxt(tmp_path / f"{name}.csv", times, delimiter=",")
    raw: dict = {
        "run": {"seed": seed, "clocks": clocks},
        "problem": {"kind": "quadratic", "noise": noise, "dim": dim, "batch_size": batch, "samples": 2000},
        "optimizer": {"lr": lr, "schedule": "constant"},
        "consistency": {"staleness": "inf"},
        "workers": {"count": P, "speed": speed or {"kind": "trace", "file": f"{name}.csv"}},
    }
    if eval_every is not None:
        raw["run"]["eval_every"] = eval_every
    for key, value in more.items():
        section, _, field = key.partition("__")
        raw.setdefault(section, {})[field] = value
    return simulate(tmp_path, name, raw, server_class)


def outcome(theorem: Any, evidence: Any) -> str:
    return theorem.check(evidence).outcome.value


# -- mutated schedulers ------------------------------------------------------------------------


class NoGate(ParameterServer):
    """Ignores the gate: every worker runs free whatever s says."""

    def __init__(self, x0, *, workers, staleness, read_policy, step, **kw):  # type: ignore[no-untyped-def]
        super().__init__(x0, workers=workers, staleness=staleness, read_policy=read_policy, step=step, **kw)
        self.table = ClockTable(workers, INF)


class WaitingAsync(ParameterServer):
    """Async learners that wait for everyone's update (a BSP gate under an ASP config)."""

    def __init__(self, x0, *, workers, staleness, read_policy, step, **kw):  # type: ignore[no-untyped-def]
        super().__init__(x0, workers=workers, staleness=staleness, read_policy=read_policy, step=step, **kw)
        self.table = ClockTable(workers, 0)


class MissingLast(ParameterServer):
    """Eager reads silently lack the most recent committed update (the bookkeeping still claims it)."""

    _last: np.ndarray | None = None

    def commit(self, worker, direction):  # type: ignore[no-untyped-def]
        done = super().commit(worker, direction)
        self._last = done.update
        return done

    def read(self, worker, *, copy=True):  # type: ignore[no-untyped-def]
        got = super().read(worker, copy=copy)
        if self._last is not None and got.params is not None:
            got = got._replace(params=got.params - self._last)
        return got


# -- Dutta et al. 2018: E[max] -----------------------------------------------------------------


def test_expected_max_integral_matches_closed_forms() -> None:
    P = 5
    H = sum(1.0 / i for i in range(1, P + 1))
    # numerical path forced by scales that differ in the last digits
    nearly = np.ones(P) * (1 + 1e-12 * np.arange(P))
    assert expected_max(sp.Exponential(2.0), np.ones(P))[0] == pytest.approx(2.0 * H, rel=1e-12)
    assert expected_max(sp.Exponential(2.0), nearly)[0] == pytest.approx(2.0 * H, rel=1e-8)
    assert expected_max(sp.ShiftedExponential(0.5, 0.3), nearly)[0] == pytest.approx(0.5 + 0.3 * H, rel=1e-8)
    assert expected_max(sp.Uniform(0.0, 1.0), np.ones(P))[0] == pytest.approx(P / (P + 1), rel=1e-9)
    a = 4.0  # E[max of P Pareto(a, 1)] = Gamma(P+1) Gamma(1-1/a) / Gamma(P+1-1/a)
    exact = math.gamma(P + 1) * math.gamma(1 - 1 / a) / math.gamma(P + 1 - 1 / a)
    assert expected_max(sp.Pareto(a, 1.0), np.ones(P))[0] == pytest.approx(exact, rel=1e-8)
    assert expected_max(sp.LogNormal(1.5, 0.8), np.ones(1))[0] == pytest.approx(1.5, rel=1e-8)
    assert expected_max(sp.Constant(2.0), np.array([1.0, 3.0]))[0] == 6.0
    # one slow worker: E[max(Exp(4), Exp(1))] = 4 + 1 - 1/(1/4 + 1)
    assert expected_max(sp.Exponential(1.0), np.array([4.0, 1.0]))[0] == pytest.approx(5 - 0.8, rel=1e-8)


# -- Dutta et al. 2018: synchronous -----------------------------------------------------------

SPEEDS = [
    EXP,
    {"kind": "shifted_exponential", "shift": 0.5, "mean": 0.3},
    {"kind": "lognormal", "mean": 1.0, "sigma": 0.7},
    {"kind": "pareto", "alpha": 4.0, "scale": 1.0},
    {"kind": "uniform", "low": 0.5, "high": 1.5},
    {"kind": "constant", "value": 1.0},
]


@pytest.mark.parametrize("speed", SPEEDS, ids=lambda s: s["kind"])
@pytest.mark.parametrize("stragglers", [[], [{"worker": 0, "slowdown": 3.0}]], ids=["iid", "straggler"])
def test_sync_runtime_holds(tmp_path: Path, speed: dict, stragglers: list) -> None:
    rd = simulate(tmp_path, "run", timing(speed=speed, workers__stragglers=stragglers))
    v = SyncRuntime().check(rd)
    assert v.outcome.value == "holds", v
    assert 0.95 < v.ratio < 1.05
    assert v.extra["ci_half_width"] < 0.08 * v.bound


@pytest.mark.parametrize("change, why", [
    ({"s": 1}, "s = 0"),
    ({"workers__transient": {"probability": 0.1, "factor": 3.0, "duration": 2}}, "transient"),
    ({"network__apply_time": 0.01}, "apply_time"),
    ({"clocks": 20}, "at least 30"),
    ({"speed": {"kind": "pareto", "alpha": 2.5, "scale": 1.0}}, "third moment"),
])
def test_sync_runtime_not_applicable(tmp_path: Path, change: dict, why: str) -> None:
    rd = simulate(tmp_path, "run", timing(**change))
    v = SyncRuntime().check(rd)
    assert v.outcome.value == "not_applicable" and why in v.detail, v


def test_sync_runtime_not_applicable_for_trace_speeds(tmp_path: Path) -> None:
    np.savetxt(tmp_path / "times.csv", np.ones((4, 40)), delimiter=",")
    rd = simulate(tmp_path, "run", timing(clocks=40, speed={"kind": "trace", "file": "times.csv"}))
    v = SyncRuntime().check(rd)
    assert v.outcome.value == "not_applicable" and "trace" in v.detail


def test_sync_runtime_violated_by_doctored_commit_times(tmp_path: Path) -> None:
    rd = simulate(tmp_path, "run", timing())
    assert outcome(SyncRuntime(), rd) == "holds"

    def later(df: pd.DataFrame) -> None:  # every clock takes 0.1 s longer than the draws say
        df["commit_time"] += 0.1 * df["clock"]

    v = SyncRuntime().check(doctor(rd, later))
    assert v.outcome.value == "violated" and "outside the 99% CI" in v.detail


def test_sync_runtime_violated_without_gate(tmp_path: Path) -> None:
    rd = simulate(tmp_path, "run", timing(clocks=400), server_class=NoGate)
    v = SyncRuntime().check(rd)
    assert v.outcome.value == "violated", v
    assert v.measured < v.bound  # free-running workers beat the synchronous E[max]


# -- Dutta et al. 2018: asynchronous ----------------------------------------------------------


@pytest.mark.parametrize("speed, stragglers", [
    (EXP, []),
    (EXP, [{"worker": 1, "slowdown": 4.0}]),
    ({"kind": "pareto", "alpha": 4.0, "scale": 0.5}, []),
    ({"kind": "constant", "value": 1.0}, [{"worker": 0, "slowdown": 2.0}]),
])
def test_async_runtime_holds(tmp_path: Path, speed: dict, stragglers: list) -> None:
    rd = simulate(tmp_path, "run", timing(s="inf", speed=speed, workers__stragglers=stragglers))
    v = AsyncRuntime().check(rd)
    assert v.outcome.value == "holds", v
    assert 0.97 < v.ratio < 1.03 and v.extra["max_wait"] == 0.0


def test_async_runtime_not_applicable(tmp_path: Path) -> None:
    v = AsyncRuntime().check(simulate(tmp_path, "ssp", timing(s=3, clocks=100)))
    assert v.outcome.value == "not_applicable" and "s = inf" in v.detail
    v = AsyncRuntime().check(simulate(tmp_path, "short", timing(s="inf", clocks=10)))
    assert v.outcome.value == "not_applicable" and "at least 30" in v.detail


def test_async_runtime_violated_when_learners_wait(tmp_path: Path) -> None:
    rd = simulate(tmp_path, "run", timing(s="inf", clocks=300), server_class=WaitingAsync)
    v = AsyncRuntime().check(rd)
    assert v.outcome.value == "violated" and "waited" in v.detail, v


def test_async_runtime_violated_by_doctored_times(tmp_path: Path) -> None:
    rd = simulate(tmp_path, "run", timing(s="inf"))
    assert outcome(AsyncRuntime(), rd) == "holds"

    def slower(df: pd.DataFrame) -> None:  # the whole run 10% slower than its draws
        for col in ("read_time", "start_time", "commit_time"):
            df[col] *= 1.1

    v = AsyncRuntime().check(doctor(rd, slower))
    assert v.outcome.value == "violated" and "outside the 99% CI" in v.detail, v


# -- SSP runtime over a sweep -----------------------------------------------------------------


def sweep(tmp_path: Path, values: tuple = (0, 1, 3, "inf"), servers: dict | None = None, **more: Any) -> SweepData:
    runs = []
    for s in values:
        server = (servers or {}).get(s, ParameterServer)
        runs.append(simulate(tmp_path, f"s{s}", timing(s=s, clocks=400, **more), server))
    return SweepData(tmp_path, runs)


def test_ssp_runtime_holds(tmp_path: Path) -> None:
    data = sweep(tmp_path, workers__stragglers=[{"worker": 0, "slowdown": 2.0}])
    v = SSPRuntime().check(data)
    assert v.outcome.value == "holds", v
    tpc = v.extra["groups"][0]["time_per_clock"]
    assert tpc[0] > tpc[-1]  # BSP strictly slower than ASP here
    assert v.extra["min_lower_margin"] >= 1.0 - 1e-9  # ASP with a straggler: exactly its own work
    assert "bsp" in v.extra["groups"][0]


def test_ssp_runtime_not_applicable(tmp_path: Path) -> None:
    one = simulate(tmp_path, "one", timing(s=1, clocks=100))
    other = simulate(tmp_path, "other", timing(s=2, clocks=100, seed=7))  # other draws: not comparable
    v = SSPRuntime().check(SweepData(tmp_path, [one, other]))
    assert v.outcome.value == "not_applicable" and "differ only in consistency.staleness" in v.detail


def test_ssp_runtime_violated_by_doctored_trace(tmp_path: Path) -> None:
    data = sweep(tmp_path)
    assert outcome(SSPRuntime(), data) == "holds"

    def slower(df: pd.DataFrame) -> None:
        df["commit_time"] *= 1.5

    runs = [doctor(r, slower) if r.s == 3 else r for r in data.runs]
    v = SSPRuntime().check(SweepData(tmp_path, runs))
    assert v.outcome.value == "violated" and "rose" in v.detail, v


def test_ssp_runtime_violated_below_own_work(tmp_path: Path) -> None:
    data = sweep(tmp_path, values=(0, 2))

    def heavier(df: pd.DataFrame) -> None:  # claims more compute than the schedule had time for
        df["compute_time"] *= 3.0

    runs = [doctor(r, heavier) if r.s == 2 else r for r in data.runs]
    v = SSPRuntime().check(SweepData(tmp_path, runs))
    assert v.outcome.value == "violated" and "own work" in v.detail, v


def test_ssp_runtime_violated_by_ungated_bsp(tmp_path: Path) -> None:
    v = SSPRuntime().check(sweep(tmp_path, values=(0, 1), servers={0: NoGate}))
    assert v.outcome.value == "violated", v


# -- Zhang et al. 2016: staleness law ----------------------------------------------------------


def test_geometric_gof_accepts_geometric_rejects_constant() -> None:
    rng = np.random.default_rng(0)
    P = 4
    samples = rng.geometric(1 / P, 2000) - 1  # numpy's geometric counts trials from 1
    assert geometric_gof(samples, P)[0] > 0.01
    assert geometric_gof(np.full(2000, P - 1), P)[0] < 1e-10


@pytest.mark.parametrize("P, speed, latency", [
    (4, EXP, 0.0),
    (8, EXP, 0.0),
    (4, EXP, 0.05),
    (2, {"kind": "shifted_exponential", "shift": 0.9, "mean": 0.1}, 0.0),
    (4, {"kind": "uniform", "low": 0.5, "high": 1.5}, 0.0),
    (6, {"kind": "lognormal", "mean": 1.0, "sigma": 0.5}, 0.01),
])
def test_async_staleness_law_holds(tmp_path: Path, P: int, speed: dict, latency: float) -> None:
    rd = simulate(tmp_path, "run", timing(P=P, s="inf", clocks=500, speed=speed, latency=latency))
    v = AsyncStalenessLaw().check(rd)
    assert v.outcome.value == "holds", v
    assert v.bound == P - 1 and abs(v.measured - (P - 1)) < 0.05 * P
    geometric = speed is EXP and latency == 0
    assert ("p_value" in v.extra) == geometric
    if geometric:
        assert v.extra["tv_distance"] < 0.05


@pytest.mark.parametrize("change, why", [
    ({"speed": {"kind": "constant", "value": 1.0}}, "deterministic"),
    ({"s": 3}, "s = inf"),
    ({"consistency__read_policy": "push"}, "eager"),
    ({"workers__stragglers": [{"worker": 0, "slowdown": 2.0}]}, "stragglers"),
    ({"network__apply_time": 0.01}, "apply_time"),
    ({"clocks": 20}, "at least 200"),
])
def test_async_staleness_law_not_applicable(tmp_path: Path, change: dict, why: str) -> None:
    raw = timing(**{"s": "inf", "clocks": 300, "latency": 0.0, **change})
    v = AsyncStalenessLaw().check(simulate(tmp_path, "run", raw))
    assert v.outcome.value == "not_applicable" and why in v.detail, v


def test_async_staleness_law_violated_by_miscounted_versions(tmp_path: Path) -> None:
    rd = simulate(tmp_path, "run", timing(s="inf", clocks=500, latency=0.0))
    assert outcome(AsyncStalenessLaw(), rd) == "holds"

    def off_by_one(df: pd.DataFrame) -> None:  # counts the update's own version as missed
        df["update_staleness"] += 1

    v = AsyncStalenessLaw().check(doctor(rd, off_by_one))
    assert v.outcome.value == "violated" and "outside the 99% CI" in v.detail, v


def test_async_staleness_law_violated_by_wrong_distribution(tmp_path: Path) -> None:
    rd = simulate(tmp_path, "run", timing(s="inf", clocks=500, latency=0.0))

    def flattened(df: pd.DataFrame) -> None:  # the right mean, the wrong law
        df["update_staleness"] = 3

    v = AsyncStalenessLaw().check(doctor(rd, flattened))
    assert v.outcome.value == "violated" and "geometric" in v.detail, v
    assert v.measured == 3.0 and v.extra["p_value"] < 1e-3


# -- delayed gradient descent: stability threshold --------------------------------------------


def test_threshold_values() -> None:
    assert [round(threshold(t), 3) for t in (0, 1, 3, 7)] == [2.0, 1.0, 0.445, 0.209]


def test_staggered_workers_have_constant_delay(tmp_path: Path) -> None:
    for P in (2, 4):
        rd = staggered(tmp_path, f"p{P}", P, 50, 0.1)
        tau = rd.trace["update_staleness"].to_numpy()
        assert (tau[P:] == P - 1).all()
        assert tau[:P].tolist() == list(range(P))


@pytest.mark.parametrize("P, lr", [(2, 0.8), (2, 1.1), (4, 0.4), (4, 0.5), (1, 1.8), (1, 2.2)])
def test_stability_threshold_holds(tmp_path: Path, P: int, lr: float) -> None:
    rd = staggered(tmp_path, "run", P, 400 // P, lr)
    v = StabilityThreshold().check(rd)
    assert v.outcome.value == "holds", v
    assert v.measured == lr and v.bound == pytest.approx(threshold(P - 1))
    assert ("converged" in v.detail) == (lr < threshold(P - 1))


def test_stability_threshold_not_applicable(tmp_path: Path) -> None:
    v = StabilityThreshold().check(staggered(tmp_path, "exp", 2, 100, 0.5, speed=EXP))
    assert v.outcome.value == "not_applicable" and "delay not constant" in v.detail
    v = StabilityThreshold().check(staggered(tmp_path, "noisy", 2, 100, 0.5, noise=1.0))
    assert v.outcome.value == "not_applicable" and "noise" in v.detail
    v = StabilityThreshold().check(staggered(tmp_path, "close", 2, 100, 0.99))
    assert v.outcome.value == "not_applicable" and "too close" in v.detail
    v = StabilityThreshold().check(staggered(tmp_path, "short", 2, 10, 0.8))
    assert v.outcome.value == "not_applicable" and "too short" in v.detail
    v = StabilityThreshold().check(staggered(tmp_path, "sqrt", 2, 100, 0.8, optimizer__schedule="inv_sqrt"))
    assert v.outcome.value == "not_applicable" and "constant step" in v.detail


def test_stability_threshold_violated_by_reads_missing_an_update(tmp_path: Path) -> None:
    # tau = 1 on paper (threshold 1), tau = 2 in the math (threshold 0.618): a = 0.8 diverges
    rd = staggered(tmp_path, "run", 2, 100, 0.8, server_class=MissingLast)
    assert (rd.trace["update_staleness"].to_numpy()[2:] == 1).all()
    v = StabilityThreshold().check(rd)
    assert v.outcome.value == "violated" and "diverged" in v.detail, v


def test_stability_threshold_violated_by_doctored_delay(tmp_path: Path) -> None:
    rd = staggered(tmp_path, "run", 2, 100, 0.8)

    def claims_tau_2(df: pd.DataFrame) -> None:
        df.loc[2:, "update_staleness"] = 2

    v = StabilityThreshold().check(doctor(rd, claims_tau_2))
    assert v.outcome.value == "violated" and v.bound == pytest.approx(threshold(2)), v


# -- delayed gradient descent: stationary loss ------------------------------------------------


def test_stationary_excess_formula() -> None:
    eta, h, v = 0.3, 2.0, 0.7
    assert stationary_excess(eta * h, eta, h, 0, v) == pytest.approx(eta * v / (2 * (2 - eta * h)), rel=1e-12)
    assert stationary_excess(0.2, 0.2, 1.0, 3) == pytest.approx(0.1082, abs=5e-5)  # theorems.md §7.1
    rng = np.random.default_rng(0)  # Monte Carlo of y_{k+1} = y_k - a y_{k-2} - eta e_k
    a, tau, n = 0.3, 2, 200_000
    e = rng.standard_normal(n)
    y = np.zeros(n + tau + 1)
    for k in range(n):
        y[k + tau + 1] = y[k + tau] - a * y[k] - (a / h) * e[k]  # eta = a / h
    mc = 0.5 * h * np.mean(y[5000:] ** 2)
    assert mc == pytest.approx(stationary_excess(a, a / h, h, tau), rel=0.03)


def test_stationary_loss_holds(tmp_path: Path) -> None:
    rd = staggered(tmp_path, "run", 4, 1000, 0.2, noise=1.0, dim=20, eval_every=1)
    v = StationaryLoss().check(rd)
    assert v.outcome.value == "holds", v
    assert v.extra["tau"] == 3 and 0.9 < v.ratio < 1.1
    per_coord = v.extra["stationary"] / 20 / (rd.problem.sample_noise_variance / 1)
    assert per_coord == pytest.approx(0.1082, abs=5e-5)


def test_stationary_loss_holds_without_delay(tmp_path: Path) -> None:
    rd = staggered(tmp_path, "run", 1, 3000, 0.5, noise=1.0, dim=5, eval_every=1, batch=4,
                   problem__curvature=2.0)
    v = StationaryLoss().check(rd)
    assert v.outcome.value == "holds", v
    vbar = rd.problem.sample_noise_variance / 4
    assert v.extra["stationary"] == pytest.approx(5 * 0.5 * vbar / (2 * (2 - 1.0)), rel=1e-10)


def test_stationary_loss_not_applicable(tmp_path: Path) -> None:
    v = StationaryLoss().check(staggered(tmp_path, "exact", 2, 200, 0.5, eval_every=1))
    assert v.outcome.value == "not_applicable" and "noise = 0" in v.detail
    v = StationaryLoss().check(staggered(tmp_path, "sparse", 2, 200, 0.5, noise=1.0))
    assert v.outcome.value == "not_applicable" and "evaluations" in v.detail
    v = StationaryLoss().check(staggered(tmp_path, "unstable", 2, 200, 1.2, noise=1.0, eval_every=1))
    assert v.outcome.value == "not_applicable" and "threshold" in v.detail


def test_stationary_loss_violated_by_reads_missing_an_update(tmp_path: Path) -> None:
    # tau = 3 on paper, 4 in the math: stationary 0.1445 instead of 0.1082 per unit variance
    rd = staggered(tmp_path, "run", 4, 1000, 0.2, noise=1.0, dim=20, eval_every=1, server_class=MissingLast)
    v = StationaryLoss().check(rd)
    assert v.outcome.value == "violated" and v.measured > v.bound, v
