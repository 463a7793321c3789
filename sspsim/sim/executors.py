"""Where a sweep's points run: a local process pool, or a Ray cluster.

An :class:`Executor` maps a picklable ``task(item, folder)`` over items and yields each result
as soon as its task finishes (completion order), so a sweep can record every finished point.
A task writes only under ``folder`` and returns a picklable result; each result must be a pure
function of its item (a sweep point's run is one of its config and seed), so the files and
results are the same whichever executor runs the tasks and in whatever order they finish.

* :class:`LocalExecutor`: ``jobs`` processes on this machine (``jobs = 1``: in this process);
  the tasks write into ``folder`` directly.
* :class:`RayExecutor`: one Ray task per item, on an existing cluster (``address``) or a local
  Ray instance.  A task writes into a scratch folder on its node and ships the files back; this
  process writes them under ``folder``, so the nodes need no shared file system.  Ray is the
  optional extra ``sspsim[ray]``, imported only here and only when used.
"""

from __future__ import annotations

import os
import signal
import socket
import tempfile
from collections.abc import Callable, Generator, Sequence
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sspsim import outdir
from sspsim.errors import InputError

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "check_address", "make_executor"]

EXECUTORS = ("local", "ray")

Item = TypeVar("Item")
Result = TypeVar("Result")
Task = Callable[[Item, Path], Result]


class Executor(Protocol):
    """Runs ``task(item, folder)`` for every item; yields the results as the tasks finish."""

    def map_unordered(self, task: Task[Item, Result], items: Sequence[Item], folder: Path) -> Generator[Result, None, None]:
        """Results in completion order.  Closing the generator early (or an error) stops the tasks left."""
        ...


class LocalExecutor:
    """``jobs`` worker processes (spawned) on this machine; ``jobs = 1`` runs in this process."""

    def __init__(self, jobs: int = 1) -> None:
        if jobs < 1:
            raise InputError("--jobs", jobs, "must be >= 1")
        self.jobs = jobs

    def map_unordered(self, task: Task[Item, Result], items: Sequence[Item], folder: Path) -> Generator[Result, None, None]:
        if self.jobs <= 1 or len(items) <= 1:
            for item in items:
                yield task(item, folder)
            return
        pool = get_context("spawn").Pool(min(self.jobs, len(items)), initializer=_ignore_sigint)
        try:
            yield from pool.imap_unordered(_call, [(task, item, folder) for item in items])
            pool.close()
        finally:
            pool.terminate()
            pool.join()


class RayExecutor:
    """One Ray task per item, on the cluster at ``address`` or on a local Ray instance.

    A Ray instance this executor started (``ray.init``) is shut down when the map ends; one that
    was already running in this process (``ray.is_initialized()``) is used and left running.
    ``num_cpus`` caps a local instance (default: every core); a cluster has its own.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        if address is not None and num_cpus is not None:
            raise InputError("--jobs", num_cpus, "applies to a local Ray instance; a Ray cluster (--address) has its own CPUs")
        self.address = address
        self.num_cpus = num_cpus

    def map_unordered(self, task: Task[Item, Result], items: Sequence[Item], folder: Path) -> Generator[Result, None, None]:
        ray = _import_ray()
        started = self._connect(ray)
        pending: list[Any] = []
        try:
            remote = ray.remote(_in_scratch)
            pending = [remote.remote(task, item) for item in items]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                if pending:  # and every other finished one: one scan of the pending list per batch
                    more, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
                    ready += more
                for ref in ready:
                    try:
                        result, files = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        raise exc.cause from None  # the task's own error (an InputError stays one line)
                    _write_files(Path(folder), files)
                    yield result
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()

    def _connect(self, ray: Any) -> bool:
        """Join the cluster, or start a local instance; True when this call started Ray."""
        if ray.is_initialized():
            return False
        check_address(self.address)
        try:
            ray.init(address=self.address, num_cpus=self.num_cpus, include_dashboard=False,
                     configure_logging=False, log_to_driver=False)
        except (ConnectionError, ValueError, SystemExit) as exc:  # Ray exits when the cluster never answers
            raise InputError("--address", self.address, f"Ray could not join the cluster there ({exc})") from None
        return True


def check_address(address: str | None, timeout: float = 10.0) -> None:
    """A Ray cluster address is ``HOST:PORT`` (or ``ray://HOST:PORT``, or ``auto``), and something
    answers there within ``timeout`` seconds: else InputError at once, instead of Ray's minutes of retries."""
    if address is None or address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError("--address", address, "must be HOST:PORT, e.g. 10.0.0.1:6379 (the head node's GCS port)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise InputError("--address", address, f"no Ray cluster answers there ({exc.strerror or exc})") from None


def make_executor(kind: str, *, jobs: int | None = None, address: str | None = None) -> Executor:
    """The executor ``--executor KIND`` names: ``local`` (``jobs`` processes) or ``ray``.

    ``jobs`` defaults to 1 locally and, on Ray, caps a local instance's CPUs (default: every core).
    """
    if kind == "local":
        if address is not None:
            raise InputError("--address", address, "names a Ray cluster: use it with --executor ray")
        return LocalExecutor(1 if jobs is None else jobs)
    if kind == "ray":
        if jobs is not None and jobs < 1:
            raise InputError("--jobs", jobs, "must be >= 1")
        _import_ray()  # before anything runs or is written
        check_address(address)
        return RayExecutor(address, jobs)
    raise InputError("--executor", kind, f"must be one of {', '.join(EXECUTORS)}")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError("--executor", "ray", "needs Ray, which is not installed: pip install 'sspsim[ray]'") from None
    return ray


def _ignore_sigint() -> None:
    """Pool initializer: Ctrl-C is the parent's to handle (it stops the pool), not each worker's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(args: tuple[Task[Any, Any], Any, Path]) -> Any:
    task, item, folder = args
    return task(item, folder)


def _in_scratch(task: Task[Item, Result], item: Item) -> tuple[Result, dict[str, bytes]]:
    """Run ``task`` into a scratch folder on this node; return its result and every file it wrote."""
    with tempfile.TemporaryDirectory(prefix="sspsim-ray-") as scratch:
        root = Path(scratch)
        result = task(item, root)
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    return result, files


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write a task's files under ``folder``, replacing the top-level entries it wrote.

    Each top-level folder is built aside and swapped in by :mod:`sspsim.outdir` (the task wrote
    it with sspsim's marker), so an interrupted write leaves no half-written run directory.
    """
    tops: dict[str, dict[str, bytes]] = {}
    for rel, data in files.items():
        top, _, rest = rel.partition("/")
        tops.setdefault(top, {})[rest] = data
    for top, entries in tops.items():
        target = folder / top
        if "" in entries:  # a plain file at the top level
            partial = folder / f".{top}.tmp-{os.getpid()}"
            partial.write_bytes(entries[""])
            os.replace(partial, target)
            continue
        stage = outdir.staging(target)
        try:
            for rest, data in entries.items():
                path = stage / rest
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        except BaseException:
            outdir.discard(stage)
            raise
        outdir.commit(stage, target, force=True)
