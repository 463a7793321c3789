"""Layered models: fully connected networks with softmax cross-entropy, as in the seed paper.

Kumar et al. (arXiv 1512.02728) train fully connected DNNs on TIMIT and ImageNet under SSP;
the PMLS DNN app of the same lab uses 360-dim TIMIT frames and sigmoid hidden layers
(reference/theorems.md §9 [V]).  Here:

* ``mlp``: scikit-learn's bundled ``load_digits`` (1797 real 8x8 images, 10 classes),
* ``timit_like``: Gaussian-mixture frames (360-dim by default, ``classes`` classes, two
  mixture components per class), sigmoid hidden layers.

Parameters are one flat float64 vector, layer after layer (``W`` out x in, then ``b``), the
layout of ``torch.nn.Linear``, so the real backend can load the same initial point.
Backpropagation: delta_L = softmax - onehot, delta_l = phi'(z_l) * (W_{l+1}^T delta_{l+1}),
G_l = delta_l h_{l-1}^T (§5.2 of reference/theorems.md).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.special import expit, log_softmax, softmax

from sspsim.problems.base import Constants, Layer

__all__ = ["MLP", "DigitsMLP", "TimitLike"]

DATA_STREAM = 4
INIT_STREAM = 3


def _act(name: str, z: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return expit(z)
    if name == "tanh":
        return np.tanh(z)
    return np.maximum(z, 0.0)


def _act_grad(name: str, h: np.ndarray) -> np.ndarray:
    """phi'(z) written through h = phi(z)."""
    if name == "sigmoid":
        return h * (1.0 - h)
    if name == "tanh":
        return 1.0 - h * h
    return (h > 0).astype(h.dtype)


class MLP:
    """Softmax classifier with hidden layers ``hidden`` on inputs X (n x d), labels y in [0, classes)."""

    kind = "mlp"
    has_math = True

    def __init__(
        self, X: np.ndarray, y: np.ndarray, *, hidden: tuple[int, ...], activation: str, classes: int,
        seed: int, eval_samples: int | None = None,
    ) -> None:
        self.X = np.ascontiguousarray(X, dtype=float)
        self.y = np.asarray(y, dtype=np.int64)
        self.n_samples = len(self.y)
        self.activation = activation
        self.classes = classes
        widths = (self.X.shape[1], *hidden, classes)
        layers, offset = [], 0
        for i, (n_in, n_out) in enumerate(itertools.pairwise(widths), start=1):
            layers.append(Layer(name=f"layer{i}", n_in=n_in, n_out=n_out, offset=offset))
            offset += n_out * (n_in + 1)
        self.layers = tuple(layers)
        self.n_params = offset
        self.seed = seed
        m = self.n_samples if eval_samples is None else min(eval_samples, self.n_samples)
        self._eval = slice(0, m)

    def initial_params(self) -> np.ndarray:
        """Glorot-uniform weights, zero biases, from the problem seed."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(INIT_STREAM,)))
        x = np.zeros(self.n_params)
        for layer in self.layers:
            bound = np.sqrt(6.0 / (layer.n_in + layer.n_out))
            x[layer.weight] = rng.uniform(-bound, bound, layer.n_out * layer.n_in)
        return x

    def _weights(self, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(x[layer.weight].reshape(layer.n_out, layer.n_in), x[layer.bias]) for layer in self.layers]

    def _loss_grad_rows(self, x: np.ndarray, X: np.ndarray, y: np.ndarray, *, grad: bool) -> tuple[float, np.ndarray]:
        params = self._weights(x)
        hs = [X]
        h = X
        for W, b in params[:-1]:
            h = _act(self.activation, h @ W.T + b)
            hs.append(h)
        W, b = params[-1]
        logits = h @ W.T + b
        n = len(y)
        loss = -float(np.mean(log_softmax(logits, axis=1)[np.arange(n), y]))
        if not grad:
            return loss, np.empty(0)
        g = np.empty(self.n_params)
        delta = softmax(logits, axis=1)
        delta[np.arange(n), y] -= 1.0
        delta /= n
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            g[layer.weight] = (delta.T @ hs[i]).ravel()
            g[layer.bias] = delta.sum(axis=0)
            if i:
                delta = (delta @ params[i][0]) * _act_grad(self.activation, hs[i])
        return loss, g

    def loss_grad(self, x: np.ndarray, indices: np.ndarray) -> tuple[float, np.ndarray]:
        return self._loss_grad_rows(x, self.X[indices], self.y[indices], grad=True)

    def objective(self, x: np.ndarray) -> float:
        return self._loss_grad_rows(x, self.X[self._eval], self.y[self._eval], grad=False)[0]

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self._loss_grad_rows(x, self.X[self._eval], self.y[self._eval], grad=True)[1]

    def evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        return self._loss_grad_rows(x, self.X[self._eval], self.y[self._eval], grad=True)

    def accuracy(self, x: np.ndarray) -> float:
        """Fraction of evaluation samples classified correctly."""
        params = self._weights(x)
        h = self.X[self._eval]
        for W, b in params[:-1]:
            h = _act(self.activation, h @ W.T + b)
        W, b = params[-1]
        return float(np.mean(np.argmax(h @ W.T + b, axis=1) == self.y[self._eval]))

    def constants(self) -> Constants:
        """Cross-entropy is non-negative; nothing else is known in closed form for a network."""
        return Constants(convex=False, f_lower=0.0)


class DigitsMLP(MLP):
    """An MLP on scikit-learn's bundled 8x8 digit images (pixels scaled to [0, 1]).

    The sample order of the dataset is shuffled once with the problem seed, so that
    ``samples`` < 1797 takes a random subset and the evaluation subset is representative.
    """

    kind = "mlp"

    def __init__(self, *, samples: int, hidden: tuple[int, ...], activation: str, seed: int, eval_samples: int | None = None) -> None:
        from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

        data = load_digits()
        order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(DATA_STREAM,))).permutation(len(data.target))
        order = order[: min(samples, len(order))]
        super().__init__(
            data.data[order] / 16.0, data.target[order], hidden=hidden, activation=activation, classes=10,
            seed=seed, eval_samples=eval_samples,
        )


class TimitLike(MLP):
    """Frames from a Gaussian mixture standing in for TIMIT's spliced 360-dim features.

    Each class has two components with means drawn from N(0, I); a frame is a component mean
    plus ``noise`` * N(0, I), and features are standardised.  Larger ``noise`` makes the
    classes overlap more (harder, like real phone classes).
    """

    kind = "timit_like"

    def __init__(
        self, *, dim: int, samples: int, classes: int, hidden: tuple[int, ...], activation: str, noise: float,
        seed: int, eval_samples: int | None = None,
    ) -> None:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(DATA_STREAM,)))
        means = rng.standard_normal((classes, 2, dim))
        y = rng.integers(0, classes, samples)
        component = rng.integers(0, 2, samples)
        X = means[y, component] + noise * rng.standard_normal((samples, dim))
        X = (X - X.mean(axis=0)) / X.std(axis=0)
        super().__init__(X, y, hidden=hidden, activation=activation, classes=classes, seed=seed, eval_samples=eval_samples)
