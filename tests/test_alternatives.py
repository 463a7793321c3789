"""The round-based alternatives to SSP (DESIGN §Consistency models): K-sync, K-batch-sync, local SGD.

Their runtime laws (Dutta et al. 2018) are checked against the simulator over a few thousand
rounds, and each law's check is shown to catch a broken round server (mutants) while holding on
its honest twin.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sspsim
from sspsim import speeds as sp
from sspsim.config import config_from_dict
from sspsim.errors import ConfigError
from sspsim.proofs_check.dutta2018 import KBatchSyncRuntime, KSyncRuntime, expected_kth, expected_max
from sspsim.proofs_check.evidence import RunData
from sspsim.rundir import read_run
from sspsim.sim.plan import Alternative, plan
from sspsim.sim.rounds import RoundServer
from sspsim.trace import TRACE_COLUMNS

P = 8
HOLDS, VIOLATED, NA = "holds", "violated", "not_applicable"


def _config(consistency: dict[str, Any], *, clocks: int = 3000, kind: str = "none", workers: dict | None = None,
            **sections: Any):  # type: ignore[no-untyped-def]
    raw: dict[str, Any] = {"run": {"clocks": clocks, "seed": 3}, "problem": {"kind": kind},
                           "workers": {"count": P, **(workers or {})}, "consistency": consistency, **sections}
    return config_from_dict(raw)


def _verdict(theorem, run) -> tuple[str, Any]:  # type: ignore[no-untyped-def]
    v = theorem.check(RunData.from_run(run))
    return v.outcome.value, v


def _harmonic(n: int) -> float:
    return float(sum(1.0 / i for i in range(1, n + 1)))


# -- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("consistency", "field"), [
    ({"model": "ksync"}, "consistency.k"),
    ({"model": "kbatch_sync"}, "consistency.k"),
    ({"model": "local_sgd"}, "consistency.period"),
    ({"model": "ksync", "k": P + 1}, "consistency.k"),
    ({"model": "ksync", "k": 0}, "consistency.k"),
    ({"model": "bsp"}, "consistency.model"),
])
def test_bad_alternatives_are_refused_naming_the_field(consistency: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        _config(consistency)
    assert str(err.value).startswith(field) and "\n" not in str(err.value)


def test_round_models_refuse_audit_and_the_batch_engine() -> None:
    with pytest.raises(ConfigError, match=r"run\.audit"):
        config_from_dict({"consistency": {"model": "ksync", "k": 2}, "run": {"audit": True}})
    with pytest.raises(ConfigError, match=r"run\.engine"):
        config_from_dict({"consistency": {"model": "ksync", "k": 2}, "run": {"engine": "batch"}, "problem": {"kind": "none"}})


def test_ssp_stays_the_default_and_the_model_round_trips() -> None:
    assert config_from_dict({}).consistency.model == "ssp"
    cfg = _config({"model": "kbatch_sync", "k": 3})
    assert config_from_dict(cfg.to_dict()).consistency == cfg.consistency


# -- runtime laws (Dutta et al. 2018) -------------------------------------------------------


@pytest.mark.parametrize("k", [1, 6, P])
def test_ksync_time_per_round_matches_dutta_within_3_percent(k: int) -> None:
    """E[T] = mu (H_P - H_{P-K}) for Exp(mean mu), over 3000 rounds; exactly K applied per round."""
    run = sspsim.simulate(_config({"model": "ksync", "k": k}, workers={"speed": {"kind": "exponential", "mean": 2.0}}))
    formula = 2.0 * (_harmonic(P) - _harmonic(P - k))
    measured = run.meta["summary"]["time_per_round"]
    assert measured == pytest.approx(formula, rel=0.03)
    assert run.meta["summary"]["discarded"] == (P - k) * 3000
    outcome, v = _verdict(KSyncRuntime(), run)
    assert outcome == HOLDS, v.detail
    assert v.bound == pytest.approx(formula, rel=1e-12)


@pytest.mark.parametrize("k", [1, 4, 20])
def test_kbatch_sync_time_per_round_matches_dutta_within_3_percent(k: int) -> None:
    """E[T] = K / (P mu) for exponential times of rate mu (here mean 1/mu = 0.5), over 3000 rounds."""
    run = sspsim.simulate(_config({"model": "kbatch_sync", "k": k}, workers={"speed": {"kind": "exponential", "mean": 0.5}}))
    formula = k / (P * 2.0)
    assert run.meta["summary"]["time_per_round"] == pytest.approx(formula, rel=0.03)
    assert run.meta["summary"]["applied"] == k * 3000
    outcome, v = _verdict(KBatchSyncRuntime(), run)
    assert outcome == HOLDS, v.detail


def test_ksync_law_with_a_persistent_straggler_uses_the_order_statistic_integral() -> None:
    """A 4x straggler: the K-th order statistic of non-identical workers (numerical), within 3 %."""
    cfg = _config({"model": "ksync", "k": P - 1}, workers={"stragglers": [{"worker": 0, "slowdown": 4.0}]})
    run = sspsim.simulate(cfg)
    outcome, v = _verdict(KSyncRuntime(), run)
    assert outcome == HOLDS, v.detail
    assert "numerical" in v.detail
    assert v.measured == pytest.approx(v.bound, rel=0.03)


def test_expected_kth_agrees_with_its_closed_forms_and_with_expected_max() -> None:
    exp = sp.Exponential(1.5)
    near = np.array([1.0] * 7 + [1.0 + 1e-9])  # not all equal: forces the numerical integral
    for k in (1, 3, 8):
        closed, how = expected_kth(exp, np.ones(8), k)
        assert "closed form" in how
        assert expected_kth(exp, near, k)[0] == pytest.approx(closed, rel=1e-6)
    logn = sp.LogNormal(mean=1.0, sigma=0.5)
    scales = np.array([1.0, 1.0, 2.0, 3.0])
    assert expected_kth(logn, scales, 4)[0] == pytest.approx(expected_max(logn, scales)[0], rel=1e-6)


# -- mutants: broken round servers that the runtime checks catch ---------------------------


class WaitsForAll(RoundServer):
    """K-sync server that waits for all P pushes (plain sync SGD) but applies K."""

    def closing_arrival(self, k: int) -> int:
        return self.workers


class AppliesOneMore(RoundServer):
    """Waits for and applies K + 1 gradients."""

    def closing_arrival(self, k: int) -> int:
        return k + 1

    def applied(self, k: int) -> int:
        return k + 1


class DropsOneMore(RoundServer):
    """Ends the round at the K-th push on time, but applies only K - 1 of them."""

    def applied(self, k: int) -> int:
        return k - 1


@pytest.mark.parametrize("mutant", [WaitsForAll, AppliesOneMore, DropsOneMore])
def test_ksync_check_catches_broken_round_servers(mutant: type[RoundServer]) -> None:
    cfg = _config({"model": "ksync", "k": 5}, clocks=600)
    assert _verdict(KSyncRuntime(), sspsim.simulate(cfg))[0] == HOLDS
    outcome, v = _verdict(KSyncRuntime(), sspsim.simulate(cfg, round_server=mutant))
    assert outcome == VIOLATED, v.detail


@pytest.mark.parametrize("mutant", [AppliesOneMore, DropsOneMore])
def test_kbatch_sync_check_catches_broken_round_servers(mutant: type[RoundServer]) -> None:
    cfg = _config({"model": "kbatch_sync", "k": 6}, clocks=600)
    assert _verdict(KBatchSyncRuntime(), sspsim.simulate(cfg))[0] == HOLDS
    outcome, v = _verdict(KBatchSyncRuntime(), sspsim.simulate(cfg, round_server=mutant))
    assert outcome == VIOLATED, v.detail


def test_runtime_laws_state_their_premises() -> None:
    """A message cost breaks K-batch-sync's exponential law: not applicable, never holds; and the
    SSP checks say they are about SSP."""
    run = sspsim.simulate(_config({"model": "kbatch_sync", "k": 2}, clocks=100, network={"latency": 0.1}))
    outcome, v = _verdict(KBatchSyncRuntime(), run)
    assert outcome == NA and "message cost" in v.detail
    from sspsim.proofs_check.dutta2018 import SyncRuntime

    outcome, v = _verdict(SyncRuntime(), run)
    assert outcome == NA and "consistency.model" in v.detail


# -- traces and math -----------------------------------------------------------------------


def test_ksync_trace_marks_the_discarded_gradients(tmp_path: Path) -> None:
    run = sspsim.simulate(_config({"model": "ksync", "k": 5}, clocks=20, kind="logistic"), tmp_path / "r")
    trace = read_run(tmp_path / "r").trace
    assert tuple(trace.columns) == TRACE_COLUMNS
    per_round = trace.groupby("clock")["discarded"].agg(["sum", "count"])
    assert (per_round["sum"] == P - 5).all() and (per_round["count"] == P).all()
    dropped = trace[trace["discarded"] == 1]
    kept = trace[trace["discarded"] == 0]
    assert dropped["loss"].isna().all() and kept["loss"].notna().all()
    # the kept pushes arrived no later than any dropped one of their round
    arrive = trace["start_time"] + trace["compute_time"] + run.meta["problem"]["message_cost"]
    for _, rows in trace.assign(arrive=arrive).groupby("clock"):
        assert rows[rows.discarded == 0].arrive.max() <= rows[rows.discarded == 1].arrive.min()


def test_ssp_traces_discard_nothing() -> None:
    run = sspsim.simulate(_config({"staleness": 2}, clocks=10))
    assert run.trace is not None and not np.any(run.trace["discarded"])


def test_ksync_with_k_equal_p_is_bsp_update_for_update() -> None:
    """K = P applies every gradient at the same parameters in arrival order: BSP (SSP, s = 0)."""
    common = dict(clocks=30, kind="logistic", optimizer={"schedule": "constant", "lr": 0.2})
    ks = sspsim.simulate(_config({"model": "ksync", "k": P}, **common))
    bsp = sspsim.simulate(_config({"staleness": 0}, **common))
    assert ks.trace is not None and bsp.trace is not None
    round_end = lambda run: pd.DataFrame(run.trace).groupby("clock")["commit_time"].max().to_numpy()
    assert np.array_equal(round_end(ks), round_end(bsp))
    objective = lambda run: list(pd.DataFrame(run.evals)["objective"])
    assert objective(ks) == pytest.approx(objective(bsp), rel=1e-12)


def test_local_sgd_with_one_worker_is_serial_sgd() -> None:
    """One worker: averaging changes nothing, so local SGD is SSP's single-worker SGD, step for step."""
    common = dict(clocks=40, kind="logistic", workers={"count": 1})
    local = sspsim.simulate(_config({"model": "local_sgd", "period": 7}, **common))
    serial = sspsim.simulate(_config({"staleness": 0}, **common))
    assert local.meta["summary"]["final_objective"] == pytest.approx(serial.meta["summary"]["final_objective"], rel=1e-12)


