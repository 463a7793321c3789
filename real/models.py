"""Torch versions of sspsim's problems: the same data, the same formulas, on any device.

Each wraps the numpy problem that :func:`sspsim.make_problem` builds from the config (so the
data and the initial point are the simulator's, bit for bit) and computes the minibatch loss
and gradient at a flat parameter vector with torch, mirroring the numpy arithmetic.  In
float64 on the CPU the two agree to rounding; that is what lets the real backend reproduce the
simulator's trajectory.

A user's task (``problem.kind = "torch"``) needs no mirror: :class:`TaskOnDevice` runs the
simulator's own adapter (:class:`~sspsim.problems.torch_task.TorchTaskProblem`, autograd through
``functional_call``) on the worker's device, in the model's own dtype.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from sspsim.problems import DigitsMLP, LeastSquares, Logistic, Quadratic, RobustRegression, TimitLike

__all__ = ["TaskOnDevice", "TorchProblem", "torch_problem"]


class TorchProblem:
    """``loss_grad(x, indices) -> (loss, grad)`` on ``device`` in ``dtype``."""

    def __init__(self, problem, device: torch.device, dtype: torch.dtype) -> None:  # type: ignore[no-untyped-def]
        self.problem = problem
        self.device = device
        self.dtype = dtype
        self.kind = problem.kind
        self.n_params = problem.n_params
        self.n_samples = problem.n_samples

    def tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=self.dtype, device=self.device)

    def loss_grad(self, x: torch.Tensor, indices: np.ndarray) -> tuple[float, torch.Tensor]:
        raise NotImplementedError

    def loss(self, x: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
        """The minibatch loss as a differentiable tensor (autograd; the DDP baseline uses it)."""
        raise NotImplementedError


class _Linear(TorchProblem):
    def __init__(self, problem, device, dtype) -> None:  # type: ignore[no-untyped-def]
        super().__init__(problem, device, dtype)
        self.A = self.tensor(problem.A)
        self.b = self.tensor(problem.b)

    def loss_grad(self, x: torch.Tensor, indices: np.ndarray) -> tuple[float, torch.Tensor]:
        idx = torch.as_tensor(indices, device=self.device)
        A, b = self.A[idx], self.b[idx]
        loss, weight = self._loss_weight(A @ x, b)
        return float(loss), A.T @ weight

    def loss(self, x: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
        idx = torch.as_tensor(indices, device=self.device)
        return self._loss_weight(self.A[idx] @ x, self.b[idx])[0]

    def _loss_weight(self, ax: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean loss at the margins ``ax`` and d(loss)/d(ax): each linear problem's own formula."""
        raise NotImplementedError


class _Logistic(_Linear):
    def _loss_weight(self, ax: torch.Tensor, y: torch.Tensor):  # type: ignore[no-untyped-def]
        margin = y * ax
        loss = torch.logaddexp(torch.zeros((), dtype=self.dtype, device=self.device), -margin).mean()
        return loss, -y * torch.sigmoid(-margin) / len(y)


class _LeastSquares(_Linear):
    def _loss_weight(self, ax: torch.Tensor, b: torch.Tensor):  # type: ignore[no-untyped-def]
        r = ax - b
        return 0.5 * (r @ r) / len(b), r / len(b)


class _Robust(_Linear):
    def _loss_weight(self, ax: torch.Tensor, b: torch.Tensor):  # type: ignore[no-untyped-def]
        r = ax - b
        half = 0.5 * r * r
        return torch.log1p(half).mean(), (r / (1.0 + half)) / len(b)


