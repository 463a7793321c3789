"""Messages between the server (rank 0) and the workers (ranks 1..P), over Gloo point-to-point.

Every message is one float64 CPU tensor of fixed length ``HEADER + n_params``: Gloo's
any-source receive needs a buffer of known size, and one message per direction per iteration
keeps the server's work per iteration to one receive and one send.  GPU tensors are staged
through the CPU (Gloo point-to-point aborts on CUDA tensors).

Worker -> server, header fields (then the gradient):
    kind (HELLO / PUSH / LAST), worker, clock, loss, compute_time, start_time, real_compute, sent
Server -> worker, header fields (then the parameters):
    kind (READ / STOP), clock, read_time, visible_clock, read_updates, server_now, 0, 0

The server reads the gradient of a PUSH, commits it, and answers the same message's request
for the next read when the gate allows.  ``Transport`` is the seam another data plane (e.g.
``torch.distributed.rpc``) would implement; a sharded server would carry a parameter range.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "HEADER",
    "HELLO",
    "LAST",
    "PUSH",
    "READ",
    "STOP",
    "GlooTransport",
    "Message",
    "Transport",
]

HEADER = 8
HELLO, PUSH, LAST = 1.0, 2.0, 3.0  # worker -> server
READ, STOP = 1.0, 2.0  # server -> worker


@dataclass
class Message:
    """A received message: who sent it, its header, its payload (a view into the buffer)."""

    source: int
    header: np.ndarray
    payload: np.ndarray


class Transport(Protocol):
    """What the server and workers need from a data plane."""

    def send(self, dst: int, header: list[float], payload: np.ndarray | None) -> None: ...

    def recv_from(self, src: int) -> Message: ...


class GlooTransport:
    """Blocking Gloo send/recv of fixed-size float64 messages; the server receives from any worker
    on a background thread so its main loop can time out, notice dead workers and handle signals."""

    def __init__(self, n_params: int) -> None:
        self.n_params = n_params
        self.size = HEADER + n_params
        self._inbox: queue.Queue[Message | BaseException] = queue.Queue()
        self._pump: threading.Thread | None = None

    def send(self, dst: int, header: list[float], payload: np.ndarray | None) -> None:
        buf = torch.zeros(self.size, dtype=torch.float64)
        buf[: len(header)] = torch.tensor(header, dtype=torch.float64)
        if payload is not None:
            buf[HEADER:] = torch.as_tensor(payload, dtype=torch.float64)
        dist.send(buf, dst=dst)

    def recv_from(self, src: int) -> Message:
        buf = torch.empty(self.size, dtype=torch.float64)
        dist.recv(buf, src=src)
        data = buf.numpy()
        return Message(src, data[:HEADER], data[HEADER:])

    # -- server side: any-source receive on a thread --------------------------------------
    def start_receiving(self) -> None:
        def pump() -> None:
            while True:
                buf = torch.empty(self.size, dtype=torch.float64)
                try:
                    src = dist.recv(buf)
                except BaseException as exc:  # noqa: BLE001 - hand every failure to the main loop
                    self._inbox.put(exc)
                    return
                data = buf.numpy()
                self._inbox.put(Message(int(src), data[:HEADER], data[HEADER:]))

        self._pump = threading.Thread(target=pump, name="sspsim-recv", daemon=True)
        self._pump.start()

    def next_message(self, timeout: float) -> Message | None:
        """The next message from any worker, or None after ``timeout`` seconds."""
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise ConnectionError(f"receive failed: {item}") from item
        return item
