"""Configs shipped inside the package, so the documented snippets run from any folder.

``examples/design.toml`` in the repository is a link to the bundled ``design.toml``: one file,
reachable both from a checkout and from an installed wheel.

>>> import sspsim
>>> sspsim.example("design.toml").name
'design.toml'
>>> sspsim.load_config(sspsim.example("design.toml")).workers.count
8
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sspsim.errors import InputError

__all__ = ["example", "examples"]


def examples() -> list[str]:
    """Names of the bundled configs."""
    return sorted(p.name for p in resources.files("sspsim").joinpath("data").iterdir() if p.name.endswith(".toml"))


def example(name: str) -> Path:
    """Path of the bundled config ``name`` (e.g. ``"design.toml"``, ``"demo.toml"``)."""
    if name not in examples():
        raise InputError("example", name, f"is not a bundled config; choose one of {', '.join(examples())}")
    return Path(str(resources.files("sspsim").joinpath("data", name)))
