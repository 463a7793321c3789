"""The replay's oracle for ``[problem] kind = "torch"``: the user's task rebuilt, its math restated.

The run directory records the factory (``module:function``), the folder it was found in, its
options and the problem seed; the oracle calls the factory again and recomputes every minibatch
loss and gradient itself, from the definition (Kumar et al. §3: SGD on f(x) = mean_i l(m(a_i; x), y_i)):

    x -> params: the trainable parameters, in ``named_parameters`` order, are consecutive
                 slices of x, each reshaped to its parameter's shape;
    f_B(x) = loss(model(inputs[B]; params), targets[B]),   g_B(x) = d f_B / d x (autograd),

in the model's dtype, with the model in eval mode and floating inputs and targets cast to that
dtype.  It shares only the task's data format (:mod:`sspsim.task`) with the simulator, not its
adapter: a simulator whose torch path computed something else would not match.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sspsim.config import ProblemConfig
from sspsim.errors import InputError

__all__ = ["TorchOracle", "torch_oracle"]


class TorchOracle:
    """``initial_params``, ``loss_grad`` (what the replay needs) of a rebuilt torch task."""

    kind = "torch"
    has_math = True

    def __init__(self, cfg: ProblemConfig, seed: int, device: str) -> None:
        import torch

        from sspsim.task import build_task, dataset_tensors, load_factory

        assert cfg.factory is not None
        task = build_task(load_factory(cfg.factory, cfg.factory_dir), seed, cfg.options, name=cfg.factory)
        self.torch = torch
        self.device = torch.device(device)
        self.model = task.model.to(self.device).eval()
        self.loss = task.loss
        trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in trainable]
        self.shapes = [tuple(p.shape) for _, p in trainable]
        self.dtype = trainable[0][1].dtype
        self.x0 = np.concatenate([p.detach().to("cpu", torch.float64).numpy().ravel() for _, p in trainable])
        self.n_params = int(self.x0.size)
        inputs, targets = dataset_tensors(task.train, "TorchTask.train")
        self.inputs = (inputs.to(self.dtype) if inputs.is_floating_point() else inputs).to(self.device)
        self.targets = (targets.to(self.dtype) if targets.is_floating_point() else targets).to(self.device)
        self.n_samples = len(self.targets)

    def initial_params(self) -> np.ndarray:
        return self.x0.copy()

    def loss_grad(self, x: np.ndarray, indices: np.ndarray) -> tuple[float, np.ndarray]:
        torch = self.torch
        flat = torch.tensor(x, dtype=self.dtype, device=self.device, requires_grad=True)
        params: dict[str, Any] = {}
        start = 0
        for name, shape in zip(self.names, self.shapes):
            size = int(np.prod(shape, dtype=np.int64))
            params[name] = flat[start:start + size].view(shape)
            start += size
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64), device=self.device)
        out = torch.func.functional_call(self.model, params, (self.inputs[idx],))
        loss = self.loss(out, self.targets[idx]).reshape(())
        (grad,) = torch.autograd.grad(loss, flat)
        return float(loss.detach()), grad.to("cpu", torch.float64).numpy()


def torch_oracle(cfg: ProblemConfig, seed: int, device: str | None = None) -> TorchOracle | str:
    """The oracle on ``device`` (the one the run computed on, from run.json; else the config's
    choice), or a one-line reason the task cannot be rebuilt from the run directory."""
    import torch

    if cfg.factory is None:
        return "the run was given a TorchTask object, not a factory: nothing to rebuild it from"
    device = device or cfg.device or "auto"
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        return f"the run computed on {device} and no CUDA device is available here to recompute it"
    try:
        return TorchOracle(cfg, seed, device)
    except InputError as exc:
        return f"cannot rebuild the task: {exc}"
    except ImportError as exc:
        return f"cannot rebuild the task: {exc}"
