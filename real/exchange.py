"""Small Python values between ranks as JSON bytes in uint8 tensors (length first, then the bytes).

Ranks never unpickle what another sends them (``broadcast_object_list`` and ``gather_object``
do): whoever reached the process group could otherwise run code in every rank.
"""

from __future__ import annotations

import json

import torch
import torch.distributed as dist

__all__ = ["broadcast_json", "gather_json"]


def _json_tensor(obj: object) -> torch.Tensor:
    return torch.frombuffer(bytearray(json.dumps(obj).encode()), dtype=torch.uint8)


def broadcast_json(obj: object, src: int = 0) -> object:
    """``obj`` of rank ``src`` on every rank."""
    rank = dist.get_rank()
    data = _json_tensor(obj) if rank == src else torch.empty(0, dtype=torch.uint8)
    size = torch.tensor([data.numel()], dtype=torch.int64)
    dist.broadcast(size, src=src)
    if rank != src:
        data = torch.empty(int(size.item()), dtype=torch.uint8)
    dist.broadcast(data, src=src)
    return json.loads(bytes(data.numpy()).decode())


def gather_json(obj: object, dst: int = 0) -> list | None:
    """Every rank's ``obj`` on rank ``dst`` (in rank order; None elsewhere), as JSON bytes padded to the longest."""
    rank, world = dist.get_rank(), dist.get_world_size()
    data = _json_tensor(obj)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([data.numel()], dtype=torch.int64))
    longest = max(int(s.item()) for s in sizes)
    padded = torch.zeros(longest, dtype=torch.uint8)
    padded[: data.numel()] = data
    bufs = [torch.empty(longest, dtype=torch.uint8) for _ in range(world)] if rank == dst else None
    dist.gather(padded, bufs, dst=dst)
    if bufs is None:
        return None
    return [json.loads(bytes(b[: int(n.item())].numpy()).decode()) for b, n in zip(bufs, sizes)]
