"""Output folders are sacred (DESIGN §Command line): the one place for the rules.

sspsim writes only into a folder that does not exist (an empty one counts as absent) or that it
created itself, recognised by the marker file :data:`MARKER` it writes into every folder it
makes.  Replacing an sspsim folder needs ``force`` and is atomic: the new folder is built in a
hidden sibling ``.NAME.partial-<pid>-<rand>``; :func:`commit` renames the old folder aside
(``.NAME.old-<pid>-<rand>``), renames the new one in, then removes the old one, so at every
instant one complete folder exists.  Siblings left by a process that died (its pid is in the
name) are cleaned by the next write into the same parent: partial folders are removed, an old
folder whose replacement never arrived is renamed back.  Nothing else is ever touched.

Files (``report -o``, ``calibrate --out``) carry :data:`FILE_MARK` in their header; an existing
file without it is never overwritten unless ``force``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sspsim.errors import InputError

__all__ = [
    "FILE_MARK", "FORMAT", "MARKER", "check_file", "check_folder", "check_name", "clean_stale", "commit", "discard",
    "is_sspsim_file", "lock", "read_marker", "staging", "write_marker",
]

MARKER = ".sspsim"
"""The marker file inside every folder sspsim creates (JSON: format, kind, and kind-specific fields)."""

FORMAT = "sspsim-outdir/1"
FILE_MARK = "Written by sspsim"
"""Text in the first lines of every file sspsim writes (an HTML or TOML comment)."""

LOCK = ".sspsim.lock"
_SIBLING = re.compile(r"^\.(?P<name>.+)\.(?P<what>partial|old)-(?P<pid>\d+)-[0-9a-f]+$")


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of ``folder`` if sspsim created it, else None."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def write_marker(folder: str | Path, kind: str, **fields: Any) -> None:
    """Mark ``folder`` as sspsim's (atomically: a reader sees the old marker or the new one)."""
    folder = Path(folder)
    tmp = folder / f"{MARKER}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({"format": FORMAT, "kind": kind, **fields}, indent=2) + "\n")
    os.replace(tmp, folder / MARKER)


def _is_empty(folder: Path) -> bool:
    """Empty, or holding only a lock file (a folder another sspsim process is about to mark)."""
    return folder.is_dir() and all(p.name == LOCK for p in folder.iterdir())


NAME_MAX = 255
"""Bytes in one file name: the limit of Linux, macOS and Windows file systems."""
STAGING_SUFFIX = 40
"""Bytes the hidden staging sibling adds to an output's name (``.NAME.partial-PID-HEX``)."""


def check_name(out: str | Path, option: str = "--out") -> None:
    """InputError when a part of ``out`` is longer than a file system takes (the last part leaves room
    for the staging sibling's suffix)."""
    parts = Path(out).parts
    for i, part in enumerate(parts):
        limit = NAME_MAX - (STAGING_SUFFIX if i == len(parts) - 1 else 0)
        size = len(os.fsencode(part))
        if size > limit:
            raise InputError(option, str(out), f"a part of it is {size} bytes long; file names can be at most "
                             f"{limit} bytes here ({NAME_MAX}, the file system's limit, less room for a staging copy)")


def check_folder(out: str | Path, *, force: bool, option: str = "--out") -> dict[str, Any] | None:
    """May sspsim write ``out``?  None: it is absent or empty.  A marker: it is sspsim's and
    ``force`` allows replacing it.  Otherwise InputError, one line, and nothing touched."""
    out = Path(out)
    check_name(out, option)
    if not out.exists():
        return None
    if not out.is_dir():
        raise InputError(option, str(out), "exists and is a file, not a folder; choose a new path")
    if _is_empty(out):
        return None
    marker = read_marker(out)
    if marker is None:
        raise InputError(option, str(out), f"exists and was not created by sspsim (no {MARKER} marker); "
                         "sspsim never writes into it: choose a new path")
    if not force:
        raise InputError(option, str(out), f"holds an sspsim {marker.get('kind', 'folder')} already; "
                         "add --force to replace it, or choose a new path")
    return marker


