"""The ranks of a one-machine run as child processes of ``sspsim deploy``, and their faults.

Why not ``torchrun --standalone``: its rendezvous and agent stores are ``TCPStore`` servers,
which listen on every interface (``::``) whatever host they are given, unauthenticated.  Here
the ranks meet through a ``FileStore`` in a private temporary folder (mode 0700): nothing
listens on the network but Gloo, which binds to loopback (``GLOO_SOCKET_IFNAME``).

Faults (issue 9):

- the ranks form one process group of their own (the terminal's Ctrl-C reaches the launcher alone), and each dies with the launcher
  (``PR_SET_PDEATHSIG``), so ``kill -9`` of ``sspsim deploy`` leaves nothing behind;
- a rank that exits with an error, or stays stopped (SIGSTOP) for ``real.timeout`` seconds,
  ends the run: the server is told (SIGTERM) and writes run.json incomplete, the rest are killed;
- Ctrl-C (SIGINT to the launcher) or SIGTERM is forwarded to the group as SIGINT; :class:`Interrupted` follows.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["STORE_ENV", "Interrupted", "Outcome", "die_with_parent", "run_ranks"]

STORE_ENV = "SSPSIM_STORE"
"""The FileStore path the ranks rendezvous through (set by :func:`run_ranks`; unset under torchrun)."""

POLL = 0.05  # seconds between looks at the ranks
GRACE = 1.0  # seconds the others get to end after the server has written its run.json
PR_SET_PDEATHSIG = 1


class Interrupted(Exception):
    """The launcher got SIGINT; the ranks are gone."""


@dataclass(frozen=True)
class Outcome:
    """How the ranks ended: the first failure observed (None when none failed) and the exit codes."""

    cause: str | None
    codes: list[int | None]

    @property
    def code(self) -> int:
        """One exit status for the run: the server's, else the first failed rank's."""
        bad = [c for c in self.codes if c]
        return self.codes[0] if self.codes[0] else (bad[0] if bad else 0)  # type: ignore[return-value]


def die_with_parent(parent: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere).

    ``parent``: the pid it must still have; if it is already gone the process exits now.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no prctl
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def who(rank: int, baseline: bool = False) -> str:
    """``rank 2 (worker 1)``: a rank named by its role."""
    if baseline:
        return f"rank {rank} (worker {rank})"
    return f"rank {rank} ({'the server' if rank == 0 else f'worker {rank - 1}'})"


def _ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP, SIGTSTP): state T in /proc/PID/stat."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False


def run_ranks(
    argv: list[str], *, world: int, env: dict[str, str], log: Path, timeout: float, baseline: bool = False,
) -> Outcome:
    """Start ``world`` processes ``python -m sspsim.real.main ARGV`` (ranks 0..world-1), watch them, return
    how they ended.  Output goes to ``log``.  Raises :class:`Interrupted` on SIGINT, after the ranks ended.

    Rank 0 (the server, unless ``baseline``) reports a failure itself: when another rank fails or
    stays stopped ``timeout`` seconds it gets SIGTERM and writes run.json; once it has exited the
    others get SIGKILL (after ``GRACE`` seconds when it exited 0).
    """
    store = Path(tempfile.mkdtemp(prefix="sspsim-store-"))  # 0700: only this user reaches the store
    launcher = os.getpid()
    procs: list[subprocess.Popen[bytes]] = []
    previous = None
    if threading.current_thread() is threading.main_thread():  # plain kill (SIGTERM) stops the run like Ctrl-C
        previous = signal.signal(signal.SIGTERM, _as_interrupt)
    try:
        with open(log, "ab") as out:
            for rank in range(world):
                rank_env = dict(env, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                                LOCAL_WORLD_SIZE=str(world), GROUP_RANK="0", **{STORE_ENV: str(store / "store")})
                group = procs[0].pid if procs else 0  # one process group of their own: no terminal signals
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "sspsim.real.main", *argv], env=rank_env, stdout=out,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=lambda: die_with_parent(launcher),
                    process_group=group,
                ))
            return _watch(procs, timeout=timeout, baseline=baseline)
    except KeyboardInterrupt:
        _interrupt(procs)
        raise Interrupted() from None
    finally:
        _kill(procs)
        shutil.rmtree(store, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _as_interrupt(signum, frame) -> None:  # type: ignore[no-untyped-def]
    raise KeyboardInterrupt()


def _watch(procs: list[subprocess.Popen[bytes]], *, timeout: float, baseline: bool) -> Outcome:
    writer = not baseline  # rank 0 writes run.json, failed or not (it exits 1 for an incomplete run)
    cause: str | None = None
    stopped_since: dict[int, float] = {}
    writer_exit: float | None = None
    while True:
        codes = [p.poll() for p in procs]
        now = time.time()
        if all(c is not None for c in codes):
            return Outcome(cause, codes)
        if cause is None:
            # exit 1 is a failure the server reports itself (its own, or a worker's lost connection to it)
            ignored = 1 if writer and codes[0] is not None else None
            failed: list[tuple[int, str]] = [(r, _ended(c)) for r, c in enumerate(codes)
                                             if c and not (writer and r == 0 and c == 1) and c != ignored]
            for r, p in enumerate(procs):
                if codes[r] is None and _stopped(p.pid):
                    if now - stopped_since.setdefault(r, now) > timeout:
                        failed.append((r, f"was stopped for more than {timeout:g} s"))
                else:
                    stopped_since.pop(r, None)
            if failed:
                r, how = min(failed)
                cause = f"{who(r, baseline)} {how}"
                if writer and r != 0 and codes[0] is None:
                    procs[0].send_signal(signal.SIGTERM)  # the server writes run.json incomplete and exits
                else:
                    _kill(procs)  # nobody left to write a record: the launcher marks the run
        if writer and codes[0] is not None and writer_exit is None:
            writer_exit = now
        if writer_exit is not None and (codes[0] != 0 or now - writer_exit > GRACE):
            _kill(procs)  # a failed run's record is written: the rest need not end on their own
        time.sleep(POLL)


def _interrupt(procs: list[subprocess.Popen[bytes]]) -> None:
    """Forward SIGINT to the ranks' group, wait for them a few seconds, then kill what is left."""
    if not procs:
        return
    try:
        os.killpg(procs[0].pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.time() + 5.0
    while time.time() < deadline and any(p.poll() is None for p in procs):
        try:
            time.sleep(POLL)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            break


def _kill(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGKILL every rank still alive (and whatever else is in their group), and reap them."""
    if any(p.poll() is None for p in procs):
        try:
            os.killpg(procs[0].pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
            except ProcessLookupError:
                pass
        p.wait()
