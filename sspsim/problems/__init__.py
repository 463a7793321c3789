"""Problems: data, loss, gradient and theorem constants; built from ``[problem]`` by :func:`make_problem`."""

from __future__ import annotations

from typing import Any

import numpy as np

from sspsim.config import ProblemConfig
from sspsim.errors import MISSING, ConfigError
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
    "torch_problem",
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
    if cfg.kind == "torch":
        return torch_problem(cfg, seed)
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


def torch_problem(cfg: ProblemConfig, seed: int, task: object = None) -> Problem:
    """``kind = "torch"``: the task ``cfg.factory(seed, **cfg.options)`` builds (or ``task``, a
    :class:`~sspsim.task.TorchTask` or a factory given directly), as a Problem.  Imports torch."""
    from sspsim.problems.torch_task import TorchTaskProblem
    from sspsim.task import TorchTask, build_task, load_factory

    if task is None:
        if cfg.factory is None:
            raise ConfigError("problem.factory", MISSING,
                              "kind = 'torch' needs a factory 'module:function' (or pass task= to sspsim.simulate)")
        name = cfg.factory
        task = build_task(load_factory(cfg.factory, cfg.factory_dir), seed, cfg.options, name=name)
    elif isinstance(task, TorchTask):
        name = "the task"
    elif callable(task):
        name = getattr(task, "__name__", "the factory")
        task = build_task(task, seed, cfg.options, name=name)
    else:
        raise ConfigError("task", type(task).__name__, "must be an sspsim.TorchTask or a factory (seed, **options) -> TorchTask")
    assert isinstance(task, TorchTask)
    return TorchTaskProblem(task, device=cfg.device, eval_samples=cfg.eval_samples, batch_size=cfg.batch_size, name=name)


def problem_facts(problem: Problem, message_cost: float | None) -> dict[str, Any]:
    """What run.json records of a problem: size, layers, and the constants the theorems need."""
    return {
        "kind": problem.kind,
        "n_params": problem.n_params,
        "n_samples": problem.n_samples,
        "message_cost": message_cost,
        "layers": [_layer_facts(layer) for layer in problem.layers],
        "constants": problem.constants().to_dict() if problem.has_math else {},
        **({"device": str(problem.device)} if problem.kind == "torch" else {}),  # type: ignore[attr-defined]
    }


def _layer_facts(layer: Layer) -> dict[str, Any]:
    facts: dict[str, Any] = {"name": layer.name, "n_in": layer.n_in, "n_out": layer.n_out, "offset": layer.offset}
    if layer.size is not None:
        facts["size"] = layer.size
    return facts