def check_file(path: str | Path, *, force: bool, option: str = "--out") -> None:
    """May sspsim write the file ``path``?  Yes if it is absent, or if sspsim wrote it and ``force`` is
    given: the rule of output folders, for files.  A file sspsim did not write is never overwritten."""
    path = Path(path)
    check_name(path, option)
    if path.is_dir():
        raise InputError(option, str(path), "is a folder; give the file to write")
    if not path.exists():
        return
    if not is_sspsim_file(path):
        raise InputError(option, str(path), "exists and was not written by sspsim; choose a new path "
                         "(sspsim never overwrites files it did not write)")
    if not force:
        raise InputError(option, str(path), "exists (written by sspsim); add --force to replace it")


def is_sspsim_file(path: str | Path) -> bool:
    """Does the file carry :data:`FILE_MARK` in its first 4 KiB?"""
    try:
        with open(path, "rb") as fh:
            return FILE_MARK.encode() in fh.read(4096)
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:  # pragma: no cover - platforms where signal 0 is not supported
        return True
    return True


def clean_stale(parent: str | Path) -> None:
    """Remove the partial folders of dead sspsim processes in ``parent``; rename an old folder
    back in place when its replacement never arrived.  Only names sspsim itself makes are touched."""
    parent = Path(parent)
    if not parent.is_dir():
        return
    entries = sorted(parent.iterdir(), key=lambda p: p.name)
    for entry in entries:
        m = _SIBLING.match(entry.name)
        if m is None or not entry.is_dir() or _pid_alive(int(m["pid"])):
            continue
        if m["what"] == "partial":
            shutil.rmtree(entry, ignore_errors=True)
            continue
        target = parent / m["name"]
        with contextlib.suppress(OSError):
            if not target.exists() or _is_empty(target):
                os.rename(entry, target)  # the crash came between the two renames: the old folder is the run
                continue
        shutil.rmtree(entry, ignore_errors=True)


def _sibling(out: Path, what: str) -> Path:
    return out.parent / f".{out.name}.{what}-{os.getpid()}-{secrets.token_hex(4)}"


def staging(out: str | Path) -> Path:
    """A fresh hidden folder beside ``out`` to build it in (stale siblings are cleaned first)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out.parent)
    stage = _sibling(out, "partial")
    stage.mkdir()
    return stage


def discard(stage: str | Path) -> None:
    """Remove a staging folder (after a failure)."""
    shutil.rmtree(stage, ignore_errors=True)


def commit(stage: str | Path, out: str | Path, *, force: bool, option: str = "--out") -> None:
    """Rename the finished ``stage`` to ``out``.  An sspsim folder already there (``force``) is
    renamed aside first and removed last.  If another process wrote ``out`` meanwhile and
    ``force`` is not given, or ``out`` became something sspsim did not create, InputError (the
    stage is removed, nothing else touched)."""
    stage, out = Path(stage), Path(out)
    for _ in range(5):
        try:
            os.rename(stage, out)  # succeeds when out is absent or an empty folder
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                discard(stage)
                raise
        if read_marker(out) is None:
            discard(stage)
            raise InputError(option, str(out), "was created meanwhile by something other than sspsim; nothing written")
        if not force:
            discard(stage)
            raise InputError(option, str(out), "another sspsim process wrote it meanwhile; nothing written "
                             "(add --force to replace it)")
        old = _sibling(out, "old")
        try:
            os.rename(out, old)
        except FileNotFoundError:  # another process moved it first: try again
            continue
        try:
            os.rename(stage, out)
        except OSError:
            with contextlib.suppress(OSError):
                os.rename(old, out)
            continue
        shutil.rmtree(old, ignore_errors=True)
        return
    discard(stage)
    raise InputError(option, str(out), "other processes kept writing it; nothing written")


@contextlib.contextmanager
def lock(folder: str | Path, *, option: str = "--out") -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (a folder written in place: a sweep, a real run);
    a second process gets InputError at once.  The lock dies with its process."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no advisory locks on this platform
        yield
        return
    fd = os.open(Path(folder) / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(option, str(folder), "another sspsim process is writing it now; wait for it to finish") from None
        yield
    finally:
        os.close(fd)
