"""Exceptions.  Every message names the field, the value and the rule, on one line."""

from __future__ import annotations

from typing import Any

__all__ = ["MISSING", "ConfigError", "InputError", "ProtocolError", "SSPSimError"]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()
"""The value shown for a required field that is absent."""


class SSPSimError(Exception):
    """Base class of every error sspsim raises on purpose."""


class InputError(SSPSimError, ValueError):
    """Input that sspsim cannot use: a config, a trace file, a run directory, a command line.

    ``field``, ``value`` and ``rule`` are kept so tests and tools can assert on the pieces;
    ``str(error)`` is the one line a user sees.
    """

    def __init__(self, field: str, value: Any, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{_one_line(field)} = {_show(value)}: {_one_line(rule)}")

    def __reduce__(self) -> tuple[Any, ...]:  # pickles across processes (a sweep's pool) with its pieces
        return (self.__class__, (self.field, self.value, self.rule))


class ConfigError(InputError):
    """A configuration value breaks a rule."""


class ProtocolError(SSPSimError, RuntimeError):
    """A backend asked the SSP controller for something the protocol forbids (a bug, not bad input)."""


def _show(value: Any) -> str:
    """repr of the value; long ones keep their start and their end (a path keeps its file name)."""
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's digit limit (sys.get_int_max_str_digits)
        text = f"<an integer of {value.bit_length()} bits>" if isinstance(value, int) else f"<{type(value).__name__}>"
    return text if len(text) <= 100 else f"{text[:30]}...{text[-60:]}"


def _one_line(text: str) -> str:
    """``text`` with unprintable characters (line breaks among them) escaped, so the message stays one line."""
    text = str(text)
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
