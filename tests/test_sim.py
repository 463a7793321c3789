"""Simulator invariants over generated configs (DESIGN §Semantics), checked on trace.csv."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sspsim
from sspsim.sampling import sample_indices
from tests.simcheck import check_trace
from tests.strategies import MATH_PROBLEMS, budget, materialize, sim_configs


@budget(1.5)
@given(raw=sim_configs(), force_event=st.booleans())
def test_trace_invariants(raw: dict, force_event: bool) -> None:
    """Every generated run obeys the gate, the staleness bound and the read policy, recomputed from trace.csv."""
    if force_event:
        raw["run"]["engine"] = "event"
    with materialize(raw) as config:
        run = sspsim.simulate(config)
        check_trace(run, config)


@budget(0.6)
@given(raw=sim_configs(max_workers=6, max_clocks=5, problems=("logistic", "least_squares", "nonconvex")))
def test_audit_replays_reads(raw: dict, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each audited read equals x0 plus exactly the updates its read policy says it contains."""
    raw["run"]["audit"] = True
    out = tmp_path_factory.mktemp("audit") / "run"
    with materialize(raw) as config:
        run = sspsim.simulate(config, out)
    a = np.load(out / "audit.npz")
    tr = run.trace
    assert (a["worker"] == tr.worker.to_numpy()).all() and (a["clock"] == tr.clock.to_numpy()).all()
    x0, params, update = a["x0"], a["params"], a["update"]
    cum = np.vstack([np.zeros_like(x0), np.cumsum(update, axis=0)])
    policy = config.consistency.read_policy
    for i in range(len(tr)):
        p, c = int(a["worker"][i]), int(a["clock"][i])
        if policy == "eager":
            prefix = int(a["read_prefix"][i])
            assert prefix == tr.read_updates.iloc[i]
            expected = x0 + cum[prefix]
        else:
            cutoff = int(a["read_cutoff"][i])
            mask = (a["clock"] <= cutoff) | ((a["worker"] == p) & (a["clock"] < c))
            expected = x0 + update[mask].sum(axis=0)
        assert np.allclose(params[i], expected, rtol=1e-12, atol=1e-12)
        # the update is -eta * gradient at the parameters read, on the (seed, p, c) samples
    problem = sspsim.make_problem(config.problem, config.problem_seed)
    beta = config.optimizer.momentum
    directions: dict[int, np.ndarray] = {}
    for i in range(len(tr)):
        p, c = int(a["worker"][i]), int(a["clock"][i])
        idx = sample_indices(config.problem_seed, p, c, config.problem.batch_size, problem.n_samples)
        loss, g = problem.loss_grad(params[i], idx)
        assert loss == tr.loss.iloc[i]
        # worker-side heavy ball: d_c = g_c + beta d_{c-1}, replayed in each worker's clock order
        d = g if c == 1 or beta == 0 else g + beta * directions[p]
        directions[p] = d
        assert np.allclose(update[i], -tr.step.iloc[i] * d, rtol=1e-12, atol=1e-15)
    # the final objective is the objective of x0 + every update
    final = problem.objective(x0 + update.sum(axis=0))
    assert np.isclose(run.summary["final_objective"], final, rtol=1e-9, atol=1e-12)


@budget(0.6)
@given(raw=sim_configs(max_workers=8, max_clocks=6, stalenesses=st.just(0), apply_time=False))
def test_bsp_reproduced_with_zero_staleness(raw: dict) -> None:
    """With s = 0 every clock-c start follows all workers' clock c-1 commits."""
    with materialize(raw) as config:
        run = sspsim.simulate(config)
    tr = run.trace
    cost = run.meta["problem"]["message_cost"]
    last = tr.groupby("clock").commit_time.max()  # M_c
    first_start = tr.groupby("clock").start_time.min()
    for c in range(2, config.run.clocks + 1):
        assert first_start[c] - cost >= last[c - 1] - 1e-9
        # BSP: everyone starts clock c at exactly the same instant, M_{c-1} + pull
        starts = tr.start_time[tr.clock == c]
        assert np.allclose(starts, last[c - 1] + cost, rtol=0, atol=1e-9)
    assert (tr.visible_clock == tr.clock - 1).all()


