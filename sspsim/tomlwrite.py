"""Write a config (the TOML-shaped dict of :meth:`sspsim.Config.to_dict`) back as TOML."""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps"]


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return '"inf"' if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string is a JSON string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def dumps(config: dict[str, dict[str, Any]], *, header: str = "") -> str:
    """Sections as ``[section]`` tables, nested tables inline.

    >>> print(dumps({"run": {"seed": 0}, "workers": {"speed": {"kind": "constant", "value": 1.0}}}))
    [run]
    seed = 0
    <BLANKLINE>
    [workers]
    speed = { kind = "constant", value = 1.0 }
    <BLANKLINE>
    """
    lines = [f"# {line}" for line in header.splitlines()] + ([""] if header else [])
    for section, table in config.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_value(value)}" for key, value in table.items() if value is not None]
        lines.append("")
    return "\n".join(lines)
