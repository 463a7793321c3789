"""Sweeps: the cartesian product of ``--grid key=v1,v2,...`` over a base config, run in a process pool."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import tomllib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Mapping

from sspsim.config import Config, apply_overrides, config_from_dict
from sspsim.errors import InputError
from sspsim.rundir import SWEEP_FORMAT, jsonable
from sspsim.sim.run import simulate

__all__ = ["SweepPoint", "expand_grid", "parse_grid", "run_sweep"]


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: its folder name, its overrides and its validated config."""

    name: str
    overrides: tuple[str, ...]
    config: Config


def parse_grid(item: str) -> tuple[str, list[str]]:
    """``key=v1,v2,...`` to the key and the value texts; commas inside {...}, [...] or quotes do not split.

    >>> parse_grid("consistency.staleness=0,3,inf")
    ('consistency.staleness', ['0', '3', 'inf'])
    >>> parse_grid('workers.speed={kind="constant", value=1},{kind="exponential", mean=1}')[1]
    ['{kind="constant", value=1}', '{kind="exponential", mean=1}']
    """
    key, sep, text = item.partition("=")
    if not sep or not key.strip() or not text.strip():
        raise InputError("--grid", item, "must look like section.key=v1,v2,... e.g. consistency.staleness=0,3,inf")
    values, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(cur.strip())
            cur = ""
            continue
        cur += ch
    values.append(cur.strip())
    if any(not v for v in values):
        raise InputError("--grid", item, "has an empty value")
    return key.strip(), values


def grids_from_config(raw: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The ``[sweep]`` table of a config: ``grid = { "key" = [values] }``, optional ``seeds = N``
    (run.seed = 0..N-1) and ``[[sweep.variant]]`` entries ``{ name, set = { "key" = value } }``.

    Returns the --grid strings and the variants as (name, overrides).
    """
    from sspsim.tomlwrite import _value

    table = raw.get("sweep") or {}
    grid = table.get("grid", {})
    if not isinstance(grid, Mapping) or not grid:
        raise InputError("sweep.grid", grid, 'must be a table of value lists, e.g. { "consistency.staleness" = [0, 3] }')
    grids = []
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise InputError(f"sweep.grid.{key}", values, "must be a non-empty list of values")
        grids.append(f"{key}=" + ",".join(_value(v) for v in values))
    seeds = table.get("seeds")
    if seeds is not None:
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise InputError("sweep.seeds", seeds, "must be an integer >= 1")
        grids.append("run.seed=" + ",".join(str(i) for i in range(seeds)))
    variants = []
    for i, v in enumerate(table.get("variant", [])):
        if not isinstance(v, Mapping) or not isinstance(v.get("name"), str) or not isinstance(v.get("set", {}), Mapping):
            raise InputError(f"sweep.variant[{i}]", v, 'must be { name = "...", set = { "key" = value } }')
        variants.append((v["name"], [f"{k}={_value(x)}" for k, x in v.get("set", {}).items()]))
    return grids, variants


def expand_grid(
    raw: Mapping[str, Any], base_dir: Path, grids: list[str], overrides: list[str] = (),  # type: ignore[assignment]
    variants: list[tuple[str, list[str]]] | None = None,
) -> list[SweepPoint]:
    """Every combination of the grid values (for every variant), validated before anything runs."""
    if variants:
        points = []
        for name, sets in variants:
            for point in expand_grid(raw, base_dir, grids, [*overrides, *sets]):
                points.append(SweepPoint(name=f"{_slug(name)}_{point.name}", overrides=(*sets, *point.overrides),
                                         config=point.config))
        return points
    axes = [parse_grid(g) for g in grids]
    keys = [k for k, _ in axes]
    if len(set(keys)) != len(keys):
        raise InputError("--grid", ", ".join(keys), "names the same key twice")
    short = [k.rsplit(".", 1)[-1] for k in keys]
    labels = short if len(set(short)) == len(short) else keys
    points = []
    for combo in itertools.product(*(values for _, values in axes)):
        sets = tuple(f"{k}={v}" for k, v in zip(keys, combo))
        name = "_".join(f"{label}={_slug(v)}" for label, v in zip(labels, combo)) or "run"
        config = config_from_dict(apply_overrides(raw, [*overrides, *sets]), base_dir=base_dir)
        points.append(SweepPoint(name=name, overrides=sets, config=config))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise InputError("--grid", " ".join(grids), "gives two runs the same name; use distinct values")
    return points


def run_sweep(
    points: list[SweepPoint],
    out: Path,
    *,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every point into ``out/<name>``; write ``out/sweep.json`` last; return its rows."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "sweep.json").is_file():
        raise InputError("--out", str(out), "exists and is not a sweep directory; choose a new path")
    if (out / "sweep.json").is_file():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, Any]] = {}
    done = 0
    if progress is not None:
        progress(0, len(points))
    if jobs <= 1:
        for point in points:
            rows[point.name] = _run_point(point, out)
            done += 1
            if progress is not None:
                progress(done, len(points))
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_run_point, point, out) for point in points]
            for future in as_completed(futures):
                row = future.result()
                rows[row["name"]] = row
                done += 1
                if progress is not None:
                    progress(done, len(points))
    ordered = [rows[p.name] for p in points]
    (out / "sweep.json").write_text(json.dumps(jsonable({"format": SWEEP_FORMAT, "runs": ordered}), indent=2) + "\n")
    return ordered


def _run_point(point: SweepPoint, out: Path) -> dict[str, Any]:
    run = simulate(point.config, out / point.name)
    s = run.summary
    keep = ("time_per_clock", "wait_fraction", "mean_staleness", "mean_update_staleness", "final_objective", "time_to_target")
    return {"name": point.name, "overrides": list(point.overrides), "path": point.name, **{k: s.get(k) for k in keep}}


def _slug(value: str) -> str:
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    if isinstance(parsed, dict):
        text = "-".join(f"{v}" for v in parsed.values())
    else:
        text = str(parsed)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "x"