def test_local_sgd_round_is_the_slowest_workers_period() -> None:
    """Constant times with a 3x straggler: each round of H = 4 steps lasts 3 * 4 * value + 2m."""
    cfg = _config({"model": "local_sgd", "period": 4}, clocks=10, workers={
        "speed": {"kind": "constant", "value": 0.5}, "stragglers": [{"worker": 2, "slowdown": 3.0}]},
        network={"latency": 0.25})
    run = sspsim.simulate(cfg)
    # rounds of 4, 4 and 2 steps
    assert run.meta["summary"]["total_time"] == pytest.approx(3 * 0.5 * 10 + 3 * 2 * 0.25)
    assert run.meta["summary"]["rounds"] == 3


def test_alternatives_train_and_are_deterministic() -> None:
    for consistency in ({"model": "ksync", "k": 3}, {"model": "kbatch_sync", "k": 4}, {"model": "local_sgd", "period": 3}):
        cfg = _config(consistency, clocks=30, kind="logistic", workers={"count": 4},
                      optimizer={"schedule": "constant", "lr": 0.1})
        a, b = sspsim.simulate(cfg), sspsim.simulate(cfg)
        s = a.meta["summary"]
        assert s["final_objective"] < s["initial_objective"], consistency
        assert s == {**b.meta["summary"], "wall_time": s["wall_time"]}


