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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from sspsim.errors import MISSING, ConfigError, InputError
from sspsim.fields import Int, Num, Rule, field_key, field_rule, object_schema, ruled_fields, spec
from sspsim.worker_rngs import worker_generators

__all__ = [
    "SPEED_MODELS",
    "Constant",
    "Empirical",
    "Exponential",
    "LogNormal",
    "Pareto",
    "ShiftedExponential",
    "SpeedModel",
    "SpeedRule",
    "Straggler",
    "TraceTimes",
    "Transient",
    "Uniform",
    "base_times",
    "compute_time_blocks",
    "compute_times",
    "parse_speed",
    "read_times_csv",
    "read_times_layout",
    "slowdown_factors",
    "speed_kinds",
    "speed_schema",
    "speed_to_dict",
]

SPEED_STREAM = 0
TRANSIENT_STREAM = 1
COMPUTE_STREAM = 2
MAX_SIGMA = 20.0
"""Largest log-normal sigma: draws of exp(N(mu, sigma^2)) stay finite."""


class SpeedModel:
    """Base of the speed models.  A model owns everything about its kind: the ``kind`` name (and
    ``aliases``) of its config table, the keys (its fields made with :func:`~sspsim.fields.spec`),
    parsing (:meth:`from_table`) and writing (:meth:`to_table`) that table, ``mean``, ``cdf``,
    ``draw`` and the Hypothesis strategy of valid tables (:meth:`tables`).  Defining a subclass
    with a ``kind`` registers it in :data:`SPEED_MODELS`; nothing else names the kinds.
    """

    kind: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            for name in (cls.kind, *cls.aliases):
                if name in SPEED_MODELS and SPEED_MODELS[name].__qualname__ != cls.__qualname__:
                    raise TypeError(f"speed kind {name!r} is taken by {SPEED_MODELS[name].__name__}")
                SPEED_MODELS[name] = cls

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys of the config table besides ``kind``, all required."""
        return tuple(field_key(f) for f in ruled_fields(cls))

    @classmethod
    def from_table(cls, raw: Mapping[str, Any], where: str, base_dir: Path) -> SpeedModel:
        """Build the model from its config table (``kind`` already matched); check every key."""
        keys = cls.keys()
        for key in raw:
            if key != "kind" and key not in keys:
                raise ConfigError(f"{where}.{key}", raw[key], f"unknown key for kind {cls.kind!r}; its keys are {', '.join(keys)}")
        kwargs = {}
        for f in ruled_fields(cls):
            key = field_key(f)
            if key not in raw:
                raise ConfigError(f"{where}.{key}", MISSING, f"required for kind {cls.kind!r}")
            kwargs[f.name] = field_rule(f).parse(f"{where}.{key}", raw[key], base_dir)
        model = cls(**kwargs)
        model.check(where)
        return model

    def to_table(self) -> dict[str, Any]:
        """The config table of the model (inverse of :meth:`from_table`)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in ruled_fields(self):
            out[field_key(f)] = field_rule(f).dump(getattr(self, f.name))
        return out

    def check(self, where: str) -> None:
        """Rules between keys (each key's own rule runs in :meth:`from_table`); ConfigError if broken."""

    def validate(self, where: str) -> SpeedModel:
        """A model built in Python, checked as if read from its table at ``where``."""
        return type(self).from_table(self.to_table(), where, Path("."))

    @classmethod
    def schema(cls) -> dict[str, Any]:
        """JSON Schema of the config table."""
        first = (cls.__doc__ or "").strip().split("\n")[0]
        kind = {"enum": [cls.kind, *cls.aliases], "_required": True}
        return object_schema(cls, first, extra={"kind": kind})

    if TYPE_CHECKING:  # each model has it, as a field or a property

        @property
        def mean(self) -> float:
            """E[X], seconds (inf for a Pareto with alpha <= 1)."""

    @property
    def constant_value(self) -> float | None:
        """The value when the time is deterministic (a point mass), else None."""
        return None

    def cdf(self) -> tuple[Callable[[float], float], float, float]:
        """(F, lo, hi): the CDF of one iteration's time X and its support [lo, hi] (hi may be inf)."""
        raise TypeError(f"no distribution for speed model {self.kind!r}")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent times."""
        raise NotImplementedError

    @classmethod
    def tables(cls, st: Any, max_mean: float) -> Any:
        """Hypothesis strategy (``st`` = ``hypothesis.strategies``) for valid config tables of this
        kind with mean in about [0.05, max_mean].  A model that does not override it (trace,
        empirical) is not drawn by ``sspsim.testing.speed_models``."""
        raise NotImplementedError(f"speed kind {cls.kind!r} draws no tables")


SPEED_MODELS: dict[str, type[SpeedModel]] = {}
"""Every speed kind (and alias) -> its model class; filled by the classes themselves."""

_POSITIVE = Num(0.0, strict=True)
_NONNEGATIVE = Num(0.0)


@dataclass(frozen=True)
class Constant(SpeedModel):
    """Every iteration takes ``value`` seconds."""

    value: float = spec(rule=_NONNEGATIVE, doc="seconds per iteration")
    kind = "constant"

    @property
    def mean(self) -> float:
        return self.value

    @property
    def constant_value(self) -> float | None:
        return self.value

    def cdf(self) -> tuple[Callable[[float], float], float, float]:
        v = self.value
        return (lambda x: 1.0 if x >= v else 0.0), v, v

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        del rng
        return np.full(n, self.value)

    @classmethod
    def tables(cls, st: Any, max_mean: float) -> Any:
        return st.builds(lambda v: {"kind": cls.kind, "value": v}, st.floats(0.05, max_mean))


@dataclass(frozen=True)
class Exponential(SpeedModel):
    """Exponential times with the given ``mean`` (memoryless: Dutta et al. 2018's main model)."""

    mean: float = spec(rule=_POSITIVE, doc="mean seconds per iteration")
    kind = "exponential"

    def cdf(self) -> tuple[Callable[[float], float], float, float]:
        mu = self.mean
        return (lambda x: -math.expm1(-x / mu) if x > 0 else 0.0), 0.0, math.inf

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean, n)

    @classmethod
    def tables(cls, st: Any, max_mean: float) -> Any:
        return st.builds(lambda m: {"kind": cls.kind, "mean": m}, st.floats(0.05, max_mean))


