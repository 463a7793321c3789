"""Field rules: each config key carries the one rule that parses, checks and describes it (DESIGN §Config).

A :class:`Rule` turns a value, in its TOML form or as already built in Python, into the
field's normal form, or raises :class:`~sspsim.errors.ConfigError` naming the field, the value
and the rule; it gives the value back in TOML form (:meth:`Rule.dump`) and says what it
accepts as JSON Schema, draft 2020-12 (:meth:`Rule.schema`).  :func:`spec` attaches a rule and
a description to a dataclass field; :func:`check_fields` runs them (from ``__post_init__``).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from sspsim.errors import MISSING, ConfigError

__all__ = [
    "Bool",
    "Choice",
    "Int",
    "ListOf",
    "Num",
    "Record",
    "Rule",
    "Str",
    "check_fields",
    "field_key",
    "field_rule",
    "object_schema",
    "reject_unknown",
    "ruled_fields",
    "spec",
]

HERE = Path(".")


class Rule:
    """How one key is parsed, checked, written back and described."""

    optional: bool = False  # None (the key left out) is accepted

    def parse(self, where: str, value: Any, base: Path = HERE) -> Any:
        """The normal form of ``value`` (TOML form or built); ConfigError if it breaks the rule."""
        if self.optional and value is None:
            return None
        return self._parse(where, value, base)

    def _parse(self, where: str, value: Any, base: Path) -> Any:
        raise NotImplementedError

    def dump(self, value: Any) -> Any:
        """The TOML form of a normal value (None: leave the key out)."""
        return value

    def schema(self) -> dict[str, Any]:
        """JSON Schema (draft 2020-12) of the TOML form."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Int(Rule):
    """An integer (not a boolean), at least ``minimum``."""

    minimum: int | None = None
    optional: bool = False

    def _parse(self, where: str, v: Any, base: Path) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(where, v, "must be an integer")
        if self.minimum is not None and v < self.minimum:
            raise ConfigError(where, v, f"must be >= {self.minimum}")
        return int(v)

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer"}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        return out


@dataclasses.dataclass(frozen=True)
class Num(Rule):
    """A finite number in a range (``strict``: bounds excluded); ``allow_inf``: also ``"inf"`` (= +inf)."""

    minimum: float | None = None
    strict: bool = False
    maximum: float | None = None
    strict_max: bool = False
    allow_inf: bool = False
    optional: bool = False

    def _parse(self, where: str, v: Any, base: Path) -> float:
        if self.allow_inf and (v == "inf" or (isinstance(v, float) and v == math.inf)):
            return math.inf
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(_as_float(v)):
            raise ConfigError(where, v, "must be a number" + (' or "inf"' if self.allow_inf else ""))
        if math.isinf(_as_float(v)):
            raise ConfigError(where, v, "must be finite")
        lo, hi = self.minimum, self.maximum
        if lo is not None and (v < lo or (self.strict and v == lo)):
            raise ConfigError(where, v, f"must be {'>' if self.strict else '>='} {lo:g}")
        if hi is not None and (v > hi or (self.strict_max and v == hi)):
            raise ConfigError(where, v, f"must be {'<' if self.strict_max else '<='} {hi:g}")
        return float(v)

    def dump(self, value: Any) -> Any:
        return "inf" if isinstance(value, float) and math.isinf(value) else value

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "number"}
        if self.minimum is not None:
            out["exclusiveMinimum" if self.strict else "minimum"] = self.minimum
        if self.maximum is not None:
            out["exclusiveMaximum" if self.strict_max else "maximum"] = self.maximum
        return {"anyOf": [out, {"const": "inf"}]} if self.allow_inf else out


