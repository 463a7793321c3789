"""Replay: recompute a run's math from its schedule alone.

Given the trace's commit order and read sets (:mod:`sspsim.proofs_check.readsets`) and the config,
every read is ``x0 + sum of the updates in its read set``, every update is
``-eta_t * d`` with d the (momentum) direction of the minibatch gradient at that read on the
samples ``sample_indices(seed, p, c)``.  This is written from the definitions, independently
of the simulator's parameter server, so a backend whose reads do not contain what its trace
says they contain produces losses the replay does not reproduce.

Sums follow the order a server applies updates in (commit order; a snapshot of complete clocks
plus the reader's own later updates in clock order), so a faithful simulator run is matched
bit for bit and a real-backend run to float tolerance.

Like every oracle in :mod:`sspsim.proofs_check`, this restates the math on purpose (the step
size rule is :class:`StepSize` below, not the optimizer's) and imports only data formats from
the core (the config, the run directory, the sample stream), so a bug in the code it judges
cannot hide by being shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sspsim.config import OptimizerConfig
from sspsim.proofs_check.evidence import RunData
from sspsim.proofs_check.readsets import ReadSets, read_sets
from sspsim.sampling import sample_indices

__all__ = ["MAX_VALUES", "Replay", "RunMath", "StepSize", "replay", "run_math"]

MAX_VALUES = 40_000_000  # floats kept per array (reads and updates: rows x parameters)


@dataclass(frozen=True)
class StepSize:
    """eta(t, tau) for the update with round-robin index t = P (c - 1) + p + 1 and update staleness tau.

    ``constant``: eta_t = lr; ``inv_sqrt``: eta_t = lr / sqrt(t) (Ho et al. 2013, Theorem 1);
    staleness-aware steps further divide by tau when tau > 1 (Zhang, Gupta, Lian & Liu 2016,
    arXiv 1511.05950).  Restated from the definitions, not imported from the optimizer.

    >>> StepSize(0.5, "inv_sqrt")(4, 0)
    0.25
    >>> StepSize(0.5, "constant", staleness_aware=True)(4, 5)
    0.1
    """

    lr: float
    schedule: str = "inv_sqrt"
    staleness_aware: bool = False

    @classmethod
    def from_config(cls, opt: OptimizerConfig) -> StepSize:
        return cls(lr=opt.lr, schedule=opt.schedule, staleness_aware=opt.staleness_aware)

    def __call__(self, t: int, tau: int) -> float:
        if self.schedule == "constant":
            eta = self.lr
        elif self.schedule == "inv_sqrt":
            eta = self.lr / math.sqrt(t)
        else:  # pragma: no cover - the config admits no other schedule
            raise ValueError(f"unknown step-size schedule {self.schedule!r}")
        return eta / tau if self.staleness_aware and tau > 1 else eta


@dataclass
class Replay:
    """Rows in commit order: the parameters each read held, each update, each minibatch loss."""

    reads: np.ndarray  # (rows, d)
    updates: np.ndarray  # (rows, d)
    losses: np.ndarray  # (rows,)
    x0: np.ndarray
    sets: ReadSets


def replay(rd: RunData) -> Replay | str:
    """Replay ``rd``'s math, or give a one-line reason it cannot be replayed."""
    if rd.trace is None:
        return "no trace.csv to replay"
    if rd.config.problem.kind == "torch":  # a user's model: rebuilt, its math restated (torch_oracle)
        from sspsim.proofs_check.torch_oracle import torch_oracle

        problem = torch_oracle(rd.config.problem, rd.config.problem_seed, rd.meta.get("problem", {}).get("device"))
        if isinstance(problem, str):
            return problem
    else:
        problem = rd.problem
    if problem is None:
        return "problem.kind = 'none' has no math"
    rows = len(rd.trace)
    if rows * problem.n_params > MAX_VALUES:
        return f"{rows} rows x {problem.n_params} parameters is too large to replay"
    sets = read_sets(rd)
    if isinstance(sets, str):
        return sets
    if not rd.has("step") and rd.config.optimizer.staleness_aware:
        return "staleness-aware steps need the trace's step column"
    cfg = rd.config
    step = StepSize.from_config(cfg.optimizer)
    P, d = rd.P, problem.n_params
    worker, clock = rd.worker, rd.clock
    position = rd.position
    tau = rd.trace["update_staleness"].to_numpy() if rd.has("update_staleness") else np.zeros(rows, dtype=np.int64)
    recorded_steps = rd.trace["step"].to_numpy() if cfg.optimizer.staleness_aware else None

    # When can each read be formed?  After the last commit it contains (its "ready" position).
    ready = np.full(rows, -1, dtype=np.int64)
    eager = rd.policy == "eager"
    if eager:
        prefix = sets.K.sum(axis=1)  # per-worker prefixes of a commit-order prefix: its length
        ready = prefix - 1
    else:
        last_of_clock = _last_position_of_clock(worker, clock, P)
        assert sets.cutoff is not None
        cutoff = sets.cutoff
        for r in range(rows):
            p, c = int(worker[r]), int(clock[r])
            own = position.get((p, c - 1), -1)
            ready[r] = max(own, int(last_of_clock[cutoff[r]]) if cutoff[r] >= 1 else -1)
    by_ready: dict[int, list[int]] = {}
    for r in np.argsort(ready, kind="stable"):
        by_ready.setdefault(int(ready[r]), []).append(int(r))

    x0 = problem.initial_params()
    reads = np.empty((rows, d))
    updates = np.empty((rows, d))
    losses = np.empty(rows)
    directions: dict[int, np.ndarray] = {}
    state = x0.copy()  # eager: x0 + the updates applied so far, in commit order
    snapshots = {0: x0.copy()}  # lazy/push: x0 + every update of clocks <= k, for complete k
    clock_sum: dict[int, np.ndarray] = {}
    clock_left = {c: P for c in range(1, int(clock.max()) + 1)} if rows else {}
    own_updates: list[dict[int, np.ndarray]] = [{} for _ in range(P)]
    seed, batch, n = cfg.problem_seed, cfg.problem.batch_size, problem.n_samples
    beta = cfg.optimizer.momentum
    pending: dict[int, np.ndarray] = {}

    def form_reads(after: int) -> None:
        for r in by_ready.get(after, ()):
            p, c = int(worker[r]), int(clock[r])
            if eager:
                x = state.copy()
            else:
                k = int(cutoff[r])
                x = snapshots[k].copy() if k >= 1 else x0.copy()
                for cc in range(k + 1, c):
                    x += own_updates[p][cc]
            reads[r] = x
            loss, grad = problem.loss_grad(x, sample_indices(seed, p, c, batch, n))
            losses[r] = loss
            if beta:
                prev = directions.get(p)
                grad = grad if prev is None else grad + beta * prev
                directions[p] = grad
            eta = recorded_steps[r] if recorded_steps is not None else step(int(P * (c - 1) + p + 1), int(tau[r]))
            pending[r] = -eta * grad

    form_reads(-1)
    for r in range(rows):
        if r not in pending:
            return f"row {r} (worker {worker[r]}, clock {clock[r]}) commits before its read could be formed"
        u = pending.pop(r)
        updates[r] = u
        p, c = int(worker[r]), int(clock[r])
        if eager:
            state += u
        else:
            own_updates[p][c] = u
            total = clock_sum.get(c)
            clock_sum[c] = u.copy() if total is None else total + u
            clock_left[c] -= 1
            k = max(snapshots)
            while clock_left.get(k + 1) == 0:
                snapshots[k + 1] = snapshots[k] + clock_sum.pop(k + 1)
                k += 1
        form_reads(r)
    return Replay(reads=reads, updates=updates, losses=losses, x0=x0, sets=sets)


