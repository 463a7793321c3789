"""Problems: data, loss, gradient and theorem constants; built from ``[problem]`` by :func:`make_problem`."""

from __future__ import annotations

from typing import Any

import numpy as np

from sspsim.config import ProblemConfig
from sspsim.problems.base import Constants, Layer, Problem
from sspsim.problems.linear import LeastSquares, Logistic, Quadratic, RobustRegression
from sspsim.problems.networks import MLP, DigitsMLP, TimitLike

__all__ = [
    "MLP",
    "Constants",
    "DigitsMLP",
    "Layer",
    "LeastSquares",
    "Logistic",
    "NoMath",
    "Problem",
    "Quadratic",
    "RobustRegression",
    "TimitLike",
    "make_problem",
    "problem_facts",
]


class NoMath:
    """Timing only: ``n_params`` sets the message size, and there is no loss or gradient."""

    kind = "none"
    has_math = False
    layers: tuple[Layer, ...] = ()
    n_samples = 0

    def __init__(self, dim: int) -> None:
        self.n_params = dim

    def initial_params(self) -> np.ndarray:
        return np.zeros(0)

    def loss_grad(self, x: np.ndarray, indices: np.ndarray) -> tuple[float, np.ndarray]:
        raise TypeError("problem.kind = 'none' has no math")

    def objective(self, x: np.ndarray) -> float:
        raise TypeError("problem.kind = 'none' has no math")

    def gradient(self, x: np.ndarray) -> np.ndarray:
        raise TypeError("problem.kind = 'none' has no math")

    def evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        raise TypeError("problem.kind = 'none' has no math")

    def constants(self) -> Constants:
        return Constants(convex=False)


def make_problem(cfg: ProblemConfig, seed: int) -> Problem:
    """Build the problem a (resolved) ``[problem]`` table describes, with data from ``seed``."""
    cfg = cfg.resolved()
    assert cfg.dim is not None and cfg.noise is not None
    if cfg.kind == "none":
        return NoMath(cfg.dim)
    if cfg.kind == "quadratic":
        assert cfg.curvature is not None
        return Quadratic(dim=cfg.dim, samples=cfg.samples, noise=cfg.noise, curvature=cfg.curvature, seed=seed)
    if cfg.kind in ("logistic", "least_squares", "nonconvex"):
        cls = {"logistic": Logistic, "least_squares": LeastSquares, "nonconvex": RobustRegression}[cfg.kind]
        return cls(dim=cfg.dim, samples=cfg.samples, noise=cfg.noise, seed=seed, eval_samples=cfg.eval_samples)
    assert cfg.hidden is not None and cfg.activation is not None and cfg.classes is not None
    if cfg.kind == "mlp":
        return DigitsMLP(samples=cfg.samples, hidden=cfg.hidden, activation=cfg.activation, seed=seed, eval_samples=cfg.eval_samples)
    return TimitLike(
        dim=cfg.dim, samples=cfg.samples, classes=cfg.classes, hidden=cfg.hidden, activation=cfg.activation,
        noise=cfg.noise, seed=seed, eval_samples=cfg.eval_samples,
    )


def problem_facts(problem: Problem, message_cost: float | None) -> dict[str, Any]:
    """What run.json records of a problem: size, layers, and the constants the theorems need."""
    return {
        "kind": problem.kind,
        "n_params": problem.n_params,
        "n_samples": problem.n_samples,
        "message_cost": message_cost,
        "layers": [{"name": l.name, "n_in": l.n_in, "n_out": l.n_out, "offset": l.offset} for l in problem.layers],
        "constants": problem.constants().to_dict() if problem.has_math else {},
    }