def _as_float(v: int | float) -> float:
    """``v`` as a float; an integer beyond the float range (``10**400``) becomes inf, as its TOML float would."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


class Choice(Rule):
    """One of the values of a ``Literal[...]`` type; ``aliases`` maps other accepted names to them."""

    def __init__(self, literal: Any, *, aliases: Mapping[str, str] | None = None, optional: bool = False) -> None:
        self.choices: tuple[str, ...] = get_args(literal)
        self.aliases = dict(aliases or {})
        self.optional = optional

    def _parse(self, where: str, v: Any, base: Path) -> str:
        if isinstance(v, str) and v in self.aliases:
            return self.aliases[v]
        if not isinstance(v, str) or v not in self.choices:
            raise ConfigError(where, v, f"must be one of {', '.join(self.choices)}")
        return v

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": [*self.choices, *self.aliases]}


@dataclasses.dataclass(frozen=True)
class Bool(Rule):
    """``true`` or ``false``."""

    def _parse(self, where: str, v: Any, base: Path) -> bool:
        if not isinstance(v, bool):
            raise ConfigError(where, v, "must be true or false")
        return v

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclasses.dataclass(frozen=True)
class Str(Rule):
    """Any string."""

    def _parse(self, where: str, v: Any, base: Path) -> str:
        if not isinstance(v, str):
            raise ConfigError(where, v, "must be a string")
        return v

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}


class Record(Rule):
    """A table whose keys are the ruled fields of dataclass ``cls`` (those without a default are required)."""

    def __init__(self, cls: type, example: str, *, optional: bool = False) -> None:
        self.cls, self.example, self.optional = cls, example, optional

    def _parse(self, where: str, v: Any, base: Path) -> Any:
        if isinstance(v, self.cls):
            v = self.dump(v)
        if not isinstance(v, Mapping):
            raise ConfigError(where, v, f"must be a table {self.example}")
        fields = ruled_fields(self.cls)
        reject_unknown(where + ".", v, [field_key(f) for f in fields])
        kwargs = {}
        for f in fields:
            key = field_key(f)
            if key in v:
                kwargs[f.name] = field_rule(f).parse(f"{where}.{key}", v[key], base)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise missing(f"{where}.{key}")
        return self.cls(**kwargs)

    def dump(self, value: Any) -> Any:
        if value is None:
            return None
        return {field_key(f): field_rule(f).dump(getattr(value, f.name)) for f in ruled_fields(value)}

    def schema(self) -> dict[str, Any]:
        return object_schema(self.cls, (self.cls.__doc__ or "").strip().split("\n")[0])


class ListOf(Rule):
    """A list (in Python, a list or tuple) of items that each follow ``item``; the normal form is a tuple."""

    def __init__(self, item: Rule, example: str) -> None:
        self.item, self.example = item, example

    def _parse(self, where: str, v: Any, base: Path) -> tuple[Any, ...]:
        if not isinstance(v, (list, tuple)):
            raise ConfigError(where, v, f"must be a list like {self.example}")
        return tuple(self.item.parse(f"{where}[{i}]", x, base) for i, x in enumerate(v))

    def dump(self, value: Any) -> Any:
        return [self.item.dump(x) for x in value]

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.item.schema()}


def object_schema(cls: type, description: str = "", *, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """JSON Schema of a table whose keys are the ruled fields of ``cls``; no other keys allowed."""
    props: dict[str, Any] = dict(extra or {})
    required = [k for k, s in props.items() if s.pop("_required", False)]
    for f in ruled_fields(cls):
        s = dict(field_rule(f).schema())
        if f.metadata.get("doc"):
            s["description"] = f.metadata["doc"]
        if f.default is not dataclasses.MISSING and f.default is not None:
            dumped = field_rule(f).dump(f.default)
            if isinstance(dumped, (int, float, str, bool, list, dict)):
                s["default"] = dumped
        props[field_key(f)] = s
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(field_key(f))
    out: dict[str, Any] = {"type": "object"}
    if description:
        out["description"] = description.replace("``", "")
    out["properties"] = props
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    return out


def spec(default: Any = dataclasses.MISSING, rule: Rule | None = None, doc: str = "", *, key: str | None = None,
         default_factory: Any = dataclasses.MISSING, compare: bool = True, repr: bool = True) -> Any:
    """A dataclass field with its rule, its description and (if it differs from the attribute) its TOML key."""
    metadata = {"rule": rule, "doc": doc, "key": key}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata, compare=compare,
                             repr=repr)


def ruled_fields(cls_or_obj: Any) -> tuple[dataclasses.Field[Any], ...]:
    """The fields of a dataclass that carry a rule, in declaration order."""
    return _ruled_fields(cls_or_obj if isinstance(cls_or_obj, type) else type(cls_or_obj))


@functools.cache
def _ruled_fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(cls) if f.metadata.get("rule") is not None)


def field_rule(f: dataclasses.Field[Any]) -> Rule:
    return f.metadata["rule"]


def field_key(f: dataclasses.Field[Any]) -> str:
    """The TOML key of a field (its attribute name unless :func:`spec` gave another)."""
    return f.metadata.get("key") or f.name


def check_fields(obj: Any, prefix: str, base: Path = HERE) -> None:
    """Run every field's rule on a (frozen) dataclass instance and store the normal forms."""
    for f in ruled_fields(obj):
        value = field_rule(f).parse(prefix + field_key(f), getattr(obj, f.name), base)
        object.__setattr__(obj, f.name, value)


def reject_unknown(prefix: str, table: Mapping[str, Any], known: Any) -> None:
    """ConfigError for the first key of ``table`` not in ``known``, suggesting the closest known key."""
    known = list(known)
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            what = "section" if not prefix else "key"
            value = table[key] if not isinstance(table[key], Mapping) else "{...}"
            raise ConfigError(f"{prefix}{key}", value, f"unknown {what}{hint}")


def missing(where: str, rule: str = "required") -> ConfigError:
    return ConfigError(where, MISSING, rule)
