"""What the report reads: run directories (or sweeps of them), labelled, and the tables figures draw.

Everything here is pandas and numpy; no plotting.  A :class:`RunEntry` is one run directory
with the facts the report groups by (backend, workers, staleness, read policy, problem) and a
label made of the config keys that tell it apart from the other runs of the report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sspsim.comparison import calibrated, mismatch, pair_runs
from sspsim.errors import InputError
from sspsim.rundir import Run, read_runs

__all__ = [
    "STRAGGLER_FACTOR",
    "RunEntry",
    "Source",
    "evals_long",
    "expand_dirs",
    "fmt",
    "label_runs",
    "layers_long",
    "pair_sim_real",
    "speedup_table",
    "staleness_counts",
    "staleness_text",
    "stragglers",
    "target",
    "time_split",
]

STRAGGLER_FACTOR = 1.5
"""A worker is a straggler when its mean compute time exceeds this many times the median worker's."""


@dataclass
class Source:
    """One DIR given to the report: a run directory, or a sweep directory and the runs under it."""

    path: Path
    kind: str  # "run" | "sweep"
    runs: list[Path]


@dataclass
class RunEntry:
    """One run of the report."""

    run: Run
    path: Path
    label: str = ""
    sweep: Path | None = None

    @property
    def meta(self) -> dict[str, Any]:
        return self.run.meta

    @property
    def config(self) -> dict[str, Any]:
        return self.run.meta.get("config", {})

    @property
    def summary(self) -> dict[str, Any]:
        return self.run.meta.get("summary", {}) or {}

    @property
    def backend(self) -> str:
        return str(self.meta.get("backend", "unknown"))

    @property
    def P(self) -> int:
        return int(self.config.get("workers", {}).get("count", self.summary.get("workers", 1)))

    @property
    def s(self) -> float:
        return staleness_value(self.config.get("consistency", {}).get("staleness", 0))

    @property
    def policy(self) -> str:
        return str(self.config.get("consistency", {}).get("read_policy", "eager"))

    @property
    def clocks(self) -> int | None:
        c = self.config.get("run", {}).get("clocks")
        return None if c is None else int(c)

    @property
    def problem(self) -> str:
        return str(self.config.get("problem", {}).get("kind", "?"))

    @property
    def seed(self) -> Any:
        return self.config.get("run", {}).get("seed", self.meta.get("seed"))

    @property
    def complete(self) -> bool:
        return self.meta.get("status", "complete") == "complete"

    def trace(self) -> pd.DataFrame | None:
        """trace.csv, or None when the run has none (``trace = "summary"``) or it cannot be read."""
        if not self.run.has_trace:
            return None
        try:
            df = self.run.trace
        except (InputError, OSError):
            return None
        from sspsim.proofs_check.evidence import check_trace

        return check_trace(df, self.run.location("trace.csv"), self.run.config)  # values out of range: InputError

    def evals(self) -> pd.DataFrame | None:
        """evals.csv, or None when absent or empty."""
        if not self.run.has_evals:
            return None
        try:
            df = self.run.evals
        except (InputError, OSError):
            return None
        return df if len(df) else None


# -- loading ------------------------------------------------------------------------------------

def expand_dirs(dirs: Iterable[str | Path]) -> tuple[list[Source], list[RunEntry]]:
    """Resolve each DIR to a run directory or a sweep directory (:func:`sspsim.rundir.read_runs`:
    a sweep's runs in ``sweep.json`` order); each run appears once.  InputError names the DIR
    and the rule when it is neither.
    """
    sources: list[Source] = []
    entries: list[RunEntry] = []
    seen: set[Path] = set()
    dirs = list(dirs)
    if not dirs:
        raise InputError("DIR", None, "give at least one run directory or sweep directory")
    for d in dirs:
        path = Path(d)
        runs = read_runs(path)
        single = len(runs) == 1 and runs[0].path == path
        source = Source(path, "run" if single else "sweep", [r.path for r in runs if r.path is not None])
        sources.append(source)
        for run in runs:
            assert run.path is not None
            key = run.path.resolve()
            if key in seen:
                continue
            seen.add(key)
            entries.append(RunEntry(run, run.path, sweep=None if single else path))
    label_runs(entries)
    return sources, entries


