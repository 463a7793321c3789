"""Predicted against measured: a simulated run beside a real run of the same config.

Metrics (each from the runs' ``run.json`` summaries): mean iteration time, fraction of time
waiting at the gate, mean staleness (clocks), time to the target objective, final objective.
The error of each is ``|predicted - measured| / |measured|``; the summary figure is their
geometric mean (the way ASTRA-sim and Echo report fidelity, reference/anchors.md), with each
error floored at 0.1 % so that one exact metric does not make the mean zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sspsim.errors import InputError
from sspsim.rundir import Run, read_run

__all__ = ["METRICS", "Comparison", "Metric", "compare_runs"]

METRICS: tuple[tuple[str, str], ...] = (
    ("mean_iteration_time", "mean iteration time (s)"),
    ("wait_fraction", "fraction of time waiting at the gate"),
    ("mean_staleness", "mean staleness (clocks)"),
    ("time_to_target", "time to the target objective (s)"),
    ("final_objective", "final objective"),
)
ERROR_FLOOR = 1e-3


@dataclass(frozen=True)
class Metric:
    name: str
    predicted: float | None
    measured: float | None

    @property
    def error(self) -> float | None:
        """Relative error |predicted - measured| / |measured| (None when either is missing)."""
        if self.predicted is None or self.measured is None or self.measured == 0:
            return None
        return abs(self.predicted - self.measured) / abs(self.measured)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "predicted": self.predicted, "measured": self.measured, "error": self.error}


@dataclass(frozen=True)
class Comparison:
    metrics: tuple[Metric, ...]
    simulated: str
    measured: str

    @property
    def geomean_error(self) -> float | None:
        errors = [m.error for m in self.metrics if m.error is not None]
        if not errors:
            return None
        return math.exp(sum(math.log(max(e, ERROR_FLOOR)) for e in errors) / len(errors))

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": [m.to_dict() for m in self.metrics], "geomean_error": self.geomean_error,
                "simulated": self.simulated, "measured": self.measured}


def _run(x: Run | str | Path) -> Run:
    return x if isinstance(x, Run) else read_run(x)


def compare_runs(simulated: Run | str | Path, measured: Run | str | Path) -> Comparison:
    """Compare a prediction (usually ``backend = "sim"``) with a measurement (usually ``"real"``)."""
    sim, real = _run(simulated), _run(measured)
    for run, what in ((sim, "SIM_DIR"), (real, "REAL_DIR")):
        if not run.complete:
            raise InputError(what, str(run.path), f"is not a complete run (status {run.meta.get('status')!r})")
    mine, theirs = sim.meta["config"], real.meta["config"]
    for section in ("workers", "consistency", "run"):
        for key in ("count", "staleness", "read_policy", "clocks"):
            a, b = mine.get(section, {}).get(key), theirs.get(section, {}).get(key)
            if a != b and key in mine.get(section, {}):
                raise InputError(f"{section}.{key}", f"{a} vs {b}", "the two runs must describe the same experiment")
    metrics = tuple(Metric(name, _get(sim, name), _get(real, name)) for name, _ in METRICS)
    return Comparison(metrics, str(sim.path), str(real.path))


def _get(run: Run, name: str) -> float | None:
    value = run.summary.get(name)
    return None if value is None else float(value)
