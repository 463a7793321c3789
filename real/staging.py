"""Moving a worker's parameters and gradients between its device and the wire, through host
buffers allocated once.

Gloo's point-to-point send and receive abort on CUDA tensors, so every message is float64 host
memory (:mod:`sspsim.real.transport`).  A worker on a GPU therefore copies the parameters it
reads host -> device and its gradient device -> host once per iteration.  :class:`Staging` keeps
one host buffer per direction (page-locked when the device is a GPU, so the copies are DMA
transfers that need no bounce buffer) and one device buffer for the parameters, and reuses them
for every message; on the CPU the parameters are copied once, straight into the reused buffer.

Per iteration: ``x = staging.to_device(params)`` (host float64 -> device, cast to the model's
dtype), compute, ``grad = staging.to_host(g)`` (device -> host float64; waits for the copy).
The array ``to_host`` returns is the reused buffer: send it before the next ``to_host``.  On the
CPU that buffer can be the transport's outgoing payload (``host_out``), so the push copies
nothing more.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["Staging"]


class Staging:
    """Reused host (pinned on CUDA) and device buffers for ``n`` parameters on ``device`` in ``dtype``."""

    def __init__(self, n: int, device: torch.device, dtype: torch.dtype, *, through_host: bool | None = None,
                 host_out: np.ndarray | None = None) -> None:
        """``through_host``: stage reads through the host buffer (default: on a GPU only; the CPU
        can be made to, so that path is tested without a GPU).  ``host_out``: a float64 array of
        length n to write gradients into instead of a buffer of its own (the transport's outgoing
        payload, so a push needs no further copy); ignored on a GPU, whose buffer is page-locked."""
        self.n = n
        self.device = torch.device(device)
        self.dtype = dtype
        self.pinned = self.device.type == "cuda"
        self.through_host = self.pinned if through_host is None else through_host
        self.host_in = torch.empty(n if self.through_host else 0, dtype=torch.float64, pin_memory=self.pinned)
        if host_out is not None and not self.pinned:
            if host_out.shape != (n,) or host_out.dtype != np.float64:
                raise ValueError(f"host_out must be float64 of shape ({n},), got {host_out.dtype} {host_out.shape}")
            self.host_out = torch.from_numpy(host_out)
        else:
            self.host_out = torch.empty(n, dtype=torch.float64, pin_memory=self.pinned)
        self.on_device = torch.empty(n, dtype=dtype, device=self.device)
        self._in = self.host_in.numpy()
        self._out = host_out if host_out is not None and not self.pinned else self.host_out.numpy()

    def to_device(self, params: np.ndarray) -> torch.Tensor:
        """``params`` (float64, length n) on the device in ``dtype``: the reused device buffer.

        The host -> device copy is asynchronous on a GPU (same stream as the computation that
        follows, so that computation sees it); :meth:`to_host` waits for the stream, so the host
        buffer is never overwritten while a copy from it may still be running.
        """
        if params.shape != (self.n,):
            raise ValueError(f"expected {self.n} parameters, got shape {params.shape}")
        if not self.through_host:  # the CPU: one copy, straight into the reused parameter buffer
            self.on_device.copy_(torch.from_numpy(params))
            return self.on_device
        np.copyto(self._in, params, casting="same_kind")
        self.on_device.copy_(self.host_in, non_blocking=self.pinned)
        return self.on_device

    def to_host(self, grad: torch.Tensor) -> np.ndarray:
        """``grad`` (any dtype, on the device) as float64 host memory: the reused host buffer."""
        if grad.numel() != self.n:
            raise ValueError(f"expected {self.n} gradient entries, got {grad.numel()}")
        self.host_out.copy_(grad.reshape(-1), non_blocking=self.pinned)
        if self.pinned:
            torch.cuda.current_stream(self.device).synchronize()
        return self._out