# -- labels ---------------------------------------------------------------------------------------

def staleness_value(v: Any) -> float:
    """A config staleness (int, float or "inf") as a float."""
    if isinstance(v, str):
        return math.inf if v.strip().lower() in ("inf", "infinity") else float(v)
    return float(v)


def staleness_text(s: float) -> str:
    return "inf" if math.isinf(s) else str(int(s)) if float(s).is_integer() else f"{s:g}"


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k != "speed":
            out.update(_flat(v, key + "."))
        else:
            out[key] = json.dumps(v, sort_keys=True, default=str)
    return out


_PRIMARY = ("backend", "workers.count", "consistency.staleness", "consistency.read_policy")


def label_runs(entries: list[RunEntry]) -> None:
    """Give each run a short label from the config keys that distinguish it.

    Always ``P=<workers> s=<staleness>``; the backend and read policy when they differ between
    runs; "calibrated" on a calibrated simulation beside uncalibrated ones; then other differing config keys (``problem.kind``, ``run.seed``, ...) until labels are
    unique; finally the directory name.
    """
    if not entries:
        return
    from sspsim.config import METADATA_SECTIONS

    flats = [{"backend": e.backend, **_flat({k: v for k, v in e.config.items() if k not in METADATA_SECTIONS})}
             for e in entries]
    varying = {k for k in set().union(*flats) if len({f.get(k) for f in flats}) > 1}
    mixed_calibration = len({calibrated(e.config) for e in entries if e.backend == "sim"}) > 1

    def base(e: RunEntry, f: dict[str, str]) -> list[str]:
        parts = []
        if "backend" in varying:
            parts.append(e.backend)
        parts += [f"P={e.P}", f"s={staleness_text(e.s)}"]
        if "consistency.read_policy" in varying:
            parts.append(e.policy)
        if mixed_calibration and calibrated(e.config):
            parts.append("calibrated")
        return parts

    labels = [base(e, f) for e, f in zip(entries, flats)]
    extra_keys = sorted(varying - set(_PRIMARY), key=_key_rank)
    for key in extra_keys:
        if len({" ".join(lab) for lab in labels}) == len(labels):
            break
        clash = _clashing(labels)
        short = key.rsplit(".", 1)[-1]
        if short in ("kind",):
            short = key.split(".")[0]
        for i in clash:
            value = flats[i].get(key)
            labels[i].append(f"{short}={_short_value(value, key)}")
    for i in _clashing(labels):
        labels[i].append(f"[{entries[i].path.name}]")
    for e, lab in zip(entries, labels):
        e.label = " ".join(lab)


def _key_rank(key: str) -> tuple[int, str]:
    first = ("problem.kind", "run.seed", "run.clocks", "workers.speed", "workers.stragglers", "optimizer.lr")
    return (first.index(key) if key in first else len(first), key)


def _short_value(value: str | None, key: str = "") -> str:
    if value is None:
        return "-"
    try:
        v = json.loads(value)
    except json.JSONDecodeError:
        return value
    if key == "workers.stragglers" and isinstance(v, list):
        return "+".join(f"w{x.get('worker')}x{x.get('slowdown'):g}" if isinstance(x, dict) and isinstance(x.get("slowdown"), (int, float))
                        else str(x) for x in v) or "none"
    if key == "workers.speed" and isinstance(v, dict) and "kind" in v:
        return f"{v['kind']}(" + ",".join(f"{k}={v[k]}" for k in sorted(v) if k != "kind") + ")"
    if isinstance(v, dict):
        return ",".join(f"{k}={v[k]}" for k in sorted(v))
    if isinstance(v, list):
        return "[" + ";".join(_short_value(json.dumps(x)) for x in v) + "]"
    return str(v)


