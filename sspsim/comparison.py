"""Predicted against measured: a simulated run beside a real run of the same config.

Metrics (each from the runs' ``run.json`` summaries): mean iteration time, fraction of time
waiting at the gate, time to the target objective and throughput are the **timing** metrics;
mean staleness (clocks) and the final objective follow from timing only through the order of
reads and commits.  The error of each is ``|predicted - measured| / |measured|``.

The headline is the **largest timing error**: one timing metric far off is a wrong prediction,
however well the rest match.  A metric that is **equal by construction** (a function of the
config alone, whatever the timing) says nothing about fidelity, so it is listed apart and enters
no summary figure:

* mean staleness when reads are ``lazy`` (they contain exactly the guarantee, so staleness is
  ``min(s, c - 1)``), when s = 0 (a read for clock c sees every clock-(c-1) update and none of its
  own clock c), or with one worker;
* the final objective when reads are ``lazy`` and steps do not depend on update staleness (each
  read's content, and so each update, is then fixed by the config; the sum of updates does not
  depend on commit order), or with one worker.

Several real runs of one config (``compare SIM REAL REAL REAL``) are compared through the
**median** of each metric over them, with their **spread** ``(max - min) / median`` beside it: a
single real run on a busy machine varies by tens of percent (start-up, CPU contention), and a
prediction cannot be judged finer than the real runs agree with each other.

The geometric mean of the non-constructive errors (floored at 0.1 %, the way ASTRA-sim and Echo
report fidelity) is kept for continuity, but it is not the headline: a few exact metrics pull it
down while a timing metric is far off.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sspsim.errors import InputError
from sspsim.rundir import Run, read_run

__all__ = ["EXACT_TITLE", "EXPERIMENT_KEYS", "METRICS", "TIMING_METRICS", "Comparison", "Metric", "by_construction", "calibrated",
           "compare_runs", "error_text", "mismatch", "pair_runs"]

METRICS: tuple[tuple[str, str], ...] = (
    ("mean_iteration_time", "mean iteration time (s)"),
    ("wait_fraction", "fraction of time waiting at the gate"),
    ("time_to_target", "time to the target objective (s)"),
    ("throughput", "throughput (iterations/s)"),
    ("mean_staleness", "mean staleness (clocks)"),
    ("final_objective", "final objective"),
)
TIMING_METRICS = frozenset({"mean_iteration_time", "wait_fraction", "time_to_target", "throughput"})
ERROR_FLOOR = 1e-3
EXPERIMENT_KEYS: tuple[tuple[str, str], ...] = (
    ("workers", "count"), ("consistency", "staleness"), ("consistency", "read_policy"), ("run", "clocks"),
    ("problem", "kind"),
)
"""The config keys a prediction and its measurement must share: they describe the same experiment."""
EXACT_TITLE = "equal by construction (the config fixes them whatever the timing; not a test of fidelity)"
"""The heading of the metrics listed apart (``compare`` and the report print it)."""


def mismatch(simulated: dict[str, Any], measured: dict[str, Any]) -> tuple[str, str] | None:
    """The first of :data:`EXPERIMENT_KEYS` on which two resolved configs differ, as ("section.key",
    "a vs b"); None when they describe the same experiment.  A key absent from ``simulated`` is not compared."""
    for section, key in EXPERIMENT_KEYS:
        mine = simulated.get(section) or {}
        a, b = mine.get(key), (measured.get(section) or {}).get(key)
        if a != b and key in mine:
            return f"{section}.{key}", f"{a} vs {b}"
    return None


def calibrated(config: dict[str, Any]) -> bool:
    """Was ``config`` written by ``sspsim calibrate``?  Its ``[calibration]`` table says so."""
    return bool(config.get("calibration"))


def pair_runs(simulated: list[Run], measured: list[Run]) -> list[tuple[Run, Run]]:
    """The prediction of each measured run: (sim, real) pairs, one per measured run that has one.

    A candidate is a simulated run of the same experiment (:func:`mismatch` is None).  Among
    candidates, a calibrated simulation (:func:`calibrated`) comes first, then one with the same
    seed, then the first given: the uncalibrated simulation of a config is not its prediction once
    ``calibrate`` has measured the machine.
    """
    pairs = []
    for real in measured:
        theirs = real.meta.get("config") or {}
        same = [s for s in simulated if mismatch(s.meta.get("config") or {}, theirs) is None]
        if not same:
            continue
        seed = (theirs.get("run") or {}).get("seed")
        best = min(same, key=lambda s: (not calibrated(s.meta.get("config") or {}),
                                        ((s.meta.get("config") or {}).get("run") or {}).get("seed") != seed))
        pairs.append((best, real))
    return pairs


def error_text(error: float | None) -> str | None:
    """A relative error as ``compare`` prints it ("5.1 %"), None when there is none."""
    return None if error is None else f"{100 * error:.1f} %"


def by_construction(config: dict[str, Any]) -> frozenset[str]:
    """Metrics of ``config`` (a resolved config table) that equal their prediction whatever the timing."""
    consistency = config.get("consistency") or {}
    workers = int((config.get("workers") or {}).get("count", 2))
    lazy = consistency.get("read_policy") in ("lazy", "adversarial")
    s = consistency.get("staleness")
    staleness_aware = bool((config.get("optimizer") or {}).get("staleness_aware", False))
    out = set()
    if lazy or s == 0 or workers == 1:
        out.add("mean_staleness")
    if (lazy and not staleness_aware) or workers == 1:
        out.add("final_objective")
    return frozenset(out)


@dataclass(frozen=True)
class Metric:
    name: str
    predicted: float | None
    measured: float | None
    by_construction: bool = False
    runs: tuple[float | None, ...] = ()  # each real run's value, when several were compared (measured is their median)

    @property
    def spread(self) -> float | None:
        """``(max - min) / |median|`` over the real runs (None for fewer than two)."""
        values = [v for v in self.runs if v is not None]
        if len(values) < 2 or statistics.median(values) == 0:
            return None
        return (max(values) - min(values)) / abs(statistics.median(values))

    @property
    def timing(self) -> bool:
        return self.name in TIMING_METRICS

    @property
    def error(self) -> float | None:
        """Relative error |predicted - measured| / |measured| (None when either is missing)."""
        if self.predicted is None or self.measured is None or self.measured == 0:
            return None
        return abs(self.predicted - self.measured) / abs(self.measured)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "predicted": self.predicted, "measured": self.measured,
                               "error": self.error, "timing": self.timing, "by_construction": self.by_construction}
        if self.runs:
            out.update(runs=list(self.runs), spread=self.spread)
        return out


@dataclass(frozen=True)
class Comparison:
    metrics: tuple[Metric, ...]
    simulated: str
    measured: str  # the (first) real run
    replicates: tuple[str, ...] = ()  # every real run, when several were compared

    @property
    def max_timing_error(self) -> float | None:
        """The headline: the largest error among the timing metrics (None when none could be measured)."""
        errors = [m.error for m in self.metrics if m.timing and not m.by_construction and m.error is not None]
        return max(errors) if errors else None

    @property
    def worst_timing_metric(self) -> str | None:
        timed = [m for m in self.metrics if m.timing and not m.by_construction and m.error is not None]
        return max(timed, key=lambda m: m.error or 0.0).name if timed else None

    @property
    def max_timing_spread(self) -> float | None:
        """The largest spread between the real runs among the timing metrics (None for one real run)."""
        spreads = [m.spread for m in self.metrics if m.timing and not m.by_construction and m.spread is not None]
        return max(spreads) if spreads else None

    @property
    def geomean_error(self) -> float | None:
        """Geometric mean of the errors of the metrics that are not equal by construction (floored at 0.1 %)."""
        errors = [m.error for m in self.metrics if not m.by_construction and m.error is not None]
        if not errors:
            return None
        return math.exp(sum(math.log(max(e, ERROR_FLOOR)) for e in errors) / len(errors))

    @property
    def headline(self) -> str:
        """The headline sentence of ``compare``: the largest timing error and its metric (and, against
        several real runs, how far those differ)."""
        error = self.max_timing_error
        if error is None:
            return "no timing metric could be compared"
        text = f"largest timing error: {error_text(error)} ({dict(METRICS)[self.worst_timing_metric or '']})"
        if self.replicates and self.max_timing_spread is not None:
            text += f"; the real runs differ by up to {error_text(self.max_timing_spread)}"
        return text

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names of :meth:`rows` (a spread column against several real runs)."""
        return ("metric", "predicted", "measured", "error") + (("real spread",) if self.replicates else ())

    @property
    def measured_label(self) -> str:
        """What the measured column holds: the real run's path, or the median of several."""
        return f"the median of {len(self.replicates)} real runs" if self.replicates else self.measured

    def rows(self, *, by_construction: bool = False) -> list[tuple[Any, ...]]:
        """The rows ``compare`` prints (see :attr:`columns`): metric label, predicted, measured, error
        text (and the real runs' spread), either the metrics that test the prediction or
        (``by_construction``) those equal by construction."""
        labels = dict(METRICS)
        spread = bool(self.replicates)
        return [(labels[m.name], m.predicted, m.measured, error_text(m.error))
                + ((error_text(m.spread),) if spread else ())
                for m in self.metrics if m.by_construction == by_construction]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metrics": [m.to_dict() for m in self.metrics], "max_timing_error": self.max_timing_error,
               "worst_timing_metric": self.worst_timing_metric, "geomean_error": self.geomean_error,
               "simulated": self.simulated, "measured": self.measured}
        if self.replicates:
            out.update(replicates=list(self.replicates), max_timing_spread=self.max_timing_spread)
        return out


