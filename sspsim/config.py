"""The run configuration: one frozen, validated value, read from TOML (DESIGN §Config).

Each key's rule sits beside its field (:func:`sspsim.fields.spec`) and runs whenever a section
is built, from TOML, ``--set`` or Python, so every path raises the same
:class:`~sspsim.errors.ConfigError`, one line naming the field, the value and the rule.  The
same rules write the config back (:meth:`Config.to_dict`) and describe it
(:func:`json_schema`).  The engines trust what they get.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from sspsim import speeds as _speeds
from sspsim.errors import MISSING, ConfigError, InputError
from sspsim.fields import (
    Bool,
    Choice,
    Int,
    ListOf,
    Num,
    Record,
    Rule,
    Str,
    check_fields,
    field_key,
    field_rule,
    object_schema,
    reject_unknown,
    ruled_fields,
    spec,
)
from sspsim.speeds import SpeedModel, SpeedRule, Straggler, TraceTimes, Transient
from sspsim.ssp import INF, Staleness

__all__ = [
    "CONSISTENCY_MODELS",
    "PROBLEM_KINDS",
    "READ_POLICIES",
    "SECTIONS",
    "Activation",
    "Config",
    "ConsistencyConfig",
    "ConsistencyModel",
    "Device",
    "Dtype",
    "Engine",
    "NetworkConfig",
    "OptimizerConfig",
    "ProblemConfig",
    "ProblemKind",
    "ReadPolicy",
    "RealConfig",
    "RunConfig",
    "Schedule",
    "TraceMode",
    "WorkersConfig",
    "apply_overrides",
    "config_from_dict",
    "json_schema",
    "load_config",
    "section_keys",
]

ProblemKind = Literal["logistic", "least_squares", "nonconvex", "quadratic", "mlp", "timit_like", "torch", "none"]
ReadPolicy = Literal["eager", "lazy", "push"]
ConsistencyModel = Literal["ssp", "ksync", "kbatch_sync", "local_sgd"]
Schedule = Literal["constant", "inv_sqrt"]
Activation = Literal["sigmoid", "tanh", "relu"]
TraceMode = Literal["full", "summary"]
Engine = Literal["auto", "event", "batch"]
Device = Literal["auto", "cpu", "cuda"]
Dtype = Literal["float64", "float32"]

PROBLEM_KINDS: tuple[str, ...] = get_args(ProblemKind)
READ_POLICIES: tuple[str, ...] = get_args(ReadPolicy)
CONSISTENCY_MODELS: tuple[str, ...] = get_args(ConsistencyModel)
DIGITS_SAMPLES = 1797  # images in scikit-learn's load_digits
METADATA_SECTIONS = ("calibration", "sweep")  # tables kept verbatim for the tools that read them


class _Section:
    """A config section: each field's rule runs whenever the section is built (TOML, ``--set`` or Python)."""

    SECTION: ClassVar[str]

    def __post_init__(self) -> None:
        check_fields(self, self.SECTION + ".")


class _Staleness(Rule):
    """The staleness bound: an integer >= 0, or "inf" (ASP)."""

    def _parse(self, where: str, v: Any, base: Path) -> Staleness:
        if v == "inf" or (isinstance(v, float) and v == INF):
            return INF
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(where, v, 'must be an integer >= 0 (0 = BSP) or "inf" (ASP)')
        return int(v)

    def dump(self, value: Any) -> Any:
        return "inf" if value == INF else value

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "integer", "minimum": 0}, {"const": "inf"}]}


class _Widths(Rule):
    """Hidden layer widths: a non-empty list of integers >= 1; the normal form is a tuple."""

    optional = True

    def _parse(self, where: str, v: Any, base: Path) -> tuple[int, ...]:
        if (not isinstance(v, (list, tuple)) or not v
                or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in v)):
            raise ConfigError(where, v, "must be a non-empty list of layer widths >= 1, e.g. [64, 32]")
        return tuple(int(h) for h in v)

    def dump(self, value: Any) -> Any:
        return None if value is None else list(value)

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1}


# -- [problem] kind = "torch": your own model (sspsim.task) ---------------------------------


class _Factory(Rule):
    """``"module:function"``: the factory of a torch task."""

    optional = True

    def _parse(self, where: str, v: Any, base: Path) -> str:
        from sspsim.task import parse_factory

        parse_factory(v, where)
        return str(v)

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"}