@dataclass
class RunMath:
    """x0, the parameters each read held and each applied update (rows in commit order), and
    where they came from: the audit log (what the run really used) or the replay."""

    x0: np.ndarray
    reads: np.ndarray
    updates: np.ndarray
    source: str

    def server_states(self) -> np.ndarray:
        """x_k = x0 + the first k updates in commit order, k = 0..rows."""
        return np.vstack([self.x0, self.x0 + np.cumsum(self.updates, axis=0)])


def run_math(rd: RunData) -> RunMath | str:
    """The run's reads and updates: from ``audit.npz`` when present, else replayed from the
    schedule; a one-line reason when neither is possible."""
    audit = rd.audit
    if audit is not None and all(k in audit for k in ("x0", "params", "update")):
        rows = 0 if rd.trace is None else len(rd.trace)
        if audit["params"].shape[0] != rows or audit["update"].shape != audit["params"].shape:
            return f"audit.npz holds {audit['params'].shape[0]} rows, the trace {rows}"
        return RunMath(audit["x0"], audit["params"], audit["update"], "the audit log (the parameters workers used)")
    result = replay(rd)
    if isinstance(result, str):
        return result
    return RunMath(result.x0, result.reads, result.updates, "the replay of the schedule (no audit log)")


def _last_position_of_clock(worker: np.ndarray, clock: np.ndarray, P: int) -> np.ndarray:
    """last[k]: the commit position after which every update of clocks <= k is in."""
    C = int(clock.max()) if len(clock) else 0
    last = np.full(C + 1, -1, dtype=np.int64)
    positions = np.arange(len(clock))
    np.maximum.at(last, clock, positions)
    return np.maximum.accumulate(last)