def _run(x: Run | str | Path) -> Run:
    return x if isinstance(x, Run) else read_run(x)


def compare_runs(simulated: Run | str | Path, measured: Run | str | Path, *more: Run | str | Path) -> Comparison:
    """Compare a prediction (usually ``backend = "sim"``) with a measurement (usually ``"real"``).

    With ``more`` real runs of the same experiment, each metric's measured value is the median
    over all of them, and its spread between them is reported."""
    sim = _run(simulated)
    reals = [_run(m) for m in (measured, *more)]
    for run, what in ((sim, "SIM_DIR"), *((r, "REAL_DIR") for r in reals)):
        if not run.complete:
            raise InputError(what, str(run.path), f"is not a complete run (status {run.meta.get('status')!r})")
    mine = sim.meta["config"]
    for real in reals:
        differ = mismatch(mine, real.meta["config"])
        if differ is not None:
            raise InputError(*differ, "the two runs must describe the same experiment")
    exact = by_construction(reals[0].meta["config"])
    if not more:
        metrics = tuple(Metric(name, _get(sim, name), _get(reals[0], name), name in exact) for name, _ in METRICS)
        return Comparison(metrics, str(sim.path), str(reals[0].path))
    out = []
    for name, _ in METRICS:
        runs = tuple(_get(r, name) for r in reals)
        present = [v for v in runs if v is not None]
        out.append(Metric(name, _get(sim, name), statistics.median(present) if present else None, name in exact, runs))
    return Comparison(tuple(out), str(sim.path), str(reals[0].path), tuple(str(r.path) for r in reals))


def _get(run: Run, name: str) -> float | None:
    value = run.summary.get(name)
    return None if value is None else float(value)