class _Folder(Rule):
    """A folder; relative paths resolve against the config's folder; the normal form is absolute."""

    optional = True

    def _parse(self, where: str, v: Any, base: Path) -> str:
        if not isinstance(v, str) or not v:
            raise ConfigError(where, v, "must be a folder (relative paths resolve against the config's folder)")
        return str((base / v).resolve())

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}


class _Options(Rule):
    """A table of keyword arguments (string keys)."""

    optional = True

    def _parse(self, where: str, v: Any, base: Path) -> dict[str, Any]:
        if not isinstance(v, Mapping) or not all(isinstance(k, str) for k in v):
            raise ConfigError(where, v, "must be a table of keyword arguments for the factory ([problem.options])")
        return _deep_copy(dict(v))

    def schema(self) -> dict[str, Any]:
        return {"type": "object"}


def _default_factory_dir(problem: dict[str, Any], base: Path) -> None:
    """A factory is looked up next to the config file first: record that folder (run.json keeps it)."""
    if problem.get("factory") is not None and problem.get("factory_dir") is None:
        problem["factory_dir"] = str(base.resolve())


# -- sections ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunConfig(_Section):
    """``[run]``: seed, length, what to record, which engine."""

    SECTION: ClassVar[str] = "run"
    seed: int = spec(0, Int(0), "seed of the speed draws, the transient slowdowns and (unless problem.seed is set) the data")
    clocks: int = spec(200, Int(1), "iterations per worker")
    trace: TraceMode = spec("full", Choice(TraceMode), "full | summary (no trace.csv: planning runs at 10^4 workers)")
    audit: bool = spec(False, Bool(), "also write audit.npz: read sets, parameters read, update vectors")
    eval_every: int | None = spec(None, Int(1, optional=True),
                                  "clocks between full-objective evaluations (default: about 50 per run)")
    target: float | None = spec(None, Num(optional=True), 'objective for "time to target"')
    engine: Engine = spec("auto", Choice(Engine), "auto | event (SimPy) | batch (exact closed form; timing only)")


@dataclass(frozen=True, kw_only=True)
class ProblemConfig(_Section):
    """``[problem]``: what is trained.  Keys a kind does not use are ignored."""

    SECTION: ClassVar[str] = "problem"
    kind: ProblemKind = spec("logistic", Choice(ProblemKind), "the problem trained ('none': timing only)")
    dim: int | None = spec(None, Int(1, optional=True), "parameters (convex, nonconvex, none) or input width (timit_like)")
    samples: int = spec(4000, Int(1), "training samples")
    batch_size: int = spec(16, Int(1), "samples per gradient")
    seed: int | None = spec(None, Int(0, optional=True), "seed of the data, initial point and sample order (default: run.seed)")
    noise: float | None = spec(None, Num(0.0, optional=True), "label-flip probability (logistic), noise scale (others)")
    classes: int | None = spec(None, Int(2, optional=True), "output classes (timit_like)")
    hidden: tuple[int, ...] | None = spec(None, _Widths(), "hidden widths (mlp, timit_like)")
    activation: Activation | None = spec(None, Choice(Activation, optional=True), "hidden activation (mlp, timit_like)")
    curvature: float | None = spec(None, Num(0.0, strict=True, optional=True), "h of quadratic (default 1)")
    eval_samples: int | None = spec(None, Int(1, optional=True), "samples of the periodic full-objective evaluation")
    # -- kind = "torch": your own model (sspsim.task) --
    factory: str | None = spec(None, _Factory(), "torch: 'module:function' returning an sspsim.TorchTask")
    factory_dir: str | None = spec(None, _Folder(), "torch: where the factory's module is looked up first (default: the config's folder)")
    device: Device | None = spec(None, Choice(Device, optional=True), "torch: where the simulator computes gradients (default auto)")
    options: dict[str, Any] | None = spec(None, _Options(), "torch: keyword arguments of the factory ([problem.options])")

    def resolved(self) -> ProblemConfig:
        """Fill the per-kind defaults of the keys left unset."""
        defaults = _PROBLEM_DEFAULTS.get(self.kind, {})
        fill = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        if self.kind == "mlp" and self.samples > DIGITS_SAMPLES:
            fill["samples"] = DIGITS_SAMPLES
        samples = fill.get("samples", self.samples)
        if self.eval_samples is None and self.kind != "torch":  # torch: the whole training set
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
class OptimizerConfig(_Section):
    """``[optimizer]``: SGD, eta_t = lr (constant) or lr / sqrt(t) (inv_sqrt, Ho et al. 2013)."""

    SECTION: ClassVar[str] = "optimizer"
    lr: float = spec(0.5, Num(0.0, strict=True), "learning rate")
    schedule: Schedule = spec("inv_sqrt", Choice(Schedule), "constant | inv_sqrt (eta_t = lr / sqrt(t))")
    momentum: float = spec(0.0, Num(0.0, maximum=1.0, strict_max=True), "worker-side heavy ball, in [0, 1)")
    staleness_aware: bool = spec(False, Bool(), "divide the step by the update's staleness (Zhang et al. 2016)")


