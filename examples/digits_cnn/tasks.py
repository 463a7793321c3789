"""A small CNN on scikit-learn's 8x8 digit images (bundled with scikit-learn: no download).

Run it:  sspsim simulate examples/digits_cnn/config.toml --out runs/cnn && sspsim check runs/cnn
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import sspsim


class DigitsCNN(nn.Module):
    """conv 3x3 -> relu -> pool -> conv 3x3 -> relu -> pool -> linear: 8x8 -> 4x4 -> 2x2 -> 10 classes."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1)
        self.head = nn.Linear(2 * channels * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.head(x.flatten(1))


def make_task(seed: int, channels: int = 8, test_fraction: float = 0.2) -> sspsim.TorchTask:
    """The digits, shuffled with ``seed`` and split into train and test; a CNN initialised from ``seed``."""
    torch.manual_seed(seed)
    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)  # (1797, 1, 8, 8)
    labels = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    n_test = int(len(labels) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return sspsim.TorchTask(
        model=DigitsCNN(channels),
        train=(images[train], labels[train]),
        test=(images[test], labels[test]),
    )
