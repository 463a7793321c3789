"""Linear-model problems with analytic constants: logistic, least squares, robust (nonconvex) regression.

Each generates its data from a seed (no downloads) and knows the constants the theorems of
reference/theorems.md need.  The initial point is x0 = 0 (the recipes of §3 and §6).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.optimize
from scipy.special import expit

from sspsim.problems.base import Constants, Layer

__all__ = ["LeastSquares", "Logistic", "Quadratic", "RobustRegression"]

DATA_STREAM = 4


class _LinearProblem:
    """f(x) = mean_i f_i(a_i . x) on a generated design matrix A (n x d)."""

    kind = "linear"
    has_math = True
    layers: tuple[Layer, ...] = ()

    def __init__(self, *, dim: int, samples: int, noise: float, seed: int, eval_samples: int | None = None) -> None:
        self.n_params = dim
        self.n_samples = samples
        self.noise = noise
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(DATA_STREAM,)))
        self.A, self.b = self._generate(rng, samples, dim, noise)
        m = samples if eval_samples is None else min(eval_samples, samples)
        self._eval = slice(0, m)

    def _generate(self, rng: np.random.Generator, n: int, d: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def initial_params(self) -> np.ndarray:
        return np.zeros(self.n_params)

    def objective(self, x: np.ndarray) -> float:
        return self._loss_grad_rows(x, self.A[self._eval], self.b[self._eval], grad=False)[0]

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self._loss_grad_rows(x, self.A[self._eval], self.b[self._eval], grad=True)[1]

    def evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        return self._loss_grad_rows(x, self.A[self._eval], self.b[self._eval], grad=True)

    def loss_grad(self, x: np.ndarray, indices: np.ndarray) -> tuple[float, np.ndarray]:
        return self._loss_grad_rows(x, self.A[indices], self.b[indices], grad=True)

    def _loss_grad_rows(self, x: np.ndarray, A: np.ndarray, b: np.ndarray, *, grad: bool) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    @cached_property
    def _gram_eigenvalues(self) -> np.ndarray:
        """Eigenvalues (ascending) of the smaller Gram matrix of the full design: A^T A / n, or
        A A^T / n when there are fewer samples than parameters (the same nonzero eigenvalues, at
        O(n^3) instead of O(d^3): minutes instead of hours at d = 20,000)."""
        n, d = self.A.shape
        return np.linalg.eigvalsh(self.A @ self.A.T / n if n < d else self.A.T @ self.A / n)

    @cached_property
    def _spectrum(self) -> tuple[float, float]:
        """Largest and smallest eigenvalue of A^T A / n (the full design; singular when n < d)."""
        eig = self._gram_eigenvalues
        return float(eig[-1]), (0.0 if self.A.shape[0] < self.A.shape[1] else float(max(eig[0], 0.0)))

    @cached_property
    def x_star(self) -> np.ndarray | None:
        """Minimiser of the full objective (None where the problem is nonconvex)."""
        return None

    def constants(self) -> Constants:
        raise NotImplementedError


class Logistic(_LinearProblem):
    """Logistic regression, f_i(x) = log(1 + exp(-y_i a_i . x)), y in {-1, +1}.

    Rows are normalised, ||a_i|| = 1, so every per-sample gradient has norm <= 1: the
    Lipschitz constant of Ho et al. 2013 Theorem 1 is exactly L = 1.  A fraction ``noise`` of
    the labels is flipped, so the data are not separable and x* is finite; x* is solved with
    scipy to a gradient norm below 1e-10.
    """

    kind = "logistic"

    def _generate(self, rng: np.random.Generator, n: int, d: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
        A = rng.standard_normal((n, d))
        A /= np.linalg.norm(A, axis=1, keepdims=True)
        w = rng.standard_normal(d)
        w *= 3.0 * np.sqrt(d) / np.linalg.norm(w)  # margins a.w of order 3
        y = np.where(A @ w >= 0, 1.0, -1.0)
        flip = rng.random(n) < noise
        y[flip] = -y[flip]
        return A, y

    def _loss_grad_rows(self, x: np.ndarray, A: np.ndarray, y: np.ndarray, *, grad: bool) -> tuple[float, np.ndarray]:
        margin = y * (A @ x)
        loss = float(np.mean(np.logaddexp(0.0, -margin)))
        if not grad:
            return loss, np.empty(0)
        weight = -y * expit(-margin) / len(y)
        return loss, A.T @ weight

    @cached_property
    def x_star(self) -> np.ndarray:
        A, y, n = self.A, self.b, self.n_samples

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            return self._loss_grad_rows(x, A, y, grad=True)

        res = scipy.optimize.minimize(
            fun, np.zeros(self.n_params), jac=True, method="L-BFGS-B",
            options={"gtol": 1e-13, "ftol": 0.0, "maxiter": 20000, "maxcor": 30},
        )
        x = res.x
        if n * self.n_params**2 <= 2e8:  # polish with Newton steps where the Hessian is cheap
            for _ in range(5):
                m = y * (A @ x)
                s = expit(m) * expit(-m)
                H = (A.T * s) @ A / n
                g = fun(x)[1]
                if np.linalg.norm(g) < 1e-14:
                    break
                try:
                    x = x - np.linalg.solve(H, g)
                except np.linalg.LinAlgError:  # separable data: no finite minimiser to polish
                    break
        return x

    @cached_property
    def attained(self) -> bool:
        """Whether f has a finite minimiser.

        False when the labels are linearly separable (some w has y_i a_i . w >= 1 for all i):
        then f* = 0 is only an infimum and x* lies at infinity.  Decided exactly by an LP
        feasibility problem for designs up to 4e5 entries.  For larger ones with no more samples
        than parameters, by the rank: a design of full row rank solves A w = y, so y_i a_i . w = 1
        for every i (separable).  Otherwise by the optimiser's value (separable data drive f below
        1e-6, non-separable data keep f* well above it).
        """
        if self.n_samples * self.n_params <= 4e5:
            res = scipy.optimize.linprog(
                np.zeros(self.n_params), A_ub=-(self.b[:, None] * self.A), b_ub=-np.ones(self.n_samples),
                bounds=(None, None), method="highs",
            )
            return res.status != 0
        eig = self._gram_eigenvalues
        if self.n_samples <= self.n_params and eig[0] > 1e-10 * eig[-1]:
            return False
        return self._loss_grad_rows(self.x_star, self.A, self.b, grad=False)[0] > 1e-6

    def constants(self) -> Constants:
        if not self.attained:  # separable sample: the infimum 0 is not attained, x* is at infinity
            return Constants(
                convex=True, lipschitz=1.0, smoothness=self._spectrum[0] / 4.0, f_lower=0.0, gradient_variance=1.0,
                exact=("lipschitz", "smoothness"),
            )
        x = self.x_star
        norm = float(np.linalg.norm(x))
        full = self._loss_grad_rows(x, self.A, self.b, grad=True)
        return Constants(
            convex=True,
            lipschitz=1.0,
            smoothness=self._spectrum[0] / 4.0,
            f_star=full[0],
            f_lower=0.0,
            x_star_norm=norm,
            x_star_gradient_norm=float(np.linalg.norm(full[1])),
            diameter=float((2.0 * norm + 1.0) / np.sqrt(2.0)),
            gradient_variance=1.0,
            exact=("lipschitz", "smoothness", "f_star"),
        )


class LeastSquares(_LinearProblem):
    """Least squares, f_i(x) = (a_i . x - b_i)^2 / 2, with b = A w + noise.

    Smooth and strongly convex: L = lambda_max(A^T A)/n, mu = lambda_min(A^T A)/n, and x*
    in closed form.  Gradients are unbounded, so there is no finite Lipschitz constant G.
    """

    kind = "least_squares"

    def _generate(self, rng: np.random.Generator, n: int, d: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
        A = rng.standard_normal((n, d)) / np.sqrt(d)
        w = rng.standard_normal(d)
        return A, A @ w + noise * rng.standard_normal(n)

    def _loss_grad_rows(self, x: np.ndarray, A: np.ndarray, b: np.ndarray, *, grad: bool) -> tuple[float, np.ndarray]:
        r = A @ x - b
        loss = 0.5 * float(r @ r) / len(b)
        return loss, (A.T @ r / len(b)) if grad else np.empty(0)

    @cached_property
    def x_star(self) -> np.ndarray:
        return np.linalg.lstsq(self.A, self.b, rcond=None)[0]

    def constants(self) -> Constants:
        x = self.x_star
        loss, g = self._loss_grad_rows(x, self.A, self.b, grad=True)
        norm = float(np.linalg.norm(x))
        big, small = self._spectrum
        return Constants(
            convex=True,
            smoothness=big,
            strong_convexity=small,
            f_star=loss,
            f_lower=0.0,
            x_star_norm=norm,
            x_star_gradient_norm=float(np.linalg.norm(g)),
            diameter=float((2.0 * norm + 1.0) / np.sqrt(2.0)),
            exact=("smoothness", "strong_convexity", "f_star"),
        )


class RobustRegression(_LinearProblem):
    """Nonconvex robust regression, f_i(x) = rho(a_i . x - b_i) with rho(r) = log(1 + r^2 / 2).

    The recipe of reference/theorems.md §6 (Lian et al. 2015) with analytic constants:
    |rho''| <= 1 gives smoothness L <= lambda_max(A^T A)/n; |rho'| <= 1/sqrt(2) and ||a_i|| = 1
    give per-sample gradients of norm <= 1/sqrt(2), hence sigma^2 <= 1/2; f >= 0.
    Residual noise is Student-t (3 degrees of freedom), the case robust losses exist for.
    """

    kind = "nonconvex"

    def _generate(self, rng: np.random.Generator, n: int, d: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
        A = rng.standard_normal((n, d))
        A /= np.linalg.norm(A, axis=1, keepdims=True)
        w = rng.standard_normal(d)
        w *= 2.0 * np.sqrt(d) / np.linalg.norm(w)
        return A, A @ w + noise * rng.standard_t(3.0, n)

    def _loss_grad_rows(self, x: np.ndarray, A: np.ndarray, b: np.ndarray, *, grad: bool) -> tuple[float, np.ndarray]:
        r = A @ x - b
        half = 0.5 * r * r
        loss = float(np.mean(np.log1p(half)))
        return loss, (A.T @ (r / (1.0 + half)) / len(b)) if grad else np.empty(0)

    def constants(self) -> Constants:
        return Constants(
            convex=False,
            lipschitz=float(np.max(np.linalg.norm(self.A, axis=1))) / np.sqrt(2.0),
            smoothness=self._spectrum[0],
            f_lower=0.0,
            gradient_variance=0.5,
        )


class Quadratic:
    """f_i(x) = h ||x||^2 / 2 + noise * xi_i . x: an isotropic quadratic with gradient noise.

    The problem of the exact delayed-gradient results (reference/theorems.md §7.1 [D]): every
    coordinate follows x <- x - eta (h x + noise xi), so with a fixed delay tau the iteration
    is stable iff eta h < 2 sin(pi / (2 (2 tau + 1))).  The xi_i are a table of ``samples``
    standard normal vectors; a minibatch averages ``batch_size`` of them.  x0 = (1, ..., 1);
    x* = -noise mean(xi) / h and f* are exact.
    """

    kind = "quadratic"
    has_math = True
    layers: tuple[Layer, ...] = ()

    def __init__(self, *, dim: int, samples: int, noise: float, curvature: float, seed: int) -> None:
        self.n_params = dim
        self.n_samples = samples
        self.noise = noise
        self.curvature = curvature
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(DATA_STREAM,)))
        self.xi = rng.standard_normal((samples, dim))
        self._xi_mean = self.xi.mean(axis=0)

    def initial_params(self) -> np.ndarray:
        return np.ones(self.n_params)

    def _loss_grad(self, x: np.ndarray, xi_mean: np.ndarray) -> tuple[float, np.ndarray]:
        h, noise = self.curvature, self.noise
        return 0.5 * h * float(x @ x) + noise * float(xi_mean @ x), h * x + noise * xi_mean

    def loss_grad(self, x: np.ndarray, indices: np.ndarray) -> tuple[float, np.ndarray]:
        return self._loss_grad(x, self.xi[indices].mean(axis=0))

    def objective(self, x: np.ndarray) -> float:
        return self._loss_grad(x, self._xi_mean)[0]

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self._loss_grad(x, self._xi_mean)[1]

    def evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        return self._loss_grad(x, self._xi_mean)

    @property
    def x_star(self) -> np.ndarray:
        return -self.noise * self._xi_mean / self.curvature

    @property
    def sample_noise_variance(self) -> float:
        """Per-coordinate variance of one sample's gradient noise, noise^2 Var(xi_i) (averaged over coordinates)."""
        return float(self.noise**2 * self.xi.var(axis=0).mean())

    def constants(self) -> Constants:
        x = self.x_star
        return Constants(
            convex=True,
            smoothness=self.curvature,
            strong_convexity=self.curvature,
            f_star=self.objective(x),
            x_star_norm=float(np.linalg.norm(x)),
            x_star_gradient_norm=float(np.linalg.norm(self.gradient(x))),
            diameter=float((2.0 * np.linalg.norm(x) + 1.0 + np.sqrt(self.n_params)) / np.sqrt(2.0)),
            gradient_variance=self.sample_noise_variance * self.n_params,
            exact=("smoothness", "strong_convexity", "f_star", "gradient_variance"),
        )
