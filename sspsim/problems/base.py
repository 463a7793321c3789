"""What a problem is: data, a loss, its gradient, and the constants the theorems need."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Constants", "Layer", "Problem"]


@dataclass(frozen=True)
class Constants:
    """Constants of a problem, as the convergence theorems name them.

    ``None`` means "not known / not finite".  ``exact`` lists the ones that are exact values
    rather than upper or lower bounds.

    * ``lipschitz``: G with ||grad f_i(x)|| <= G for every sample i and every x (Ho et al.'s L).
    * ``smoothness``: L with grad f L-Lipschitz (full objective).
    * ``strong_convexity``: mu, when f is mu-strongly convex.
    * ``f_star`` / ``x_star_norm``: the optimum of the full objective, when computable.
    * ``f_lower``: a known lower bound of f (0 for non-negative losses).
    * ``diameter``: F with D(x||x*) = ||x - x*||^2 / 2 <= F^2 on the region the run should stay
      in (Ho et al.'s F; the recipe F^2 = (2||x*|| + 1)^2 / 2 of reference/theorems.md §3).
    * ``gradient_variance``: sigma^2 with E||grad f_i(x) - grad f(x)||^2 <= sigma^2 (one sample).
    """

    convex: bool
    lipschitz: float | None = None
    smoothness: float | None = None
    strong_convexity: float | None = None
    f_star: float | None = None
    f_lower: float | None = None
    x_star_norm: float | None = None
    x_star_gradient_norm: float | None = None
    diameter: float | None = None
    gradient_variance: float | None = None
    exact: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["exact"] = list(self.exact)
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class Layer:
    """One layer of a layered model: its weight matrix and bias inside the flat parameter vector.

    Flat layout, layer after layer: ``W`` (``out x in``, row-major, the shape of
    ``torch.nn.Linear.weight``) followed by ``b`` (``out``).  A layer of any other shape (a
    torch model's top-level module) is only a span: ``size`` parameters from ``offset``, with
    ``n_in = n_out = 0`` and no ``weight``/``bias`` split (see :meth:`of_span`).
    """

    name: str
    n_in: int
    n_out: int
    offset: int
    size: int | None = None  # set for span-only layers; dense layers have n_out * (n_in + 1)

    @classmethod
    def of_span(cls, name: str, offset: int, size: int) -> Layer:
        """A layer that is just ``size`` consecutive parameters from ``offset``."""
        return cls(name=name, n_in=0, n_out=0, offset=offset, size=size)

    @property
    def weight(self) -> slice:
        self._dense()
        return slice(self.offset, self.offset + self.n_out * self.n_in)

    @property
    def bias(self) -> slice:
        self._dense()
        start = self.offset + self.n_out * self.n_in
        return slice(start, start + self.n_out)

    @property
    def span(self) -> slice:
        """Weight and bias together (every parameter of the layer)."""
        size = self.n_out * (self.n_in + 1) if self.size is None else self.size
        return slice(self.offset, self.offset + size)

    def _dense(self) -> None:
        if self.size is not None:
            raise TypeError(f"layer {self.name!r} is a span of {self.size} parameters, not a dense weight and bias")


@runtime_checkable
class Problem(Protocol):
    """A training problem: f(x) = mean_i f_i(x) over ``n_samples`` samples.

    ``loss_grad(x, indices)`` is the minibatch loss and gradient at ``x`` (the parameters an
    iteration read); ``objective``/``gradient`` are the full objective and its gradient on the
    evaluation samples, ``evaluate`` both in one pass.  Problems are deterministic functions of their config and seed.
    """

    kind: str
    n_params: int
    n_samples: int
    layers: tuple[Layer, ...]
    has_math: bool

    def initial_params(self) -> np.ndarray: ...

    def loss_grad(self, x: np.ndarray, indices: np.ndarray) -> tuple[float, np.ndarray]: ...

    def objective(self, x: np.ndarray) -> float: ...

    def gradient(self, x: np.ndarray) -> np.ndarray: ...

    def evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray]: ...

    def constants(self) -> Constants: ...
