"""Messages between the server (rank 0) and the workers (ranks 1..P), and the data planes that
carry them.

Every message is one float64 vector of fixed length ``HEADER + n_params``: Gloo's any-source
receive needs a buffer of known size, and one message per direction per iteration keeps the
server's work per iteration to one receive and one send.  The first ``HEADER`` floats are a
typed header, :class:`WorkerHeader` (worker -> server) or :class:`ServerHeader` (server ->
worker), chosen by its :class:`Kind`; the rest is the payload (gradient or parameters).
:func:`encode`, :func:`encode_into` and :func:`decode` are the only code that knows the layout.

The server reads the gradient of a PUSH, commits it, and answers the same message's request
for the next read when the gate allows.  :class:`Transport` is what the server and worker loops
are given: :class:`GlooTransport` under torchrun, :class:`InProcessTransport` for threads in one
process (tests).  Another data plane (e.g. ``torch.distributed.rpc``) would implement the same
four methods; a sharded server would carry a parameter range.

No message allocates on the Gloo path (issue 11): the buffers are allocated once and reused,
and a transport may offer an ``outgoing`` array, its send buffer's payload, that a payload
written in place is sent from without a copy.  The server keeps x there when every read
sends x itself (eager reads, K-sync), and a worker's :class:`~sspsim.real.staging.Staging`
writes its gradient there on the CPU, so a push + pull copies nothing but the update itself.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from dataclasses import astuple, dataclass, fields
from enum import IntEnum
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # torch only where a transport is built: the in-process one needs none
    import torch
    from torch.distributed import ProcessGroup

__all__ = [
    "HEADER",
    "GlooTransport",
    "Header",
    "InProcessHub",
    "InProcessTransport",
    "Kind",
    "Message",
    "ServerHeader",
    "Transport",
    "WorkerHeader",
    "decode",
    "encode",
    "encode_into",
]

HEADER = 8
"""Floats reserved for the header at the start of every message."""


class Kind(IntEnum):
    """What a message is; the first header float."""

    HELLO = 1  # worker -> server: ready, send my first read
    PUSH = 2  # worker -> server: the gradient of clock ``clock``; send my next read
    LAST = 3  # worker -> server: the gradient of my last clock; I am finished
    READ = 4  # server -> worker: parameters for iteration ``clock``
    DONE = 5  # server -> worker: nothing left to do (a resumed run whose worker had finished)
    STOP = 6  # server -> worker: stop now


@dataclass(frozen=True, slots=True)
class WorkerHeader:
    """Worker -> server (HELLO, PUSH, LAST).  Times are seconds in the server's ``time.time()``."""

    kind: Kind
    worker: int
    clock: int = 0
    loss: float = 0.0
    compute_time: float = 0.0  # the iteration's whole duration, injected delay included
    start_time: float = 0.0
    real_compute: float = 0.0  # the measured computation alone
    sent: float = 0.0


@dataclass(frozen=True, slots=True)
class ServerHeader:
    """Server -> worker (READ, DONE, STOP)."""

    kind: Kind
    clock: int = 0  # the iteration this read is for
    read_time: float = 0.0  # seconds since the run started
    visible_clock: int = 0
    read_updates: int = 0
    server_now: float = 0.0  # the server's time.time() when it sent the read


Header = WorkerHeader | ServerHeader
_SENDER_OF: dict[Kind, type[WorkerHeader] | type[ServerHeader]] = {Kind.HELLO: WorkerHeader, Kind.PUSH: WorkerHeader, Kind.LAST: WorkerHeader,
              Kind.READ: ServerHeader, Kind.DONE: ServerHeader, Kind.STOP: ServerHeader}
_CASTS = {cls: [{"Kind": Kind, "int": int, "float": float}[f.type] for f in fields(cls)]  # type: ignore[index]
          for cls in (WorkerHeader, ServerHeader)}
assert all(len(casts) <= HEADER for casts in _CASTS.values())


@dataclass
class Message:
    """A received message: the sender's rank, its header, its payload (a view into the buffer)."""

    source: int
    header: Header
    payload: np.ndarray
    buffer: torch.Tensor | None = None  # what the transport received into, when it recycles it


def encode(header: Header, payload: np.ndarray | None, n_params: int) -> np.ndarray:
    """The wire form: ``HEADER + n_params`` float64, header fields in declaration order, zero-padded.

    >>> encode(ServerHeader(Kind.READ, clock=2), np.array([0.5]), 1).tolist()
    [4.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5]
    """
    buf = np.zeros(HEADER + n_params)
    encode_into(buf, header, payload)
    return buf


