"""``simulate(config)``: choose an engine, run it, write the run directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from sspsim.budget import check_memory
from sspsim.config import Config
from sspsim.errors import ConfigError
from sspsim.problems import make_problem, problem_facts
from sspsim.rundir import Run, run_meta, write_run
from sspsim.schedule import batch_schedule
from sspsim.server import ParameterServer
from sspsim.sim.engine import Audit, simulate_events
from sspsim.evaluate import eval_clocks
from sspsim.speeds import TraceTimes, compute_times
from sspsim.trace import Recording, summarize, trace_table

__all__ = ["choose_engine", "simulate"]

Progress = Callable[[int, int], None]


def choose_engine(config: Config, durations: np.ndarray | None = None) -> str:
    """``batch`` where the closed-form schedule is exact, else ``event``.

    Exact means: no math (``problem.kind = "none"``), no server contention
    (``network.apply_time = 0``), and, when the iteration ``durations`` are given, none of
    zero length (a zero-length iteration commits at the instant it was admitted, and only the
    event engine orders such simultaneous events causally).  ``[run] engine`` forces one; a
    forced ``batch`` where it would not be exact is refused.
    """
    if config.run.engine == "event":
        return "event"
    exact = config.problem.kind == "none" and config.network.apply_time == 0
    zero = durations is not None and durations.size > 0 and float(durations.min()) <= 0.0
    if config.run.engine == "batch" and zero:
        raise ConfigError(
            "run.engine", "batch",
            "some iterations take zero time (compute 0, no network cost); their simultaneous commits need the event engine",
        )
    if config.run.engine == "batch":
        return "batch"
    return "batch" if exact and not zero else "event"


def simulate(
    config: Config,
    out: str | Path | None = None,
    *,
    progress: Progress | None = None,
    server_class: type[ParameterServer] = ParameterServer,
    force: bool = False,
) -> Run:
    """Simulate ``config``; write the run directory to ``out`` if given; return the :class:`Run`.

    ``server_class`` replaces the parameter server (and forces the event engine): the seam the
    mutation tests use to show that the theorem checks catch broken schedulers.  ``out`` follows
    :mod:`sspsim.outdir` (checked before anything runs): an existing sspsim run is replaced only with ``force``.
    """
    check_memory(config)  # before the folder is touched or anything is allocated
    if out is not None:
        from sspsim.outdir import check_folder

        check_folder(out, force=force)
    problem = make_problem(config.problem, config.problem_seed)
    workers, clocks = config.workers.count, config.run.clocks
    compute = compute_times(
        config.workers.speed, workers=workers, clocks=clocks, seed=config.run.seed,
        stragglers=config.workers.stragglers, transient=config.workers.transient, compute=config.workers.compute,
    )
    cost = config.network.message_cost(problem.n_params)
    engine = "event" if server_class is not ParameterServer else choose_engine(config, cost + compute + cost)
    wall = time.perf_counter()
    audit: Audit | None = None
    if engine == "batch":
        rec, M = batch_schedule(
            compute, staleness=config.consistency.staleness, read_policy=config.consistency.read_policy,
            message_cost=cost, progress=progress,
        )
        evals = _timing_evals(rec, M, eval_clocks(config, clocks))
    else:
        rec, evals, audit = simulate_events(config, problem, compute, progress=progress, server_class=server_class)
    wall = time.perf_counter() - wall
    summary = summarize(rec, evals, target=config.run.target, message_cost=cost)
    summary["engine"] = engine
    summary["wall_time"] = wall
    meta = run_meta(config, backend="sim", problem=problem_facts(problem, cost), summary=summary)
    trace = trace_table(rec) if config.run.trace == "full" else None
    audit_arrays = None if audit is None else _audit_arrays(audit, rec)
    if out is None:
        return Run(meta, trace=trace, evals=evals)
    extra = None
    if isinstance(config.workers.speed, TraceTimes):  # keep the run directory self-contained
        meta["config"]["workers"]["speed"]["file"] = SPEEDS_FILE
        extra = {SPEEDS_FILE: _times_csv(config.workers.speed.times[:workers, :clocks])}
    return write_run(out, meta, trace=trace, evals=evals, audit=audit_arrays, extra_files=extra, force=force)


SPEEDS_FILE = "speeds.csv"


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
