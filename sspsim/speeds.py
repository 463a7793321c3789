"""Worker speeds: how long one iteration's computation takes, in seconds.

A speed model is a small frozen value with ``draw(rng, n)``.  :func:`compute_times` turns a
model, persistent stragglers and transient slowdowns into the (workers x clocks) matrix of
compute times that both simulator engines consume, so the event simulator and the batch
schedule see *identical* draws.

Randomness: one seed per run, one independent stream per worker
(``SeedSequence(seed, spawn_key=(stream, worker))``), so adding a worker does not change the
other workers' draws, and the transient slowdowns have streams of their own so switching
them on does not change the base times.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from sspsim.errors import MISSING, ConfigError, InputError

__all__ = [
    "Constant",
    "Empirical",
    "Exponential",
    "LogNormal",
    "Pareto",
    "ShiftedExponential",
    "SpeedModel",
    "Straggler",
    "TraceTimes",
    "Transient",
    "Uniform",
    "base_times",
    "compute_time_blocks",
    "compute_times",
    "parse_speed",
    "read_times_csv",
    "slowdown_factors",
    "speed_to_dict",
]

SPEED_STREAM = 0
TRANSIENT_STREAM = 1
COMPUTE_STREAM = 2


@dataclass(frozen=True)
class Constant:
    """Every iteration takes ``value`` seconds."""

    value: float
    kind = "constant"

    @property
    def mean(self) -> float:
        return self.value

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        del rng
        return np.full(n, self.value)


@dataclass(frozen=True)
class Exponential:
    """Exponential times with the given ``mean`` (memoryless: Dutta et al. 2018's main model)."""

    mean: float
    kind = "exponential"

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean, n)


@dataclass(frozen=True)
class ShiftedExponential:
    """``shift + Exp(mean)``: a fixed minimum plus an exponential tail (Dutta et al. 2018)."""

    shift: float
    mean_excess: float
    kind = "shifted_exponential"

    @property
    def mean(self) -> float:
        return self.shift + self.mean_excess

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.shift + rng.exponential(self.mean_excess, n)


@dataclass(frozen=True)
class LogNormal:
    """Log-normal times with the given ``mean`` of the time and ``sigma`` of its logarithm."""

    mean: float
    sigma: float
    kind = "lognormal"

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        mu = math.log(self.mean) - self.sigma**2 / 2.0
        return rng.lognormal(mu, self.sigma, n)


@dataclass(frozen=True)
class Pareto:
    """Pareto (type I) times: minimum ``scale``, tail index ``alpha`` (mean alpha*scale/(alpha-1))."""

    alpha: float
    scale: float
    kind = "pareto"

    @property
    def mean(self) -> float:
        return math.inf if self.alpha <= 1 else self.alpha * self.scale / (self.alpha - 1)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.scale * (1.0 + rng.pareto(self.alpha, n))


@dataclass(frozen=True)
class Uniform:
    """Uniform times on [low, high]."""

    low: float
    high: float
    kind = "uniform"

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2.0

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)


@dataclass(frozen=True)
class Empirical:
    """Times resampled (with replacement) from measured ``samples``: what calibration fits when
    no parametric model fits well."""

    samples: tuple[float, ...]
    kind = "empirical"

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples))

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(np.asarray(self.samples, dtype=float), size=n, replace=True)


@dataclass(frozen=True)
class TraceTimes:
    """Compute times replayed from a CSV: one row per worker, one column per clock, seconds."""

    file: Path
    times: np.ndarray = field(repr=False, compare=False)
    kind = "trace"

    @property
    def mean(self) -> float:
        return float(self.times.mean())

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:  # pragma: no cover - not used
        raise TypeError("trace-driven times are read per worker, not drawn")


SpeedModel: TypeAlias = "Constant | Exponential | ShiftedExponential | LogNormal | Pareto | Uniform | Empirical | TraceTimes"


@dataclass(frozen=True)
class Straggler:
    """Worker ``worker`` is ``slowdown`` times slower for the whole run."""

    worker: int
    slowdown: float


@dataclass(frozen=True)
class Transient:
    """At each iteration, with ``probability``, a worker slows by ``factor`` for ``duration`` iterations.

    Overlapping slowdowns do not compound: an iteration is either slowed (times ``factor``) or not.
    """

    probability: float
    factor: float
    duration: int