def encode_into(buf: np.ndarray, header: Header, payload: np.ndarray | None) -> None:
    """Write the wire form into ``buf`` (float64, ``HEADER + n_params``): the header, zero-padded,
    and ``payload`` unless it is None (the payload floats are then left as they are) or is
    ``buf[HEADER:]`` itself (already in place: no copy)."""
    values = astuple(header)
    buf[: len(values)] = values
    buf[len(values) : HEADER] = 0.0
    if payload is not None and not _same_memory(payload, buf[HEADER:]):
        np.copyto(buf[HEADER:], payload, casting="same_kind")


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` are the same array in memory (same start, shape and strides)."""
    return a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and a.shape == b.shape and a.strides == b.strides


def decode(source: int, buf: np.ndarray) -> Message:
    """A :class:`Message` from a wire buffer (the payload is a view into ``buf``).

    >>> decode(1, encode(WorkerHeader(Kind.PUSH, worker=0, clock=3, loss=0.25), None, 2)).header
    WorkerHeader(kind=<Kind.PUSH: 2>, worker=0, clock=3, loss=0.25, compute_time=0.0, start_time=0.0, real_compute=0.0, sent=0.0)
    """
    kind = Kind(int(buf[0]))
    cls = _SENDER_OF[kind]
    header = cls(*(cast(v) for cast, v in zip(_CASTS[cls], buf[:HEADER].tolist())))
    return Message(source, header, buf[HEADER:])


class Transport(Protocol):
    """What the server and worker loops need from a data plane.

    ``send`` and ``recv_from`` are point-to-point and blocking; the server additionally
    receives from any worker with ``start_receiving`` then ``next_message``.  A failed or
    closed connection raises :class:`ConnectionError`.  A received message's payload may be a
    view into a reused buffer: it is valid until the next ``recv_from`` or ``next_message``
    (copy what must outlive it).  A ``send`` has copied its payload when it returns.
    """

    def send(self, dst: int, header: Header, payload: np.ndarray | None = None) -> None: ...

    def recv_from(self, src: int) -> Message: ...

    def start_receiving(self) -> None: ...

    def next_message(self, timeout: float) -> Message | None: ...


class _AnySource:
    """The server side shared by both transports: received messages queue up for the main loop,
    which waits with a timeout so it can notice dead workers and handle signals."""

    def __init__(self) -> None:
        self._inbox: queue.Queue[Message | BaseException] = queue.Queue()

    def next_message(self, timeout: float) -> Message | None:
        """The next message from any worker, or None after ``timeout`` seconds."""
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise ConnectionError(f"receive failed: {item}") from item
        return item


class GlooTransport(_AnySource):
    """Blocking Gloo send/recv of fixed-size float64 CPU tensors; the server receives from any
    worker on a background thread.  Buffers are always host memory: Gloo point-to-point aborts
    on CUDA tensors, so GPU results reach :meth:`send` as numpy arrays.

    No message allocates: every buffer is allocated once and reused.  Sends go out of one
    buffer for messages with a payload and one for those without (whose payload stays zero);
    a payload that is already :attr:`outgoing` is sent without a copy.  A message received
    is a view into a receive buffer, valid until the next :meth:`recv_from` (workers) or
    :meth:`next_message` (the server, whose receiving thread fills a pool of buffers, one per
    message in flight, that each :meth:`next_message` recycles).
    """

    def __init__(self, n_params: int, *, group: ProcessGroup | None = None) -> None:
        """``group``: the process group the messages travel in (default: the default group);
        ranks are global ranks either way."""
        import torch

        super().__init__()
        self.group = group
        self.n_params = n_params
        self.size = HEADER + n_params
        self._pump: threading.Thread | None = None
        self._data = torch.zeros(self.size, dtype=torch.float64)
        self._control = torch.zeros(self.size, dtype=torch.float64)
        self._data_lock, self._control_lock = threading.Lock(), threading.Lock()
        self.outgoing: np.ndarray = self._data.numpy()[HEADER:]
        """The payload part of the send buffer: write a payload here to send it without a copy."""
        self._inbuf = torch.empty(self.size, dtype=torch.float64)
        self._free: queue.SimpleQueue[torch.Tensor] = queue.SimpleQueue()  # the pool: receive buffers not in use
        self._lent: torch.Tensor | None = None  # the buffer of the message next_message returned last

    def send(self, dst: int, header: Header, payload: np.ndarray | None = None) -> None:
        import torch.distributed as dist

        buf, lock = (self._data, self._data_lock) if payload is not None else (self._control, self._control_lock)
        with lock:  # the server's STOP thread may send while another thread does
            encode_into(buf.numpy(), header, payload)
            try:
                dist.send(buf, dst=dst, group=self.group)
            except RuntimeError as exc:  # Gloo: the peer is gone
                raise ConnectionError(f"send to rank {dst} failed: {exc}") from exc

    def recv_from(self, src: int) -> Message:
        import torch.distributed as dist

        try:
            dist.recv(self._inbuf, src=src, group=self.group)
        except RuntimeError as exc:  # Gloo: the peer is gone
            raise ConnectionError(f"receive from rank {src} failed: {exc}") from exc
        return decode(src, self._inbuf.numpy())

    def next_message(self, timeout: float) -> Message | None:
        """The next message from any worker, or None after ``timeout`` seconds; the previous
        message's buffer goes back to the pool."""
        if self._lent is not None:
            self._free.put(self._lent)
            self._lent = None
        msg = super().next_message(timeout)
        if msg is not None:
            self._lent = msg.buffer
        return msg

    def start_receiving(self) -> None:
        """Receive on a background thread from now on (again: nothing more).  The server starts it
        before its set-up, which can take minutes for a large problem: a worker's first message
        (HELLO) is then taken at once instead of blocking its send towards Gloo's timeout."""
        import torch
        import torch.distributed as dist

        if self._pump is not None:
            return

        def pump() -> None:
            while True:
                try:
                    buf = self._free.get_nowait()
                except queue.Empty:
                    buf = torch.empty(self.size, dtype=torch.float64)
                try:
                    src = dist.recv(buf, group=self.group)
                except BaseException as exc:
                    self._inbox.put(exc)
                    return
                msg = decode(int(src), buf.numpy())
                msg.buffer = buf
                self._inbox.put(msg)

        self._pump = threading.Thread(target=pump, name="sspsim-recv", daemon=True)
        self._pump.start()


_CLOSED: tuple[int, np.ndarray] = (-1, np.empty(0))  # sentinel: the hub was closed


class InProcessHub:
    """The wires between ranks 0..world-1 living as threads of one process: a queue per rank."""

    def __init__(self, world: int, n_params: int, *, timeout: float | None = None) -> None:
        self.world = world
        self.n_params = n_params
        self.timeout = timeout
        self.queues: list[queue.Queue[tuple[int, np.ndarray]]] = [queue.Queue() for _ in range(world)]

    def endpoint(self, rank: int) -> InProcessTransport:
        """The transport that rank ``rank`` uses."""
        return InProcessTransport(self, rank)

    def close(self) -> None:
        """End every rank's any-source receiving thread."""
        for q in self.queues:
            q.put(_CLOSED)


class InProcessTransport(_AnySource):
    """One rank's end of an :class:`InProcessHub`, with the Gloo transport's semantics.

    A send copies the encoded buffer into the receiver's queue (so no memory is shared, as
    over a wire); ``recv_from(src)`` takes the next message from ``src``, leaving others for
    later; the any-source receive of rank 0 moves messages in arrival order to the main loop.
    A receive that waits longer than the hub's ``timeout`` raises :class:`ConnectionError`.
    """

    def __init__(self, hub: InProcessHub, rank: int) -> None:
        super().__init__()
        self.hub = hub
        self.rank = rank
        self._early: deque[tuple[int, np.ndarray]] = deque()  # received from other sources while waiting
        self.outgoing = np.zeros(hub.n_params)
        """A payload written here is sent like any other (a send copies it): as in :class:`GlooTransport`."""

    def send(self, dst: int, header: Header, payload: np.ndarray | None = None) -> None:
        self.hub.queues[dst].put((self.rank, encode(header, payload, self.hub.n_params)))

    def _get(self) -> tuple[int, np.ndarray]:
        try:
            item = self.hub.queues[self.rank].get(timeout=self.hub.timeout)
        except queue.Empty:
            raise ConnectionError(f"rank {self.rank} received nothing for {self.hub.timeout:g} s") from None
        if item is _CLOSED:
            raise ConnectionError("transport closed")
        return item

    def recv_from(self, src: int) -> Message:
        for i, (source, buf) in enumerate(self._early):
            if source == src:
                del self._early[i]
                return decode(source, buf)
        while True:
            source, buf = self._get()
            if source == src:
                return decode(source, buf)
            self._early.append((source, buf))

    def start_receiving(self) -> None:
        def pump() -> None:
            while True:
                item = self._early.popleft() if self._early else self.hub.queues[self.rank].get()
                if item is _CLOSED:
                    self._inbox.put(ConnectionError("transport closed"))
                    return
                self._inbox.put(decode(*item))

        threading.Thread(target=pump, name=f"sspsim-inproc-recv-{self.rank}", daemon=True).start()
