"""The run configuration: one frozen, validated value, read from TOML (DESIGN §Config).

Every rule is checked here, at the boundary; the engines trust what they get.  A broken rule
raises :class:`~sspsim.errors.ConfigError` whose one-line message names the field, the value
and the rule.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from sspsim import speeds as _speeds
from sspsim.errors import MISSING, ConfigError, InputError
from sspsim.ssp import INF, Staleness
from sspsim.speeds import SpeedModel, Straggler, TraceTimes, Transient

__all__ = [
    "PROBLEM_KINDS",
    "READ_POLICIES",
    "Config",
    "ConsistencyConfig",
    "NetworkConfig",
    "OptimizerConfig",
    "ProblemConfig",
    "RealConfig",
    "RunConfig",
    "WorkersConfig",
    "apply_overrides",
    "config_from_dict",
    "load_config",
]

PROBLEM_KINDS = ("logistic", "least_squares", "nonconvex", "quadratic", "mlp", "timit_like", "none")
READ_POLICIES = ("eager", "lazy", "push")
SCHEDULES = ("constant", "inv_sqrt")
ACTIVATIONS = ("sigmoid", "tanh", "relu")
DIGITS_SAMPLES = 1797  # images in scikit-learn's load_digits
METADATA_SECTIONS = ("calibration", "sweep")  # tables kept verbatim for the tools that read them


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """``[run]``: seed, length, what to record, which engine."""

    seed: int = 0
    clocks: int = 200
    trace: str = "full"  # full | summary (no trace.csv: planning runs at 10^4 workers)
    audit: bool = False  # also write audit.npz: read sets, parameters read, update vectors
    eval_every: int | None = None  # clocks between full-objective evaluations (None: about 50 per run)
    target: float | None = None  # objective for "time to target"
    engine: str = "auto"  # auto | event (SimPy) | batch (exact closed form; timing only)


@dataclass(frozen=True, kw_only=True)
class ProblemConfig:
    """``[problem]``: what is trained.  Keys a kind does not use are ignored."""

    kind: str = "logistic"
    dim: int | None = None  # parameters (convex, nonconvex, none) or input width (timit_like)
    samples: int = 4000
    batch_size: int = 16
    seed: int | None = None  # data, initial point and sample order; None: the run seed
    noise: float | None = None  # label-flip probability (logistic), noise scale (others)
    classes: int | None = None  # output classes (timit_like)
    hidden: tuple[int, ...] | None = None  # hidden widths (mlp, timit_like)
    activation: str | None = None  # hidden activation (mlp, timit_like)
    curvature: float | None = None  # h of quadratic (default 1)
    eval_samples: int | None = None  # samples of the periodic full-objective evaluation

    def resolved(self) -> ProblemConfig:
        """Fill the per-kind defaults of the keys left unset."""
        defaults = _PROBLEM_DEFAULTS.get(self.kind, {})
        fill = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        if self.kind == "mlp" and self.samples > DIGITS_SAMPLES:
            fill["samples"] = DIGITS_SAMPLES
        samples = fill.get("samples", self.samples)
        if self.eval_samples is None:
            fill["eval_samples"] = min(samples, 2000) if self.kind == "timit_like" else samples
        return dataclasses.replace(self, **fill)


_PROBLEM_DEFAULTS: dict[str, dict[str, Any]] = {
    "logistic": {"dim": 20, "noise": 0.1},
    "least_squares": {"dim": 20, "noise": 0.1},
    "nonconvex": {"dim": 20, "noise": 0.5},
    "quadratic": {"dim": 1, "noise": 0.0, "curvature": 1.0},
    "mlp": {"dim": 64, "hidden": (32,), "activation": "tanh", "classes": 10, "noise": 0.0},
    "timit_like": {"dim": 360, "hidden": (256, 256), "activation": "sigmoid", "classes": 50, "noise": 1.0},
    "none": {"dim": 1000, "noise": 0.0},
}


@dataclass(frozen=True, kw_only=True)
class OptimizerConfig:
    """``[optimizer]``: SGD, eta_t = lr (constant) or lr / sqrt(t) (inv_sqrt, Ho et al. 2013)."""

    lr: float = 0.5
    schedule: str = "inv_sqrt"
    momentum: float = 0.0  # worker-side heavy ball
    staleness_aware: bool = False  # divide the step by the update's staleness (Zhang et al. 2016)


@dataclass(frozen=True, kw_only=True)
class ConsistencyConfig:
    """``[consistency]``: the staleness bound s (0 = BSP, inf = ASP) and what reads see."""

    staleness: Staleness = 3
    read_policy: str = "eager"  # eager | lazy (alias: adversarial) | push


@dataclass(frozen=True, kw_only=True)
class WorkersConfig:
    """``[workers]``: how many, how fast."""

    count: int = 8
    speed: SpeedModel = _speeds.Exponential(1.0)
    stragglers: tuple[Straggler, ...] = ()
    transient: Transient | None = None
    compute: SpeedModel | None = None  # the real computation's own time (calibration); the simulator adds it


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """``[network]``: message cost ``latency + bytes / bandwidth``; server apply time."""

    latency: float = 0.0
    bandwidth: float = INF
    apply_time: float = 0.0
    message_bytes: int | None = None  # None: 4 bytes per parameter (float32 on the wire)

    def message_cost(self, n_params: int) -> float:
        """Seconds for one push or pull of the model."""
        size = self.message_bytes if self.message_bytes is not None else 4 * n_params
        return self.latency + (0.0 if self.bandwidth == INF else size / self.bandwidth)


@dataclass(frozen=True, kw_only=True)
class RealConfig:
    """``[real]``: the torch.distributed backend (``sspsim deploy``); the simulator ignores it."""

    timeout: float = 60.0  # seconds a worker may go silent mid-iteration before it is declared dead
    checkpoint_every: int = 0  # clocks between checkpoints of the server (0: none)
    device: str = "auto"  # auto | cpu | cuda: where workers compute
    dtype: str = "float64"  # float64 | float32: the workers' arithmetic
    inject_delays: bool = True  # [workers] speed and stragglers become sleeps on top of real compute
    interface: str = ""  # network interface Gloo uses (GLOO_SOCKET_IFNAME), e.g. "eth0"; empty: loopback for
    # one machine, Gloo's own choice (the host name's interface) for several


@dataclass(frozen=True, kw_only=True)
class Config:
    """A whole run.  Build it with :func:`load_config` or :func:`config_from_dict`."""

    run: RunConfig = field(default_factory=RunConfig)
    problem: ProblemConfig = field(default_factory=ProblemConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    real: RealConfig = field(default_factory=RealConfig)
    calibration: dict[str, Any] | None = None  # what `sspsim calibrate` measured (kept, not used)
    sweep: dict[str, Any] | None = None  # what `sspsim sweep` runs when given no --grid (kept, not used here)

    def __post_init__(self) -> None:
        object.__setattr__(self, "problem", self.problem.resolved())
        _validate(self)

    @property
    def problem_seed(self) -> int:
        """Seed of the data, the initial point and the sample order."""
        return self.run.seed if self.problem.seed is None else self.problem.seed

    def replace(self, **sections: Any) -> Config:
        """A copy with whole sections replaced, re-validated."""
        return dataclasses.replace(self, **sections)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as TOML-shaped data (``inf`` as the string "inf")."""
        out: dict[str, Any] = {}
        for section in dataclasses.fields(self):
            value = getattr(self, section.name)
            if section.name in METADATA_SECTIONS:
                if value is not None:
                    out[section.name] = _deep_copy(value)
                continue
            table: dict[str, Any] = {}
            for f in dataclasses.fields(value):
                v = getattr(value, f.name)
                if f.name in ("speed", "compute") and v is not None:
                    v = _speeds.speed_to_dict(v)
                elif f.name == "stragglers":
                    v = [dataclasses.asdict(s) for s in v]
                elif f.name == "transient":
                    v = None if v is None else dataclasses.asdict(v)
                elif isinstance(v, tuple):
                    v = list(v)
                elif isinstance(v, float) and math.isinf(v):
                    v = "inf"
                if v is not None:
                    table[f.name] = v
            out[section.name] = table
        return out


