"""What checks read: a run directory (any backend, or a trace written by hand), or a group of them.

:class:`RunData` takes a run read by the one reader (:func:`sspsim.rundir.read_run`, which
locates and parses ``run.json``, ``trace.csv``, ``evals.csv`` and ``audit.npz``), validates the
trace's columns (that is part of checking) and derives the quantities several checks share
(commit order, read sets, the problem rebuilt from the config).  It never talks to a live
backend.  Input it cannot use raises :class:`sspsim.errors.InputError`, naming the file, the
field and the rule.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sspsim.budget import check_memory
from sspsim.config import Config
from sspsim.errors import InputError
from sspsim.rundir import Run, read_run, read_runs

__all__ = ["REQUIRED_COLUMNS", "RunData", "SweepData", "check_trace", "evidence_of", "load_evidence"]

REQUIRED_COLUMNS = ("worker", "clock", "start_time", "commit_time", "visible_clock", "staleness")
"""Columns a trace must have for any check to read it (DESIGN §Run directory lists them)."""


class RunData:
    """One run directory, read-only."""

    def __init__(
        self,
        path: Path,
        meta: dict[str, Any],
        config: Config,
        trace: pd.DataFrame | None,
        evals: pd.DataFrame | None,
        audit: dict[str, np.ndarray] | None,
    ) -> None:
        self.path = path
        self.meta = meta
        self.config = config
        self.trace = trace
        self.evals = evals
        self.audit = audit

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> RunData:
        """Read a run directory (through :func:`sspsim.rundir.read_run`) and validate it."""
        return cls.from_run(read_run(path))

    @classmethod
    def from_run(cls, run: Run) -> RunData:
        """Validate a run already read; everything is loaded now, so bad input fails here."""
        config = run.config
        check_memory(config, schedule=False)  # the replays build the problem: refuse data that cannot fit
        trace = check_trace(run.trace, run.location("trace.csv"), config) if run.has_trace else None
        evals = run.evals if run.has_evals else None
        return cls(run.path or Path("."), run.meta, config, trace, evals, run.audit)

    # -- basic facts -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def P(self) -> int:
        return self.config.workers.count

    @property
    def s(self) -> float:
        return self.config.consistency.staleness

    @property
    def model(self) -> str:
        """``consistency.model``: ssp, or a round-based alternative."""
        return self.config.consistency.model

    @property
    def fixed_iterations(self) -> bool:
        """Whether a complete run has ``run.clocks`` iterations per worker: not under kbatch_sync
        (rounds end after K pushes from any workers), nor a deployed ksync (a slow worker sits out
        the rounds it is late for)."""
        return not (self.model == "kbatch_sync" or (self.model == "ksync" and self.backend == "real"))

    @property
    def policy(self) -> str:
        return self.config.consistency.read_policy

    @property
    def backend(self) -> str:
        return str(self.meta.get("backend", "unknown"))

    @property
    def complete(self) -> bool:
        return self.meta.get("status", "complete") == "complete"

    @property
    def summary(self) -> dict[str, Any]:
        return self.meta.get("summary", {})

    @cached_property
    def structure_problem(self) -> str | None:
        """Why the trace is not well-formed (None when it is): each worker's iterations must be
        1..n exactly once, and an audit log must describe the same rows.  Checks other than
        ``ssp.I0_well_formed`` need a well-formed trace and say not_applicable otherwise."""
        if self.trace is None:
            return None
        counts = self.clocks_per_worker
        for q in range(self.P):
            clocks = np.sort(self.clock[self.worker == q])
            if not np.array_equal(clocks, np.arange(1, counts[q] + 1)):
                return f"worker {q}'s iterations are not 1..{counts[q]} exactly once"
        if not self.fixed_iterations:
            return None
        if self.complete and len(set(counts.tolist())) > 1 and self.config.run.clocks != counts.max():
            return "workers have different numbers of iterations in a complete run"
        if self.complete and (counts != self.config.run.clocks).any():
            return f"a complete run needs {self.config.run.clocks} iterations per worker"
        if self.audit is not None:
            aw, ac = self.audit.get("worker"), self.audit.get("clock")
            if aw is None or ac is None or not (np.array_equal(aw, self.worker) and np.array_equal(ac, self.clock)):
                return "audit.npz rows do not match trace.csv rows"
        return None

    @property
    def trace_table(self) -> pd.DataFrame:
        """The trace, for code that runs only once a trace is known to exist (a check whose
        assumptions required one)."""
        if self.trace is None:
            raise RuntimeError(f"{self.name}: a check read the trace of a run that has none")
        return self.trace

    @property
    def evals_table(self) -> pd.DataFrame:
        """The evaluations, for code that runs only once they are known to exist."""
        if self.evals is None:
            raise RuntimeError(f"{self.name}: a check read the evaluations of a run that has none")
        return self.evals

    @property
    def audit_log(self) -> dict[str, np.ndarray]:
        """The audit log, for code that runs only once it is known to exist."""
        if self.audit is None:
            raise RuntimeError(f"{self.name}: a check read the audit log of a run that has none")
        return self.audit

    def has(self, *columns: str) -> bool:
        """Whether the trace exists and has every column named."""
        return self.trace is not None and all(c in self.trace.columns for c in columns)

    @cached_property
    def message_cost(self) -> float:
        """Seconds per push or pull (from run.json, else from the config)."""
        cost = self.meta.get("problem", {}).get("message_cost")
        if cost is not None:
            return float(cost)
        n = self.meta.get("problem", {}).get("n_params", 0)
        return self.config.network.message_cost(int(n))

    @cached_property
    def problem(self):  # type: ignore[no-untyped-def]
        """The problem rebuilt from the config (same data, same seed); None without math."""
        from sspsim.problems import make_problem

        if self.config.problem.kind == "none":
            return None
        return make_problem(self.config.problem, self.config.problem_seed)

    # -- trace-derived arrays (rows in commit order) ----------------------------------
    @cached_property
    def worker(self) -> np.ndarray:
        return self._col("worker").astype(np.int64)

    @cached_property
    def clock(self) -> np.ndarray:
        return self._col("clock").astype(np.int64)

    @cached_property
    def t_index(self) -> np.ndarray:
        """Round-robin reference index t = P (c - 1) + p + 1 of each row."""
        return self.P * (self.clock - 1) + self.worker + 1

    @cached_property
    def read_instant(self) -> np.ndarray:
        """When each read was taken: ``read_time`` if recorded, else ``start_time`` (later, so weaker)."""
        return self._col("read_time") if self.has("read_time") else self._col("start_time")

    @cached_property
    def clocks_per_worker(self) -> np.ndarray:
        return np.bincount(self.worker, minlength=self.P)

    @cached_property
    def position(self) -> dict[tuple[int, int], int]:
        """(worker, clock) -> row position in commit order."""
        return {(int(p), int(c)): i for i, (p, c) in enumerate(zip(self.worker, self.clock))}

    @cached_property
    def clock_completion(self) -> np.ndarray:
        """M[k]: the instant every worker had committed clock k (M[0] = 0; inf where never)."""
        C = int(self.clock.max()) if len(self.clock) else 0
        M = np.full(C + 1, np.inf)
        M[0] = 0.0
        commits = self._col("commit_time")
        per = np.full((self.P, C), np.inf)
        per[self.worker, self.clock - 1] = commits
        if C:
            M[1:] = per.max(axis=0)
            M[1:] = np.maximum.accumulate(M[1:])  # clock k complete implies clock k - 1 complete
        return M

    def complete_clock_at(self, instants: np.ndarray) -> np.ndarray:
        """Slowest committed clock at each instant (commits at that instant count as done)."""
        M = self.clock_completion
        finite = M[1:][np.isfinite(M[1:])]
        return np.searchsorted(finite, instants, side="right")

    def commits_at(self, instants: np.ndarray) -> np.ndarray:
        """Number of commits at or before each instant."""
        return np.searchsorted(np.sort(self._col("commit_time")), instants, side="right")

    def _col(self, name: str) -> np.ndarray:
        return self.trace_table[name].to_numpy()


class SweepData:
    """A group of run directories (a sweep, or any folder of runs)."""

    def __init__(self, path: Path, runs: list[RunData]) -> None:
        self.path = path
        self.runs = runs

    @property
    def name(self) -> str:
        return str(self.path)

    def __len__(self) -> int:
        return len(self.runs)


def load_evidence(path: str | Path, *, complete_only: bool = False) -> RunData | SweepData:
    """A run directory, or a sweep directory (its runs in sweep.json order), via :func:`sspsim.rundir.read_runs`.

    ``complete_only`` (what ``sspsim check`` asks) refuses a run that did not finish: its verdicts
    would say nothing about the run it was meant to be.  The Python API still checks such a run
    (what a crashed deploy did up to the crash), with the checks' own premises on what is missing.
    """
    path = Path(path)
    runs = read_runs(path)
    for run in runs if complete_only else ():
        if not run.complete:
            reason = f": {run.meta['reason']}" if isinstance(run.meta.get("reason"), str) else ""
            raise InputError("DIR", str(run.path), f"is not a complete run (status {run.meta.get('status')!r}{reason})")
    return evidence_of(path, runs)


def evidence_of(path: str | Path, runs: list[Run]) -> RunData | SweepData:
    """What the checks read from runs already read from ``path``: the run itself when ``path`` is
    that run's directory, else the group (a sweep)."""
    path = Path(path)
    if len(runs) == 1 and runs[0].path == path:
        return RunData.from_run(runs[0])
    return SweepData(path, [RunData.from_run(r) for r in runs])