class _Quadratic(TorchProblem):
    def __init__(self, problem: Quadratic, device, dtype) -> None:  # type: ignore[no-untyped-def]
        super().__init__(problem, device, dtype)
        self.xi = self.tensor(problem.xi)

    def loss_grad(self, x: torch.Tensor, indices: np.ndarray) -> tuple[float, torch.Tensor]:
        xi = self.xi[torch.as_tensor(indices, device=self.device)].mean(dim=0)
        h, noise = self.problem.curvature, self.problem.noise
        return float(0.5 * h * (x @ x) + noise * (xi @ x)), h * x + noise * xi

    def loss(self, x: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
        xi = self.xi[torch.as_tensor(indices, device=self.device)].mean(dim=0)
        return 0.5 * self.problem.curvature * (x @ x) + self.problem.noise * (xi @ x)


class _MLP(TorchProblem):
    """Fully connected softmax classifier; backpropagation written out as in the numpy version."""

    def __init__(self, problem, device, dtype) -> None:  # type: ignore[no-untyped-def]
        super().__init__(problem, device, dtype)
        self.X = self.tensor(problem.X)
        self.y = torch.as_tensor(problem.y, device=device)
        self.layers = problem.layers
        self.activation = problem.activation

    def _act(self, z: torch.Tensor) -> torch.Tensor:
        if self.activation == "sigmoid":
            return torch.sigmoid(z)
        if self.activation == "tanh":
            return torch.tanh(z)
        return torch.clamp_min(z, 0.0)

    def _act_grad(self, h: torch.Tensor) -> torch.Tensor:
        if self.activation == "sigmoid":
            return h * (1.0 - h)
        if self.activation == "tanh":
            return 1.0 - h * h
        return (h > 0).to(h.dtype)

    def loss(self, x: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
        idx = torch.as_tensor(indices, device=self.device)
        h, y = self.X[idx], self.y[idx]
        layers = self.layers
        for i, layer in enumerate(layers):
            z = h @ x[layer.weight].reshape(layer.n_out, layer.n_in).T + x[layer.bias]
            h = self._act(z) if i < len(layers) - 1 else z
        return torch.nn.functional.cross_entropy(h, y)

    def loss_grad(self, x: torch.Tensor, indices: np.ndarray) -> tuple[float, torch.Tensor]:
        idx = torch.as_tensor(indices, device=self.device)
        X, y = self.X[idx], self.y[idx]
        params = [(x[layer.weight].reshape(layer.n_out, layer.n_in), x[layer.bias]) for layer in self.layers]
        hs = [X]
        h = X
        for W, b in params[:-1]:
            h = self._act(h @ W.T + b)
            hs.append(h)
        W, b = params[-1]
        logits = h @ W.T + b
        n = len(y)
        rows = torch.arange(n, device=self.device)
        loss = -torch.log_softmax(logits, dim=1)[rows, y].mean()
        g = torch.empty(self.n_params, dtype=self.dtype, device=self.device)
        delta = torch.softmax(logits, dim=1)
        delta[rows, y] -= 1.0
        delta /= n
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            g[layer.weight] = (delta.T @ hs[i]).reshape(-1)
            g[layer.bias] = delta.sum(dim=0)
            if i:
                delta = (delta @ params[i][0]) * self._act_grad(hs[i])
        return float(loss), g


class TaskOnDevice(TorchProblem):
    """A user's task (built from the config's factory, options and seed) on ``device``.

    The task's problem was built where ``[problem] device`` says; on another device a copy of
    its model and data is made there (the original stays usable, e.g. by an in-process server).
    The arithmetic is the model's own dtype: ``[real] dtype`` does not apply to it.
    """

    def __init__(self, problem, device: torch.device) -> None:  # type: ignore[no-untyped-def]
        from sspsim.problems.torch_task import TorchTaskProblem
        from sspsim.task import TorchTask

        if problem.device != device:
            task = TorchTask(model=copy.deepcopy(problem.model), train=(problem.inputs, problem.targets), loss=problem.loss_fn)
            problem = TorchTaskProblem(task, device=str(device), batch_size=1)
        super().__init__(problem, device, problem.dtype)

    def _batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, device=self.device)
        return self.problem.inputs[idx], self.problem.targets[idx]

    def loss_grad(self, x: torch.Tensor, indices: np.ndarray) -> tuple[float, torch.Tensor]:
        return self.problem.loss_grad_flat(x, *self._batch(indices))  # type: ignore[no-any-return]

    def loss(self, x: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
        return self.problem.batch_loss(x, *self._batch(indices))  # type: ignore[no-any-return]


def torch_problem(problem, device: torch.device, dtype: torch.dtype) -> TorchProblem:  # type: ignore[no-untyped-def]
    """The torch counterpart of a numpy problem (None-kind problems have no math); a user's
    task runs itself on ``device`` in its own dtype."""
    if problem.kind == "torch":
        return TaskOnDevice(problem, device)
    if isinstance(problem, Logistic):
        return _Logistic(problem, device, dtype)
    if isinstance(problem, LeastSquares):
        return _LeastSquares(problem, device, dtype)
    if isinstance(problem, RobustRegression):
        return _Robust(problem, device, dtype)
    if isinstance(problem, Quadratic):
        return _Quadratic(problem, device, dtype)
    if isinstance(problem, (DigitsMLP, TimitLike)):
        return _MLP(problem, device, dtype)
    raise TypeError(f"no torch version of problem.kind = {problem.kind!r}")