# -- plan: backup workers against SSP on a persistent straggler ----------------------------


def test_plan_quantifies_backup_workers_against_ssp_on_a_persistent_straggler(tmp_path: Path) -> None:
    raw = {"run": {"clocks": 40, "target": 1.6}, "problem": {"kind": "mlp", "hidden": [8], "samples": 400},
           "optimizer": {"lr": 0.1, "schedule": "constant"},
           "workers": {"count": 4, "speed": {"kind": "constant", "value": 1.0}, "stragglers": [{"worker": 0, "slowdown": 4.0}]}}
    result = plan(raw, tmp_path, tmp_path / "plan", axes={"consistency.staleness": ["0", "3"]}, seeds=1,
                  alternatives=(Alternative("backup", 1),)).to_dict()
    backup = result["diagnosis"]["backup_workers"]
    # constant times: a round without the straggler lasts 1.0, every finite-s clock 4.0
    assert backup["time_per_round"] == pytest.approx(1.0)
    assert backup["best_finite_s_time_per_clock"] == pytest.approx(4.0)
    assert math.isfinite(backup["median_time_to_target"])
    assert backup["speedup_over_best_finite_s"] > 1.0
    assert "backup workers" in result["diagnosis"]["advice"] and "x faster" in result["diagnosis"]["advice"]