def _clashing(labels: list[list[str]]) -> list[int]:
    joined = [" ".join(lab) for lab in labels]
    return [i for i, j in enumerate(joined) if joined.count(j) > 1]


# -- tables the figures draw ------------------------------------------------------------------

def _common(e: RunEntry) -> dict[str, Any]:
    return {"label": e.label, "staleness": f"s={staleness_text(e.s)}", "s": e.s, "P": e.P,
            "problem": e.problem, "backend": e.backend}


def target(e: RunEntry) -> float:
    """The run's target objective (``[run] target``), NaN when it has none."""
    t = _num(e.config.get("run", {}).get("target"))
    return math.nan if t is None else t


def evals_long(entries: Iterable[RunEntry]) -> pd.DataFrame:
    """Objective against time and updates, one block of rows per run (runs without an objective skipped),
    with the run's target objective (NaN when it has none)."""
    frames = []
    for e in entries:
        ev = e.evals()
        if ev is None or "objective" not in ev.columns:
            continue
        cols = [c for c in ("time", "updates", "clock", "objective") if c in ev.columns]
        df = ev[cols].copy()
        for k, v in _common(e).items():
            df[k] = v
        df["target"] = target(e)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["label", "staleness", "s", "P", "problem", "backend", "time", "updates", "objective",
                                     "target"])
    return pd.concat(frames, ignore_index=True)


def layers_long(entries: Iterable[RunEntry]) -> pd.DataFrame:
    """Per-layer gradient and weight norms against time (evals ``grad_norm_<layer>``, ``weight_norm_<layer>``)."""
    frames = []
    for e in entries:
        ev = e.evals()
        if ev is None:
            continue
        layers = [c[len("grad_norm_"):] for c in ev.columns if c.startswith("grad_norm_")]
        layers = [name for name in layers if f"weight_norm_{name}" in ev.columns]
        for name in layers:
            df = pd.DataFrame({
                "time": ev["time"], "updates": ev.get("updates", pd.Series(np.nan, index=ev.index)),
                "layer": name, "grad_norm": ev[f"grad_norm_{name}"], "weight_norm": ev[f"weight_norm_{name}"],
            })
            for k, v in _common(e).items():
                df[k] = v
            frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["label", "staleness", "s", "P", "problem", "backend", "time", "updates",
                                     "layer", "grad_norm", "weight_norm"])
    return pd.concat(frames, ignore_index=True)


def staleness_counts(entries: Iterable[RunEntry]) -> pd.DataFrame:
    """Histogram rows: label, measure ("clock" or "update"), value, count, fraction.

    Clock staleness comes from trace.csv (or run.json's staleness_histogram when there is no
    trace); update staleness from trace.csv only.
    """
    rows: list[dict[str, Any]] = []
    for e in entries:
        tr = e.trace()
        for measure, column in (("clock", "staleness"), ("update", "update_staleness")):
            counts: pd.Series | None = None
            if tr is not None and column in tr.columns:
                counts = tr[column].dropna().astype(int).value_counts().sort_index()
            elif measure == "clock" and e.summary.get("staleness_histogram"):
                hist = e.summary["staleness_histogram"]
                counts = pd.Series(hist, index=range(len(hist)))
            if counts is None or counts.sum() == 0:
                continue
            total = float(counts.sum())
            for value, count in counts.items():
                rows.append({**_common(e), "measure": measure, "value": int(value), "count": int(count),
                             "fraction": count / total})
    return pd.DataFrame(rows, columns=["label", "staleness", "s", "P", "problem", "backend", "measure", "value",
                                       "count", "fraction"])


