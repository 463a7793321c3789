"""Sweeps, checks and comparisons as pandas DataFrames, for notebooks and pipelines.

* :func:`sweep` runs a grid and returns :func:`read_sweep` of it;
* :func:`read_sweep` is one tidy row per run, in ``sweep.json`` order: the run's name and path,
  one typed column per grid key (the value the run's resolved config holds, so ``"inf"``
  becomes ``float("inf")`` and ``"3"`` becomes ``3``), then the run's scalar summary figures;
* :func:`check` is one row per verdict of ``sspsim check``;
* :func:`compare` is ``sspsim compare`` as a :class:`~sspsim.comparison.Comparison`.

This module sits above the checks and the simulator (it is what ``import sspsim`` re-exports);
the core stays free of both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sspsim.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from sspsim.comparison import Comparison
    from sspsim.config import Config
    from sspsim.rundir import Run

__all__ = ["check", "compare", "read_sweep", "sweep"]


def sweep(
    config: Config | str | Path,
    grid: Mapping[str, Sequence[Any]],
    out: str | Path,
    *,
    overrides: Sequence[str] = (),
    jobs: int | None = None,
    executor: str = "local",
    address: str | None = None,
    force: bool = False,
) -> pd.DataFrame:
    """Run every combination of ``grid`` (``{"consistency.staleness": [0, 3, "inf"], ...}``) on
    ``config`` (a :class:`Config` or a TOML file) into ``out``; return :func:`read_sweep` of it.

    The same run directories and ``sweep.json`` as ``sspsim sweep CONFIG --grid ... --out OUT``;
    ``executor="ray"`` (``address`` for an existing cluster) gives identical results.
    """
    from sspsim.sim.executors import make_executor
    from sspsim.sim.sweep import expand_grid, run_sweep
    from sspsim.tomlwrite import _value

    if isinstance(config, (str, Path)):
        import tomllib

        path = Path(config)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InputError("config", str(path), f"cannot be read ({exc})") from None
        base = path.parent
    else:
        raw, base = config.to_dict(), Path(".")
    if not isinstance(grid, Mapping) or not grid:
        raise InputError("grid", grid, 'must map keys to value lists, e.g. {"consistency.staleness": [0, 3]}')
    grids = []
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise InputError(f"grid[{key!r}]", values, "must be a non-empty list of values")
        grids.append(f"{key}=" + ",".join(_value(v) for v in values))
    points = expand_grid(raw, base, grids, list(overrides))
    run_sweep(points, Path(out), executor=make_executor(executor, jobs=jobs, address=address), force=force)
    return read_sweep(out)


def read_sweep(path: str | Path) -> pd.DataFrame:
    """One row per run of the sweep (or run) directory ``path``, with typed grid columns."""
    import pandas as pd

    from sspsim.rundir import read_runs

    path = Path(path)
    runs = read_runs(path)
    manifest = path / "sweep.json"
    grid_keys: list[str] = []
    if manifest.is_file():
        for entry in json.loads(manifest.read_text()).get("runs", []):
            for item in entry.get("overrides", []) if isinstance(entry, dict) else []:
                key = str(item).partition("=")[0]
                if key and key not in grid_keys:
                    grid_keys.append(key)
    rows = []
    for run in runs:
        row: dict[str, Any] = {"run": run.path.name if run.path else None, "path": str(run.path) if run.path else None,
                               "backend": run.meta.get("backend")}
        config = run.meta.get("config") or {}
        for key in grid_keys:
            row[key] = _typed(_lookup(config, key))
        row.update({k: v for k, v in (run.meta.get("summary") or {}).items() if _scalar(v)})
        rows.append(row)
    return pd.DataFrame(rows)


def check(run: Run | str | Path, theorems: Sequence[str] = ()) -> pd.DataFrame:
    """``sspsim check`` as a DataFrame: one row per verdict (theorem, run, outcome, measured, bound,
    ratio, tag, detail), for a run, a run directory or a sweep directory."""
    import pandas as pd

    from sspsim.proofs_check.runner import check_path, check_runs

    if isinstance(run, (str, Path)):
        verdicts = check_path(run, tuple(theorems))
    else:
        if run.path is None:
            raise InputError("run", repr(run), "has no run directory; simulate it with an out= folder to check it")
        verdicts = check_runs(run.path, [run], tuple(theorems))
    return pd.DataFrame([v.to_dict() for v in verdicts])


def compare(simulated: Run | str | Path, measured: Run | str | Path, *more: Run | str | Path) -> Comparison:
    """``sspsim compare``: every metric's error, the largest timing error as the headline (against
    the median of the real runs, with their spread, when ``more`` are given)."""
    from sspsim.comparison import compare_runs

    return compare_runs(simulated, measured, *more)


def _lookup(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _typed(value: Any) -> Any:
    """Numbers stay numbers; ``"inf"`` (the TOML spelling of an unbounded staleness) becomes ``inf``."""
    if value == "inf":
        return float("inf")
    return value if _scalar(value) else json.dumps(value, sort_keys=True, default=str)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))
