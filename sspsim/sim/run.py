"""``simulate(config)``: choose an engine, run it, write the run directory."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sspsim.budget import check_memory
from sspsim.config import Config, ProblemConfig
from sspsim.errors import ConfigError
from sspsim.evaluate import eval_clocks
from sspsim.problems import Problem, make_problem, problem_facts, torch_problem
from sspsim.rundir import Run, run_meta, write_run
from sspsim.schedule import batch_schedule
from sspsim.server import ParameterServer
from sspsim.sim.engine import Audit, simulate_events
from sspsim.sim.heapq_engine import simulate_heapq, summarize_heapq
from sspsim.sim.rounds import RoundServer, simulate_rounds, summarize_rounds
from sspsim.sim.stream import DRAW_BLOCK, ZeroDuration, default_block, stream_schedule
from sspsim.speeds import TraceTimes, compute_time_blocks, compute_times
from sspsim.trace import Recording, Totals, recording_totals, summary_figures, trace_table

if TYPE_CHECKING:  # pragma: no cover
    from sspsim.task import TaskFactory, TorchTask

__all__ = ["choose_engine", "simulate", "streams"]

Progress = Callable[[int, int], None]


def choose_engine(config: Config, durations: np.ndarray | None = None) -> str:
    """``batch`` where the closed-form schedule is exact, else ``event``.

    Under ``auto`` a timing-only ``event`` run takes the plain heapq loop
    (:mod:`sspsim.sim.heapq_engine`), which schedules exactly what the SimPy engine does
    (with ``trace = "summary"``, keeping only the summary's totals), unless reads queue for the
    server (``network.serve_time > 0``: SimPy only); ``[run] engine = "event"`` keeps SimPy.

    Exact means: no math (``problem.kind = "none"``), no server contention
    (``network.apply_time = 0`` and ``network.serve_time = 0``), and, when the iteration ``durations`` are given, none of
    zero length (a zero-length iteration commits at the instant it was admitted, and only the
    event engine orders such simultaneous events causally).  ``[run] engine`` forces one; a
    forced ``batch`` where it would not be exact is refused.
    """
    if config.run.engine == "event":
        return "event"
    exact = config.problem.kind == "none" and not config.network.contention
    zero = durations is not None and durations.size > 0 and float(durations.min()) <= 0.0
    if config.run.engine == "batch" and zero:
        raise ConfigError(
            "run.engine", "batch",
            "some iterations take zero time (compute 0, no network cost); their simultaneous commits need the event engine",
        )
    if config.run.engine == "batch":
        return "batch"
    return "batch" if exact and not zero else "event"


def streams(config: Config) -> bool:
    """Whether the batch schedule may run streaming: a timing-only run that asks for no trace.

    The streaming planner (:mod:`sspsim.sim.stream`) gives the batch engine's summary in
    memory that does not grow with clocks; it needs a finite staleness.
    """
    return (
        config.run.engine in ("auto", "batch") and config.run.trace == "summary" and config.problem.kind == "none"
        and not config.network.contention and not math.isinf(config.consistency.staleness)
    )


def simulate(
    config: Config,
    out: str | Path | None = None,
    *,
    progress: Progress | None = None,
    server_class: type[ParameterServer] = ParameterServer,
    round_server: type[RoundServer] = RoundServer,
    force: bool = False,
    task: TorchTask | TaskFactory | None = None,
) -> Run:
    """Simulate ``config``; write the run directory to ``out`` if given; return the :class:`Run`.

    ``server_class`` replaces the parameter server (and forces the event engine): the seam the
    mutation tests use to show that the theorem checks catch broken schedulers; ``round_server``
    is the same seam for the round-based models (``consistency.model`` other than ``ssp``).  ``out`` follows
    :mod:`sspsim.outdir` (checked before anything runs): an existing sspsim run is replaced only with ``force``.

    ``task`` trains your own model instead of ``[problem]``'s: an :class:`sspsim.TorchTask`, or a
    factory ``(seed, **options) -> TorchTask`` called with the problem seed and
    ``[problem.options]``.  The run records ``kind = "torch"`` and, for a factory an import can
    reach, where it lives, so that ``sspsim check`` can rebuild the task.
    """
    check_memory(config, streaming=streams(config))  # before the folder is touched or anything is allocated
    if out is not None:
        from sspsim.outdir import check_folder

        check_folder(out, force=force)
    if task is not None:
        config = _with_task(config, task)
        problem = torch_problem(config.problem, config.problem_seed, task)
    else:
        problem = make_problem(config.problem, config.problem_seed)
    if config.consistency.model != "ssp":
        return _simulate_rounds(config, problem, out, progress=progress, force=force, server_class=round_server)
    workers, clocks = config.workers.count, config.run.clocks
    if server_class is ParameterServer and streams(config):
        try:
            return _simulate_streaming(config, problem, out, progress, force=force)
        except ZeroDuration:
            pass  # the full path below sends zero-length iterations to the event engine (or refuses a forced batch)
    compute = compute_times(
        config.workers.speed, workers=workers, clocks=clocks, seed=config.run.seed,
        stragglers=config.workers.stragglers, transient=config.workers.transient, compute=config.workers.compute,
        warmup=config.workers.warmup,
    )
    cost = config.network.message_cost(problem.n_params)
    push = config.network.push_cost(problem.n_params)
    engine = "event" if server_class is not ParameterServer else choose_engine(config, cost + compute + push)
    wall = time.perf_counter()
    audit: Audit | None = None
    rec: Recording | None = None
    totals: Totals | None = None
    if engine == "batch":
        rec, M = batch_schedule(
            compute, staleness=config.consistency.staleness, read_policy=config.consistency.read_policy,
            message_cost=cost, push_cost=push, progress=progress,
        )
        evals = _timing_evals(rec, M, eval_clocks(config, clocks))
    elif config.run.engine == "auto" and not problem.has_math and server_class is ParameterServer and config.network.serve_time == 0:
        # SimPy's schedule, without SimPy; with no trace asked for, only the summary's totals are kept
        # (reads queued for the server, serve_time > 0, run on the SimPy engine only)
        if config.run.trace == "summary":
            totals, evals = summarize_heapq(config, problem, compute, progress=progress)
        else:
            rec, evals = simulate_heapq(config, problem, compute, progress=progress)
    else:
        rec, evals, audit = simulate_events(config, problem, compute, progress=progress, server_class=server_class)
    wall = time.perf_counter() - wall
    if totals is None:
        assert rec is not None
        totals = recording_totals(rec)
    summary = summary_figures(totals, evals, target=config.run.target, message_cost=(cost + push) / 2)  # mean of pull and push
    summary["engine"] = engine
    summary["wall_time"] = wall
    trace = trace_table(rec) if rec is not None and config.run.trace == "full" else None
    return _finish(config, problem, cost, summary, out, trace=trace,
                   evals=evals, audit=None if audit is None or rec is None else _audit_arrays(audit, rec), force=force)


def _simulate_streaming(
    config: Config, problem: Problem, out: str | Path | None, progress: Progress | None, *, force: bool
) -> Run:
    """The batch schedule's summary, streamed clock by clock (no per-iteration record)."""
    workers, clocks = config.workers.count, config.run.clocks
    cost = config.network.message_cost(problem.n_params)
    push = config.network.push_cost(problem.n_params)
    s = config.consistency.staleness
    block = default_block(workers, s)
    wall = time.perf_counter()
    blocks = compute_time_blocks(
        config.workers.speed, workers=workers, clocks=clocks, seed=config.run.seed, stragglers=config.workers.stragglers,
        transient=config.workers.transient, compute=config.workers.compute, warmup=config.workers.warmup,
        block=max(block, DRAW_BLOCK // max(1, workers)),
    )
    totals, evals, _ = stream_schedule(
        blocks, workers=workers, clocks=clocks, staleness=s, read_policy=config.consistency.read_policy,
        message_cost=cost, push_cost=push, eval_every=eval_clocks(config, clocks), block=block, progress=progress,
    )
    wall = time.perf_counter() - wall
    summary = summary_figures(totals, evals, target=config.run.target, message_cost=(cost + push) / 2)
    summary["engine"] = "batch"
    summary["wall_time"] = wall
    return _finish(config, problem, cost, summary, out, trace=None, evals=evals, audit=None, force=force)


def _finish(
    config: Config, problem: Problem, cost: float, summary: dict[str, Any], out: str | Path | None, *,
    trace: dict[str, np.ndarray] | None, evals: list[dict[str, float]], audit: dict[str, np.ndarray] | None,
    force: bool,
) -> Run:
    """Assemble run.json's metadata; write the run directory to ``out`` if given."""
    workers, clocks = config.workers.count, config.run.clocks
    meta = run_meta(config, backend="sim", problem=problem_facts(problem, cost), summary=summary)
    if out is None:
        return Run(meta, trace=trace, evals=evals)
    extra = None
    if isinstance(config.workers.speed, TraceTimes):  # keep the run directory self-contained
        meta["config"]["workers"]["speed"]["file"] = SPEEDS_FILE
        extra = {SPEEDS_FILE: _times_csv(config.workers.speed.times[:workers, :clocks])}
    return write_run(out, meta, trace=trace, evals=evals, audit=audit, extra_files=extra, force=force)


SPEEDS_FILE = "speeds.csv"


def _with_task(config: Config, task: object) -> Config:
    """``config`` with ``[problem] kind = "torch"`` and the factory's location (when one is known)."""
    from sspsim.task import factory_ref

    ref = None if not callable(task) else factory_ref(task)
    factory, folder = ref if ref is not None else (None, None)
    old = config.problem
    problem = ProblemConfig(  # the keys a torch task uses; a built-in kind's own keys are dropped
        kind="torch", batch_size=old.batch_size, seed=old.seed, factory=factory, factory_dir=folder,
        device=old.device, options=old.options, eval_samples=old.eval_samples if old.kind == "torch" else None,
    )
    return config.replace(problem=problem)


def _simulate_rounds(config: Config, problem, out, *, progress, force: bool, server_class) -> Run:  # type: ignore[no-untyped-def]
    """A round-based model (ksync, kbatch_sync, local_sgd) on :mod:`sspsim.sim.rounds`."""
    cost = config.network.message_cost(problem.n_params)
    wall = time.perf_counter()
    table, evals, M = simulate_rounds(config, problem, progress=progress, server_class=server_class)
    wall = time.perf_counter() - wall
    summary = summarize_rounds(table, M, evals, workers=config.workers.count, clocks=config.run.clocks,
                               target=config.run.target, message_cost=cost)
    summary["engine"] = "rounds"
    summary["wall_time"] = wall
    meta = run_meta(config, backend="sim", problem=problem_facts(problem, cost), summary=summary)
    trace = table if config.run.trace == "full" else None
    if out is None:
        return Run(meta, trace=trace, evals=evals)
    extra = None
    if isinstance(config.workers.speed, TraceTimes):
        meta["config"]["workers"]["speed"]["file"] = SPEEDS_FILE
        extra = {SPEEDS_FILE: _times_csv(config.workers.speed.times[:config.workers.count, :config.run.clocks])}
    return write_run(out, meta, trace=trace, evals=evals, extra_files=extra, force=force)


def _times_csv(times: np.ndarray) -> str:
    """The replayed compute times, one row per worker, shortest round-trip decimals."""
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in times)


def _timing_evals(rec: Recording, M: np.ndarray, every: int) -> list[dict[str, float]]:
    """Evaluation rows of a timing-only run: when each evaluated clock completed, updates by then."""
    clocks = len(M) - 1
    marks = [k for k in range(1, clocks + 1) if k % every == 0 or k == clocks]
    commits = np.sort(rec.commit, axis=None)
    rows = [{"time": 0.0, "clock": 0, "updates": 0}]
    for k in marks:
        rows.append({"time": float(M[k]), "clock": k, "updates": int(np.searchsorted(commits, M[k], side="right"))})
    return rows


def _audit_arrays(audit: Audit, rec: Recording) -> dict[str, np.ndarray]:
    """Audit arrays in commit order (the row order of trace.csv)."""
    order = np.argsort(rec.commit_index, axis=None, kind="stable")
    d = audit.x0.size
    workers, clocks = rec.shape
    return {
        "x0": audit.x0,
        "worker": np.repeat(np.arange(workers), clocks)[order],
        "clock": np.tile(np.arange(1, clocks + 1), workers)[order],
        "params": audit.params.reshape(-1, d)[order],
        "update": audit.update.reshape(-1, d)[order],
        "read_prefix": audit.prefix.reshape(-1)[order],
        "read_cutoff": audit.cutoff.reshape(-1)[order],
    }
