"""Run directories (DESIGN §Run directory): write them atomically, read them back.

A run directory holds ``run.json`` (resolved config, backend, versions, seed, summary),
``trace.csv`` (one row per iteration; absent for ``trace = "summary"``), ``evals.csv`` and,
for audited runs, ``audit.npz``.  It is built in a hidden sibling folder and renamed into
place in one step, so a directory named by the user is either complete or absent.  A sweep
directory holds one run directory per point and ``sweep.json`` listing them in order.

This module is the one reader (:func:`read_run`, :func:`read_runs`) and the one builder of
``run.json`` metadata (:func:`run_meta`) for every backend; ``check``, ``report`` and
``compare`` read through it.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sspsim.errors import MISSING, InputError
from sspsim.outdir import read_marker

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from sspsim.config import Config

__all__ = [
    "FORMAT", "SWEEP_FORMAT", "Run", "jsonable", "read_run", "read_runs", "run_meta", "versions", "write_meta",
    "write_run",
]

FORMAT = "sspsim-run/1"
"""``format`` of run.json: the major version (after the slash) changes when old readers would misread it."""
SWEEP_FORMAT = "sspsim-sweep/1"
"""``format`` of sweep.json."""


class Run:
    """A finished run: its metadata, trace and evaluations (pandas DataFrames, loaded on demand).

    >>> import sspsim
    >>> run = sspsim.simulate(sspsim.Config(run=sspsim.RunConfig(clocks=5)))
    >>> len(run.trace), run.summary["max_staleness"] <= 3
    (40, True)
    """

    def __init__(
        self,
        meta: Mapping[str, Any],
        *,
        path: Path | None = None,
        trace: Mapping[str, np.ndarray] | None = None,
        evals: list[dict[str, float]] | None = None,
    ) -> None:
        self.meta = dict(meta)
        self.path = path
        self._trace_columns = trace
        self._eval_rows = evals

    def _repr_html_(self) -> str:
        """A summary table, how Jupyter shows a run."""
        import html

        config = self.meta.get("config") or {}
        consistency = config.get("consistency") or {}
        facts = [
            ("backend", self.meta.get("backend")), ("status", self.meta.get("status", "complete")),
            ("problem", (config.get("problem") or {}).get("kind")),
            ("workers", (config.get("workers") or {}).get("count")),
            ("staleness", consistency.get("staleness")), ("read policy", consistency.get("read_policy")),
            ("clocks", (config.get("run") or {}).get("clocks")),
        ]
        keys = ("time_per_clock", "wait_fraction", "mean_staleness", "max_staleness", "mean_update_staleness",
                "final_objective", "time_to_target", "throughput")
        summary = self.meta.get("summary") or {}
        facts += [(k.replace("_", " "), summary[k]) for k in keys if k in summary]
        cells = "".join(f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
                        f"<td>{html.escape(f'{v:.5g}' if isinstance(v, float) else str(v))}</td></tr>" for k, v in facts)
        where = html.escape(str(self.path)) if self.path else "not written"
        return f"<table><caption>sspsim run ({where})</caption>{cells}</table>"

    def __repr__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"<Run {self.meta.get('backend')} {self.meta['config']['problem']['kind']}{where}>"

    @property
    def summary(self) -> dict[str, Any]:
        return self.meta["summary"]

    @property
    def complete(self) -> bool:
        return self.meta.get("status") == "complete"

    @cached_property
    def config(self) -> Config:
        """The resolved config of run.json (InputError naming run.json when it is not a valid one)."""
        from sspsim.config import config_from_dict
        from sspsim.errors import SSPSimError

        try:
            return config_from_dict(self.meta["config"], base_dir=self.path or ".")
        except SSPSimError as exc:
            raise InputError(f"{self.location('run.json')} config", "...", str(exc)) from None

    @property
    def has_trace(self) -> bool:
        """Whether the run has a trace (``trace = "full"``)."""
        return self._trace_columns is not None or (self.path is not None and (self.path / "trace.csv").is_file())

    @property
    def has_evals(self) -> bool:
        return self._eval_rows is not None or (self.path is not None and (self.path / "evals.csv").is_file())

    @cached_property
    def trace(self) -> pd.DataFrame:
        """One row per iteration (trace.csv), as written (commit order)."""
        import pandas as pd

        if self._trace_columns is not None:
            return pd.DataFrame(dict(self._trace_columns))
        if not self.has_trace:
            raise InputError("trace", str(self.path), 'this run has no trace.csv (it ran with trace = "summary")')
        assert self.path is not None
        return _read_csv(self.path / "trace.csv")

    @cached_property
    def evals(self) -> pd.DataFrame:
        """Periodic full-objective evaluations (evals.csv)."""
        import pandas as pd

        if self._eval_rows is not None:
            return pd.DataFrame(self._eval_rows)
        if not self.has_evals:
            raise InputError("evals", str(self.path), "this run has no evals.csv")
        assert self.path is not None
        return _read_csv(self.path / "evals.csv")

    @cached_property
    def audit(self) -> dict[str, np.ndarray] | None:
        """The arrays of audit.npz (what the workers really read and applied), None when not audited."""
        if self.path is None or not (self.path / "audit.npz").is_file():
            return None
        try:
            with np.load(self.path / "audit.npz") as npz:
                return {k: npz[k] for k in npz.files}
        except Exception as exc:  # any unreadable archive is bad input
            raise InputError(str(self.path / "audit.npz"), "...", f"unreadable ({exc.__class__.__name__})") from None

    def location(self, name: str) -> str:
        """Where the file ``name`` of this run is (the name alone for a run held in memory); for messages."""
        return str(self.path / name) if self.path is not None else name


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(str(path), "...", f"not a readable CSV ({exc.__class__.__name__}: {first})") from None


def versions() -> dict[str, str]:
    """Versions of the pieces a run depends on."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("sspsim", "numpy", "scipy", "simpy", "pandas"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:  # pragma: no cover - running from a source tree
            out[name] = "unknown"
    return out


