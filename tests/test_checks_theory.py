"""Theorem checks of Lian et al. 2015, Dai et al. 2015 and the Kumar et al. 2015 reconstruction.

For every check: an honest run where it holds, a run that breaks a premise (not_applicable, never
holds), and a broken run -- a doctored run directory or a mutated parameter server -- where it is
violated.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sspsim
from sspsim.proofs_check.dai2015 import EsspInconsistency, TailBound
from sspsim.proofs_check.evidence import RunData, SweepData
from sspsim.proofs_check.kumar2015 import LayerGradients, LayerwiseTracking, SameOptimum, WeightsInProbability
from sspsim.proofs_check.lian2015 import ErgodicRate
from sspsim.proofs_check.verdict import Outcome
from sspsim.server import ParameterServer

HOLDS, VIOLATED, NA = Outcome.HOLDS, Outcome.VIOLATED, Outcome.NOT_APPLICABLE


# -- helpers --------------------------------------------------------------------------------

def raw(kind: str = "logistic", *, P: int = 4, s: float | str = 2, clocks: int = 50, lr: float = 0.5,
        schedule: str = "inv_sqrt", policy: str = "eager", seed: int = 0, batch: int = 8, audit: bool = False,
        **problem) -> dict:
    prob = {"kind": kind, "samples": 500, "batch_size": batch, "seed": 1}
    if kind in ("logistic", "nonconvex"):
        prob["dim"] = 10
    if kind == "mlp":
        prob["hidden"] = [8]
    prob.update(problem)
    return {
        "run": {"seed": seed, "clocks": clocks, "audit": audit},
        "problem": prob,
        "optimizer": {"lr": lr, "schedule": schedule},
        "consistency": {"staleness": s, "read_policy": policy},
        "workers": {"count": P, "speed": {"kind": "exponential", "mean": 1.0}},
    }


def simulate(config: dict, out: Path, server: type[ParameterServer] = ParameterServer) -> RunData:
    sspsim.simulate(sspsim.config_from_dict(config), out, server_class=server)
    return RunData.load(out)


def seeds(config: dict, n: int, out: Path) -> SweepData:
    runs = []
    for seed in range(n):
        c = copy.deepcopy(config)
        c["run"]["seed"] = seed
        runs.append(simulate(c, out / f"seed={seed}"))
    return SweepData(out, runs)


def doctored(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# -- mutated parameter servers (normal bookkeeping, wrong parameters) -----------------------

class StaleReads(ParameterServer):
    """Reads return the server state of LAG commits ago while the trace reports a fresh read."""

    LAG = 200

    def __init__(self, x0, **kw):  # type: ignore[no-untyped-def]
        super().__init__(x0, **kw)
        self._history = [] if x0 is None else [np.array(x0, dtype=float)]

    def read(self, worker, *, copy=True):  # type: ignore[no-untyped-def]
        r = super().read(worker, copy=True)
        if r.params is None:
            return r
        return r._replace(params=self._history[max(0, len(self._history) - 1 - self.LAG)].copy())

    def commit(self, worker, direction):  # type: ignore[no-untyped-def]
        done = super().commit(worker, direction)
        if self.x is not None:
            self._history.append(self.x.copy())
        return done


class X0Reads(ParameterServer):
    """Reads drop every update (always x0) while reporting normal read sets."""

    def read(self, worker, *, copy=True):  # type: ignore[no-untyped-def]
        r = super().read(worker, copy=True)
        if r.params is None:
            return r
        return r._replace(params=self._snap_x0.copy())

    def __init__(self, x0, **kw):  # type: ignore[no-untyped-def]
        super().__init__(x0, **kw)
        self._snap_x0 = None if x0 is None else np.array(x0, dtype=float)


class NoisyReads(ParameterServer):
    """Reads carry noise that no update explains."""

    def read(self, worker, *, copy=True):  # type: ignore[no-untyped-def]
        r = super().read(worker, copy=True)
        if r.params is None:
            return r
        rng = np.random.default_rng(1000 * r.iteration + worker)
        return r._replace(params=r.params + 0.05 * rng.standard_normal(r.params.shape))


# -- Lian et al. 2015 -----------------------------------------------------------------------

LIAN = dict(kind="nonconvex", P=4, s=1, clocks=100, lr=0.5, schedule="constant", batch=16, audit=True)


def test_lian_holds_on_an_honest_run(tmp_path: Path) -> None:
    v = ErgodicRate().check(simulate(raw(**LIAN), tmp_path / "run"))
    assert v.outcome is HOLDS, v
    assert v.measured < v.bound
    assert "T = 8" in v.detail


def test_lian_holds_without_audit_through_the_replay(tmp_path: Path) -> None:
    v = ErgodicRate().check(simulate(raw(**{**LIAN, "audit": False}), tmp_path / "run"))
    assert v.outcome is HOLDS, v
    assert "replay" in v.detail


def test_lian_not_applicable_when_its_premises_fail(tmp_path: Path) -> None:
    big_step = ErgodicRate().check(simulate(raw(**{**LIAN, "lr": 5.0}), tmp_path / "big"))
    assert big_step.outcome is NA and "L gamma + 2 L^2 T^2 gamma^2 <= 1" in big_step.detail
    lazy = ErgodicRate().check(simulate(raw(**{**LIAN, "policy": "lazy"}), tmp_path / "lazy"))
    assert lazy.outcome is NA and "eager" in lazy.detail
    decaying = ErgodicRate().check(simulate(raw(**{**LIAN, "schedule": "inv_sqrt"}), tmp_path / "inv"))
    assert decaying.outcome is NA and "constant step" in decaying.detail
    mlp = ErgodicRate().check(simulate(raw("mlp", clocks=10, schedule="constant"), tmp_path / "mlp"))
    assert mlp.outcome is NA and "smoothness" in mlp.detail


def test_lian_violated_when_reads_are_staler_than_the_trace_claims(tmp_path: Path) -> None:
    # BSP bookkeeping (recorded delay T <= 7), but every read is the state of 200 commits ago.
    rd = simulate(raw(**{**LIAN, "P": 8, "s": 0, "lr": 0.3}), tmp_path / "run", StaleReads)
    v = ErgodicRate().check(rd)
    assert v.outcome is VIOLATED, v
    assert v.measured > v.bound  # bound = Theorem 1 + the 3-sigma realisation tolerance


# -- Dai et al. 2015: tail bound ------------------------------------------------------------

@pytest.fixture(scope="module")
def tail_sweep(tmp_path_factory: pytest.TempPathFactory) -> SweepData:
    return seeds(raw("logistic", P=4, s=2, clocks=50, lr=0.5, batch=1), 20, tmp_path_factory.mktemp("tail"))


def test_tail_bound_holds_over_seeds(tail_sweep: SweepData) -> None:
    v = TailBound().check(tail_sweep, n_runs=len(tail_sweep))
    assert v.outcome is HOLDS, v
    assert v.measured <= v.bound


def test_tail_bound_not_applicable_without_enough_seeds_or_a_fixed_stream(tail_sweep: SweepData, tmp_path: Path) -> None:
    few = TailBound().check(SweepData(tail_sweep.path, tail_sweep.runs[:5]))
    assert few.outcome is NA and ">= 20 runs" in few.detail
    const = seeds(raw("logistic", clocks=10, schedule="constant"), 20, tmp_path / "const")
    v = TailBound().check(const)
    assert v.outcome is NA and "inv_sqrt" in v.detail
    other = raw("logistic", clocks=10)
    del other["problem"]["seed"]
    v = TailBound().check(seeds(other, 20, tmp_path / "streams"))
    assert v.outcome is NA and "problem.seed" in v.detail


def test_tail_bound_violated_when_losses_are_inflated(tail_sweep: SweepData, tmp_path: Path) -> None:
    runs = []
    for rd in tail_sweep.runs:
        path = doctored(rd.path, tmp_path / rd.path.name)
        trace = pd.read_csv(path / "trace.csv")
        trace["loss"] += 30.0  # every f_t(x~_t) inflated: R/T far above the bound's centre
        trace.to_csv(path / "trace.csv", index=False)
        runs.append(RunData.load(path))
    v = TailBound().check(SweepData(tmp_path, runs))
    assert v.outcome is VIOLATED, v
    assert v.measured == 1.0


# -- Dai et al. 2015: ESSP ------------------------------------------------------------------

@pytest.fixture(scope="module")
def policy_sweep(tmp_path_factory: pytest.TempPathFactory) -> SweepData:
    out = tmp_path_factory.mktemp("policies")
    runs = [simulate(raw("logistic", P=4, s=2, clocks=40, policy=p, seed=k), out / f"{p}{k}")
            for k in (0, 1) for p in ("lazy", "push", "eager")]
    return SweepData(out, runs)


def test_essp_holds_for_lazy_push_pairs(policy_sweep: SweepData) -> None:
    v = EsspInconsistency().check(policy_sweep)
    assert v.outcome is HOLDS, v
    assert v.measured < v.bound
    assert "2 pair(s)" in v.detail  # seeds are not paired with each other


def test_essp_not_applicable_without_a_pair(policy_sweep: SweepData) -> None:
    eager = [rd for rd in policy_sweep.runs if rd.policy != "push"]
    v = EsspInconsistency().check(SweepData(policy_sweep.path, eager))
    assert v.outcome is NA and "lazy vs push" in v.detail


def test_essp_violated_by_a_push_trace_with_lowered_visible_clocks(policy_sweep: SweepData, tmp_path: Path) -> None:
    lazy, push = (next(rd for rd in policy_sweep.runs if rd.policy == p and rd.config.run.seed == 0) for p in ("lazy", "push"))
    path = doctored(push.path, tmp_path / "push")
    trace = pd.read_csv(path / "trace.csv")
    trace["visible_clock"] = np.maximum(0, trace["clock"] - 1 - 2 - 1)  # below the SSP guarantee
    trace["staleness"] = trace["clock"] - 1 - trace["visible_clock"]
    trace.to_csv(path / "trace.csv", index=False)
    v = EsspInconsistency().check(SweepData(tmp_path, [lazy, RunData.load(path)]))
    assert v.outcome is VIOLATED, v
    assert v.measured > v.bound


# -- Kumar et al. 2015 [X]: E1 same optimum -------------------------------------------------

def _e1_runs(out: Path) -> list[RunData]:
    cells = [(1, 0, 0), (4, 0, 0), (4, 2, 0), (4, 2, 1), (4, 2, 2)]
    return [simulate(raw("mlp", P=P, s=s, clocks=60, lr=1.0, seed=seed), out / f"P={P}_s={s}_seed={seed}")
            for P, s, seed in cells]


def test_same_optimum_holds_and_reports_runs_that_went_lower(tmp_path: Path) -> None:
    runs = _e1_runs(tmp_path)
    v = SameOptimum().check(SweepData(tmp_path, runs))
    assert v.outcome is HOLDS, v
    assert v.detail.startswith("reconstruction [X]")
    assert "0.1 x (initial - serial final)" in v.detail
    assert v.measured <= v.bound
    # without the serial reference there is nothing to compare with
    no_serial = SameOptimum().check(SweepData(tmp_path, [rd for rd in runs if rd.P > 1]))
    assert no_serial.outcome is NA and "workers.count = 1" in no_serial.detail


def test_same_optimum_not_applicable_without_math(tmp_path: Path) -> None:
    runs = [simulate(raw("none", P=P, clocks=10), tmp_path / f"P={P}") for P in (1, 4)]
    v = SameOptimum().check(SweepData(tmp_path, runs))
    assert v.outcome is NA and "objective" in v.detail


def test_same_optimum_violated_by_reads_that_drop_updates(tmp_path: Path) -> None:
    serial = simulate(raw("mlp", P=1, clocks=60, lr=1.0), tmp_path / "serial")
    broken = simulate(raw("mlp", P=4, s=2, clocks=60, lr=1.0), tmp_path / "x0reads", X0Reads)
    v = SameOptimum().check(SweepData(tmp_path, [serial, broken]))
    assert v.outcome is VIOLATED, v
    assert v.measured > v.bound


# -- E2 layerwise tracking (exact) ----------------------------------------------------------

@pytest.mark.parametrize("policy", ["eager", "lazy", "push"])
def test_layerwise_tracking_holds_exactly(policy: str, tmp_path: Path) -> None:
    rd = simulate(raw("mlp", P=4, s=2, clocks=30, lr=1.0, policy=policy, audit=True), tmp_path / "run")
    v = LayerwiseTracking().check(rd)
    assert v.outcome is HOLDS, v
    assert v.measured <= 1.0
    assert set(v.extra["slopes"]) == {"layer1", "layer2"}


def test_layerwise_tracking_flat_model_and_replay(tmp_path: Path) -> None:
    rd = simulate(raw("logistic", P=4, s=3, clocks=30, audit=False), tmp_path / "run")
    v = LayerwiseTracking().check(rd)
    assert v.outcome is HOLDS, v
    assert "replay" in v.detail and "all" in v.extra["slopes"]
    serial = LayerwiseTracking().check(simulate(raw("logistic", P=1, clocks=30, audit=True), tmp_path / "serial"))
    assert serial.outcome is HOLDS and serial.measured < 1e-3  # P = 1: every read is its reference state


def test_layerwise_tracking_not_applicable_without_parameters(tmp_path: Path) -> None:
    v = LayerwiseTracking().check(simulate(raw("none", clocks=10), tmp_path / "run"))
    assert v.outcome is NA and "math" in v.detail


def test_layerwise_tracking_violated_by_noisy_reads(tmp_path: Path) -> None:
    rd = simulate(raw("mlp", P=4, s=2, clocks=30, lr=1.0, audit=True), tmp_path / "run", NoisyReads)
    v = LayerwiseTracking().check(rd)
    assert v.outcome is VIOLATED, v
    assert "layer1" in v.detail and "layer2" in v.detail


def test_layerwise_tracking_violated_by_a_doctored_audit(tmp_path: Path) -> None:
    rd = simulate(raw("mlp", P=4, s=2, clocks=30, lr=1.0, audit=True), tmp_path / "run")
    path = doctored(rd.path, tmp_path / "doctored")
    audit = dict(np.load(path / "audit.npz"))
    audit["params"][50, rd.problem.layers[0].span] += 0.5  # one read of layer 1 off by far more than any update
    np.savez(path / "audit.npz", **audit)
    v = LayerwiseTracking().check(RunData.load(path))
    assert v.outcome is VIOLATED, v
    assert "1 read/layer pair(s)" in v.detail and "layer1" in v.detail


# -- E3 layer gradients ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def levelled_mlp(tmp_path_factory: pytest.TempPathFactory) -> RunData:
    return simulate(raw("mlp", P=4, s=2, clocks=150, lr=2.0), tmp_path_factory.mktemp("e3") / "run")


def test_layer_gradients_hold_on_a_levelled_run(levelled_mlp: RunData) -> None:
    v = LayerGradients().check(levelled_mlp)
    assert v.outcome is HOLDS, v
    assert v.measured < 1.0


def test_layer_gradients_not_applicable(tmp_path: Path) -> None:
    flat = LayerGradients().check(simulate(raw("logistic", clocks=20), tmp_path / "flat"))
    assert flat.outcome is NA and "layered model" in flat.detail
    # a sigmoid network still leaving its plateau: gradients rise for a while on an honest run
    young = LayerGradients().check(simulate(raw("mlp", clocks=60, lr=1.0, activation="sigmoid"), tmp_path / "young"))
    assert young.outcome is NA and "convergent phase" in young.detail


def test_layer_gradients_violated_by_doctored_evals(levelled_mlp: RunData, tmp_path: Path) -> None:
    path = doctored(levelled_mlp.path, tmp_path / "doctored")
    evals = pd.read_csv(path / "evals.csv")
    late = evals.index >= len(evals) // 2
    evals.loc[late, "grad_norm_layer1"] *= 10.0  # the second half made to diverge
    evals.loc[late, "objective"] = 3.0 * evals.loc[0, "objective"]
    evals.to_csv(path / "evals.csv", index=False)
    v = LayerGradients().check(RunData.load(path))
    assert v.outcome is VIOLATED, v
    assert v.detail.startswith("reconstruction [X]: diverged") and v.measured > 1.0
    evals.loc[len(evals) - 1, "grad_norm_layer2"] = np.nan
    evals.to_csv(path / "evals.csv", index=False)
    assert "non-finite" in LayerGradients().check(RunData.load(path)).detail


def test_layer_gradients_violated_by_a_diverging_run(tmp_path: Path) -> None:
    with np.errstate(all="ignore"):
        rd = simulate(raw("mlp", P=4, s=2, clocks=60, lr=100.0), tmp_path / "run")
    v = LayerGradients().check(rd)
    assert v.outcome is VIOLATED, v
    assert v.detail.startswith("reconstruction [X]: diverged")


# -- E4 weights in probability --------------------------------------------------------------

@pytest.fixture(scope="module")
def e4_sweep(tmp_path_factory: pytest.TempPathFactory) -> SweepData:
    return seeds(raw("mlp", P=4, s=2, clocks=60, lr=1.0, audit=True), 10, tmp_path_factory.mktemp("e4"))


def test_weights_in_probability_holds(e4_sweep: SweepData) -> None:
    v = WeightsInProbability().check(e4_sweep)
    assert v.outcome is HOLDS, v
    assert "median of the first window" in v.detail
    for layer in v.extra["layers"].values():
        assert all(p <= m + 1e-12 for p, m in zip(layer["p"], layer["markov"]))


def test_weights_in_probability_not_applicable(e4_sweep: SweepData, tmp_path: Path) -> None:
    few = WeightsInProbability().check(SweepData(e4_sweep.path, e4_sweep.runs[:4]))
    assert few.outcome is NA and ">= 10 runs" in few.detail
    const = seeds(raw("logistic", clocks=20, schedule="constant", audit=True), 10, tmp_path / "const")
    v = WeightsInProbability().check(const)
    assert v.outcome is NA and "inv_sqrt" in v.detail


def test_weights_in_probability_violated_by_late_reads_far_from_the_reference(e4_sweep: SweepData, tmp_path: Path) -> None:
    runs = []
    for rd in e4_sweep.runs:
        path = doctored(rd.path, tmp_path / rd.path.name)
        audit = dict(np.load(path / "audit.npz"))
        late = rd.t_index > 0.85 * rd.t_index.max()
        audit["params"][late] += 1.0
        np.savez(path / "audit.npz", **audit)
        runs.append(RunData.load(path))
    v = WeightsInProbability().check(SweepData(tmp_path, runs))
    assert v.outcome is VIOLATED, v
    assert "rises" in v.detail and "Markov" in v.detail
