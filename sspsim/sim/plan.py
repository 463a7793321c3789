"""``sspsim plan``: which staleness and how many workers, predicted from a (calibrated) config.

A sweep over staleness x workers (x read policy) x seeds runs in a process pool or on Ray; for each
configuration the median time to the target objective over seeds is the prediction and the
10th-90th percentiles its spread.  The recommendation is the smallest median.  The diagnosis
says *why* staleness helps or not, from the sweep itself and the config's speed model:

* **transient variability** (random slowdowns, heavy-tailed times): a finite s absorbs it, so
  time per clock falls from s = 0 to small s;
* **a persistently slow worker**: every finite s is held to its pace (clocks stay within s + 1),
  so only ASP, backup workers, or rebalancing the slow worker's share help;
* **homogeneous**: little to gain over BSP.

Beside SSP the plan can run the round-based alternatives (DESIGN §Consistency models), each
over the same seeds and worker counts: backup workers (``ksync`` with K = P - b, Chen et al.
2016), K-batch-sync and local SGD.  With a persistent straggler the diagnosis then states what
backup workers gain over the best SSP setting, as a ratio of median times to target.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sspsim.config import Config
from sspsim.rundir import jsonable, read_run
from sspsim.sim.executors import Executor
from sspsim.sim.sweep import expand_grid, run_sweep

__all__ = ["ALTERNATIVES", "Alternative", "Plan", "PlanPoint", "diagnose", "plan"]


ALTERNATIVES = ("backup", "kbatch_sync", "local_sgd")


@dataclass(frozen=True)
class Alternative:
    """A round-based model the plan runs beside SSP: ``backup`` b workers (ksync, K = P - b),
    ``kbatch_sync`` with K = value, or ``local_sgd`` with period = value."""

    kind: str
    value: int

    def sets(self, workers: int) -> list[str] | None:
        """The overrides of this alternative at P = ``workers`` (None where it does not exist: b >= P)."""
        if self.kind == "backup":
            if self.value >= workers:
                return None
            return ['consistency.model="ksync"', f"consistency.k={workers - self.value}"]
        if self.kind == "kbatch_sync":
            return ['consistency.model="kbatch_sync"', f"consistency.k={self.value}"]
        return ['consistency.model="local_sgd"', f"consistency.period={self.value}"]

    @property
    def name(self) -> str:
        return {"backup": "backup", "kbatch_sync": "kbatch", "local_sgd": "local"}[self.kind] + str(self.value)


@dataclass
class PlanPoint:
    """One configuration of the plan, over its seeds."""

    label: str
    settings: dict[str, str]
    runs: list[str]
    time_to_target: list[float]  # inf where the target was not reached
    time_per_clock: list[float]
    wait_fraction: list[float]
    mean_staleness: list[float]

    @property
    def median(self) -> float:
        return float(np.percentile(np.asarray(self.time_to_target), 50, method="nearest"))

    @property
    def spread(self) -> tuple[float, float]:
        values = np.asarray(self.time_to_target)  # nearest rank: no interpolation between inf values
        return float(np.percentile(values, 10, method="nearest")), float(np.percentile(values, 90, method="nearest"))

    @property
    def reached(self) -> float:
        return float(np.mean(np.isfinite(self.time_to_target)))

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.spread
        return {"label": self.label, "settings": self.settings, "runs": self.runs, "median_time_to_target": self.median,
                "p10": lo, "p90": hi, "reached": self.reached,
                "time_per_clock": float(np.median(self.time_per_clock)), "wait_fraction": float(np.median(self.wait_fraction)),
                "mean_staleness": float(np.median(self.mean_staleness))}


@dataclass
class Plan:
    points: list[PlanPoint]
    target: float
    diagnosis: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> PlanPoint | None:
        reachable = [p for p in self.points if math.isfinite(p.median)]
        return min(reachable, key=lambda p: p.median) if reachable else None

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"format": "sspsim-plan/1", "target": self.target, "best": None if best is None else best.label,
                "points": [p.to_dict() for p in self.points], "diagnosis": self.diagnosis}


def plan(
    raw: Mapping[str, Any],
    base_dir: Path,
    out: Path,
    *,
    axes: dict[str, list[str]],
    seeds: int,
    target: float | None = None,
    jobs: int = 1,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
    alternatives: tuple[Alternative, ...] = (),
) -> Plan:
    """Run the plan's sweep into ``out`` and summarise it (also written to ``out/plan.json``).

    ``executor`` runs the sweep (default: a local pool of ``jobs`` processes); see :func:`run_sweep`.
    ``axes`` are SSP's (staleness, workers, read policy); each of ``alternatives`` runs at every
    worker count of the plan, over the same seeds.
    """
    grids = [f"{key}={','.join(values)}" for key, values in axes.items()]
    seed_grid = "run.seed=" + ",".join(str(s) for s in range(seeds))
    grids.append(seed_grid)
    overrides = [] if target is None else [f"run.target={target}"]
    points = expand_grid(raw, base_dir, grids, [*overrides, 'consistency.model="ssp"'])
    counts = axes.get("workers.count") or [str(points[0].config.workers.count)]
    variants = []
    for alt in alternatives:
        for count in counts:
            sets = alt.sets(int(count))
            if sets is not None:
                variants.append((f"{alt.name}_P{count}", [f"workers.count={count}", *sets]))
    if variants:
        points += expand_grid(raw, base_dir, [seed_grid], overrides, variants=variants)
    if points[0].config.run.target is None:
        from sspsim.errors import MISSING, InputError

        raise InputError("run.target", MISSING, "plan ranks configurations by time to a target objective: set run.target or --target")
    rows = run_sweep(points, out, jobs=jobs, executor=executor, force=force, progress=progress)
    groups: dict[str, PlanPoint] = {}
    for point, row in zip(points, rows):
        settings = {s.split("=", 1)[0]: s.split("=", 1)[1] for s in point.overrides if not s.startswith("run.seed=")}
        label = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in settings.items())
        g = groups.setdefault(label, PlanPoint(label, settings, [], [], [], [], []))
        g.runs.append(row["path"])
        ttt = row.get("time_to_target")
        g.time_to_target.append(math.inf if ttt is None else float(ttt))
        g.time_per_clock.append(float(row["time_per_clock"]))
        g.wait_fraction.append(float(row["wait_fraction"]))
        g.mean_staleness.append(float(row["mean_staleness"]))
    result = Plan(list(groups.values()), float(points[0].config.run.target), {})
    result.diagnosis = diagnose(points[0].config, result, out)
    (Path(out) / "plan.json").write_text(json.dumps(jsonable(result.to_dict()), indent=2) + "\n")
    return result


def diagnose(config: Config, result: Plan, out: Path | None = None) -> dict[str, Any]:
    """Transient variability, a persistent straggler, or neither, measured on the plan's own runs.

    Time per clock at s = 0 against the best finite s says how much bounded staleness absorbs.
    An ASP run (if the plan has one) gives every worker's own pace, since nobody waits: a
    worker much slower than the median for the whole run is a persistent straggler, whose pace
    every finite s must follow.
    """
    by_s: dict[str, list[float]] = {}
    ttt: dict[str, list[float]] = {}
    ssp = [p for p in result.points if "consistency.model" not in p.settings]
    for p in ssp:
        s = str(p.settings.get("consistency.staleness", "")).strip('"')
        by_s.setdefault(s, []).extend(p.time_per_clock)
        ttt.setdefault(s, []).extend(p.time_to_target)
    tpc = {s: float(np.median(v)) for s, v in by_s.items()}
    finite = sorted((int(s), t) for s, t in tpc.items() if s.isdigit())
    gain = finite[0][1] / min(t for _, t in finite) if len(finite) >= 2 and finite[0][0] == 0 else None
    paces = None
    asp = next((p for p in ssp if str(p.settings.get("consistency.staleness", "")).strip('"') == "inf"), None)
    if asp is not None and out is not None:
        summary = read_run(Path(out) / asp.runs[0]).summary
        paces = np.asarray(summary["per_worker"]["finish"]) / summary["clocks"]
    lag = float(paces.max() / np.median(paces)) if paces is not None else max((s.slowdown for s in config.workers.stragglers), default=1.0)
    facts = {"slowest_over_median_pace": lag, "speedup_finite_s_over_bsp": gain,
             "time_per_clock": tpc, "transient_slowdowns": config.workers.transient is not None}
    notes = []
    backup = _backup_gain(result, ssp)
    if backup is not None:
        facts["backup_workers"] = backup
    if lag >= 1.5:
        best_finite = min((float(np.median(v)) for s, v in ttt.items() if s.isdigit()), default=math.inf)
        asp_t = float(np.median(ttt["inf"])) if "inf" in ttt else None
        notes.append(
            f"the slowest worker runs {lag:.2f}x slower than the median for the whole run, and "
            "every finite s is held to its pace; ASP lets the others run on"
            + (f" (time to target {asp_t:.4g} vs {best_finite:.4g} at the best finite s)" if asp_t is not None else "")
            + ", and so would backup workers or rebalancing (a smaller batch or share for the slow worker)"
        )
        if backup is not None:
            notes.append(
                f"backup workers ({backup['label']}) reach the target in {backup['median_time_to_target']:.4g} vs "
                f"{backup['best_finite_s_time_to_target']:.4g} at the best finite s ({backup['best_finite_s']}), "
                f"{backup['speedup_over_best_finite_s']:.2f}x faster, dropping {backup['dropped_fraction']:.0%} of "
                f"the gradients ({backup['speedup_over_best_ssp']:.2f}x against the best SSP setting, {backup['best_ssp']})"
            )
    if gain is not None and gain >= 1.1:
        notes.append(f"speeds vary from iteration to iteration, and a finite staleness absorbs it ({gain:.2f}x faster per "
                     "clock than BSP) while the SSP guarantees hold")
    if lag >= 1.5 and (gain is None or gain < 1.1):
        kind = "persistent straggler"
    elif gain is not None and gain >= 1.1:
        kind = "transient variability" + (" and a persistent straggler" if lag >= 1.5 else "")
    else:
        kind = "homogeneous"
        notes.append("workers run at similar, steady speeds: BSP loses little and staleness gains little")
    return {"kind": kind, "advice": "; ".join(notes), **facts}


def _backup_gain(result: Plan, ssp: list[PlanPoint]) -> dict[str, Any] | None:
    """The best backup-worker (ksync) point against the best finite-s SSP point (and the best SSP
    point, ASP included), by median time to target; speedup = SSP's median / backup's."""
    backups = [p for p in result.points if p.settings.get("consistency.model", "").strip('"') == "ksync"]
    finite = [p for p in ssp if str(p.settings.get("consistency.staleness", "0")).strip('"') != "inf"]
    if not backups or not finite:
        return None
    best = min(backups, key=lambda p: p.median)
    best_finite = min(finite, key=lambda p: p.median)
    best_ssp = min(ssp, key=lambda p: p.median)
    count = int(best.settings["workers.count"])
    k = int(best.settings["consistency.k"])

    def speedup(other: PlanPoint) -> float:
        if not math.isfinite(best.median):
            return 0.0
        return other.median / best.median

    return {"label": best.label, "median_time_to_target": best.median,
            "best_finite_s": best_finite.label, "best_finite_s_time_to_target": best_finite.median,
            "speedup_over_best_finite_s": speedup(best_finite),
            "best_ssp": best_ssp.label, "best_ssp_time_to_target": best_ssp.median,
            "speedup_over_best_ssp": speedup(best_ssp),
            "time_per_round": float(np.median(best.time_per_clock)),
            "best_finite_s_time_per_clock": float(np.median(best_finite.time_per_clock)),
            "dropped_fraction": (count - k) / count}
