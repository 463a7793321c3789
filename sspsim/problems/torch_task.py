"""A user's torch model as a :class:`~sspsim.problems.base.Problem`: gradients by autograd.

The parameter server holds one flat float64 vector x: the model's trainable parameters in
``named_parameters`` order, each flattened.  A worker's minibatch loss and gradient at x are

    f_B(x) = loss(model(inputs[B]; params = unflatten(x)), targets[B]),   grad = d f_B / d x,

computed with ``torch.func.functional_call`` in the model's own dtype (float32 models compute in
float32; the server still adds float64 updates), on ``device``.  The model is put in eval mode
(no dropout; batch norm uses its running statistics), so a gradient is a pure function of x and
the batch, and runs on the CPU are deterministic.  Layers are the model's top-level modules
(a parameter registered on the model itself is a layer of its own), as spans of x.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from sspsim.errors import ConfigError, InputError
from sspsim.problems.base import Constants, Layer
from sspsim.task import FIELD, TorchTask, cross_entropy, dataset_tensors

__all__ = ["TorchTaskProblem", "resolve_device", "top_level_layers"]

EVAL_CHUNK = 4096  # samples per forward pass of a full-objective evaluation


def resolve_device(device: str | None) -> torch.device:
    """``auto`` (or None): cuda when available, else cpu."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("problem.device", device, "no CUDA device is available here; use cpu or auto")
    return torch.device(device)


def top_level_layers(names: list[str], sizes: list[int]) -> tuple[Layer, ...]:
    """Consecutive parameters sharing their first name component form one span-only layer."""
    layers: list[Layer] = []
    offset = 0
    for name, size in zip(names, sizes):
        group = name.split(".")[0]
        if layers and layers[-1].name == group:
            last = layers[-1]
            layers[-1] = Layer.of_span(group, last.offset, (last.size or 0) + size)
        else:
            layers.append(Layer.of_span(group, offset, size))
        offset += size
    return tuple(layers)