@pytest.mark.parametrize("cost", [0.0, 0.25])
def test_bsp_time_per_clock_constant_speeds(cost: float) -> None:
    """With s = 0 and constant speeds, each clock takes the slowest worker's time plus two message costs."""
    raw = {
        "run": {"clocks": 20},
        "problem": {"kind": "none"},
        "consistency": {"staleness": 0},
        "workers": {"count": 4, "speed": {"kind": "constant", "value": 1.0},
                    "stragglers": [{"worker": 2, "slowdown": 3.0}]},
        "network": {"latency": cost},
    }
    for engine in ("batch", "event"):
        raw["run"]["engine"] = engine
        run = sspsim.simulate(sspsim.config_from_dict(raw))
        assert run.summary["time_per_clock"] == pytest.approx(3.0 + 2 * cost, rel=1e-12)
        M = run.trace.groupby("clock").commit_time.max().to_numpy()
        assert np.allclose(np.diff(M), 3.0 + 2 * cost, rtol=1e-12)


@budget(0.75)
@given(raw=sim_configs(max_workers=10, max_clocks=6, stalenesses=st.just("inf"), policies=("eager", "push"), apply_time=False))
def test_asp_never_blocks(raw: dict) -> None:
    """With s = inf and no apply contention no worker ever waits at the gate."""
    with materialize(raw) as config:
        run = sspsim.simulate(config)
    tr = run.trace
    assert (tr.wait_time == 0).all()
    assert run.summary["wait_fraction"] == 0
    # each worker runs back to back: its clock-c commit is the sum of its own costs
    cost = run.meta["problem"]["message_cost"]
    for _, rows in tr.groupby("worker"):
        per_iter = rows.compute_time.to_numpy() + 2 * cost
        assert np.allclose(rows.commit_time, np.cumsum(per_iter), rtol=1e-12, atol=1e-12)


@budget(1.0)
@given(raw=sim_configs(max_workers=8, max_clocks=8))
def test_summary_and_evals_agree_with_trace(raw: dict) -> None:
    """run.json summary figures and the evals rows are consistent with the trace they summarise."""
    with materialize(raw) as config:
        run = sspsim.simulate(config)
    tr, s = run.trace, run.summary
    P, C = config.workers.count, config.run.clocks
    finish = tr.groupby("worker").commit_time.max().sort_index().to_numpy()
    assert s["workers"] == P and s["clocks"] == C
    assert s["total_time"] == tr.commit_time.max() and s["time_per_clock"] == pytest.approx(s["total_time"] / C)
    assert s["mean_iteration_time"] == pytest.approx(finish.mean() / C)
    assert s["mean_compute_time"] == pytest.approx(tr.compute_time.mean())
    assert s["wait_fraction"] == pytest.approx(tr.wait_time.sum() / finish.sum())
    assert s["mean_staleness"] == pytest.approx(tr.staleness.mean())
    assert s["staleness_histogram"] == np.bincount(tr.staleness).tolist()
    assert s["mean_update_staleness"] == pytest.approx(tr.update_staleness.mean())
    assert s["max_update_staleness"] == tr.update_staleness.max()
    assert s["per_worker"]["finish"] == pytest.approx(finish.tolist())
    assert s["per_worker"]["wait"] == pytest.approx(tr.groupby("worker").wait_time.sum().sort_index().tolist())
    ev = run.evals
    assert ev.time.iloc[0] == 0 and ev.updates.iloc[0] == 0 and ev.clock.iloc[0] == 0
    assert ev.clock.iloc[-1] == C and ev.updates.iloc[-1] == P * C
    assert ev.time.iloc[-1] == pytest.approx(tr.commit_time.max())
    assert (np.diff(ev.clock) > 0).all() and (np.diff(ev.updates) >= 0).all() and (np.diff(ev.time) >= 0).all()
    M = tr.groupby("clock").commit_time.max()
    for _, row in ev.iloc[1:].iterrows():
        assert row.time == M[int(row.clock)]  # evaluated the moment the slowest worker completed that clock
        assert (tr.commit_time < row.time).sum() < row.updates <= (tr.commit_time <= row.time).sum()
    if config.problem.kind != "none":
        assert np.isfinite(ev.objective).all()
        assert s["initial_objective"] == ev.objective.iloc[0] and s["final_objective"] == ev.objective.iloc[-1]