def compute_times(
    speed: SpeedModel,
    *,
    workers: int,
    clocks: int,
    seed: int,
    stragglers: tuple[Straggler, ...] = (),
    transient: Transient | None = None,
    compute: SpeedModel | None = None,
) -> np.ndarray:
    """The (workers x clocks) matrix of compute times, seconds.

    Entry ``[p, c - 1]`` is worker p's time for iteration c: the model's draw (or the trace
    value), plus a draw of ``compute`` (the real computation a calibration measured, if any),
    times p's persistent slowdown, times ``factor`` where a transient slowdown is on; that is
    ``(base_times + compute draws) * slowdown_factors``, as the real backend runs it.

    >>> t = compute_times(Exponential(1.0), workers=3, clocks=4, seed=7)
    >>> t.shape
    (3, 4)
    >>> bool((compute_times(Exponential(1.0), workers=2, clocks=4, seed=7) == t[:2]).all())
    True
    """
    times = base_times(speed, workers=workers, clocks=clocks, seed=seed)
    if compute is not None:
        for p in range(workers):
            times[p] += compute.draw(_stream(seed, COMPUTE_STREAM, p), clocks)
    times *= slowdown_factors(workers=workers, clocks=clocks, seed=seed, stragglers=stragglers, transient=transient)
    return times


def compute_time_blocks(
    speed: SpeedModel,
    *,
    workers: int,
    clocks: int,
    seed: int,
    stragglers: tuple[Straggler, ...] = (),
    transient: Transient | None = None,
    compute: SpeedModel | None = None,
    block: int = 256,
) -> Iterator[np.ndarray]:
    """:func:`compute_times` column block by column block: (workers x b) arrays, b <= ``block``.

    The blocks, side by side, are exactly ``compute_times(...)`` (same streams, same draws,
    same float operations), but only one block is in memory at a time.  Each worker's
    generator continues where the previous block stopped, which gives the same numbers as
    one long draw for every model except :class:`Empirical` (its bounded-integer draws depend
    on the request size), which is drawn in one block.
    """
    if isinstance(speed, Empirical) or isinstance(compute, Empirical):
        block = max(clocks, 1)
    block = max(1, block)
    base = None if isinstance(speed, TraceTimes) else [_stream(seed, SPEED_STREAM, p) for p in range(workers)]
    extra = None if compute is None else [_stream(seed, COMPUTE_STREAM, p) for p in range(workers)]
    slow = transient is not None and transient.probability > 0
    marks = [_stream(seed, TRANSIENT_STREAM, p) for p in range(workers)] if slow else None
    tail = np.zeros((workers, 0 if transient is None else max(0, transient.duration - 1)), dtype=bool)
    for lo in range(0, clocks, block):
        b = min(block, clocks - lo)
        if base is None:
            assert isinstance(speed, TraceTimes)
            times = np.array(speed.times[:workers, lo:lo + b], dtype=float)
        else:
            times = np.empty((workers, b))
            for p, rng in enumerate(base):
                times[p] = speed.draw(rng, b)
        if extra is not None:
            assert compute is not None
            for p, rng in enumerate(extra):
                times[p] += compute.draw(rng, b)
        if not stragglers and not slow:
            yield times  # all factors are 1: multiplying by them changes nothing
            continue
        factors = np.ones((workers, b))
        for s in stragglers:
            factors[s.worker] *= s.slowdown
        if marks is not None:
            assert transient is not None
            starts = np.empty((workers, b), dtype=bool)
            for p, rng in enumerate(marks):
                starts[p] = rng.random(b) < transient.probability
            both = np.concatenate([tail, starts], axis=1)  # the previous duration - 1 clocks, then this block
            d, n = transient.duration, both.shape[1]
            running = np.concatenate([np.zeros((workers, d), dtype=np.int64), np.cumsum(both, axis=1)], axis=1)
            started = running[:, d + n - b:] - running[:, n - b:n]  # starts within the last d clocks
            factors[started > 0] *= transient.factor
            tail = both[:, both.shape[1] - tail.shape[1]:]
        times *= factors
        yield times


def base_times(speed: SpeedModel, *, workers: int, clocks: int, seed: int) -> np.ndarray:
    """The speed model's own draws (or the trace's values), before any slowdown."""
    if isinstance(speed, TraceTimes):
        return np.array(speed.times[:workers, :clocks], dtype=float)
    times = np.empty((workers, clocks))
    for p in range(workers):
        times[p] = speed.draw(_stream(seed, SPEED_STREAM, p), clocks)
    return times


def slowdown_factors(
    *, workers: int, clocks: int, seed: int, stragglers: tuple[Straggler, ...] = (), transient: Transient | None = None
) -> np.ndarray:
    """How many times slower each iteration runs: persistent slowdown x transient factor.

    The real backend multiplies its measured computation by this too, so a worker with
    slowdown 3 takes three times as long in both backends.
    """
    factors = np.ones((workers, clocks))
    for s in stragglers:
        factors[s.worker] *= s.slowdown
    if transient is not None and transient.probability > 0:
        kernel = np.ones(transient.duration)
        for p in range(workers):
            starts = _stream(seed, TRANSIENT_STREAM, p).random(clocks) < transient.probability
            slowed = np.convolve(starts, kernel)[:clocks] > 0
            factors[p, slowed] *= transient.factor
    return factors