@dataclass(frozen=True, kw_only=True)
class ConsistencyConfig(_Section):
    """``[consistency]``: SSP's staleness bound s (0 = BSP, inf = ASP) and what reads see, or a
    round-based alternative (K-sync, K-batch-sync, local SGD).  Keys a model does not use are ignored."""

    SECTION: ClassVar[str] = "consistency"
    model: ConsistencyModel = spec("ssp", Choice(ConsistencyModel),
                                   "ssp | ksync | kbatch_sync | local_sgd")
    k: int | None = spec(None, Int(1, optional=True),
                         "gradients applied per round (ksync: <= workers.count; kbatch_sync: any)")
    period: int | None = spec(None, Int(1, optional=True), "local steps between averagings (local_sgd)")
    staleness: Staleness = spec(3, _Staleness(), '0 = BSP; "inf" = ASP')
    read_policy: ReadPolicy = spec("eager", Choice(ReadPolicy, aliases={"adversarial": "lazy"}),
                                   "eager | lazy (alias: adversarial) | push")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.read_policy == "lazy" and self.staleness == INF:
            raise ConfigError(
                "consistency.read_policy",
                "lazy",
                'with staleness = "inf" a lazy read guarantees only the worker\'s own writes; use eager or push for ASP',
            )
        if self.model in ("ksync", "kbatch_sync") and self.k is None:
            raise ConfigError("consistency.k", MISSING, f"model = {self.model!r} needs k, the gradients applied per round")
        if self.model == "local_sgd" and self.period is None:
            raise ConfigError("consistency.period", MISSING, "model = 'local_sgd' needs period, the local steps between averagings")


@dataclass(frozen=True, kw_only=True)
class WorkersConfig(_Section):
    """``[workers]``: how many, how fast."""

    SECTION: ClassVar[str] = "workers"
    count: int = spec(8, Int(1), "worker processes P")
    speed: SpeedModel = spec(_speeds.Exponential(1.0), SpeedRule(), "compute time of one iteration, seconds")
    stragglers: tuple[Straggler, ...] = spec(
        (), ListOf(Record(Straggler, "{ worker = 0, slowdown = 4.0 }"), "[ { worker = 0, slowdown = 4.0 } ]"),
        "persistent slowdowns of single workers")
    transient: Transient | None = spec(
        None, Record(Transient, "{ probability = 0.1, factor = 4.0, duration = 1 }", optional=True),
        "random slowdowns of any worker")
    compute: SpeedModel | None = spec(None, SpeedRule(optional=True),
                                      "the real computation's own time (calibration); the simulator adds it")
    warmup: float = spec(0.0, Num(0.0), "seconds added to every worker's first iteration (a real run's start-up; calibration)")

    def __post_init__(self) -> None:
        super().__post_init__()
        seen: set[int] = set()
        for i, s in enumerate(self.stragglers):
            if s.worker >= self.count:
                raise ConfigError(f"workers.stragglers[{i}].worker", s.worker, f"must be < workers.count = {self.count}")
            if s.worker in seen:
                raise ConfigError(f"workers.stragglers[{i}].worker", s.worker, "appears twice")
            seen.add(s.worker)
        if isinstance(self.speed, TraceTimes) and self.speed.times.shape[0] != self.count:
            n = self.speed.times.shape[0]
            found = f"holds workers 0..{n - 1}" if self.speed.layout == "long" else f"has {n} rows"
            raise ConfigError("workers.speed.file", str(self.speed.file),
                              f"{found} but workers.count = {self.count} (one row per worker, or in a header file "
                              f"worker indices 0..workers.count - 1)")