# -- loading ---------------------------------------------------------------------------


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a TOML config, apply ``key=value`` overrides, validate.

    Relative paths inside the file resolve against the file's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("config", str(path), "file not found")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError("config", str(path), f"not valid TOML ({exc})") from None
    return config_from_dict(apply_overrides(raw, overrides), base_dir=path.parent)


def apply_overrides(raw: Mapping[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings; values are TOML (``3``, ``"inf"``, ``{kind="constant", value=1}``),
    and a value that is not TOML is taken as a string (``problem.kind=mlp``).

    >>> apply_overrides({"run": {"seed": 0}}, ["run.seed=4", "problem.kind=mlp"])
    {'run': {'seed': 4}, 'problem': {'kind': 'mlp'}}
    """
    data = _deep_copy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise InputError("--set", item, "must look like section.key=value, e.g. consistency.staleness=3")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        parts = key.split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise InputError("--set", item, f"{'.'.join(parts[: i + 1])} is not a table")
            node = child
        node[parts[-1]] = value
    return data


def config_from_dict(raw: Mapping[str, Any], base_dir: str | Path = ".") -> Config:
    """Validate TOML-shaped data into a :class:`Config` (missing keys take their defaults)."""
    base = Path(base_dir)
    if not isinstance(raw, Mapping):
        raise ConfigError("config", raw, "must be a table of sections")
    sections = {f.name: f for f in dataclasses.fields(Config)}
    _reject_unknown("", raw, sections)
    meta = {}
    for name in METADATA_SECTIONS:
        table = raw.get(name)
        if table is not None and not isinstance(table, Mapping):
            raise ConfigError(name, table, f"must be a table ([{name}])")
        meta[name] = None if table is None else _deep_copy(table)
    built: dict[str, Any] = {}
    for name, parsers in _SCHEMA.items():
        table = raw.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(name, table, "must be a table ([" + name + "])")
        _reject_unknown(name + ".", table, parsers)
        kwargs = {key: parse(f"{name}.{key}", table[key], base) for key, parse in parsers.items() if key in table}
        built[name] = _SECTION_TYPES[name](**kwargs)
    return Config(**built, **meta)


def _reject_unknown(prefix: str, table: Mapping[str, Any], known: Mapping[str, Any]) -> None:
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            what = "section" if not prefix else "key"
            raise ConfigError(f"{prefix}{key}", table[key] if not isinstance(table[key], dict) else "{...}", f"unknown {what}{hint}")


# -- field parsers -----------------------------------------------------------------------

Parser = Callable[[str, Any, Path], Any]


def _int(minimum: int | None = None, *, optional: bool = False) -> Parser:
    def parse(where: str, v: Any, base: Path) -> int | None:
        if optional and v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(where, v, "must be an integer")
        if minimum is not None and v < minimum:
            raise ConfigError(where, v, f"must be >= {minimum}")
        return v

    return parse


def _float(minimum: float | None = None, *, strict: bool = False, allow_inf: bool = False, optional: bool = False) -> Parser:
    def parse(where: str, v: Any, base: Path) -> float | None:
        if optional and v is None:
            return None
        if allow_inf and v == "inf":
            return INF
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise ConfigError(where, v, "must be a number" + (' or "inf"' if allow_inf else ""))
        if math.isinf(v) and not (allow_inf and v > 0):
            raise ConfigError(where, v, "must be finite")
        if minimum is not None and (v < minimum or (strict and v == minimum)):
            raise ConfigError(where, v, f"must be {'>' if strict else '>='} {minimum}")
        return float(v)

    return parse


def _choice(choices: tuple[str, ...], *, optional: bool = False) -> Parser:
    def parse(where: str, v: Any, base: Path) -> str | None:
        if optional and v is None:
            return None
        if v not in choices:
            raise ConfigError(where, v, f"must be one of {', '.join(choices)}")
        return str(v)

    return parse


def _string(where: str, v: Any, base: Path) -> str:
    if not isinstance(v, str):
        raise ConfigError(where, v, "must be a string")
    return v


def _bool(where: str, v: Any, base: Path) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(where, v, "must be true or false")
    return v


def _staleness(where: str, v: Any, base: Path) -> Staleness:
    if v == "inf" or (isinstance(v, float) and v == INF):
        return INF
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError(where, v, 'must be an integer >= 0 (0 = BSP) or "inf" (ASP)')
    return v


def _read_policy(where: str, v: Any, base: Path) -> str:
    if v == "adversarial":  # DESIGN's other name for the SSP-legal worst case
        return "lazy"
    return _choice(READ_POLICIES)(where, v, base)  # type: ignore[return-value]


def _hidden(where: str, v: Any, base: Path) -> tuple[int, ...]:
    if not isinstance(v, list) or not v or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in v):
        raise ConfigError(where, v, "must be a non-empty list of layer widths >= 1, e.g. [64, 32]")
    return tuple(v)


def _speed(where: str, v: Any, base: Path) -> SpeedModel:
    return _speeds.parse_speed(v, where, base)


def _stragglers(where: str, v: Any, base: Path) -> tuple[Straggler, ...]:
    if not isinstance(v, list):
        raise ConfigError(where, v, "must be a list like [ { worker = 0, slowdown = 4.0 } ]")
    out = []
    for i, item in enumerate(v):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(at, item, "must be a table { worker = 0, slowdown = 4.0 }")
        _reject_unknown(at + ".", item, {"worker": 0, "slowdown": 0})
        if "worker" not in item or "slowdown" not in item:
            raise ConfigError(at + (".worker" if "worker" not in item else ".slowdown"), MISSING, "required")
        worker = _int(0)(at + ".worker", item["worker"], base)
        slowdown = _float(0.0, strict=True)(at + ".slowdown", item["slowdown"], base)
        out.append(Straggler(worker=worker, slowdown=slowdown))  # type: ignore[arg-type]
    return tuple(out)


def _transient(where: str, v: Any, base: Path) -> Transient:
    if not isinstance(v, dict):
        raise ConfigError(where, v, "must be a table { probability = 0.1, factor = 4.0, duration = 1 }")
    _reject_unknown(where + ".", v, {"probability": 0, "factor": 0, "duration": 0})
    for key in ("probability", "factor", "duration"):
        if key not in v:
            raise ConfigError(f"{where}.{key}", MISSING, "required")
    probability = _float(0.0)(where + ".probability", v["probability"], base)
    if probability > 1:  # type: ignore[operator]
        raise ConfigError(where + ".probability", probability, "must be <= 1")
    factor = _float(0.0, strict=True)(where + ".factor", v["factor"], base)
    duration = _int(1)(where + ".duration", v["duration"], base)
    return Transient(probability=probability, factor=factor, duration=duration)  # type: ignore[arg-type]


_SCHEMA: dict[str, dict[str, Parser]] = {
    "run": {
        "seed": _int(0),
        "clocks": _int(1),
        "trace": _choice(("full", "summary")),
        "audit": _bool,
        "eval_every": _int(1, optional=True),
        "target": _float(optional=True),
        "engine": _choice(("auto", "event", "batch")),
    },
    "problem": {
        "kind": _choice(PROBLEM_KINDS),
        "dim": _int(1, optional=True),
        "samples": _int(1),
        "batch_size": _int(1),
        "seed": _int(0, optional=True),
        "noise": _float(0.0, optional=True),
        "classes": _int(2, optional=True),
        "hidden": _hidden,
        "activation": _choice(ACTIVATIONS, optional=True),
        "curvature": _float(0.0, strict=True, optional=True),
        "eval_samples": _int(1, optional=True),
    },
    "optimizer": {
        "lr": _float(0.0, strict=True),
        "schedule": _choice(SCHEDULES),
        "momentum": _float(0.0),
        "staleness_aware": _bool,
    },
    "consistency": {"staleness": _staleness, "read_policy": _read_policy},
    "workers": {"count": _int(1), "speed": _speed, "stragglers": _stragglers, "transient": _transient, "compute": _speed},
    "network": {
        "latency": _float(0.0),
        "bandwidth": _float(0.0, strict=True, allow_inf=True),
        "apply_time": _float(0.0),
        "message_bytes": _int(0, optional=True),
    },
    "real": {
        "timeout": _float(0.0, strict=True),
        "checkpoint_every": _int(0),
        "device": _choice(("auto", "cpu", "cuda")),
        "dtype": _choice(("float64", "float32")),
        "inject_delays": _bool,
        "interface": _string,
    },
}
_SECTION_TYPES: dict[str, type] = {
    "run": RunConfig,
    "problem": ProblemConfig,
    "optimizer": OptimizerConfig,
    "consistency": ConsistencyConfig,
    "workers": WorkersConfig,
    "network": NetworkConfig,
    "real": RealConfig,
}


def _validate(c: Config) -> None:
    """Rules that involve more than one field."""
    if c.problem.kind == "mlp" and c.problem.dim != 64:
        raise ConfigError("problem.dim", c.problem.dim, "mlp trains on 8x8 digit images: its input width is 64")
    if c.problem.kind == "mlp" and c.problem.classes != 10:
        raise ConfigError("problem.classes", c.problem.classes, "mlp trains on the 10 digit classes")
    if c.problem.kind == "logistic" and c.problem.noise is not None and c.problem.noise >= 0.5:
        raise ConfigError("problem.noise", c.problem.noise, "is the label-flip probability of logistic: must be < 0.5")
    if c.optimizer.momentum >= 1:
        raise ConfigError("optimizer.momentum", c.optimizer.momentum, "must be < 1")
    if c.consistency.read_policy == "lazy" and c.consistency.staleness == INF:
        raise ConfigError(
            "consistency.read_policy",
            "lazy",
            'with staleness = "inf" a lazy read guarantees only the worker\'s own writes; use eager or push for ASP',
        )
    seen: set[int] = set()
    for i, s in enumerate(c.workers.stragglers):
        if s.worker >= c.workers.count:
            raise ConfigError(f"workers.stragglers[{i}].worker", s.worker, f"must be < workers.count = {c.workers.count}")
        if s.worker in seen:
            raise ConfigError(f"workers.stragglers[{i}].worker", s.worker, "appears twice")
        seen.add(s.worker)
    speed = c.workers.speed
    if isinstance(speed, TraceTimes):
        rows, cols = speed.times.shape
        if rows != c.workers.count:
            raise ConfigError(
                "workers.speed.file", str(speed.file), f"has {rows} rows but workers.count = {c.workers.count} (one row per worker)"
            )
        if cols < c.run.clocks:
            raise ConfigError(
                "workers.speed.file", str(speed.file), f"has {cols} columns but run.clocks = {c.run.clocks} (one column per clock)"
            )
    if c.run.engine == "batch":
        if c.problem.kind != "none":
            raise ConfigError("run.engine", "batch", 'the batch schedule has no math; it needs problem.kind = "none"')
        if c.network.apply_time > 0:
            raise ConfigError(
                "run.engine", "batch", "the batch schedule is exact only without server contention (network.apply_time = 0)"
            )


def _deep_copy(raw: Any) -> Any:
    if isinstance(raw, Mapping):
        return {k: _deep_copy(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_deep_copy(v) for v in raw]
    return raw