@dataclass(frozen=True)
class ShiftedExponential(SpeedModel):
    """``shift + Exp(mean)``: a fixed minimum plus an exponential tail (Dutta et al. 2018)."""

    shift: float = spec(rule=_NONNEGATIVE, doc="the minimum time, seconds")
    mean_excess: float = spec(rule=_POSITIVE, doc="mean of the exponential part, seconds", key="mean")
    kind = "shifted_exponential"

    @property
    def mean(self) -> float:
        return self.shift + self.mean_excess

    def cdf(self) -> tuple[Callable[[float], float], float, float]:
        d, mu = self.shift, self.mean_excess
        return (lambda x: -math.expm1(-(x - d) / mu) if x > d else 0.0), d, math.inf

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.shift + rng.exponential(self.mean_excess, n)

    @classmethod
    def tables(cls, st: Any, max_mean: float) -> Any:
        @st.composite
        def table(draw: Any) -> dict[str, Any]:
            shift = draw(st.floats(0.0, max_mean / 2))
            return {"kind": cls.kind, "shift": shift, "mean": draw(st.floats(0.05, max(0.05, max_mean - shift)))}

        return table()


@dataclass(frozen=True)
class LogNormal(SpeedModel):
    """Log-normal times with the given ``mean`` of the time and ``sigma`` of its logarithm.

    ``log X ~ N(mu, sigma^2)`` with ``mu = log(mean) - sigma^2 / 2``.
    """

    mean: float = spec(rule=_POSITIVE, doc="mean of the time itself, seconds")
    sigma: float = spec(rule=_NONNEGATIVE, doc="standard deviation of the time's logarithm")
    kind = "lognormal"

    def check(self, where: str) -> None:
        if self.sigma > MAX_SIGMA:
            raise ConfigError(f"{where}.sigma", self.sigma,
                              f"must be <= {MAX_SIGMA:g} (wider spreads make the draws overflow)")

    @property
    def constant_value(self) -> float | None:
        return self.mean if self.sigma == 0 else None

    def cdf(self) -> tuple[Callable[[float], float], float, float]:
        mu, s = math.log(self.mean) - self.sigma**2 / 2.0, self.sigma
        return (lambda x: 0.5 * math.erfc(-(math.log(x) - mu) / (s * math.sqrt(2.0))) if x > 0 else 0.0), 0.0, math.inf

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        mu = math.log(self.mean) - self.sigma**2 / 2.0
        return rng.lognormal(mu, self.sigma, n)

    @classmethod
    def tables(cls, st: Any, max_mean: float) -> Any:
        # sigma >= 0.1: a smaller one draws near-constant times, whose float ties no engine orders causally
        return st.builds(lambda m, s: {"kind": cls.kind, "mean": m, "sigma": s}, st.floats(0.05, max_mean), st.floats(0.1, 1.5))