@dataclass(frozen=True, kw_only=True)
class NetworkConfig(_Section):
    """``[network]``: message cost ``latency + bytes / bandwidth``; the server's own time.

    A pull costs ``latency + bytes / bandwidth``; a push the same plus ``receive_time`` (what a
    real server spends taking a message in before it can act on it: its receiving thread's
    hand-off to the main loop, measured by ``sspsim calibrate``).

    The server is one thread: it applies an update in ``apply_time``, then sends the reads that
    update lets through, ``serve_time`` each, one after another (the workers the commit released,
    in release order, then the pusher's own next read), before it takes the next push.  Either
    being positive is server **contention**: commits and reads queue for the server."""

    SECTION: ClassVar[str] = "network"
    latency: float = spec(0.0, Num(0.0), "seconds per message")
    bandwidth: float = spec(INF, Num(0.0, strict=True, allow_inf=True), 'bytes per second ("inf": free)')
    apply_time: float = spec(0.0, Num(0.0), "seconds the server takes to apply one update")
    message_bytes: int | None = spec(None, Int(0, optional=True), "bytes per message (default: 4 per parameter, float32)")
    receive_time: float = spec(0.0, Num(0.0), "seconds a push costs beyond the message cost (the server taking it in)")
    serve_time: float = spec(0.0, Num(0.0), "seconds the server spends sending one read; reads are sent one at a time")

    @property
    def contention(self) -> bool:
        """Whether commits and reads queue for the server (``apply_time`` or ``serve_time`` > 0):
        then only the event engine is exact."""
        return self.apply_time > 0 or self.serve_time > 0

    def message_cost(self, n_params: int) -> float:
        """Seconds for one pull of the model: ``latency + bytes / bandwidth``."""
        size = self.message_bytes if self.message_bytes is not None else 4 * n_params
        return self.latency + (0.0 if self.bandwidth == INF else size / self.bandwidth)

    def push_cost(self, n_params: int) -> float:
        """Seconds for one push: the message cost plus ``receive_time``."""
        cost = self.message_cost(n_params)
        return cost + self.receive_time if self.receive_time else cost


@dataclass(frozen=True, kw_only=True)
class RealConfig(_Section):
    """``[real]``: the torch.distributed backend (``sspsim deploy``); the simulator ignores it."""

    SECTION: ClassVar[str] = "real"
    timeout: float = spec(60.0, Num(0.0, strict=True),
                          "seconds a worker may go silent mid-iteration before it is declared dead")
    checkpoint_every: int = spec(0, Int(0), "clocks between checkpoints of the server (0: none)")
    device: Device = spec("auto", Choice(Device), "auto | cpu | cuda: where workers compute")
    dtype: Dtype = spec("float64", Choice(Dtype), "float64 | float32: the workers' arithmetic")
    inject_delays: bool = spec(True, Bool(), "[workers] speed and stragglers become sleeps on top of real compute")
    interface: str = spec("", Str(), 'network interface Gloo uses (GLOO_SOCKET_IFNAME), e.g. "eth0"; empty: loopback '
                          "for one machine, Gloo's own choice for several")


SECTIONS: dict[str, type[_Section]] = {
    cls.SECTION: cls
    for cls in (RunConfig, ProblemConfig, OptimizerConfig, ConsistencyConfig, WorkersConfig, NetworkConfig, RealConfig)
}
"""The sections of a config, in order: name -> class (its ruled fields are the keys)."""


def section_keys(section: str) -> tuple[str, ...]:
    """The keys of a section, e.g. ``section_keys("run")``."""
    return tuple(field_key(f) for f in ruled_fields(SECTIONS[section]))


