"""Periodic full-objective evaluations of the server's parameters (the rows of ``evals.csv``)."""

from __future__ import annotations

import numpy as np

from sspsim.config import Config
from sspsim.problems import Problem
from sspsim.server import ParameterServer

__all__ = ["Evaluator", "eval_clocks"]


def eval_clocks(config: Config, clocks: int) -> int:
    """Clocks between evaluations: ``[run] eval_every``, or about 50 evaluations per run."""
    return config.run.eval_every or max(1, clocks // 50)


class Evaluator:
    """Evaluates when the slowest clock reaches a multiple of ``eval_every`` (and the last clock).

    A row holds the time, the slowest clock, the updates applied, and with math the full
    objective, the gradient norm, per-layer weight and gradient norms for layered models
    (Kumar et al.'s layerwise view), and the accuracy of classifiers.
    """

    def __init__(self, problem: Problem, config: Config, clocks: int) -> None:
        self.problem = problem
        self.every = eval_clocks(config, clocks)
        self.clocks = clocks
        self.rows: list[dict[str, float]] = []

    def due(self, clock: int) -> bool:
        """Whether the slowest clock reaching ``clock`` calls for an evaluation."""
        return clock % self.every == 0 or clock == self.clocks

    def on_clock(self, server: ParameterServer, clock: int, time: float) -> None:
        if self.due(clock):
            self.record(server, time)

    def record(self, server: ParameterServer, time: float) -> None:
        self.rows.append(self.row(server.x, float(time), server.table.min_clock, server.commits))

    def row(self, x: np.ndarray | None, time: float, clock: int, updates: int) -> dict[str, float]:
        """One evaluation of parameters ``x`` (the real backend evaluates its snapshots after the run)."""
        row: dict[str, float] = {"time": time, "clock": clock, "updates": updates}
        problem = self.problem
        if problem.has_math:
            assert x is not None
            objective, grad = problem.evaluate(x)
            row["objective"] = objective
            row["grad_norm"] = float(np.linalg.norm(grad))
            accuracy = getattr(problem, "accuracy", None)
            if accuracy is not None:
                row["accuracy"] = accuracy(x)
            for layer in problem.layers:
                row[f"weight_norm_{layer.name}"] = float(np.linalg.norm(x[layer.span]))
                row[f"grad_norm_{layer.name}"] = float(np.linalg.norm(grad[layer.span]))
        return row