@dataclass(frozen=True)
class Pareto(SpeedModel):
    """Pareto (type I) times: minimum ``scale``, tail index ``alpha`` (mean alpha*scale/(alpha-1)).

    ``F(x) = 1 - (scale / x)^alpha`` for ``x >= scale``.
    """

    alpha: float = spec(rule=_POSITIVE, doc="tail index (the mean is finite for alpha > 1)")
    scale: float = spec(rule=_POSITIVE, doc="the minimum time, seconds")
    kind = "pareto"

    @property
    def mean(self) -> float:
        return math.inf if self.alpha <= 1 else self.alpha * self.scale / (self.alpha - 1)

    def cdf(self) -> tuple[Callable[[float], float], float, float]:
        a, m = self.alpha, self.scale
        return (lambda x: -math.expm1(a * math.log(m / x)) if x > m else 0.0), m, math.inf

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.scale * (1.0 + rng.pareto(self.alpha, n))

    @classmethod
    def tables(cls, st: Any, max_mean: float) -> Any:
        def table(alpha: float, mean: float) -> dict[str, Any]:  # mean = alpha * scale / (alpha - 1)
            return {"kind": cls.kind, "alpha": alpha, "scale": max(1e-3, mean * (alpha - 1) / alpha)}

        return st.builds(table, st.floats(1.2, 4.0), st.floats(0.05, max_mean))


@dataclass(frozen=True)
class Uniform(SpeedModel):
    """Uniform times on [low, high]."""

    low: float = spec(rule=_NONNEGATIVE, doc="shortest time, seconds")
    high: float = spec(rule=_NONNEGATIVE, doc="longest time, seconds (>= low)")
    kind = "uniform"

    def check(self, where: str) -> None:
        if self.high < self.low:
            raise ConfigError(f"{where}.high", self.high, f"must be >= low = {self.low}")

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2.0

    @property
    def constant_value(self) -> float | None:
        return self.low if self.low == self.high else None

    def cdf(self) -> tuple[Callable[[float], float], float, float]:
        lo, hi = self.low, self.high
        return (lambda x: min(1.0, max(0.0, (x - lo) / (hi - lo)))), lo, hi

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)

    @classmethod
    def tables(cls, st: Any, max_mean: float) -> Any:
        @st.composite
        def table(draw: Any) -> dict[str, Any]:
            low = draw(st.floats(0.05, max_mean))  # no zero-length iterations, no near-constant widths (ties)
            return {"kind": cls.kind, "low": low, "high": low + draw(st.floats(0.01, max_mean))}

        return table()