@dataclass(frozen=True, kw_only=True)
class Config:
    """A whole run.  Build it with :func:`load_config`, :func:`config_from_dict` or in Python; every
    field and cross-field rule runs either way."""

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
        for name, cls in SECTIONS.items():
            value = getattr(self, name)
            if not isinstance(value, cls):
                raise ConfigError(name, value, f"must be a {cls.__name__} ([{name}])")
        for name in METADATA_SECTIONS:
            table = getattr(self, name)
            if table is not None and not isinstance(table, Mapping):
                raise ConfigError(name, table, f"must be a table ([{name}])")
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
        for name in SECTIONS:
            section = getattr(self, name)
            table: dict[str, Any] = {}
            for f in ruled_fields(section):
                v = field_rule(f).dump(getattr(section, f.name))
                if v is not None:
                    table[field_key(f)] = v
            out[name] = table
        for name in METADATA_SECTIONS:
            value = getattr(self, name)
            if value is not None:
                out[name] = _deep_copy(value)
        return out


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a config file, generated from the fields' rules (for editors:
    Taplo, VS Code).  Unknown sections and keys are rejected, as :func:`config_from_dict` does."""
    props: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        props[name] = object_schema(cls, (cls.__doc__ or "").strip().split("\n")[0])
    for name in METADATA_SECTIONS:
        props[name] = {"type": "object", "description": f"[{name}]: kept verbatim for the tools that read it"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sspsim config",
        "description": "A run of sspsim (DESIGN §Config); relative paths resolve against the config file's folder.",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }


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
    except (ValueError, UnicodeDecodeError) as exc:  # TOMLDecodeError, or an integer past the digit limit
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
        except RecursionError:
            raise InputError("--set", item, "the value is nested too deeply") from None
        except ValueError:  # an integer past Python's digit limit
            raise InputError("--set", item, "the value holds a number with too many digits") from None
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
    reject_unknown("", raw, [*SECTIONS, *METADATA_SECTIONS])
    meta: dict[str, Any] = {}
    for name in METADATA_SECTIONS:
        table = raw.get(name)
        if table is not None and not isinstance(table, Mapping):
            raise ConfigError(name, table, f"must be a table ([{name}])")
        meta[name] = None if table is None else _deep_copy(table)
    built: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(name, table, "must be a table ([" + name + "])")
        fields = ruled_fields(cls)
        reject_unknown(name + ".", table, [field_key(f) for f in fields])
        # parse here, where relative paths can be resolved; the section re-checks the built values
        kwargs = {f.name: field_rule(f).parse(f"{name}.{field_key(f)}", table[field_key(f)], base)
                  for f in fields if field_key(f) in table}
        if name == "problem":
            _default_factory_dir(kwargs, base)
        built[name] = cls(**kwargs)
    return Config(**built, **meta)


def _validate(c: Config) -> None:
    """Rules that involve more than one section, or the per-kind defaults of [problem]."""
    if c.problem.kind == "mlp" and c.problem.dim != 64:
        raise ConfigError("problem.dim", c.problem.dim, "mlp trains on 8x8 digit images: its input width is 64")
    if c.problem.kind == "mlp" and c.problem.classes != 10:
        raise ConfigError("problem.classes", c.problem.classes, "mlp trains on the 10 digit classes")
    if c.problem.kind == "logistic" and c.problem.noise is not None and c.problem.noise >= 0.5:
        raise ConfigError("problem.noise", c.problem.noise, "is the label-flip probability of logistic: must be < 0.5")
    speed = c.workers.speed
    if isinstance(speed, TraceTimes):
        cols = speed.times.shape[1]
        if cols < c.run.clocks:
            found = f"holds clocks 1..{cols}" if speed.layout == "long" else f"has {cols} columns"
            raise ConfigError("workers.speed.file", str(speed.file),
                              f"{found} but run.clocks = {c.run.clocks} (one column per clock, or in a header file "
                              "clocks 1..run.clocks)")
    model = c.consistency.model
    if model == "ksync" and c.consistency.k is not None and c.consistency.k > c.workers.count:
        raise ConfigError("consistency.k", c.consistency.k, f"ksync applies K of the P = {c.workers.count} workers' gradients: must be <= workers.count")
    if model != "ssp" and c.network.serve_time > 0:
        raise ConfigError("network.serve_time", c.network.serve_time,
                          f"reads queue for the server under SSP's gate only; for model = {model!r} count the server's "
                          "time in network.apply_time")
    if model != "ssp" and c.run.audit:
        raise ConfigError("run.audit", True, f"the audit log records SSP read sets; model = {model!r} has none")
    if model == "kbatch_sync" and isinstance(speed, TraceTimes):
        raise ConfigError("workers.speed", "trace", "kbatch_sync runs a varying number of iterations per worker and round; "
                          "replayed times have one column per clock")
    if model != "ssp" and c.run.engine == "batch":
        raise ConfigError("run.engine", "batch", f"the batch schedule is SSP's; model = {model!r} runs on its own round engine")
    if c.run.engine == "batch":
        if c.problem.kind != "none":
            raise ConfigError("run.engine", "batch", 'the batch schedule has no math; it needs problem.kind = "none"')
        if c.network.contention:
            raise ConfigError(
                "run.engine", "batch",
                "the batch schedule is exact only without server contention (network.apply_time = 0 and network.serve_time = 0)",
            )


def _deep_copy(raw: Any) -> Any:
    if isinstance(raw, Mapping):
        return {k: _deep_copy(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_deep_copy(v) for v in raw]
    return raw
