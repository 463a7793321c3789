"""A small GRU on a generated sequence task: read 12 digits, answer the largest (no download).

Run it:  sspsim simulate examples/sequence/config.toml --out runs/gru && sspsim check runs/gru
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

import sspsim


class MaxDigit(Dataset):
    """``samples`` sequences of ``length`` random digits 0..vocab-1; the target is their maximum."""

    def __init__(self, samples: int, length: int, vocab: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.tokens = torch.randint(0, vocab, (samples, length), generator=generator)
        self.targets = self.tokens.max(dim=1).values

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tokens[i], self.targets[i]


class GRUClassifier(nn.Module):
    """Embedding -> GRU -> linear read-out of the last hidden state."""

    def __init__(self, vocab: int, embed: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.gru = nn.GRU(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _, last = self.gru(self.embed(tokens))
        return self.head(last[-1])


def make_task(seed: int, samples: int = 2000, length: int = 12, vocab: int = 10, hidden: int = 32) -> sspsim.TorchTask:
    """Training and test sequences from different streams of ``seed``; the GRU initialised from ``seed``."""
    torch.manual_seed(seed)
    return sspsim.TorchTask(
        model=GRUClassifier(vocab, embed=16, hidden=hidden),
        train=MaxDigit(samples, length, vocab, seed=2 * seed),
        test=MaxDigit(samples // 4, length, vocab, seed=2 * seed + 1),
    )