def _finite(x: int | float) -> float:
    """``x`` as a float, inf when an integer is beyond the float range."""
    try:
        return float(x)
    except OverflowError:
        return math.inf


class _Samples(Rule):
    """A non-empty list of finite times >= 0 (seconds); the normal form is a tuple of floats."""

    def _parse(self, where: str, v: Any, base: Path) -> tuple[float, ...]:
        if (not isinstance(v, (list, tuple)) or not v
                or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(_finite(x)) or x < 0 for x in v)):
            raise ConfigError(where, v, "must be a non-empty list of times >= 0 (seconds)")
        return tuple(float(x) for x in v)

    def dump(self, value: Any) -> Any:
        return list(value)

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 1}


@dataclass(frozen=True)
class Empirical(SpeedModel):
    """Times resampled (with replacement) from measured ``samples``: what calibration fits when
    no parametric model fits well."""

    samples: tuple[float, ...] = spec(rule=_Samples(), doc="measured times, seconds")
    kind = "empirical"

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples))

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(np.asarray(self.samples, dtype=float), size=n, replace=True)


class _TraceFile(Rule):
    """A path string (relative: to the config file's folder)."""

    def _parse(self, where: str, v: Any, base: Path) -> Path:
        if isinstance(v, Path):
            return v
        if not isinstance(v, str):
            raise ConfigError(where, v, "must be a path string")
        return (base / v).resolve()

    def dump(self, value: Any) -> Any:
        return str(value)

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}


@dataclass(frozen=True)
class TraceTimes(SpeedModel):
    """Compute times replayed from a CSV (:func:`read_times_layout`): wide (one row per worker, one column
    per clock) or long (a header, one row per iteration: worker, clock, seconds; a run's trace.csv), seconds."""

    file: Path = spec(rule=_TraceFile(), doc="CSV: one row per worker and one column per clock (no header), "
                      "or a header and one row per iteration with columns worker, clock, seconds (a run's trace.csv: "
                      "compute_time), seconds")
    times: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.zeros((0, 0)))
    layout: str = field(default="wide", repr=False, compare=False)  # "wide" or "long" (see read_times_layout)
    kind = "trace"

    @classmethod
    def from_table(cls, raw: Mapping[str, Any], where: str, base_dir: Path) -> SpeedModel:
        model = super().from_table(raw, where, base_dir)
        assert isinstance(model, TraceTimes)
        times, layout = read_times_layout(model.file, f"{where}.file")
        return TraceTimes(file=model.file, times=times, layout=layout)

    def validate(self, where: str) -> SpeedModel:
        """Built in Python: the times must be a non-empty matrix of finite times >= 0 (the file is not read again)."""
        times = np.asarray(self.times, dtype=float)
        if times.ndim != 2 or times.size == 0 or not (np.isfinite(times).all() and (times >= 0).all()):
            raise ConfigError(f"{where}.file", str(self.file), "its times must be a non-empty matrix of finite times >= 0")
        return self

    @property
    def mean(self) -> float:
        return float(self.times.mean())

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:  # pragma: no cover - not used
        raise TypeError("trace-driven times are read per worker, not drawn")


@dataclass(frozen=True)
class Straggler:
    """Worker ``worker`` is ``slowdown`` times slower for the whole run."""

    worker: int = spec(rule=Int(0), doc="the worker's index, 0 .. workers.count - 1")
    slowdown: float = spec(rule=Num(0.0, strict=True), doc="times slower (1 = normal speed)")


@dataclass(frozen=True)
class Transient:
    """At each iteration, with ``probability``, a worker slows by ``factor`` for ``duration`` iterations.

    Overlapping slowdowns do not compound: an iteration is either slowed (times ``factor``) or not.
    """

    probability: float = spec(rule=Num(0.0, maximum=1.0), doc="chance that a slowdown starts, per worker and iteration")
    factor: float = spec(rule=Num(0.0, strict=True), doc="times slower while slowed")
    duration: int = spec(rule=Int(1), doc="iterations a slowdown lasts")


