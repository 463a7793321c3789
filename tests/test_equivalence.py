"""Special cases that must equal plain SGD: P = 1 is serial SGD; s = 0 is synchronous minibatch SGD."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sspsim
from sspsim.optimizer import StepSize
from sspsim.sampling import sample_indices
from tests.strategies import budget


def _audit(raw: dict, out: Path) -> tuple[sspsim.Run, dict[str, np.ndarray], sspsim.Config]:
    raw["run"]["audit"] = True
    config = sspsim.config_from_dict(raw)
    run = sspsim.simulate(config, out)
    with np.load(out / "audit.npz") as a:
        arrays = {k: a[k] for k in a.files}
    return run, arrays, config


def _problem_table(kind: str) -> dict:
    if kind == "mlp":
        return {"kind": "mlp", "samples": 200, "hidden": [8], "batch_size": 8}
    return {"kind": kind, "dim": 8, "samples": 300, "batch_size": 8}


@pytest.mark.parametrize("kind", ["logistic", "mlp", "least_squares"])
@pytest.mark.parametrize("policy", ["eager", "lazy", "push"])
def test_single_worker_is_serial_sgd_bit_for_bit(kind: str, policy: str, tmp_path: Path) -> None:
    """With one worker the simulated parameters equal a plain serial SGD loop exactly (np.array_equal)."""
    C = 25
    raw = {
        "run": {"seed": 3, "clocks": C},
        "problem": _problem_table(kind),
        "optimizer": {"lr": 0.3, "schedule": "inv_sqrt"},
        "consistency": {"staleness": 2, "read_policy": policy},
        "workers": {"count": 1, "speed": {"kind": "exponential", "mean": 1.0}},
        "network": {"latency": 0.01},
    }
    run, a, config = _audit(raw, tmp_path / "run")
    problem = sspsim.make_problem(config.problem, config.problem_seed)
    step = StepSize.from_config(config.optimizer)
    x = problem.initial_params()
    assert np.array_equal(a["x0"], x)
    losses = []
    for c in range(1, C + 1):
        assert np.array_equal(a["params"][c - 1], x), f"params read at clock {c}"
        idx = sample_indices(config.problem_seed, 0, c, config.problem.batch_size, problem.n_samples)
        loss, g = problem.loss_grad(x, idx)
        losses.append(loss)
        x = x + (-step(c, 0) * g)
    assert np.array_equal(x, a["params"][-1] + a["update"][-1])  # final serial iterate, bit for bit
    assert np.array_equal(run.trace.loss.to_numpy(), np.array(losses))
    assert (run.trace.update_staleness == 0).all() and (run.trace.staleness == 0).all()


def _synchronous_sgd(config: sspsim.Config, C: int) -> list[np.ndarray]:
    """x_c = x_{c-1} + sum_p -eta_{P(c-1)+p+1} g_p(x_{c-1}); returns x_0 .. x_C."""
    problem = sspsim.make_problem(config.problem, config.problem_seed)
    step = StepSize.from_config(config.optimizer)
    P, b = config.workers.count, config.problem.batch_size
    xs = [problem.initial_params()]
    for c in range(1, C + 1):
        x = xs[-1]
        total = np.zeros_like(x)
        for p in range(P):
            _, g = problem.loss_grad(x, sample_indices(config.problem_seed, p, c, b, problem.n_samples))
            total += -step(P * (c - 1) + p + 1, 0) * g
        xs.append(x + total)
    return xs


@budget(0.3)
@given(
    kind=st.sampled_from(["logistic", "least_squares", "nonconvex", "mlp"]),
    P=st.integers(2, 6),
    policy_net=st.sampled_from([("lazy", 0.0), ("lazy", 0.2), ("eager", 0.0), ("push", 0.0), ("push", 0.3)]),
    speed=st.sampled_from([{"kind": "exponential", "mean": 1.0}, {"kind": "lognormal", "mean": 1.0, "sigma": 1.0}]),
    seed=st.integers(0, 1000),
)
def test_bsp_is_synchronous_minibatch_sgd(
    kind: str, P: int, policy_net: tuple[str, float], speed: dict, seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With s = 0 (lazy or push reads with any network, eager with zero cost) every read equals synchronous minibatch SGD."""
    policy, latency = policy_net
    C = 8
    raw = {
        "run": {"seed": seed, "clocks": C},
        "problem": _problem_table(kind),
        "optimizer": {"lr": 0.5, "schedule": "inv_sqrt"},
        "consistency": {"staleness": 0, "read_policy": policy},
        "workers": {"count": P, "speed": speed},
        "network": {"latency": latency},
    }
    _, a, config = _audit(raw, tmp_path_factory.mktemp("bsp") / "run")
    xs = _synchronous_sgd(config, C)
    for i in range(len(a["clock"])):
        c = int(a["clock"][i])
        assert np.allclose(a["params"][i], xs[c - 1], rtol=1e-12, atol=1e-14)
    final = a["x0"] + a["update"].sum(axis=0)
    assert np.allclose(final, xs[C], rtol=1e-12, atol=1e-14)