def check_trace(df: pd.DataFrame, file: str, config: Config) -> pd.DataFrame:
    """Sanity-check a trace (InputError naming the file and column); rows come back in commit order."""
    path = Path(file)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(str(path), ", ".join(missing), f"missing column(s); a trace needs {', '.join(REQUIRED_COLUMNS)}")
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            bad = df[col][pd.to_numeric(df[col], errors="coerce").isna() & df[col].notna()]
            raise InputError(f"{path.name} column {col}", str(bad.iloc[0]) if len(bad) else "?", "must be numeric")
    for col in REQUIRED_COLUMNS:
        if df[col].isna().any():
            row = int(df[col].isna().to_numpy().argmax()) + 2
            raise InputError(f"{path.name}:{row} column {col}", "empty", "required columns must be filled on every row")
    for col in ("worker", "clock", "visible_clock", "staleness"):
        values = df[col].to_numpy()
        with np.errstate(invalid="ignore"):  # inf and nan are not integers either
            whole = np.isfinite(values) & np.equal(np.mod(values, 1), 0)
        if not np.all(whole):
            raise InputError(f"{path.name} column {col}", "non-integer", "must hold integers")
    workers = df["worker"].to_numpy()
    if len(df) and (workers.min() < 0 or workers.max() >= config.workers.count):
        raise InputError(
            f"{path.name} column worker", int(workers.max() if workers.max() >= config.workers.count else workers.min()),
            f"must be in [0, {config.workers.count}) for workers.count = {config.workers.count}",
        )
    if len(df) and df["clock"].min() < 1:
        raise InputError(f"{path.name} column clock", int(df["clock"].min()), "iterations are numbered from 1")
    times = df["commit_time"].to_numpy(dtype=float)
    if not np.all(np.isfinite(times)):
        raise InputError(f"{path.name} column commit_time", "non-finite", "times must be finite")
    if "commit_index" in df.columns and not df["commit_index"].isna().any():
        df = df.sort_values("commit_index", kind="stable")
    else:
        df = df.sort_values("commit_time", kind="stable")
    return df.reset_index(drop=True)