class TorchTaskProblem:
    """The Problem protocol over a :class:`~sspsim.task.TorchTask` (see the module docstring)."""

    kind = "torch"
    has_math = True

    def __init__(
        self, task: TorchTask, *, device: str | None = "auto", eval_samples: int | None = None, batch_size: int = 1,
        name: str = "the task",
    ) -> None:
        model = task.model
        if not isinstance(model, torch.nn.Module):
            raise InputError(FIELD, name, f"TorchTask.model must be a torch.nn.Module, not {type(model).__name__}")
        if not callable(task.loss):
            raise InputError(FIELD, name, f"TorchTask.loss must be callable, not {type(task.loss).__name__}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if not named:
            raise InputError(FIELD, name, "the model has no trainable parameters")
        dtypes = {p.dtype for _, p in named}
        if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
            raise InputError(FIELD, name, f"the model's trainable parameters must share one floating dtype, not {sorted(map(str, dtypes))}")
        self.dtype: torch.dtype = next(iter(dtypes))
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        self.n_params = sum(self.sizes)
        self.layers = top_level_layers(self.names, self.sizes)
        self._x0 = torch.cat([p.detach().reshape(-1) for _, p in named]).to("cpu", torch.float64).numpy()
        self.loss_fn = task.loss
        self.inputs, self.targets = self._tensors(task.train, "TorchTask.train")
        self.n_samples = len(self.targets)
        m = self.n_samples if eval_samples is None else min(eval_samples, self.n_samples)
        self._eval = (self.inputs[:m], self.targets[:m])
        self._test = None if task.test is None else self._tensors(task.test, "TorchTask.test")
        self._default_loss = task.loss is cross_entropy
        self._classifies = False
        self._check_one_batch(min(batch_size, self.n_samples), name)
        if not self._classifies:
            self.accuracy = None  # type: ignore[assignment]

    def _tensors(self, data: Any, where: str) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = dataset_tensors(data, where)
        if inputs.is_floating_point():
            inputs = inputs.to(self.dtype)
        if targets.is_floating_point():
            targets = targets.to(self.dtype)
        return inputs.to(self.device), targets.to(self.device)

    def _check_one_batch(self, batch: int, name: str) -> None:
        """Run the first ``batch`` samples through the model, the loss and autograd before any run starts."""
        try:
            with torch.no_grad():
                out = self._forward(self._params(torch.as_tensor(self._x0, dtype=self.dtype, device=self.device)),
                                    self.inputs[:batch])
            loss, _ = self._loss_grad_rows(self._x0, self.inputs[:batch], self.targets[:batch])
        except InputError:
            raise
        except Exception as exc:
            text = " ".join(str(exc).split())
            raise InputError(FIELD, name, f"the model fails on one batch of {batch} samples: {type(exc).__name__}: {text}") from None
        if not math.isfinite(loss):
            raise InputError(FIELD, name, f"the loss on one batch of {batch} samples is {loss}, not a finite number")
        target = self.targets[:batch]
        self._classifies = (not target.is_floating_point() and target.dtype != torch.bool
                            and out.shape[:-1] == target.shape)

    # -- the math ------------------------------------------------------------------------
    def _params(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: t.view(s) for n, t, s in zip(self.names, flat.split(self.sizes), self.shapes)}

    def _forward(self, params: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, params, (inputs,))  # type: ignore[no-any-return]

    def _loss_grad_rows(self, x: np.ndarray, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, torch.Tensor]:
        flat = torch.from_numpy(np.asarray(x, dtype=np.float64)).to(self.device, self.dtype)
        return self.loss_grad_flat(flat, inputs, targets)

    def loss_grad_flat(self, flat: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, torch.Tensor]:
        """The batch loss and its gradient (a flat tensor on ``self.device``) at the flat parameters ``flat``."""
        flat = flat.to(self.device, self.dtype)
        leaves = [t.view(s).detach().requires_grad_() for t, s in zip(flat.split(self.sizes), self.shapes)]
        loss = self.loss_fn(self._forward(dict(zip(self.names, leaves)), inputs), targets)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise InputError(FIELD, "TorchTask.loss", "must return a scalar tensor (the mean loss of the batch)")
        grads = torch.autograd.grad(loss.reshape(()), leaves)  # one leaf per parameter: the cheapest backward
        return float(loss.detach()), torch.cat([g.reshape(-1) for g in grads])

    def batch_loss(self, flat: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The batch loss at ``flat`` as a tensor differentiable in ``flat`` (the DDP baseline's forward)."""
        return self.loss_fn(self._forward(self._params(flat.to(self.device, self.dtype)), inputs), targets)  # type: ignore[no-any-return]

    def initial_params(self) -> np.ndarray:
        """The model's parameters as the factory built them, flattened, in float64."""
        return self._x0.copy()

    def loss_grad(self, x: np.ndarray, indices: np.ndarray) -> tuple[float, np.ndarray]:
        idx = torch.from_numpy(np.asarray(indices, dtype=np.int64)).to(self.device)
        loss, grad = self._loss_grad_rows(x, self.inputs[idx], self.targets[idx])
        return loss, grad.to("cpu", torch.float64).numpy()

    def evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The mean loss over the evaluation samples and its gradient (chunks weighted by size)."""
        inputs, targets = self._eval
        n = len(targets)
        total, grad = 0.0, np.zeros(self.n_params)
        for start in range(0, n, EVAL_CHUNK):
            stop = min(n, start + EVAL_CHUNK)
            loss, g = self._loss_grad_rows(x, inputs[start:stop], targets[start:stop])
            w = (stop - start) / n
            total += w * loss
            grad += w * g.to("cpu", torch.float64).numpy()
        return total, grad

    def objective(self, x: np.ndarray) -> float:
        inputs, targets = self._eval
        n = len(targets)
        params = self._params(torch.as_tensor(x, dtype=self.dtype, device=self.device))
        total = 0.0
        with torch.no_grad():
            for start in range(0, n, EVAL_CHUNK):
                stop = min(n, start + EVAL_CHUNK)
                total += (stop - start) / n * float(self.loss_fn(self._forward(params, inputs[start:stop]), targets[start:stop]))
        return total

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.evaluate(x)[1]

    def accuracy(self, x: np.ndarray) -> float:
        """Fraction of test samples (else evaluation samples) whose argmax output is the target."""
        inputs, targets = self._test if self._test is not None else self._eval
        params = self._params(torch.as_tensor(x, dtype=self.dtype, device=self.device))
        hits = 0
        with torch.no_grad():
            for start in range(0, len(targets), EVAL_CHUNK):
                out = self._forward(params, inputs[start:start + EVAL_CHUNK])
                hits += int((out.argmax(dim=-1) == targets[start:start + EVAL_CHUNK]).sum())
        return hits / targets.numel()

    def constants(self) -> Constants:
        """Nothing is known of a user's model, except that cross-entropy is non-negative."""
        return Constants(convex=False, f_lower=0.0 if self._default_loss else None)