def compute_times(
    speed: SpeedModel,
    *,
    workers: int,
    clocks: int,
    seed: int,
    stragglers: tuple[Straggler, ...] = (),
    transient: Transient | None = None,
    compute: SpeedModel | None = None,
    warmup: float = 0.0,
) -> np.ndarray:
    """The (workers x clocks) matrix of compute times, seconds.

    Entry ``[p, c - 1]`` is worker p's time for iteration c: the model's draw (or the trace
    value), plus a draw of ``compute`` (the real computation a calibration measured, if any),
    times p's persistent slowdown, times ``factor`` where a transient slowdown is on; that is
    ``(base_times + compute draws) * slowdown_factors``, as the real backend runs it; then
    ``warmup`` seconds are added to every worker's first iteration (a real run's start-up).

    >>> t = compute_times(Exponential(1.0), workers=3, clocks=4, seed=7)
    >>> t.shape
    (3, 4)
    >>> bool((compute_times(Exponential(1.0), workers=2, clocks=4, seed=7) == t[:2]).all())
    True
    """
    with np.errstate(over="ignore"):  # an overflow is reported below, naming the config
        times = base_times(speed, workers=workers, clocks=clocks, seed=seed)
        if compute is not None:
            for p, rng in enumerate(worker_generators(seed, COMPUTE_STREAM, workers)):
                times[p] += compute.draw(rng, clocks)
        times *= slowdown_factors(workers=workers, clocks=clocks, seed=seed, stragglers=stragglers, transient=transient)
        if warmup and clocks:
            times[:, 0] += warmup
    if not np.isfinite(times).all():
        raise ConfigError("workers.speed", speed.kind,
                          "its times, with the slowdowns, overflow to infinity: make the times or slowdowns smaller")
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
    warmup: float = 0.0,
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
    base = None if isinstance(speed, TraceTimes) else worker_generators(seed, SPEED_STREAM, workers)
    extra = None if compute is None else worker_generators(seed, COMPUTE_STREAM, workers)
    slow = transient is not None and transient.probability > 0
    marks = worker_generators(seed, TRANSIENT_STREAM, workers) if slow else None
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
            if warmup and lo == 0:
                times[:, 0] += warmup
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
        if warmup and lo == 0:
            times[:, 0] += warmup
        yield times


def base_times(speed: SpeedModel, *, workers: int, clocks: int, seed: int) -> np.ndarray:
    """The speed model's own draws (or the trace's values), before any slowdown."""
    if isinstance(speed, TraceTimes):
        return np.array(speed.times[:workers, :clocks], dtype=float)
    times = np.empty((workers, clocks))
    for p, rng in enumerate(worker_generators(seed, SPEED_STREAM, workers)):
        times[p] = speed.draw(rng, clocks)
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
        kernel = np.ones(min(transient.duration, clocks))  # a slowdown never outlasts the run
        for p, rng in enumerate(worker_generators(seed, TRANSIENT_STREAM, workers)):
            starts = rng.random(clocks) < transient.probability
            slowed = np.convolve(starts, kernel)[:clocks] > 0
            factors[p, slowed] *= transient.factor
    return factors


# -- parsing ---------------------------------------------------------------------------


def speed_kinds() -> tuple[str, ...]:
    """The registered speed kinds (without aliases), sorted."""
    return tuple(sorted(k for k, cls in SPEED_MODELS.items() if k == cls.kind))