def time_split(entries: Iterable[RunEntry]) -> pd.DataFrame:
    """Per worker: compute, waiting at the gate, communication (seconds, summed over iterations), mean compute.

    communication = sum(commit_time - start_time - compute_time) + sum(start_time - read_time):
    everything that is neither compute nor gate wait (pull, push, server queue).  Runs without a
    trace fall back to run.json's per_worker totals (communication = finish - compute - wait).
    """
    rows: list[dict[str, Any]] = []
    for e in entries:
        tr = e.trace()
        if tr is not None and {"worker", "commit_time", "start_time", "wait_time", "compute_time"} <= set(tr.columns):
            push = (tr["commit_time"] - tr["start_time"] - tr["compute_time"]).clip(lower=0)
            pull = (tr["start_time"] - tr["read_time"]).clip(lower=0) if "read_time" in tr.columns else 0.0
            df = pd.DataFrame({"worker": tr["worker"].astype(int), "compute": tr["compute_time"],
                               "wait": tr["wait_time"].clip(lower=0), "communication": push + pull})
            g = df.groupby("worker").agg(compute=("compute", "sum"), wait=("wait", "sum"),
                                         communication=("communication", "sum"), iterations=("compute", "size"))
            g = g.reindex(range(e.P), fill_value=0.0)
            for p, r in g.iterrows():
                n = max(int(r["iterations"]), 1)
                rows.append({**_common(e), "worker": int(p), "compute": float(r["compute"]), "wait": float(r["wait"]),
                             "communication": float(r["communication"]), "mean_compute": float(r["compute"]) / n})
            continue
        pw = e.summary.get("per_worker") or {}
        comp, wait, fin = pw.get("compute"), pw.get("wait"), pw.get("finish")
        if not comp or not wait:
            continue
        n = max(int(e.summary.get("clocks") or e.clocks or 1), 1)
        for p, (c, w) in enumerate(zip(comp, wait)):
            f = fin[p] if fin and p < len(fin) else c + w
            rows.append({**_common(e), "worker": p, "compute": float(c), "wait": float(w),
                         "communication": max(float(f) - float(c) - float(w), 0.0), "mean_compute": float(c) / n})
    return pd.DataFrame(rows, columns=["label", "staleness", "s", "P", "problem", "backend", "worker", "compute",
                                       "wait", "communication", "mean_compute"])


def stragglers(split: pd.DataFrame) -> dict[str, list[tuple[int, float]]]:
    """label -> [(worker, mean compute / median worker's mean compute)] for workers above STRAGGLER_FACTOR."""
    out: dict[str, list[tuple[int, float]]] = {}
    for label, g in split.groupby("label", sort=False):
        med = float(np.median(g["mean_compute"]))
        if med <= 0 or len(g) < 2:
            out[label] = []
            continue
        ratio = g["mean_compute"] / med
        out[label] = [(int(w), float(r)) for w, r in zip(g["worker"], ratio) if r > STRAGGLER_FACTOR]
    return out


# -- speedup ------------------------------------------------------------------------------------------

_NOT_GROUPED = ("workers.count", "run.seed", "run.target", "run.eval_every", "real.")


def experiment_key(e: RunEntry, drop: tuple[str, ...] = _NOT_GROUPED) -> str:
    """Everything in the config (and the backend) except the keys in ``drop`` (prefixes end with '.')."""
    flat = {"backend": e.backend, **_flat(e.config)}
    keep = {k: v for k, v in flat.items() if not any(k == d or (d.endswith(".") and k.startswith(d)) for d in drop)}
    return json.dumps(keep, sort_keys=True)


