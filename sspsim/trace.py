"""The trace: one record per iteration, the contract between engines, checks and reports.

Engines fill a :class:`Recording` (arrays indexed by worker and clock); :func:`trace_table`
turns it into the rows of ``trace.csv`` (DESIGN §Run directory), in commit order, and
:func:`summarize` into the summary figures of ``run.json``.  Times are seconds from the run's
start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "TRACE_COLUMNS", "Recording", "Totals", "objective_summary", "recording_totals", "summarize", "summary_figures",
    "trace_table",
]

TRACE_COLUMNS: tuple[str, ...] = (
    "worker",  # 0-based
    "clock",  # 1-based iteration number
    "t",  # index P (c - 1) + p + 1 in the round-robin reference order (drives inv_sqrt)
    "read_time",  # the gate admitted the worker and the server took its read
    "start_time",  # compute began (after the gate and the read arrived)
    "commit_time",  # the server applied the update
    "wait_time",  # blocked at the gate (from the worker's previous commit to its admission)
    "compute_time",  # the drawn compute time of this iteration
    "visible_clock",  # min over workers of the largest fully visible clock of the read
    "staleness",  # (clock - 1) - visible_clock, <= s
    "read_updates",  # updates contained in the read
    "commit_index",  # 1-based position in commit order
    "update_staleness",  # updates applied before this commit that the read missed
    "step",  # step size eta applied
    "loss",  # minibatch loss at the parameters read (empty without math)
    "discarded",  # 1 where the server dropped the gradient (ksync, kbatch_sync), else 0
)

_INT_COLUMNS = {"worker", "clock", "t", "visible_clock", "staleness", "read_updates", "commit_index", "update_staleness",
                "discarded"}


@dataclass
class Recording:
    """Per-iteration arrays of shape (workers, clocks); entry [p, c - 1] is iteration c of worker p."""

    admit: np.ndarray
    start: np.ndarray
    commit: np.ndarray
    wait: np.ndarray
    compute: np.ndarray
    visible: np.ndarray
    read_updates: np.ndarray
    commit_index: np.ndarray
    update_staleness: np.ndarray
    step: np.ndarray
    loss: np.ndarray
    discarded: np.ndarray | None = None  # SSP engines drop nothing: None reads as all zeros

    @classmethod
    def empty(cls, workers: int, clocks: int) -> Recording:
        f = lambda: np.zeros((workers, clocks))
        i = lambda: np.zeros((workers, clocks), dtype=np.int64)
        return cls(
            admit=f(), start=f(), commit=f(), wait=f(), compute=f(), visible=i(), read_updates=i(),
            commit_index=i(), update_staleness=i(), step=f(), loss=np.full((workers, clocks), np.nan),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return self.commit.shape  # type: ignore[return-value]


def trace_table(rec: Recording) -> dict[str, np.ndarray]:
    """The columns of ``trace.csv``, one row per iteration, in commit order."""
    workers, clocks = rec.shape
    order = np.argsort(rec.commit_index, axis=None, kind="stable")
    worker = np.repeat(np.arange(workers), clocks)[order]
    clock = np.tile(np.arange(1, clocks + 1), workers)[order]
    flat = lambda a: a.reshape(-1)[order]
    return {
        "worker": worker,
        "clock": clock,
        "t": workers * (clock - 1) + worker + 1,
        "read_time": flat(rec.admit),
        "start_time": flat(rec.start),
        "commit_time": flat(rec.commit),
        "wait_time": flat(rec.wait),
        "compute_time": flat(rec.compute),
        "visible_clock": flat(rec.visible),
        "staleness": clock - 1 - flat(rec.visible),
        "read_updates": flat(rec.read_updates),
        "commit_index": flat(rec.commit_index),
        "update_staleness": flat(rec.update_staleness),
        "step": flat(rec.step),
        "loss": flat(rec.loss),
        "discarded": np.zeros(workers * clocks, dtype=np.int64) if rec.discarded is None else flat(rec.discarded),
    }


def summarize(rec: Recording, evals: list[dict[str, float]], *, target: float | None, message_cost: float) -> dict[str, Any]:
    """Summary figures of a run (``run.json`` → ``summary``)."""
    return summary_figures(recording_totals(rec), evals, target=target, message_cost=message_cost)


def recording_totals(rec: Recording) -> Totals:
    """The :class:`Totals` of a recorded run."""
    workers, clocks = rec.shape
    clock_idx = np.arange(1, clocks + 1)
    staleness = (clock_idx - 1)[None, :] - rec.visible
    return Totals(
        workers=workers, clocks=clocks, total_time=float(rec.commit.max()), finish=rec.commit[:, -1],
        compute_mean=float(rec.compute.mean()), compute_per_worker=rec.compute.sum(axis=1),
        wait_total=float(rec.wait.sum()), wait_per_worker=rec.wait.sum(axis=1),
        staleness_histogram=np.bincount(staleness.ravel()) if staleness.size else np.zeros(0, dtype=int),
        update_staleness_sum=int(rec.update_staleness.sum()), update_staleness_max=int(rec.update_staleness.max()),
    )


@dataclass
class Totals:
    """What the summary figures are computed from: per-worker sums, histograms, extremes.

    :func:`summarize` takes them from a :class:`Recording`; the streaming planner
    (:mod:`sspsim.sim.stream`) accumulates them clock by clock without one.
    """

    workers: int
    clocks: int
    total_time: float  # the last commit
    finish: np.ndarray  # each worker's last commit
    compute_mean: float
    compute_per_worker: np.ndarray
    wait_total: float
    wait_per_worker: np.ndarray
    staleness_histogram: np.ndarray  # reads per clock staleness 0, 1, ...
    update_staleness_sum: int
    update_staleness_max: int


def summary_figures(totals: Totals, evals: list[dict[str, float]], *, target: float | None, message_cost: float) -> dict[str, Any]:
    """The summary figures of ``run.json`` from the run's :class:`Totals` (and evaluations)."""
    workers, clocks, total = totals.workers, totals.clocks, totals.total_time
    finish = totals.finish
    busy = float(finish.sum())
    hist = totals.staleness_histogram
    n = workers * clocks
    out: dict[str, Any] = {
        "workers": workers,
        "clocks": clocks,
        "iterations": n,
        "total_time": total,
        "time_per_clock": total / clocks,
        "throughput": n / total if total > 0 else float("inf"),
        "mean_iteration_time": float(finish.mean() / clocks),
        "mean_compute_time": totals.compute_mean,
        "wait_fraction": totals.wait_total / busy if busy > 0 else 0.0,
        "communication_fraction": float(2 * message_cost * n / busy) if busy > 0 else 0.0,
        "mean_staleness": int(np.dot(np.arange(hist.size), hist)) / n if n else float("nan"),
        "max_staleness": int(np.flatnonzero(hist).max()),
        "staleness_histogram": [int(v) for v in hist],
        "mean_update_staleness": totals.update_staleness_sum / n if n else float("nan"),
        "max_update_staleness": totals.update_staleness_max,
        "per_worker": {
            "compute": [float(v) for v in totals.compute_per_worker],
            "wait": [float(v) for v in totals.wait_per_worker],
            "finish": [float(v) for v in finish],
        },
    }
    out.update(objective_summary(evals, target))
    return out


def objective_summary(evals: list[dict[str, float]], target: float | None) -> dict[str, Any]:
    """Initial and final objective, time and updates to ``target`` (empty without math)."""
    if not evals or "objective" not in evals[0]:
        return {}
    hit = next((e for e in evals if target is not None and e["objective"] <= target), None)
    return {
        "initial_objective": evals[0]["objective"],
        "final_objective": evals[-1]["objective"],
        "target": target,
        "time_to_target": None if hit is None else hit["time"],
        "updates_to_target": None if hit is None else int(hit["updates"]),
    }