def parse_speed(raw: Any, where: str, base_dir: Path) -> SpeedModel:
    """Build a speed model from its config table (``{kind = "exponential", mean = 1.0}``); a model
    built in Python is checked as if read from its table."""
    if isinstance(raw, SpeedModel):
        return raw.validate(where)
    if not isinstance(raw, Mapping):
        raise ConfigError(where, raw, 'must be a table such as { kind = "exponential", mean = 1.0 }')
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in SPEED_MODELS:
        raise ConfigError(f"{where}.kind", kind, f"must be one of {', '.join(sorted(SPEED_MODELS))}")
    return SPEED_MODELS[kind].from_table(raw, where, base_dir)


def speed_to_dict(speed: SpeedModel) -> dict[str, Any]:
    """The config table of a speed model (inverse of :func:`parse_speed`)."""
    return speed.to_table()


def speed_schema() -> dict[str, Any]:
    """JSON Schema of a speed table: one of the registered models' tables."""
    classes = sorted({cls for cls in SPEED_MODELS.values()}, key=lambda c: c.kind)
    return {"oneOf": [cls.schema() for cls in classes]}


class SpeedRule(Rule):
    """The rule of a ``[workers]`` key that holds a speed table."""

    def __init__(self, *, optional: bool = False) -> None:
        self.optional = optional

    def _parse(self, where: str, v: Any, base: Path) -> SpeedModel:
        return parse_speed(v, where, base)

    def dump(self, value: Any) -> Any:
        return None if value is None else value.to_table()

    def schema(self) -> dict[str, Any]:
        return speed_schema()


def read_times_csv(path: Path, where: str) -> np.ndarray:
    """Read a compute-time CSV into a (workers x clocks) matrix of seconds (see :func:`read_times_layout`)."""
    return read_times_layout(path, where)[0]