@pytest.mark.parametrize("kind,n_params", [("logistic", 7), ("none", 1000), ("mlp", 64 * 32 + 32 + 32 * 10 + 10)])
@pytest.mark.parametrize("latency,bandwidth,message_bytes", [(0.0, "inf", None), (0.01, 1e5, None), (0.02, 1e3, 500)])
def test_message_cost(kind: str, n_params: int, latency: float, bandwidth: object, message_bytes: int | None) -> None:
    """The message cost is latency + bytes/bandwidth with 4 bytes per parameter unless message_bytes is set."""
    raw = {"run": {"clocks": 1}, "problem": {"kind": kind}, "network": {"latency": latency, "bandwidth": bandwidth},
           "workers": {"count": 2}}
    if kind == "logistic":
        raw["problem"].update(dim=7, samples=200)
    if message_bytes is not None:
        raw["network"]["message_bytes"] = message_bytes
    run = sspsim.simulate(sspsim.config_from_dict(raw))
    size = message_bytes if message_bytes is not None else 4 * n_params
    expected = latency + (0.0 if bandwidth == "inf" else size / bandwidth)
    assert run.meta["problem"]["n_params"] == n_params
    assert run.meta["problem"]["message_cost"] == pytest.approx(expected, rel=1e-15)
    tr = run.trace
    assert np.allclose(tr.commit_time - tr.start_time - tr.compute_time, expected, rtol=0, atol=1e-12)



@budget(1.0)
@given(raw=sim_configs(problems=("none",), max_workers=6, max_clocks=8), contention=st.booleans())
def test_timing_only_engine_equals_its_per_read_path(raw: dict, contention: bool) -> None:
    """A timing-only run on the stock server keeps counts and applies the read rule to whole arrays
    at the end; it equals the engine serving each read through ``ParameterServer.read``, ties included."""
    _assert_lean_equals_per_read(raw, contention)


@budget(0.5)
@given(raw=sim_configs(problems=MATH_PROBLEMS, policies=("eager",), max_workers=5, max_clocks=6),
       contention=st.booleans())
def test_eager_math_engine_equals_its_per_read_path(raw: dict, contention: bool) -> None:
    """An eager run with math takes its gradient at the server's x and updates x in place
    (``ParameterServer.commit_eager``); losses, steps, evaluations and the trace equal, bit for
    bit, the engine serving each read and commit through ``read`` and ``commit``."""
    _assert_lean_equals_per_read(raw, contention)


def _assert_lean_equals_per_read(raw: dict, contention: bool) -> None:
    from sspsim.server import ParameterServer
    from sspsim.sim.engine import simulate_events
    from sspsim.speeds import compute_times

    class PerRead(ParameterServer):
        """The stock server under another class: the engine then takes its per-read path."""

    if contention and raw["workers"]["speed"]["kind"] != "trace":
        raw["network"]["apply_time"] = 0.25
    with materialize(raw) as config:
        problem = sspsim.make_problem(config.problem, config.problem_seed)
        w = config.workers
        compute = compute_times(w.speed, workers=w.count, clocks=config.run.clocks, seed=config.run.seed,
                                stragglers=w.stragglers, transient=w.transient, compute=w.compute)
        lean, lean_evals, _ = simulate_events(config, problem, compute)
        full, full_evals, _ = simulate_events(config, problem, compute, server_class=PerRead)
    for name, want in vars(full).items():
        got = getattr(lean, name)
        assert (got is None and want is None) or (got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True)), name
    assert lean_evals == full_evals
