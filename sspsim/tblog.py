"""TensorBoard scalars of a run: the one place for the tag names, so simulated and real runs overlay.

``sspsim simulate --tensorboard DIR`` writes them from the finished run; ``sspsim deploy
--tensorboard DIR`` from the server while the run goes (each clock once every worker has pushed
it, buffered and written every :data:`FLUSH_SECONDS`; the objective at the end, when the
snapshots are evaluated).  Every scalar's step is the clock c (1-based) and its wall time the
run's start plus the time of the event in the run (simulated seconds for ``sim``), so
TensorBoard's *step* and *relative* axes both line runs up.

Tags (per worker p: ``<metric>/worker_<p>``):

- ``objective``: the full objective at each evaluation (step: the clock evaluated);
- ``iteration_time/worker_p``: commit of clock c minus commit of clock c - 1 (0 for c = 1),
  the time a worker's iteration takes, waiting and communication included;
- ``wait_time/worker_p``: time blocked at the gate before iteration c;
- ``staleness/worker_p``: (c - 1) - visible clock of iteration c's read;
- ``throughput``: iterations committed at clocks <= c per second, up to the last of them.

Writing needs torch's ``SummaryWriter`` and the ``tensorboard`` package (``pip install
'sspsim[tensorboard]'``); sspsim imports them only when asked to write.
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sspsim.errors import InputError

__all__ = [
    "ITERATION_TIME", "OBJECTIVE", "OPTION", "PER_WORKER", "STALENESS", "THROUGHPUT", "WAIT_TIME", "ClockLog",
    "log_clocks", "output_folder", "require", "worker_tag", "write_trace",
]

OPTION = "--tensorboard"
OBJECTIVE = "objective"
THROUGHPUT = "throughput"
ITERATION_TIME = "iteration_time"
WAIT_TIME = "wait_time"
STALENESS = "staleness"
PER_WORKER = (ITERATION_TIME, WAIT_TIME, STALENESS)
"""Metrics with one tag per worker (:func:`worker_tag`)."""
FLUSH_SECONDS = 2.0
"""A live run's scalars are handed to the writer at most this often (and at the end)."""
MARKER_KIND = "tensorboard"


def worker_tag(metric: str, worker: int) -> str:
    """The tag of a per-worker metric: ``iteration_time/worker_3``."""
    return f"{metric}/worker_{worker}"


def require(logdir: str | Path) -> None:
    """InputError (one line) unless torch and tensorboard are importable."""
    missing = [name for name in ("torch", "tensorboard") if importlib.util.find_spec(name) is None]
    if missing:
        extra = "sspsim[real,tensorboard]" if "torch" in missing else "sspsim[tensorboard]"
        raise InputError(OPTION, str(logdir), f"TensorBoard logging needs {' and '.join(missing)}: pip install '{extra}'")


@contextlib.contextmanager
def output_folder(logdir: str | Path, *, force: bool, run_dir: str | Path | None = None) -> Iterator[Path]:
    """The folder to write the events into, with the rules of output folders (:mod:`sspsim.outdir`).

    ``logdir`` must be absent, empty, or (with ``force``) a folder sspsim wrote events into; the
    events go to a hidden staging sibling, renamed to ``logdir`` when the block ends (also when
    the run ended incomplete), removed if it raises.  ``run_dir`` (the run's ``--out``) may
    neither hold ``logdir`` nor lie in it: a run directory is replaced as a whole.
    """
    from sspsim import outdir

    logdir = Path(logdir)
    require(logdir)
    if run_dir is not None:
        a, b = logdir.resolve(), Path(run_dir).resolve()
        if a == b or a.is_relative_to(b) or b.is_relative_to(a):
            raise InputError(OPTION, str(logdir), "must lie outside the run directory --out (and not hold it)")
    marker = outdir.check_folder(logdir, force=force, option=OPTION)
    if marker is not None and marker.get("kind") != MARKER_KIND:
        raise InputError(OPTION, str(logdir), f"holds an sspsim {marker.get('kind', 'folder')}, not TensorBoard events; "
                         "choose a new path")
    stage = outdir.staging(logdir)
    try:
        outdir.write_marker(stage, MARKER_KIND)
        yield stage
    except BaseException:
        outdir.discard(stage)
        raise
    outdir.commit(stage, logdir, force=force, option=OPTION)