def _stream(seed: int, stream: int, worker: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, worker)))


# -- parsing ---------------------------------------------------------------------------

_KEYS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "empirical": ("samples",),
    "exponential": ("mean",),
    "shifted_exponential": ("shift", "mean"),
    "lognormal": ("mean", "sigma"),
    "pareto": ("alpha", "scale"),
    "uniform": ("low", "high"),
    "trace": ("file",),
}


def parse_speed(raw: Any, where: str, base_dir: Path) -> SpeedModel:
    """Build a speed model from its config table (``{kind = "exponential", mean = 1.0}``)."""
    if not isinstance(raw, dict):
        raise ConfigError(where, raw, 'must be a table such as { kind = "exponential", mean = 1.0 }')
    kind = raw.get("kind")
    if kind not in _KEYS:
        raise ConfigError(f"{where}.kind", kind, f"must be one of {', '.join(_KEYS)}")
    keys = _KEYS[kind]
    for key in raw:
        if key != "kind" and key not in keys:
            raise ConfigError(f"{where}.{key}", raw[key], f"unknown key for kind {kind!r}; its keys are {', '.join(keys)}")
    for key in keys:
        if key not in raw:
            raise ConfigError(f"{where}.{key}", MISSING, f"required for kind {kind!r}")
    if kind == "trace":
        file = raw["file"]
        if not isinstance(file, str):
            raise ConfigError(f"{where}.file", file, "must be a path string")
        path = (base_dir / file).resolve()
        return TraceTimes(file=path, times=read_times_csv(path, f"{where}.file"))

    def num(key: str, *, positive: bool = True, allow_zero: bool = False) -> float:
        v = raw[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{where}.{key}", v, "must be a finite number")
        if positive and (v < 0 or (v == 0 and not allow_zero)):
            raise ConfigError(f"{where}.{key}", v, "must be >= 0" if allow_zero else "must be > 0")
        return float(v)

    if kind == "empirical":
        samples = raw["samples"]
        if (not isinstance(samples, list) or not samples
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 for v in samples)):
            raise ConfigError(f"{where}.samples", samples, "must be a non-empty list of times >= 0 (seconds)")
        return Empirical(tuple(float(v) for v in samples))
    if kind == "constant":
        return Constant(num("value", allow_zero=True))
    if kind == "exponential":
        return Exponential(num("mean"))
    if kind == "shifted_exponential":
        return ShiftedExponential(num("shift", allow_zero=True), num("mean"))
    if kind == "lognormal":
        return LogNormal(num("mean"), num("sigma", allow_zero=True))
    if kind == "pareto":
        return Pareto(num("alpha"), num("scale"))
    low, high = num("low", allow_zero=True), num("high", allow_zero=True)
    if high < low:
        raise ConfigError(f"{where}.high", high, f"must be >= low = {low}")
    return Uniform(low, high)


def speed_to_dict(speed: SpeedModel) -> dict[str, Any]:
    """The config table of a speed model (inverse of :func:`parse_speed`)."""
    if isinstance(speed, TraceTimes):
        return {"kind": "trace", "file": str(speed.file)}
    if isinstance(speed, ShiftedExponential):
        return {"kind": speed.kind, "shift": speed.shift, "mean": speed.mean_excess}
    if isinstance(speed, Empirical):
        return {"kind": speed.kind, "samples": list(speed.samples)}
    out: dict[str, Any] = {"kind": speed.kind}
    for key in _KEYS[speed.kind]:
        out[key] = getattr(speed, key)
    return out


def read_times_csv(path: Path, where: str) -> np.ndarray:
    """Read a compute-time CSV: numbers only, one row per worker, equal row lengths, times >= 0.

    Lines starting with ``#`` are comments.
    """
    if not path.is_file():
        raise InputError(where, str(path), "file not found")
    rows: list[list[float]] = []
    with path.open(newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            try:
                values = [float(cell) for cell in row]
            except ValueError:
                raise InputError(f"{path.name}:{lineno}", ",".join(row)[:60], "every cell must be a number of seconds") from None
            if not all(math.isfinite(v) and v >= 0 for v in values):
                raise InputError(f"{path.name}:{lineno}", ",".join(row)[:60], "times must be finite and >= 0")
            if rows and len(values) != len(rows[0]):
                raise InputError(
                    f"{path.name}:{lineno}", f"{len(values)} columns", f"every row must have {len(rows[0])} columns like row 1"
                )
            rows.append(values)
    if not rows:
        raise InputError(where, str(path), "the CSV holds no rows")
    return np.array(rows, dtype=float)
