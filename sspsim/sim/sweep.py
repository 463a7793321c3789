"""Sweeps: the cartesian product of ``--grid key=v1,v2,...`` over a base config, run by an executor
(a local process pool, or Ray: :mod:`sspsim.sim.executors`)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sspsim import outdir
from sspsim.budget import check_memory
from sspsim.config import Config, apply_overrides, config_from_dict
from sspsim.errors import InputError
from sspsim.rundir import SWEEP_FORMAT, jsonable
from sspsim.sim.executors import Executor, LocalExecutor
from sspsim.sim.run import simulate, streams

__all__ = ["PROGRESS", "SWEEP_FILE", "SweepInterrupted", "SweepPoint", "expand_grid", "parse_grid", "run_sweep"]

SWEEP_FILE = "sweep.json"
PROGRESS = "progress.jsonl"
"""One JSON row per finished point, appended as each one finishes (what a rerun continues from)."""


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
    raw: Mapping[str, Any], base_dir: Path, grids: list[str], overrides: Sequence[str] = (),
    variants: list[tuple[str, list[str]]] | None = None,
) -> list[SweepPoint]:
    """Every combination of the grid values (for every variant), validated before anything runs."""
    if variants:
        points = []
        for name, variant_sets in variants:
            for point in expand_grid(raw, base_dir, grids, [*overrides, *variant_sets]):
                points.append(SweepPoint(name=f"{_slug(name)}_{point.name}", overrides=(*variant_sets, *point.overrides),
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
    executor: Executor | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every point into ``out/<name>``; write ``out/sweep.json`` last; return its rows.

    ``executor`` runs the points (default: a local pool of ``jobs`` processes); the rows are in
    the points' order whatever order they finish in, so every executor writes the same sweep.

    ``out`` follows :mod:`sspsim.outdir`.  A new sweep is written in place and records each
    finished point in ``progress.jsonl``, so an interrupted sweep (Ctrl-C, a failed point, a
    crash) is continued by running the same points into the same ``out`` again.  Replacing a
    finished (or different) sspsim sweep needs ``force``; the new one is built aside and swapped
    in when complete, so the old one stays whole until then.
    """
    out = Path(out)
    for point in points:  # every point fits, before the first one runs (``jobs`` of them at once)
        check_memory(point.config, copies=max(1, min(jobs, len(points))), streaming=streams(point.config))
    executor = LocalExecutor(jobs) if executor is None else executor
    key = _fingerprint(points)
    if not _resumable(out, key) and outdir.check_folder(out, force=force) is not None:
        stage = outdir.staging(out)
        try:
            outdir.write_marker(stage, "sweep", complete=False, points=key)
            rows = _run_points(points, stage, key, {}, executor=executor, progress=progress, where=None)
        except BaseException:
            outdir.discard(stage)
            raise
        outdir.commit(stage, out, force=True)
        return rows
    out.mkdir(parents=True, exist_ok=True)
    outdir.clean_stale(out.parent)
    with outdir.lock(out):
        if outdir.read_marker(out) is None:
            outdir.check_folder(out, force=False)  # files appeared meanwhile: refuse them
            outdir.write_marker(out, "sweep", complete=False, points=key)
        elif not _resumable(out, key):
            raise InputError("--out", str(out), "another sspsim process wrote a sweep there meanwhile; "
                             "add --force to replace it, or choose a new path")
        return _run_points(points, out, key, _finished(out, points), executor=executor, progress=progress, where=out)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; the message says what was kept and how to continue."""


def _fingerprint(points: list[SweepPoint]) -> str:
    """The identity of a sweep: its points' names and resolved configs (a rerun of the same command matches)."""
    text = json.dumps([[p.name, jsonable(p.config.to_dict())] for p in points], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _resumable(out: Path, key: str) -> bool:
    marker = outdir.read_marker(out) if out.is_dir() else None
    return marker is not None and marker.get("kind") == "sweep" and not marker.get("complete") and marker.get("points") == key


def _finished(out: Path, points: list[SweepPoint]) -> dict[str, dict[str, Any]]:
    """The rows ``progress.jsonl`` recorded whose run directory is there (a torn last line is ignored)."""
    names = {p.name for p in points}
    rows: dict[str, dict[str, Any]] = {}
    try:
        lines = (out / PROGRESS).read_text().splitlines()
    except OSError:
        return rows
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("name") in names and (out / row["name"] / "run.json").is_file():
            rows[row["name"]] = row
    return rows


def _run_points(
    points: list[SweepPoint], out: Path, key: str, done: dict[str, dict[str, Any]], *,
    executor: Executor, progress: Callable[[int, int], None] | None, where: Path | None,
) -> list[dict[str, Any]]:
    rows = dict(done)
    todo = [p for p in points if p.name not in rows]
    if progress is not None:
        progress(len(rows), len(points))
    try:
        with open(out / PROGRESS, "a") as record:

            def finished(row: dict[str, Any]) -> None:
                rows[row["name"]] = row
                record.write(json.dumps(jsonable(row)) + "\n")
                record.flush()
                if progress is not None:
                    progress(len(rows), len(points))

            try:
                with closing(executor.map_unordered(_run_point, todo, out)) as results:
                    for row in results:
                        finished(row)
            except BaseException:
                outdir.clean_stale(out)  # the stopped tasks' unfinished run folders
                raise
    except KeyboardInterrupt:
        kept = (f"{len(rows)} of {len(points)} runs are done in {where}; run the same command again to continue"
                if where is not None else "the sweep that was there is kept unchanged")
        raise SweepInterrupted(f"interrupted: {kept}") from None
    ordered = [rows[p.name] for p in points]
    tmp = out / f"{SWEEP_FILE}.tmp"
    tmp.write_text(json.dumps(jsonable({"format": SWEEP_FORMAT, "runs": ordered}), indent=2) + "\n")
    os.replace(tmp, out / SWEEP_FILE)
    outdir.write_marker(out, "sweep", complete=True, points=key)
    (out / PROGRESS).unlink(missing_ok=True)  # sweep.json holds every row now
    return ordered


def _run_point(point: SweepPoint, out: Path) -> dict[str, Any]:
    run = simulate(point.config, out / point.name, force=True)  # inside our own sweep folder
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