def run_meta(
    config: Config,
    *,
    backend: str,
    problem: Mapping[str, Any],
    extra_versions: Mapping[str, str] | None = None,
    **more: Any,
) -> dict[str, Any]:
    """The run.json metadata every backend writes: format, backend, seed, resolved config, problem
    facts and versions, then ``more`` (summary, status, engine, hardware, ...)."""
    meta: dict[str, Any] = {
        "format": FORMAT,
        "backend": backend,
        "seed": config.run.seed,
        "config": config.to_dict(),
        "problem": dict(problem),
        "versions": {**versions(), **(extra_versions or {})},
    }
    meta.update(more)
    return meta


def write_meta(run_dir: str | Path, meta: Mapping[str, Any]) -> None:
    """(Re)write a run directory's run.json in one step (a backend that writes its directory in place)."""
    run_dir = Path(run_dir)
    tmp = run_dir / "run.json.tmp"
    tmp.write_text(json.dumps(jsonable(meta), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, run_dir / "run.json")


def write_run(
    out: str | Path,
    meta: Mapping[str, Any],
    *,
    trace: Mapping[str, np.ndarray] | None,
    evals: list[dict[str, float]],
    audit: Mapping[str, np.ndarray] | None = None,
    extra_files: Mapping[str, str] | None = None,
    force: bool = False,
) -> Run:
    """Write a run directory atomically and return it as a :class:`Run`.

    The folder rules are :mod:`sspsim.outdir`'s: an existing sspsim folder at ``out`` is
    replaced only with ``force``; anything else existing and non-empty is refused (InputError).
    """
    import pandas as pd

    from sspsim import outdir

    out = Path(out)
    outdir.check_folder(out, force=force)
    tmp = outdir.staging(out)
    try:
        if trace is not None:
            pd.DataFrame(dict(trace)).to_csv(tmp / "trace.csv", index=False, lineterminator="\n")
        pd.DataFrame(evals).to_csv(tmp / "evals.csv", index=False, lineterminator="\n")
        if audit is not None:
            # numpy's stub cannot tell **kwds from its allow_pickle keyword
            np.savez_compressed(tmp / "audit.npz", **audit)  # type: ignore[arg-type]
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        meta = dict(meta)
        meta["files"] = {
            "trace": "trace.csv" if trace is not None else None,
            "evals": "evals.csv",
            "audit": "audit.npz" if audit is not None else None,
        }
        meta["status"] = "complete"
        (tmp / "run.json").write_text(json.dumps(jsonable(meta), indent=2, allow_nan=False) + "\n")
        outdir.write_marker(tmp, "run")
    except BaseException:
        outdir.discard(tmp)
        raise
    outdir.commit(tmp, out, force=force)
    return Run(meta, path=out)


def read_run(path: str | Path) -> Run:
    """Open a run directory; InputError naming what is wrong if it is not a complete one.

    ``run.json`` must be a JSON object with a ``config`` table and a ``format`` this reader
    knows (``sspsim-run/1``); trace.csv, evals.csv and audit.npz load on first use.
    """
    path = Path(path)
    meta_file = path / "run.json"
    if not path.is_dir():
        raise InputError("run directory", str(path), "not found")
    if not meta_file.is_file():
        raise InputError("run directory", str(path), "has no run.json (not a run directory, or an unfinished one)")
    meta = _read_json(meta_file)
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise InputError(str(meta_file), "...", "is not an sspsim run.json (no config table)")
    _check_format(meta_file, meta.get("format"), FORMAT)
    _check_files(path, meta)
    return Run(meta, path=path)


def _check_files(path: Path, meta: Mapping[str, Any]) -> None:
    """A complete run has a summary table, and a trace.csv file unless it ran with ``trace = "summary"``."""
    meta_file = path / "run.json"
    trace = path / "trace.csv"
    if trace.exists() and not trace.is_file():
        raise InputError(str(trace), "...", "is not a file (a run directory's trace.csv is a CSV file)")
    for key in ("problem", "versions"):
        if key in meta and not isinstance(meta[key], dict):
            raise InputError(f"{meta_file} {key}", meta[key], "must be a table")
    if meta.get("status", "complete") != "complete":
        return
    if not isinstance(meta.get("summary"), dict):
        raise InputError(f"{meta_file} summary", meta.get("summary", MISSING), "a complete run's run.json needs a summary table")
    run_table = meta["config"].get("run")
    mode = run_table.get("trace", "full") if isinstance(run_table, dict) else "full"
    if mode == "full" and not trace.exists():
        raise InputError(str(trace), MISSING, 'the run is marked complete with run.trace = "full" but has no trace.csv')


def read_runs(path: str | Path) -> list[Run]:
    """A run directory as ``[run]``, or the runs of a sweep directory in ``sweep.json`` order.

    A folder without ``sweep.json`` whose sub-folders are run directories is read as a sweep in
    name order.  InputError (one line) for anything else, a ``sweep.json`` of an unknown format,
    or one naming a run directory that is not there.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("DIR", str(path), "not found")
    if (path / "run.json").is_file():
        return [read_run(path)]
    if not path.is_dir():
        raise InputError("DIR", str(path), "is a file; give a run directory or a sweep directory")
    marker = read_marker(path)
    if marker is not None and marker.get("kind") == "sweep" and not marker.get("complete"):
        done = sum(1 for d in path.iterdir() if (d / "run.json").is_file())
        raise InputError("DIR", str(path), f"is an incomplete sweep ({done} runs finished): "
                         "run the same sweep command again to finish it")
    manifest = path / "sweep.json"
    if manifest.is_file():
        sweep = _read_json(manifest)
        if not isinstance(sweep, dict) or not isinstance(sweep.get("runs"), list):
            raise InputError(str(manifest), "...", "is not an sspsim sweep.json (no runs list)")
        _check_format(manifest, sweep.get("format"), SWEEP_FORMAT)
        names = []
        for i, row in enumerate(sweep["runs"]):
            name = row.get("path", row.get("name")) if isinstance(row, dict) else None
            if not isinstance(name, str) or not name:
                raise InputError(f"{manifest} runs[{i}].path", name, "must name the run's sub-folder")
            names.append(name)
        if not names:
            raise InputError(str(manifest), "runs", "lists no runs")
        return [read_run(path / name) for name in names]
    subs = sorted(d for d in path.iterdir() if d.is_dir() and (d / "run.json").is_file())
    if not subs:
        raise InputError("DIR", str(path),
                         "is neither a run directory (run.json) nor a sweep directory (sweep.json, or sub-folders with run.json)")
    return [read_run(d) for d in subs]


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(str(file), "...", f"not valid JSON ({exc.__class__.__name__}: {exc})") from None


def _check_format(file: Path, found: Any, expected: str) -> None:
    """``found`` must name the same kind and major version as ``expected`` (``kind/major[.minor]``)."""
    kind, _, major = expected.partition("/")
    if not isinstance(found, str) or found.partition("/")[0] != kind or found.partition("/")[2].split(".")[0] != major:
        raise InputError(f"{file} format", found, f"must be {expected} (this sspsim reads {kind} version {major} only)")


def jsonable(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, non-finite floats to strings."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")
    if isinstance(value, Path):
        return str(value)
    return value