def test_sweep_runs_the_models_side_by_side(tmp_path: Path) -> None:
    """``sspsim sweep --grid consistency.model=...``: every model runs, and each law's check applies to its own run."""
    from sspsim.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text('[run]\nclocks = 40\n[problem]\nkind = "none"\n[workers]\ncount = 4\n[consistency]\nk = 3\n')
    out = tmp_path / "sweep"
    assert main(["sweep", str(cfg), "--out", str(out), "--grid", "consistency.model=ssp,ksync,kbatch_sync", "-q"]) == 0
    runs = {p.name: RunData.load(p) for p in out.iterdir() if p.is_dir()}
    assert {rd.model for rd in runs.values()} == {"ssp", "ksync", "kbatch_sync"}
    for rd in runs.values():
        ks, kb = KSyncRuntime().check(rd).outcome.value, KBatchSyncRuntime().check(rd).outcome.value
        assert (ks == HOLDS) == (rd.model == "ksync") and (kb == HOLDS) == (rd.model == "kbatch_sync")


def test_deploy_refuses_round_models_in_one_line() -> None:
    """The real parameter server runs SSP: a round-based config is refused before anything starts."""
    from sspsim.errors import InputError
    from sspsim.real.launch import deploy

    with pytest.raises(InputError) as err:
        deploy(_config({"model": "kbatch_sync", "k": 3}, clocks=5), Path("/nonexistent/never-written"))
    assert str(err.value).startswith("consistency.model")


def test_local_sgd_round_length_matches_the_gamma_maximum_within_3_percent() -> None:
    """Exp(1) times, H = 4: a round lasts 2m + max_p Gamma(4, 1); 3000 steps = 750 rounds."""
    from sspsim.proofs_check.dutta2018 import LocalSGDRuntime

    cfg = _config({"model": "local_sgd", "period": 4}, network={"latency": 0.05})
    outcome, v = _verdict(LocalSGDRuntime(), sspsim.simulate(cfg))
    assert outcome == HOLDS, v.detail
    assert v.measured == pytest.approx(v.bound, rel=0.03)


def test_local_sgd_check_catches_a_server_that_averages_too_early() -> None:
    """The run averaged every 3 steps while its config says 4: caught (other than H steps per round)."""
    from sspsim.proofs_check.dutta2018 import LocalSGDRuntime

    early = RunData.from_run(sspsim.simulate(_config({"model": "local_sgd", "period": 3}, clocks=600)))
    claimed = _config({"model": "local_sgd", "period": 4}, clocks=600)
    lying = RunData(early.path, early.meta, claimed, early.trace, early.evals, None)
    assert LocalSGDRuntime().check(early).outcome.value == HOLDS
    v = LocalSGDRuntime().check(lying)
    assert v.outcome.value == VIOLATED and "other than H = 4" in v.detail
