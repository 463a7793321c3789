"""Run directories (DESIGN §Run directory): write them atomically, read them back.

A run directory holds ``run.json`` (resolved config, backend, versions, seed, summary),
``trace.csv`` (one row per iteration; absent for ``trace = "summary"``), ``evals.csv`` and,
for audited runs, ``audit.npz``.  It is built in a hidden sibling folder and renamed into
place in one step, so a directory named by the user is either complete or absent.
"""

from __future__ import annotations

import json
import math
import platform
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from sspsim.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from sspsim.config import Config

__all__ = ["FORMAT", "Run", "jsonable", "read_run", "versions", "write_run"]

FORMAT = "sspsim-run/1"


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
        from sspsim.config import config_from_dict

        return config_from_dict(self.meta["config"], base_dir=self.path or ".")

    @cached_property
    def trace(self) -> pd.DataFrame:
        """One row per iteration (trace.csv), in commit order."""
        import pandas as pd

        if self._trace_columns is not None:
            return pd.DataFrame(dict(self._trace_columns))
        if self.path is None or not (self.path / "trace.csv").is_file():
            raise InputError("trace", str(self.path), 'this run has no trace.csv (it ran with trace = "summary")')
        return pd.read_csv(self.path / "trace.csv")

    @cached_property
    def evals(self) -> pd.DataFrame:
        """Periodic full-objective evaluations (evals.csv)."""
        import pandas as pd

        if self._eval_rows is not None:
            return pd.DataFrame(self._eval_rows)
        assert self.path is not None
        return pd.read_csv(self.path / "evals.csv")


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
            np.savez_compressed(tmp / "audit.npz", **audit)
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
    """Open a run directory; InputError naming what is wrong if it is not a complete one."""
    path = Path(path)
    meta_file = path / "run.json"
    if not path.is_dir():
        raise InputError("run directory", str(path), "not found")
    if not meta_file.is_file():
        raise InputError("run directory", str(path), "has no run.json (not a run directory, or an unfinished one)")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(str(meta_file), "...", f"not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or "config" not in meta:
        raise InputError(str(meta_file), "...", "is not an sspsim run.json (no config)")
    return Run(meta, path=path)


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
