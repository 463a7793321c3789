"""Memory a run will need, estimated from its config before anything is allocated.

A config can ask for more than any machine holds (``workers.count = 1000000`` with
``run.clocks = 10**9``, ``problem.dim`` of 30 digits, ``problem.hidden = [2**40]``).  Numpy
would then allocate until the machine runs out.  :func:`check_memory` refuses such a run up
front with one :class:`~sspsim.errors.ConfigError` naming the fields that drive the size.

The estimate is an upper-bound-minded sum of the arrays a run holds at once (bytes):

- per iteration (``P x T`` of them): the compute times and the recording of the schedule
  (about a dozen float64/int64 arrays) and, with ``run.trace = "full"``, the trace table;
  a streaming summary-only run holds ``P (s + 2)`` iterations instead (``streaming=True``);
- the training data: ``samples x dim`` float64 values (a few copies while it is generated),
  and ``dim x dim`` for the spectrum of the convex problems;
- the parameters: ``n_params`` float64 values per worker and a few for the server;
- the audit (``run.audit``): parameters read and update applied, ``2 P T n_params`` values,
  twice (the arrays are reordered before they are written).
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sspsim.errors import ConfigError

if TYPE_CHECKING:
    from sspsim.config import Config

__all__ = ["Need", "available_memory", "check_memory", "estimate", "n_params"]

FLOAT = 8
PER_ITERATION = 768
"""Bytes per iteration of a run that records its schedule (compute times, the recording, the event log);
with PER_TRACE_ROW, 1 KiB: 100 workers x 2000 clocks of the event engine peaked at 199 MiB (measured)."""
PER_TRACE_ROW = 256
"""Extra bytes per iteration for the trace table and its CSV."""
DATA_COPIES = 3
"""Copies of the training data alive while it is generated and normalised."""
DIGITS = (1797, 64)  # scikit-learn's 8x8 digits: samples x pixels


@dataclass(frozen=True)
class Need:
    """One part of a run's memory: what it is, the fields that size it, and bytes (an exact integer)."""

    what: str
    fields: tuple[str, ...]
    bytes: int


def n_params(config: Config) -> int:
    """Number of model parameters the problem of ``config`` trains (0 for ``kind = "none"``)."""
    p = config.problem
    if p.kind == "none":
        return 0
    if p.kind in ("mlp", "timit_like"):
        first = DIGITS[1] if p.kind == "mlp" else int(p.dim or 0)
        widths = (first, *(p.hidden or ()), int(p.classes or 0))
        return sum(n_out * (n_in + 1) for n_in, n_out in itertools.pairwise(widths))
    return int(p.dim or 0)


def estimate(config: Config, *, streaming: bool = False, schedule: bool = True) -> list[Need]:
    """The parts of the memory a run of ``config`` needs, largest first.

    ``streaming``: the run is a summary-only timing run that streams its schedule
    (it holds about ``P (s + 2)`` iterations at once, whatever ``run.clocks``).
    ``schedule=False``: the problem's data and parameters only (a checker replaying a run whose
    schedule it reads from the trace).
    """
    P, T = config.workers.count, config.run.clocks
    p = config.problem
    needs: list[Need] = []
    if not schedule:
        pass
    elif streaming:
        s = config.consistency.staleness
        window = T if math.isinf(s) else min(T, int(s) + 2)
        needs.append(Need("the streamed schedule", ("workers.count", "consistency.staleness"), P * window * PER_ITERATION))
    else:
        per = PER_ITERATION + (PER_TRACE_ROW if config.run.trace == "full" else 0)
        needs.append(Need("the schedule and its trace", ("workers.count", "run.clocks"), P * T * per))
    d = n_params(config)
    if p.kind in ("logistic", "least_squares", "nonconvex", "quadratic"):
        needs.append(Need("the training data", ("problem.samples", "problem.dim"), DATA_COPIES * FLOAT * p.samples * d))
        if p.kind != "quadratic":
            needs.append(Need("the spectrum of the data", ("problem.dim",), 2 * FLOAT * d * d))
    elif p.kind == "timit_like":
        needs.append(Need("the training data", ("problem.samples", "problem.dim"),
                          DATA_COPIES * FLOAT * p.samples * int(p.dim or 0)))
        widest = max((*(p.hidden or ()), int(p.classes or 0), int(p.dim or 0)))
        needs.append(Need("the activations", ("problem.samples", "problem.hidden"),
                          2 * FLOAT * max(p.samples, int(p.eval_samples or 0)) * widest * (len(p.hidden or ()) + 1)))
    elif p.kind == "mlp":
        widest = max((*(p.hidden or ()), DIGITS[1]))
        needs.append(Need("the activations", ("problem.hidden",), 2 * FLOAT * DIGITS[0] * widest * (len(p.hidden or ()) + 1)))
    if p.kind != "none":  # sample indices, then a batch of rows of the data
        width = DIGITS[1] if p.kind == "mlp" else max(1, int(p.dim or 0))
        needs.append(Need("a minibatch", ("problem.batch_size",), 3 * FLOAT * p.batch_size * (width + 1)))
    if d:
        fields = ("problem.hidden",) if p.kind in ("mlp", "timit_like") else ("problem.dim",)
        needs.append(Need("the parameters", ("workers.count", *fields), 4 * FLOAT * d * (P + 4)))
        if config.run.audit:
            needs.append(Need("the audit", ("run.audit", "workers.count", "run.clocks", *fields), 4 * FLOAT * P * T * d))
    return sorted(needs, key=lambda n: -n.bytes)


def available_memory() -> int:
    """Bytes this machine can give a new run: MemAvailable of /proc/meminfo, else the physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):  # not on this platform: do not refuse
        return 1 << 62


def check_memory(config: Config, *, streaming: bool = False, schedule: bool = True, copies: int = 1,
                 available: int | None = None) -> int:
    """The estimated bytes of a run of ``config`` (times ``copies`` run at once); ConfigError naming
    the fields of the largest part when that exceeds ``available`` (default: :func:`available_memory`)."""
    needs = estimate(config, streaming=streaming, schedule=schedule)
    if not needs:
        return 0
    total = copies * sum(n.bytes for n in needs)
    limit = available_memory() if available is None else available
    if total > limit:
        top = needs[0]
        values = " x ".join(_value(config, f) for f in top.fields)
        at_once = f" ({copies} runs at once)" if copies > 1 else ""
        raise ConfigError(
            " x ".join(top.fields), values,
            f"the run needs about {_size(total)} of memory{at_once}, {_size(top.bytes)} of it for {top.what}, "
            f"but this machine has {_size(limit)} available; make these smaller",
        )
    return total


def _value(config: Config, field: str) -> str:
    section, _, key = field.partition(".")
    value = getattr(getattr(config, section), key)
    text = str(list(value) if isinstance(value, tuple) else value)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} chars)"


def _size(n: int) -> str:
    """Bytes in binary units, e.g. ``1.5 GiB``; beyond PiB as a power of ten (``10^43 bytes``)."""
    if n >= 1024**6:
        return f"10^{len(str(int(n))) - 1} bytes"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"