def speedup_table(entries: list[RunEntry], times: dict[str, float | None] | None = None) -> pd.DataFrame:
    """speedup(P) = time to target of the P = 1 run / of the P run, per experiment (all config but P and seed).

    ``times`` maps labels to a time to target (default: run.json's summary time_to_target).  Seeds
    of one cell are combined by their median.  One worker never waits and never reads stale
    values, so when an experiment has no P = 1 run of its own staleness, P = 1 runs of the same
    experiment at another staleness are its reference.  Rows (only cells with a finite speedup):
    group, problem, backend, staleness, s, policy, P, time_to_target, speedup.
    """
    if times is None:
        times = {e.label: _num(e.summary.get("time_to_target")) for e in entries}

    def reached(e: RunEntry) -> float | None:
        t = times.get(e.label)
        return t if t is not None and math.isfinite(t) and t > 0 else None

    groups: dict[str, list[RunEntry]] = {}
    serial: dict[str, list[float]] = {}
    for e in entries:
        groups.setdefault(experiment_key(e), []).append(e)
        t = reached(e)
        if e.P == 1 and t is not None:
            serial.setdefault(experiment_key(e, (*_NOT_GROUPED, "consistency.")), []).append(t)
    rows = []
    for key, members in groups.items():
        if {e.P for e in members} == {1}:
            continue
        cells: dict[int, list[float]] = {}
        for e in members:
            t = reached(e)
            if t is not None:
                cells.setdefault(e.P, []).append(t)
        ref_times = cells.get(1) or serial.get(experiment_key(members[0], (*_NOT_GROUPED, "consistency.")), [])
        if not ref_times:
            continue
        ref = float(np.median(ref_times))
        cells.setdefault(1, ref_times)
        if set(cells) == {1}:
            continue
        first = members[0]
        for P in sorted(cells):
            t = float(np.median(cells[P]))
            rows.append({"group": key, "problem": first.problem, "backend": first.backend,
                         "staleness": f"s={staleness_text(first.s)}", "s": first.s, "policy": first.policy,
                         "P": P, "time_to_target": t, "speedup": ref / t})
    rows.sort(key=lambda r: (r["problem"], r["backend"], r["s"], r["policy"], r["group"], r["P"]))
    return pd.DataFrame(rows, columns=["group", "problem", "backend", "staleness", "s", "policy", "P", "time_to_target",
                                       "speedup"])


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x


# -- predicted against measured -----------------------------------------------------------------

def pair_sim_real(entries: list[RunEntry], chosen: list[tuple[str | Path, str | Path]] | None = None
                  ) -> list[tuple[RunEntry, RunEntry]]:
    """(sim, real) pairs: the prediction of each real run, by :func:`sspsim.comparison.pair_runs` (the
    rule ``compare`` uses: same experiment, a calibrated simulation first), or the pairs ``chosen``
    (``--pair SIM REAL``), each checked: both among ``entries``, SIM simulated, REAL real, complete,
    and of the same experiment.  InputError (field ``--pair``) names the first bad one.
    """
    if chosen is None:
        by_run = {id(e.run): e for e in entries}
        sims = [e.run for e in entries if e.backend == "sim"]
        reals = [e.run for e in entries if e.backend == "real"]
        return [(by_run[id(s)], by_run[id(r)]) for s, r in pair_runs(sims, reals)]
    by_path = {e.path.resolve(): e for e in entries}
    pairs = []
    for sim_dir, real_dir in chosen:
        found = []
        for d, role, backend in ((sim_dir, "SIM", "sim"), (real_dir, "REAL", "real")):
            e = by_path.get(Path(d).resolve())
            if e is None:
                raise InputError("--pair", str(d), f"{role} is not one of the report's runs (give it as a DIR, "
                                 "or as a run inside a sweep DIR)")
            if e.backend != backend:
                raise InputError("--pair", str(d), f"{role} must be a run of backend {backend!r}; this one is "
                                 f"{e.backend!r}")
            if not e.complete:
                raise InputError("--pair", str(d), f"{role} is not a complete run (status {e.meta.get('status')!r})")
            found.append(e)
        differ = mismatch(found[0].config, found[1].config)
        if differ is not None:
            raise InputError("--pair", f"{sim_dir} {real_dir}", f"{differ[0]} differs ({differ[1]}); SIM and REAL "
                             "must describe the same experiment")
        pairs.append((found[0], found[1]))
    return pairs


# -- formatting ---------------------------------------------------------------------------------------

def fmt(v: Any, digits: int = 4) -> str:
    """A number for a table: 4 significant digits, "inf", or an em dash for nothing."""
    if v is None:
        return "\u2014"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        x = float(v)
        if math.isnan(x):
            return "\u2014"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.{digits}g}"
    return str(v)
