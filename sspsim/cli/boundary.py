"""Where the command line meets the outside world: exit codes, unreadable input, a closed stdout, crashes.

Exit codes: 0 ok, 1 a check violated, 2 bad input, 3 internal error (a bug: one line, the
traceback saved to a file), 130 interrupted.  ``sspsim.cli.main`` maps exceptions to these
codes; this module holds the pieces it uses.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from sspsim.errors import InputError

__all__ = [
    "EXIT_BUG", "EXIT_INPUT", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_VIOLATED", "UNREADABLE",
    "as_input_error", "closed_stdout_is_fine", "reading", "save_traceback", "unreadable_line",
]

EXIT_OK = 0
EXIT_VIOLATED = 1
EXIT_INPUT = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130

UNREADABLE: tuple[type[BaseException], ...] = (OSError, UnicodeDecodeError, RecursionError, OverflowError, MemoryError)
"""What reading a file the user named can raise besides ``InputError``: the file, not sspsim, is at fault."""


def as_input_error(exc: BaseException, field: str, value: Any, *, doing: str = "read") -> InputError:
    """One of ``UNREADABLE`` as the one-line ``InputError`` it stands for: ``field = value: why``."""
    where = getattr(exc, "filename", None)
    return InputError(field, value, _why(exc, doing, None if str(where) == str(value) else where))


def unreadable_line(exc: BaseException) -> str:
    """One of ``UNREADABLE`` that no command converted, as one line naming the file when it is known."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return str(as_input_error(exc, "file", str(exc.filename), doing="read or written"))
    if isinstance(exc, OSError):
        return f"input or output failed ({exc.strerror or exc})"
    return f"an input {_why(exc, 'read')}"


def _why(exc: BaseException, doing: str, where: Any = None) -> str:
    """The rule part of the line: what is wrong with the input (``where``: the file, when not the input itself)."""
    if isinstance(exc, OSError):
        detail = exc.strerror or str(exc)
        return f"cannot be {doing} ({detail if where is None else f'{where}: {detail}'})"
    if isinstance(exc, UnicodeDecodeError):
        return f"is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    if isinstance(exc, RecursionError):
        return "is nested too deeply to read"
    if isinstance(exc, OverflowError):
        return f"holds a number too large to use ({exc})"
    return "is too large to read into memory"


@contextmanager
def reading(field: str, value: Any) -> Iterator[None]:
    """Turn ``UNREADABLE`` errors raised inside the block into ``InputError(field, value, ...)``."""
    try:
        yield
    except UNREADABLE as exc:
        raise as_input_error(exc, field, value) from exc


class _PipeSafeStdout:
    """stdout that, once its reader has gone (``sspsim ... | head``), sends the rest to os.devnull.

    The command carries on and exits with its own code.  This is the Python documentation's
    recipe for SIGPIPE ("Note on SIGPIPE", ``signal`` module), applied at each write.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())  # what is still buffered drains into devnull
        except (OSError, ValueError):  # a stream without a file descriptor
            self._stream = open(os.devnull, "w")  # lives as long as the process
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def closed_stdout_is_fine() -> Iterator[None]:
    """Within the block, a closed stdout (BrokenPipeError) silences output instead of failing."""
    original = sys.stdout
    safe = _PipeSafeStdout(original)
    sys.stdout = safe  # type: ignore[assignment]
    try:
        yield
    finally:
        safe.flush()
        if sys.stdout is safe:
            sys.stdout = original


def save_traceback(exc: BaseException, argv: Sequence[str]) -> str:
    """Write the traceback of ``exc`` to a new file in the temp folder; return its path (or why not)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        fd, name = tempfile.mkstemp(prefix=f"sspsim-crash-{stamp}-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"sspsim {_version()}, Python {sys.version.split()[0]} on {sys.platform}\n")
            f.write(f"command: sspsim {' '.join(argv)}\n\n")
            f.write("".join(traceback.format_exception(exc)))
    except OSError as err:
        return f"nowhere ({err.strerror or err})"
    return str(Path(name))


def _version() -> str:
    try:
        from sspsim import __version__
    except Exception:  # the crash report must not crash
        return "(unknown version)"
    return __version__
