"""What checks read: a run directory (any backend, or a trace written by hand), or a group of them.

:class:`RunData` loads ``run.json``, ``trace.csv``, ``evals.csv`` and ``audit.npz`` and derives
the quantities several checks share (commit order, read sets, the problem rebuilt from the
config).  It never talks to a live backend.  Input it cannot use raises
:class:`sspsim.errors.InputError`, naming the file, the field and the rule.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sspsim.config import Config, config_from_dict
from sspsim.errors import InputError, SSPSimError
from sspsim.outdir import read_marker

__all__ = ["REQUIRED_COLUMNS", "RunData", "SweepData", "load_evidence"]

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
        path = Path(path)
        meta_file = path / "run.json"
        if not path.is_dir():
            raise InputError("run directory", str(path), "not found")
        if not meta_file.is_file():
            raise InputError("run directory", str(path), "has no run.json")
        try:
            meta = json.loads(meta_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(str(meta_file), "...", f"not valid JSON ({exc.__class__.__name__}: {exc})") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("config", {}), dict):
            raise InputError(str(meta_file), "...", "must be an object with a 'config' table")
        try:
            config = config_from_dict(meta.get("config", {}), base_dir=path)
        except SSPSimError as exc:
            raise InputError(f"{meta_file} config", "...", str(exc)) from None
        trace = _read_trace(path / "trace.csv", config) if (path / "trace.csv").is_file() else None
        evals = _read_csv(path / "evals.csv") if (path / "evals.csv").is_file() else None
        audit = None
        if (path / "audit.npz").is_file():
            try:
                with np.load(path / "audit.npz") as npz:
                    audit = {k: npz[k] for k in npz.files}
            except Exception as exc:  # noqa: BLE001 - any unreadable archive is bad input
                raise InputError(str(path / "audit.npz"), "...", f"unreadable ({exc.__class__.__name__})") from None
        return cls(path, meta, config, trace, evals, audit)

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
        if self.complete and len(set(counts.tolist())) > 1 and self.config.run.clocks != counts.max():
            return "workers have different numbers of iterations in a complete run"
        if self.complete and (counts != self.config.run.clocks).any():
            return f"a complete run needs {self.config.run.clocks} iterations per worker"
        if self.audit is not None:
            aw, ac = self.audit.get("worker"), self.audit.get("clock")
            if aw is None or ac is None or not (np.array_equal(aw, self.worker) and np.array_equal(ac, self.clock)):
                return "audit.npz rows do not match trace.csv rows"
        return None

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
        assert self.trace is not None
        return self.trace[name].to_numpy()


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


def load_evidence(path: str | Path) -> RunData | SweepData:
    """A run directory, or a folder whose sub-folders are run directories (a sweep)."""
    path = Path(path)
    if not path.exists():
        raise InputError("DIR", str(path), "not found")
    if (path / "run.json").is_file():
        return RunData.load(path)
    marker = read_marker(path) if path.is_dir() else None
    if marker is not None and marker.get("kind") == "sweep" and not marker.get("complete"):
        done = sum(1 for d in path.iterdir() if (d / "run.json").is_file())
        raise InputError("DIR", str(path), f"is an incomplete sweep ({done} runs finished): "
                         "run the same sweep command again to finish it, then check it")
    if path.is_dir():
        subdirs = sorted(d for d in path.iterdir() if d.is_dir() and (d / "run.json").is_file())
        if subdirs:
            return SweepData(path, [RunData.load(d) for d in subdirs])
    raise InputError("DIR", str(path), "is neither a run directory (run.json) nor a folder of run directories")


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(str(path), "...", f"not a readable CSV ({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from None


def _read_trace(path: Path, config: Config) -> pd.DataFrame:
    """Read and sanity-check a trace; rows come back in commit order."""
    df = _read_csv(path)
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
        if not np.all(np.equal(np.mod(values, 1), 0)):
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
