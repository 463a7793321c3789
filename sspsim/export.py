"""A run's timeline in the Chrome trace-event format, for Perfetto and chrome://tracing.

One track (thread) per worker and one for the server.  Iteration c of worker p is drawn from its
trace row as four consecutive slices (DESIGN §Run directory gives the instants):

* ``wait``: blocked at the gate, ``[read_time - wait_time, read_time]``;
* ``read``: the parameters travel to the worker, ``[read_time, start_time]``;
* ``compute``: ``[start_time, start_time + compute_time]``;
* ``push``: the update travels and queues at the server, ``[start_time + compute_time, commit_time]``.

The server track holds one ``apply`` slice per commit, ending at ``commit_time`` and lasting the
configured ``network.apply_time`` (an instant event when that is 0), and, when reads queue at the
server (``network.serve_time > 0``), one ``send`` slice per read, ``[read_time, read_time +
serve_time]``.  Slices of zero length are
left out.  Times are microseconds (``ts``/``dur``), the format's unit; ``args`` carry the row's
clock, staleness and visible clock so a click in the viewer shows them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sspsim.errors import InputError
from sspsim.outdir import FILE_MARK, check_file

if TYPE_CHECKING:  # pragma: no cover
    from sspsim.rundir import Run

__all__ = ["PHASES", "perfetto_events", "write_perfetto"]

PHASES = ("wait", "read", "compute", "push")
_US = 1e6
_SERVER_TID = 0  # workers are tids 1..P, so the server's track sorts first


def perfetto_events(run: Run) -> dict[str, Any]:
    """The trace-event JSON object (``{"traceEvents": [...], ...}``) of ``run``'s timeline."""
    trace = run.trace
    needed = {"worker", "clock", "read_time", "start_time", "commit_time", "wait_time", "compute_time"}
    missing = sorted(needed - set(trace.columns))
    if missing:
        raise InputError("trace.csv", str(run.path), f"lacks the columns {', '.join(missing)} a timeline needs")
    config = run.meta.get("config") or {}
    network = config.get("network") or {}
    apply_time = float(network.get("apply_time") or 0.0)
    serve_time = float(network.get("serve_time") or 0.0)
    pid = 1
    name = f"sspsim {run.meta.get('backend', 'run')}"
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": _SERVER_TID, "args": {"name": name}},
        {"ph": "M", "name": "thread_name", "pid": pid, "tid": _SERVER_TID, "args": {"name": "server"}},
    ]
    workers = sorted(int(w) for w in trace["worker"].unique())
    for w in workers:
        events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": w + 1, "args": {"name": f"worker {w}"}})
        events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": w + 1, "args": {"sort_index": w + 1}})

    extra = [c for c in ("staleness", "visible_clock", "update_staleness", "loss") if c in trace.columns]
    for row in trace.itertuples(index=False):
        r = row._asdict()
        w, clock = int(r["worker"]), int(r["clock"])
        end_compute = r["start_time"] + r["compute_time"]
        bounds = {
            "wait": (r["read_time"] - r["wait_time"], r["read_time"]),
            "read": (r["read_time"], r["start_time"]),
            "compute": (r["start_time"], end_compute),
            "push": (end_compute, r["commit_time"]),
        }
        args = {"clock": clock, **{c: _plain(r[c]) for c in extra}}
        for phase in PHASES:
            begin, end = bounds[phase]
            if not (math.isfinite(begin) and math.isfinite(end)):
                raise InputError("trace.csv", f"worker {w} clock {clock}", f"has a non-finite {phase} time")
            if end - begin < -1e-9 * max(1.0, abs(end)):
                raise InputError("trace.csv", f"worker {w} clock {clock}", f"ends its {phase} phase before it begins")
            if end - begin > 0:
                events.append({"ph": "X", "name": phase, "cat": "worker", "pid": pid, "tid": w + 1,
                               "ts": begin * _US, "dur": (end - begin) * _US, "args": args})
        commit = r["commit_time"]
        apply = {"name": f"apply w{w} c{clock}", "cat": "server", "pid": pid, "tid": _SERVER_TID, "args": args}
        if apply_time > 0:
            events.append({**apply, "ph": "X", "ts": max(commit - apply_time, 0.0) * _US, "dur": apply_time * _US})
        else:
            events.append({**apply, "ph": "i", "s": "t", "ts": commit * _US})
        if serve_time > 0:
            events.append({"name": f"send w{w} c{clock}", "cat": "server", "pid": pid, "tid": _SERVER_TID, "args": args,
                           "ph": "X", "ts": r["read_time"] * _US, "dur": serve_time * _US})
    other = {"generator": f"{FILE_MARK} export", "sspsim_run": str(run.path or "")}
    return {"otherData": other, "displayTimeUnit": "ms", "traceEvents": events}


def write_perfetto(run: Run, out: str | Path, *, force: bool = False) -> Path:
    """Write ``run``'s timeline to ``out`` (JSON); returns the path.  An existing ``out`` is replaced
    only if sspsim wrote it and ``force`` is given (sspsim.outdir's rule for files)."""
    out = Path(out)
    check_file(out, force=force, option="--perfetto")
    text = json.dumps(perfetto_events(run), separators=(",", ":"), allow_nan=False)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError("--perfetto", str(out), f"cannot be written ({exc.strerror or exc})") from None
    return out


def _plain(value: Any) -> Any:
    """A JSON-safe scalar (NaN losses of timing-only runs become null)."""
    v = value.item() if hasattr(value, "item") else value
    return None if isinstance(v, float) and not math.isfinite(v) else v
