"""Problems: gradients by finite differences, analytic constants, and the sample order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sspsim
from sspsim.config import ProblemConfig
from sspsim.problems import LeastSquares, Logistic
from sspsim.sampling import sample_indices
from tests.strategies import budget

PROBLEMS = {
    "logistic": ProblemConfig(kind="logistic", dim=6, samples=60),
    "least_squares": ProblemConfig(kind="least_squares", dim=6, samples=60),
    "nonconvex": ProblemConfig(kind="nonconvex", dim=6, samples=60),
    "mlp": ProblemConfig(kind="mlp", samples=100, hidden=(5,), activation="tanh"),
    "mlp_sigmoid_2layers": ProblemConfig(kind="mlp", samples=100, hidden=(4, 3), activation="sigmoid"),
    "timit_like": ProblemConfig(kind="timit_like", dim=7, samples=80, classes=4, hidden=(5, 4)),
}


def _fd_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.mark.parametrize("name", list(PROBLEMS))
@pytest.mark.parametrize("seed", [0, 7])
def test_gradient_matches_finite_differences(name: str, seed: int) -> None:
    """loss_grad's gradient equals central finite differences of its loss at random points."""
    problem = sspsim.make_problem(PROBLEMS[name], seed)
    rng = np.random.default_rng(seed)
    x = problem.initial_params() + 0.5 * rng.standard_normal(problem.n_params)
    idx = rng.integers(0, problem.n_samples, 9)
    loss, g = problem.loss_grad(x, idx)
    fd = _fd_grad(lambda z: problem.loss_grad(z, idx)[0], x)
    assert g.shape == x.shape and np.isfinite(loss)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7)
    # the full-objective gradient too
    obj, full = problem.evaluate(x)
    assert obj == pytest.approx(problem.objective(x), rel=1e-14)
    np.testing.assert_allclose(full, problem.gradient(x), rtol=1e-14, atol=0)
    np.testing.assert_allclose(full, _fd_grad(problem.objective, x), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_problems_are_deterministic(name: str) -> None:
    """A problem is a pure function of its config and seed (data, initial point, loss)."""
    a, b = sspsim.make_problem(PROBLEMS[name], 3), sspsim.make_problem(PROBLEMS[name], 3)
    x = a.initial_params()
    assert np.array_equal(x, b.initial_params())
    idx = np.arange(5)
    assert a.loss_grad(x, idx)[0] == b.loss_grad(x, idx)[0]
    assert np.array_equal(a.loss_grad(x, idx)[1], b.loss_grad(x, idx)[1])
    c = sspsim.make_problem(PROBLEMS[name], 4)
    assert a.objective(x + 0.1) != c.objective(x + 0.1)


def test_logistic_constants() -> None:
    """Logistic: per-sample gradients have norm <= 1 (L = 1) and x* has gradient norm < 1e-10."""
    problem = sspsim.make_problem(ProblemConfig(kind="logistic", dim=10, samples=500), 1)
    assert isinstance(problem, Logistic)
    consts = problem.constants()
    assert consts.lipschitz == 1.0
    assert consts.x_star_gradient_norm < 1e-10
    assert np.linalg.norm(problem.gradient(problem.x_star)) < 1e-10
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(50):
        x = 10 * rng.standard_normal(problem.n_params)
        for i in range(problem.n_samples):
            worst = max(worst, float(np.linalg.norm(problem.loss_grad(x, np.array([i]))[1])))
    assert worst <= 1.0
    assert consts.f_star == pytest.approx(problem.objective(problem.x_star), rel=1e-12)
    assert consts.f_star <= problem.objective(problem.initial_params())


def test_least_squares_x_star_is_lstsq() -> None:
    """Least squares: x* is the least-squares solution, with zero full gradient and mu <= L from the spectrum."""
    problem = sspsim.make_problem(ProblemConfig(kind="least_squares", dim=8, samples=200), 2)
    assert isinstance(problem, LeastSquares)
    ref = np.linalg.lstsq(problem.A, problem.b, rcond=None)[0]
    np.testing.assert_allclose(problem.x_star, ref, rtol=1e-12, atol=1e-12)
    consts = problem.constants()
    assert consts.x_star_gradient_norm < 1e-12
    eig = np.linalg.eigvalsh(problem.A.T @ problem.A / problem.n_samples)
    assert consts.smoothness == pytest.approx(eig[-1]) and consts.strong_convexity == pytest.approx(eig[0])
    assert consts.f_star == pytest.approx(0.5 * np.mean((problem.A @ ref - problem.b) ** 2), rel=1e-12)


def test_nonconvex_gradient_bound() -> None:
    """Robust regression: per-sample gradient norms never exceed the stated Lipschitz constant 1/sqrt(2)."""
    problem = sspsim.make_problem(ProblemConfig(kind="nonconvex", dim=5, samples=100), 0)
    G = problem.constants().lipschitz
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = 5 * rng.standard_normal(problem.n_params)
        norms = [np.linalg.norm(problem.loss_grad(x, np.array([i]))[1]) for i in range(problem.n_samples)]
        assert max(norms) <= G + 1e-12


@budget(1.0)
@given(seed=st.integers(0, 2**63), p=st.integers(0, 10**4), c=st.integers(1, 10**6),
       batch=st.integers(1, 64), n=st.integers(1, 10**6))
def test_sample_indices_pure_and_in_range(seed: int, p: int, c: int, batch: int, n: int) -> None:
    """sample_indices is a pure function of (seed, p, c), returns batch indices in [0, n)."""
    a = sample_indices(seed, p, c, batch, n)
    assert a.shape == (batch,) and a.dtype == np.int64
    assert ((0 <= a) & (a < n)).all()
    assert np.array_equal(a, sample_indices(seed, p, c, batch, n))
    # a longer batch extends the shorter one (counter-based stream)
    assert np.array_equal(sample_indices(seed, p, c, batch + 3, n)[:batch], a)


def test_sample_indices_differ_and_cover() -> None:
    """Different (seed, worker, clock) give different batches, and indices spread over the whole range."""
    base = sample_indices(0, 0, 1, 32, 10**6)
    assert not np.array_equal(base, sample_indices(1, 0, 1, 32, 10**6))
    assert not np.array_equal(base, sample_indices(0, 1, 1, 32, 10**6))
    assert not np.array_equal(base, sample_indices(0, 0, 2, 32, 10**6))
    counts = np.bincount(np.concatenate([sample_indices(0, p, c, 10, 10) for p in range(10) for c in range(1, 101)]), minlength=10)
    assert counts.min() > 800 and counts.max() < 1200  # 10,000 draws over 10 values: roughly uniform


def test_logistic_tiny_separable_data() -> None:
    """A valid small logistic config (dim 4, 5 samples, seed 8) simulates without crashing."""
    raw = {"run": {"clocks": 1, "seed": 8}, "problem": {"kind": "logistic", "dim": 4, "samples": 5}, "workers": {"count": 1}}
    run = sspsim.simulate(sspsim.config_from_dict(raw))
    assert len(run.trace) == 1


@pytest.mark.parametrize(("dim", "samples"), [(60, 30), (30, 60)])
def test_the_spectrum_comes_from_the_smaller_gram_matrix(dim: int, samples: int) -> None:
    """A A^T / n and A^T A / n share their nonzero eigenvalues: the smoothness constant is the same
    whichever is decomposed (the smaller one: seconds instead of hours at d = 20,000)."""
    problem = Logistic(dim=dim, samples=samples, noise=0.1, seed=3)
    full = np.linalg.eigvalsh(problem.A.T @ problem.A / samples)
    largest, smallest = problem._spectrum
    assert largest == pytest.approx(full[-1], rel=1e-12)
    assert smallest == (0.0 if samples < dim else pytest.approx(max(full[0], 0.0), abs=1e-12))


def test_a_wide_design_is_separable_by_its_rank() -> None:
    """Fewer samples than parameters, too many entries for the LP: a design of full row rank fits
    any labels exactly, so the infimum is not attained, decided without the optimiser."""
    problem = Logistic(dim=1000, samples=500, noise=0.1, seed=3)
    assert problem.n_samples * problem.n_params > 4e5
    assert problem.attained is False
    assert "x_star" not in vars(problem)  # the optimiser never ran
    assert problem.constants().f_star is None
