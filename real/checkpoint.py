"""Server checkpoints: parameters, clock table, snapshots, momentum buffers, the trace so far.

Written with ``torch.save`` atomically (a temporary file renamed over ``checkpoint.pt``) and
read with ``torch.load(weights_only=True)``: only tensors and plain containers are unpickled,
so a checkpoint cannot run code.  Sample order and injected delays are pure functions of
(seed, worker, clock), so no random-generator state is needed to resume.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sspsim.errors import InputError

__all__ = ["CHECKPOINT", "load_checkpoint", "save_checkpoint"]

CHECKPOINT = "checkpoint.pt"
FORMAT = "sspsim-checkpoint/1"


def _to_torch(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, dict):
        return {k: _to_torch(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_torch(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _to_numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_numpy(v) for v in value]
    return value


def save_checkpoint(out: Path, state: dict[str, Any]) -> Path:
    path = Path(out) / CHECKPOINT
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"format": FORMAT, "state": _to_torch(state)}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(out: Path) -> dict[str, Any]:
    path = Path(out) / CHECKPOINT
    if not path.is_file():
        raise InputError("--resume", str(out), f"has no {CHECKPOINT} (set real.checkpoint_every to write them)")
    try:
        blob = torch.load(path, weights_only=True)
    except Exception as exc:
        raise InputError(str(path), "...", f"not a readable checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise InputError(str(path), blob.get("format") if isinstance(blob, dict) else "?", f"expected {FORMAT}")
    return _to_numpy(blob["state"])