class ClockLog:
    """Buffered scalars of one run, written with torch's ``SummaryWriter`` into ``logdir``.

    ``start`` is the run's start as a Unix time: an event at ``t`` seconds into the run gets
    wall time ``start + t``.
    """

    def __init__(self, logdir: str | Path, *, start: float, flush_seconds: float = FLUSH_SECONDS) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(logdir), max_queue=1000, flush_secs=3600)
        self.start = start
        self.flush_seconds = flush_seconds
        self.pending: list[tuple[str, float, int, float]] = []  # (tag, value, step, wall time)
        self.last_flush = time.monotonic()
        self.logged: set[int] = set()  # clocks written

    def add(self, tag: str, value: float, step: int, t: float) -> None:
        """Buffer one scalar at ``t`` seconds into the run."""
        self.pending.append((tag, float(value), int(step), self.start + float(t)))

    def clock(self, c: int, *, commit: np.ndarray, previous: np.ndarray, wait: np.ndarray, staleness: np.ndarray,
              present: np.ndarray, iterations: int) -> None:
        """Clock ``c``'s scalars from per-worker values at clock c (``previous``: commits at c - 1).

        Workers whose iteration c is not ``present`` (K-sync's slow workers) get none;
        ``iterations`` is the number committed at clocks <= c (for the throughput).
        """
        if c in self.logged or not present.any():
            return
        self.logged.add(c)
        done = float(commit[present].max())
        for p in np.flatnonzero(present):
            self.add(worker_tag(ITERATION_TIME, int(p)), commit[p] - previous[p], c, commit[p])
            self.add(worker_tag(WAIT_TIME, int(p)), wait[p], c, commit[p])
            self.add(worker_tag(STALENESS, int(p)), staleness[p], c, commit[p])
        if done > 0:
            self.add(THROUGHPUT, iterations / done, c, done)
        if time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()

    def evals(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """The objective at each evaluation row that has one (step: its clock)."""
        for row in rows:
            if "objective" in row and "clock" in row:
                self.add(OBJECTIVE, row["objective"], int(row["clock"]), row.get("time", 0.0))

    def flush(self) -> None:
        """Hand the buffered scalars to the writer and write them to disk."""
        for tag, value, step, wall in self.pending:
            self.writer.add_scalar(tag, value, global_step=step, walltime=wall)
        self.pending.clear()
        self.writer.flush()
        self.last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        self.writer.close()


def log_clocks(log: ClockLog, clocks: Iterable[int], *, commit: np.ndarray, wait: np.ndarray, staleness: np.ndarray,
               present: np.ndarray) -> None:
    """:meth:`ClockLog.clock` for each of ``clocks`` from (workers x clocks) matrices; entry [p, c - 1] is
    worker p's iteration c.  Clocks already written are skipped."""
    counts = np.cumsum(present.sum(axis=0))
    for c in clocks:
        i = c - 1
        previous = commit[:, i - 1] if i > 0 else np.zeros(commit.shape[0])
        log.clock(c, commit=commit[:, i], previous=previous, wait=wait[:, i], staleness=staleness[:, i],
                  present=present[:, i], iterations=int(counts[i]))


def write_trace(logdir: str | Path, trace: Any, evals: Iterable[Mapping[str, Any]], *, workers: int, clocks: int,
                start: float | None = None) -> None:
    """Write a finished run's scalars from its trace (a DataFrame of ``trace.csv``'s columns) and evaluations."""
    P, C = workers, clocks
    commit, wait, staleness = np.zeros((P, C)), np.zeros((P, C)), np.zeros((P, C))
    present = np.zeros((P, C), dtype=bool)
    p = trace["worker"].to_numpy(dtype=np.int64)
    i = trace["clock"].to_numpy(dtype=np.int64) - 1
    keep = (p >= 0) & (p < P) & (i >= 0) & (i < C)
    p, i = p[keep], i[keep]
    commit[p, i] = trace["commit_time"].to_numpy(dtype=float)[keep]
    wait[p, i] = trace["wait_time"].to_numpy(dtype=float)[keep]
    staleness[p, i] = trace["staleness"].to_numpy(dtype=float)[keep]
    present[p, i] = True
    log = ClockLog(logdir, start=time.time() if start is None else start)
    try:
        log_clocks(log, range(1, C + 1), commit=commit, wait=wait, staleness=staleness, present=present)
        log.evals(evals)
    finally:
        log.close()
