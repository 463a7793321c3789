"""TensorBoard scalars of a run: the one place for the tag names, so simulated and real runs overlay.

``sspsim simulate --tensorboard DIR`` writes them from the finished run; ``sspsim deploy
--tensorboard DIR`` from the server while the run goes (each clock once every worker has pushed
it, buffered; every :data:`FLUSH_SECONDS` the buffered clocks are written for at most
:data:`FLUSH_BUDGET` seconds, the rest and the objective at the end, after the run's record).  Every scalar's step is the clock c (1-based) and its wall time the
run's start plus the time clock c completed in the run (simulated seconds for ``sim``), so
TensorBoard's *step* and *relative* axes both line runs up.

Tags (per worker p: ``<metric>/worker_<p>``):

- ``objective``: the full objective at each evaluation (step: the clock evaluated);
- ``iteration_time/worker_p``: commit of clock c minus commit of clock c - 1 (0 for c = 1),
  the time a worker's iteration takes, waiting and communication included;
- ``wait_time/worker_p``: time blocked at the gate before iteration c;
- ``staleness/worker_p``: (c - 1) - visible clock of iteration c's read;
- ``throughput``: iterations committed at clocks <= c per second, up to the last of them.

Writing needs torch's TensorBoard event writer and the ``tensorboard`` package (``pip install
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
FLUSH_BUDGET = 0.005
"""Seconds a live flush may spend writing events; the clocks left wait for the next flush (or the end)."""
MARKER_KIND = "tensorboard"
EVENTS_GLOB = "events.out.tfevents.*"


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

    ``logdir`` must be absent or empty (then it is written in place, so TensorBoard can watch
    it during the run), or, with ``force``, a folder sspsim wrote events into (then the new
    events go to a hidden staging sibling, renamed to ``logdir`` when the block ends, so the old
    folder stays whole until then).  Bad input (InputError) inside the block removes what was
    written.  ``run_dir`` (the run's ``--out``) may neither hold ``logdir`` nor lie in it: a run
    directory is replaced as a whole.
    """
    from sspsim import outdir

    logdir = Path(logdir)
    require(logdir)
    if run_dir is not None:
        a, b = logdir.resolve(), Path(run_dir).resolve()
        if a == b or a.is_relative_to(b) or b.is_relative_to(a):
            raise InputError(OPTION, str(logdir), "must lie outside the run directory --out (and not hold it)")
    marker = outdir.check_folder(logdir, force=force, option=OPTION)
    if marker is None:
        created = not logdir.exists()
        logdir.mkdir(parents=True, exist_ok=True)
        outdir.write_marker(logdir, MARKER_KIND)
        try:
            yield logdir
        except InputError:
            _remove_events(logdir, created)
            raise
        return
    if marker.get("kind") != MARKER_KIND:
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


def _remove_events(logdir: Path, created: bool) -> None:
    """Remove what :func:`output_folder` wrote into ``logdir`` (the folder too if it made it)."""
    from sspsim import outdir

    for path in [*logdir.glob(EVENTS_GLOB), logdir / outdir.MARKER]:
        with contextlib.suppress(OSError):
            path.unlink()
    if created:
        with contextlib.suppress(OSError):
            logdir.rmdir()


class ClockLog:
    """Buffered scalars of one run, written into ``logdir`` as TensorBoard events.

    ``start`` is the run's start as a Unix time: an event at ``t`` seconds into the run gets
    wall time ``start + t``.  :meth:`clock` only copies a few numbers (the server calls it on
    its hot path); every ``flush_seconds`` it writes the buffered clocks, in order, for at most
    :data:`FLUSH_BUDGET` seconds, and :meth:`close` writes the rest (after the run's record).
    The events go through torch's event ``FileWriter`` (the writer under ``SummaryWriter``), one
    event per clock holding all of that clock's scalars.
    """

    def __init__(self, logdir: str | Path, *, start: float, flush_seconds: float = FLUSH_SECONDS) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary
        from torch.utils.tensorboard.writer import FileWriter

        self.writer = FileWriter(str(logdir), max_queue=1000, flush_secs=3600)
        self.summary = Summary
        self.start = start
        self.flush_seconds = flush_seconds
        self.objective: list[tuple[int, float, float]] = []  # (clock, t, objective)
        self.raw: list[tuple[int, tuple[np.ndarray, ...], int]] = []  # (clock, (commit, previous, wait, staleness, present), iterations)
        self.last_flush = time.monotonic()
        self.logged: set[int] = set()  # clocks logged

    def clock(self, c: int, *, commit: np.ndarray, previous: np.ndarray, wait: np.ndarray, staleness: np.ndarray,
              present: np.ndarray, iterations: int) -> None:
        """Clock ``c``'s scalars from per-worker values at clock c (``previous``: commits at c - 1).

        Workers whose iteration c is not ``present`` (K-sync's slow workers) get none;
        ``iterations`` is the number committed at clocks <= c (for the throughput).
        """
        if c in self.logged:
            return
        self.logged.add(c)
        self.raw.append((c, (commit.copy(), previous.copy(), wait.copy(), staleness.copy(), present.copy()), iterations))
        if time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush(budget=FLUSH_BUDGET)

    def evals(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """The objective at each evaluation row that has one (step: its clock); written at :meth:`close`."""
        for row in rows:
            if "objective" in row and "clock" in row:
                self.objective.append((int(row["clock"]), float(row.get("time", 0.0)), float(row["objective"])))

    def _clock_scalars(self, values: tuple[np.ndarray, ...], iterations: int) -> tuple[float, list[tuple[str, float]]]:
        """(the time the clock completed, its scalars) from :meth:`clock`'s stacked values."""
        commit, previous, wait, staleness, present = values
        workers = np.flatnonzero(present)
        if not workers.size:
            return 0.0, []
        done = float(commit[workers].max())
        scalars: list[tuple[str, float]] = []
        for p, it, w, s in zip(workers.tolist(), (commit - previous)[workers].tolist(), wait[workers].tolist(),
                               staleness[workers].tolist(), strict=True):
            scalars += [(worker_tag(ITERATION_TIME, p), it), (worker_tag(WAIT_TIME, p), w), (worker_tag(STALENESS, p), s)]
        if done > 0:
            scalars.append((THROUGHPUT, iterations / done))
        return done, scalars

    def _write(self, step: int, t: float, scalars: list[tuple[str, float]]) -> None:
        if scalars:
            Summary = self.summary
            summary = Summary(value=[Summary.Value(tag=tag, simple_value=value) for tag, value in scalars])
            self.writer.add_summary(summary, step, self.start + t)

    def flush(self, budget: float | None = None) -> None:
        """Write the buffered clocks in order, on disk when it returns; with ``budget`` only as many as fit
        in that many seconds (at least one: the event writer's checksums are pure Python, about 0.3 ms per clock)."""
        began = time.monotonic()
        written = 0
        for c, values, iterations in self.raw:
            if budget is not None and written and time.monotonic() - began >= budget:
                break
            self._write(c, *self._clock_scalars(values, iterations))
            self.writer.flush()  # waits for the writer's thread: the budget counts its work too
            written += 1
        del self.raw[:written]
        self.last_flush = time.monotonic()

    def close(self) -> None:
        """Write every clock left, then the objective, and close the file."""
        self.flush()
        for step, t, value in self.objective:
            self._write(step, t, [(OBJECTIVE, value)])
        self.objective.clear()
        self.writer.flush()
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