def read_times_layout(path: Path, where: str) -> tuple[np.ndarray, str]:
    """Read a compute-time CSV: the (workers x clocks) matrix of seconds and its layout, ``"wide"`` or ``"long"``.

    Two layouts, told apart by the first row (lines starting with ``#`` are comments):

    - *wide* (no header, numbers only): one row per worker, one column per clock, equal row lengths;
    - *long* (a header row): one row per iteration with columns ``worker`` (0-based), ``clock``
      (1-based) and ``seconds``, in any order, extra columns ignored.  A run directory's own
      ``trace.csv`` is one: without a ``seconds`` column its ``compute_time`` is read (for a real
      run, the iteration's whole measured compute duration, injected delay and slowdowns included).
      Every (worker, clock) with worker 0..W-1 and clock 1..C must appear exactly once.

    Times must be finite and >= 0.
    """
    if not path.is_file():
        raise InputError(where, str(path), "file not found")
    try:
        times = _read_times_rows(path, where)
    except UnicodeDecodeError as exc:
        raise InputError(where, str(path), f"is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise InputError(where, str(path), f"is not a readable CSV ({exc})") from None
    except (OSError, MemoryError) as exc:
        raise InputError(where, str(path), f"cannot be read ({getattr(exc, 'strerror', None) or 'too large'})") from None
    return times


LONG_TIME_COLUMNS = ("seconds", "compute_time")
"""The time column of a long-format trace CSV, by preference: ``seconds``, else a run's ``compute_time``."""


def _data_rows(fh: Any) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of the CSV's rows that are neither blank nor ``#`` comments."""
    for lineno, row in enumerate(csv.reader(fh), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        yield lineno, row


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_times_rows(path: Path, where: str) -> tuple[np.ndarray, str]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = _data_rows(fh)
        first = next(rows, None)
        if first is None:
            raise InputError(where, str(path), "the CSV holds no rows")
        if any(_is_number(cell) for cell in first[1]):  # a header names columns: it holds no number
            return _read_wide(path, where, first, rows), "wide"
        return _read_long(path, where, first, rows), "long"


def _check_time(path: Path, lineno: int, column: str, v: float) -> None:
    if not (math.isfinite(v) and v >= 0):
        raise InputError(f"{path.name}:{lineno}", f"column {column}", "times must be finite and >= 0")


def _read_wide(path: Path, where: str, first: tuple[int, list[str]], more: Iterator[tuple[int, list[str]]]) -> np.ndarray:
    """One row per worker, one column per clock, no header."""
    rows: list[list[float]] = []
    for lineno, row in (first, *more):
        # errors name the cell, never its content: the file may be anything readable
        values = []
        for col, cell in enumerate(row, start=1):
            try:
                values.append(float(cell))
            except ValueError:
                raise InputError(f"{path.name}:{lineno}", f"column {col}", "every cell must be a number of seconds") from None
        for col, v in enumerate(values, start=1):
            _check_time(path, lineno, str(col), v)
        if rows and len(values) != len(rows[0]):
            raise InputError(
                f"{path.name}:{lineno}", f"{len(values)} columns", f"every row must have {len(rows[0])} columns like row 1"
            )
        rows.append(values)
    return np.array(rows, dtype=float)


def _read_long(path: Path, where: str, header: tuple[int, list[str]], more: Iterator[tuple[int, list[str]]]) -> np.ndarray:
    """A header row, then one row per iteration: ``worker, clock, seconds`` (or a run's ``compute_time``)."""
    names = [cell.strip() for cell in header[1]]
    time_column = next((c for c in LONG_TIME_COLUMNS if c in names), None)
    if "worker" not in names or "clock" not in names or time_column is None:
        raise InputError(f"{path.name}:{header[0]}", "header", "a header row needs columns worker, clock and seconds "
                         "(or compute_time, as in a run's trace.csv); a file without a header holds numbers only")
    at = {name: names.index(name) for name in ("worker", "clock", time_column)}
    need = max(at.values()) + 1
    cells: dict[int, dict[int, float]] = {}
    seen: dict[tuple[int, int], int] = {}
    for lineno, row in more:
        if len(row) < need:
            missing = next(name for name, i in at.items() if i >= len(row))
            raise InputError(f"{path.name}:{lineno}", f"column {missing}", "missing: the row is shorter than the header")
        worker = _index(path, lineno, "worker", row[at["worker"]], 0)
        clock = _index(path, lineno, "clock", row[at["clock"]], 1)
        try:
            seconds = float(row[at[time_column]])
        except ValueError:
            raise InputError(f"{path.name}:{lineno}", f"column {time_column}", "must be a number of seconds") from None
        _check_time(path, lineno, time_column, seconds)
        if (worker, clock) in seen:
            raise InputError(f"{path.name}:{lineno}", f"worker {worker} clock {clock}",
                             f"appears twice (first on line {seen[worker, clock]}); one row per worker and clock")
        seen[worker, clock] = lineno
        cells.setdefault(worker, {})[clock] = seconds
    if not cells:
        raise InputError(where, str(path), "the CSV holds a header but no rows")
    rule = "missing: a long-format trace needs one row per worker 0..W-1 and clock 1..C"
    workers = max(cells) + 1
    if len(cells) < workers:
        gap = next(p for p in range(workers) if p not in cells)
        raise InputError(path.name, f"worker {gap} clock 1", rule)
    clocks = max(max(by_clock) for by_clock in cells.values())
    for p in range(workers):
        if len(cells[p]) < clocks:
            gap = next(c for c in range(1, clocks + 1) if c not in cells[p])
            raise InputError(path.name, f"worker {p} clock {gap}", rule)
    times = np.empty((workers, clocks))
    for p, by_clock in cells.items():
        for c, seconds in by_clock.items():
            times[p, c - 1] = seconds
    return times


def _index(path: Path, lineno: int, column: str, cell: str, low: int) -> int:
    """An integer cell >= ``low`` (a worker index or a clock)."""
    try:
        value = int(cell.strip())
    except ValueError:
        raise InputError(f"{path.name}:{lineno}", f"column {column}", f"must be an integer >= {low}") from None
    if value < low:
        raise InputError(f"{path.name}:{lineno}", f"column {column}", f"must be an integer >= {low}")
    return value
