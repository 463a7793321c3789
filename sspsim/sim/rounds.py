"""Round-based alternatives to SSP: K-sync, K-batch-sync and local SGD (DESIGN §Consistency models).

Every round r starts at ``M[r-1]`` (``M[0] = 0``) from the server's parameters ``x_{r-1}``; every
worker pulls them (one message cost m) and computes; an iteration lasts ``2 m + X`` (pull,
compute, push), X the drawn compute time.  The round ends at ``M[r]``, when the server applies
the round's update (after ``network.apply_time``); iterations still running then are cut off and
their gradients dropped (``discarded = 1``).

* ``ksync`` (Dutta et al. 2018; backup workers, Chen et al. 2016, K = P - b): one iteration per
  worker per round; the round ends at the K-th arrival, ``M[r] - M[r-1] = 2m + X_{K:P}``, and
  the K first gradients are applied, the other P - K dropped.
* ``kbatch_sync`` (Dutta et al. 2018): workers keep computing at ``x_{r-1}`` (pull and push each
  iteration); the round ends at the K-th arrival from any workers; those K are applied.
* ``local_sgd``: each worker takes ``period`` = H SGD steps on its own copy (one pull before,
  one push after), and the round ends when the slowest has pushed; ``x_r`` is the average.

The update of a K-sync or K-batch-sync round applies its K gradients one after another,
``x <- x - eta_t d`` in arrival order, with t the update's index among applied updates and d the
worker's momentum direction: the average of the K gradients with K times the step, so ``ksync``
with K = P is BSP (SSP with s = 0) update for update under a constant step.

Trace rows (one per iteration, DESIGN §Run directory): ``clock`` is the worker's own iteration
number (the round for ``ksync``); ``read_time`` the round's start; ``commit_time`` the round's end
``M[r]`` (when the server applied or dropped the gradient); ``wait_time`` the time the worker sat
idle before ``M[r]`` after this iteration's push; ``visible_clock`` the rounds the read holds
(r - 1); ``staleness`` 0 (every read is the current parameters); ``update_staleness`` the
updates of the round applied before this one (0 where discarded); ``loss`` NaN where discarded.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import numpy as np

from sspsim.config import Config
from sspsim.evaluate import Evaluator
from sspsim.optimizer import Momentum, StepSize, round_robin_index
from sspsim.problems import Problem
from sspsim.sampling import sample_indices
from sspsim.speeds import compute_times
from sspsim.trace import TRACE_COLUMNS, objective_summary

__all__ = ["ROUND_MODELS", "RoundServer", "rounds_of", "simulate_rounds", "summarize_rounds"]

ROUND_MODELS = ("ksync", "kbatch_sync", "local_sgd")

Progress = Callable[[int, int], None]


def rounds_of(config: Config) -> int:
    """Rounds in a run: ``run.clocks`` for ksync and kbatch_sync; ceil(clocks / period) for local_sgd."""
    c = config.consistency
    if c.model == "local_sgd":
        assert c.period is not None
        return -(-config.run.clocks // c.period)
    return config.run.clocks


class RoundServer:
    """The server of a round-based model: parameters, step sizes, momentum, and the round's rule.

    :meth:`closing_arrival` and :meth:`applied` are the rule (the seam the mutation tests bend):
    the round ends at the ``closing_arrival``-th push, and the first ``applied`` pushes count.
    """

    def __init__(self, x0: np.ndarray | None, *, workers: int, step: StepSize, momentum: float = 0.0) -> None:
        self.x = None if x0 is None else np.array(x0, dtype=float)
        self.workers = workers
        self.step = step
        self.momentum = [Momentum(momentum) for _ in range(workers)]
        self.commits = 0

    def closing_arrival(self, k: int) -> int:
        """The push (1-based, in arrival order) that ends a K-sync or K-batch-sync round."""
        return k

    def applied(self, k: int) -> int:
        """How many of the round's first pushes are applied."""
        return k

    def apply(self, worker: int, gradient: np.ndarray | None, round_: int, k: int) -> float:
        """Apply ``-eta_t d`` (t the update's index among applied ones); return eta."""
        self.commits += 1
        eta = self.step(self.commits, 0)
        if self.x is not None and gradient is not None:
            self.x -= eta * self.momentum[worker].direction(gradient)
        return eta


class _Rows:
    """Trace rows in commit order, collected as Python lists."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {c: [] for c in TRACE_COLUMNS if c not in ("t", "staleness", "commit_index")}

    def add(self, **row: Any) -> None:
        for k, v in row.items():
            self.cols[k].append(v)

    def table(self, workers: int) -> dict[str, np.ndarray]:
        c = {k: np.asarray(v) for k, v in self.cols.items()}
        n = len(c["worker"])
        out = {
            "worker": c["worker"].astype(np.int64),
            "clock": c["clock"].astype(np.int64),
            "t": workers * (c["clock"].astype(np.int64) - 1) + c["worker"].astype(np.int64) + 1,
            "read_time": c["read_time"].astype(float),
            "start_time": c["start_time"].astype(float),
            "commit_time": c["commit_time"].astype(float),
            "wait_time": c["wait_time"].astype(float),
            "compute_time": c["compute_time"].astype(float),
            "visible_clock": c["visible_clock"].astype(np.int64),
            "staleness": np.zeros(n, dtype=np.int64),
            "read_updates": c["read_updates"].astype(np.int64),
            "commit_index": np.arange(1, n + 1, dtype=np.int64),
            "update_staleness": c["update_staleness"].astype(np.int64),
            "step": c["step"].astype(float),
            "loss": c["loss"].astype(float),
            "discarded": c["discarded"].astype(np.int64),
        }
        assert tuple(out) == TRACE_COLUMNS
        return out


def simulate_rounds(
    config: Config,
    problem: Problem,
    *,
    progress: Progress | None = None,
    server_class: type[RoundServer] = RoundServer,
) -> tuple[dict[str, np.ndarray], list[dict[str, float]], np.ndarray]:
    """Run a round-based model; return the trace columns, the evaluations and the round ends M."""
    model = config.consistency.model
    if model == "ksync":
        return _KSync(config, problem, progress, server_class).run()
    if model == "kbatch_sync":
        return _KBatchSync(config, problem, progress, server_class).run()
    if model == "local_sgd":
        return _LocalSGD(config, problem, progress, server_class).run()
    raise ValueError(f"not a round-based model: {model!r}")


class _Engine:
    def __init__(self, config: Config, problem: Problem, progress: Progress | None, server_class: type[RoundServer]) -> None:
        self.config = config
        self.problem = problem
        self.progress = progress
        self.P = config.workers.count
        self.R = rounds_of(config)
        self.k = config.consistency.k or 0
        self.m = config.network.message_cost(problem.n_params)  # a pull
        self.push = config.network.push_cost(problem.n_params)
        self.apply_time = config.network.apply_time
        self.math = problem.has_math
        x0 = problem.initial_params() if self.math else None
        self.server = server_class(x0, workers=self.P, step=StepSize.from_config(config.optimizer),
                                   momentum=config.optimizer.momentum)
        self.seed, self.batch, self.n = config.problem_seed, config.problem.batch_size, problem.n_samples
        self.rows = _Rows()
        self.M = np.zeros(self.R + 1)
        self.evaluator = Evaluator(problem, config, config.run.clocks)
        self.evals: list[dict[str, float]] = []

    def draws(self, clocks: int) -> np.ndarray:
        w = self.config.workers
        return compute_times(w.speed, workers=self.P, clocks=clocks, seed=self.config.run.seed,
                             stragglers=w.stragglers, transient=w.transient, compute=w.compute, warmup=w.warmup)

    def loss_grad(self, x: np.ndarray | None, worker: int, clock: int) -> tuple[float, np.ndarray | None]:
        if not self.math:
            return float("nan"), None
        assert x is not None
        return self.problem.loss_grad(x, sample_indices(self.seed, worker, clock, self.batch, self.n))

    def evaluate(self, r: int, clock: int) -> None:
        self.evals.append(self.evaluator.row(self.server.x, float(self.M[r]), clock, self.server.commits))

    def tick(self, r: int) -> None:
        if self.progress is not None:
            self.progress(r, self.R)

    def run(self) -> tuple[dict[str, np.ndarray], list[dict[str, float]], np.ndarray]:
        self.evaluate(0, 0)
        self.simulate()
        return self.rows.table(self.P), self.evals, self.M

    def simulate(self) -> None:
        raise NotImplementedError

    def close_round(self, r: int, pushes: list[tuple[float, int, int, float, float]], cut: list[tuple[int, int, float, float]]) -> None:
        """Apply the round's first pushes, drop the rest; ``pushes`` = (arrival, worker, clock, start,
        compute) in arrival order, all at or before the round's end; ``cut`` = (worker, clock, start,
        compute) of iterations the end interrupts."""
        t0 = float(self.M[r - 1])
        take = self.server.applied(self.k)
        x = None if self.server.x is None else self.server.x.copy()  # every gradient of the round is at x_{r-1}
        before = self.server.commits
        end = pushes[-1][0] + self.apply_time
        self.M[r] = end
        for j, (arrival, p, c, start, comp) in enumerate(pushes):
            kept = j < take
            loss, eta = float("nan"), float("nan")
            if kept:
                loss, grad = self.loss_grad(x, p, c)
                eta = self.server.apply(p, grad, r, self.k)
                if not self.math:
                    eta = float("nan")
            self.rows.add(worker=p, clock=c, read_time=t0, start_time=start, commit_time=end, wait_time=end - arrival,
                          compute_time=comp, visible_clock=r - 1, read_updates=before, update_staleness=j if kept else 0,
                          step=eta, loss=loss, discarded=int(not kept))
        for p, c, start, comp in cut:
            self.rows.add(worker=p, clock=c, read_time=t0, start_time=min(start, end), commit_time=end, wait_time=0.0,
                          compute_time=comp, visible_clock=r - 1, read_updates=before, update_staleness=0,
                          step=float("nan"), loss=float("nan"), discarded=1)
        if self.evaluator.due(r):
            self.evaluate(r, r)
        self.tick(r)


class _KSync(_Engine):
    def simulate(self) -> None:
        X = self.draws(self.R)
        close = self.server.closing_arrival(self.k)
        for r in range(1, self.R + 1):
            t0 = float(self.M[r - 1])
            arrival = t0 + (self.m + self.push) + X[:, r - 1]
            order = np.argsort(arrival, kind="stable")
            pushes = [(float(arrival[p]), int(p), r, t0 + self.m, float(X[p, r - 1])) for p in order[:close]]
            cut = [(int(p), r, t0 + self.m, float(X[p, r - 1])) for p in order[close:]]
            self.close_round(r, pushes, cut)


class _KBatchSync(_Engine):
    def simulate(self) -> None:
        clocks = 2 * self.R * (-(-self.k // self.P) + 1)  # about twice a worker's iterations, on average
        while (schedule := self._schedule(self.draws(clocks))) is None:
            clocks *= 2  # a worker ran out of draws: draw more (same seed: the run stays deterministic)
        for r, (pushes, cut) in enumerate(schedule, start=1):
            self.close_round(r, pushes, cut)

    def _schedule(self, X: np.ndarray) -> list[tuple[list, list]] | None:
        """Each round's pushes (in arrival order) and cut iterations; None if ``X`` has too few columns.

        The timing does not depend on the math, so it is laid out first (M[r] follows from it)."""
        close = self.server.closing_arrival(self.k)
        cols = X.shape[1]
        done = [0] * self.P  # iterations begun per worker
        t0 = 0.0
        out = []
        for _ in range(self.R):
            if max(done) + close + 1 > cols:
                return None
            heap = [(t0 + (self.m + self.push) + float(X[p, done[p]]), p, t0 + self.m) for p in range(self.P)]
            running: dict[int, tuple[int, float]] = {}
            for p in range(self.P):
                done[p] += 1
                running[p] = (done[p], t0 + self.m)
            heapq.heapify(heap)
            pushes: list[tuple[float, int, int, float, float]] = []
            while True:
                arrival, p, start = heapq.heappop(heap)
                c = running.pop(p)[0]
                pushes.append((arrival, p, c, start, float(X[p, c - 1])))
                if len(pushes) == close:
                    break
                nxt = arrival + self.m  # pull again (the parameters are unchanged), compute, push
                heapq.heappush(heap, (nxt + self.push + float(X[p, done[p]]), p, nxt))
                done[p] += 1
                running[p] = (done[p], nxt)
            cut = [(p, c, start, float(X[p, c - 1])) for p, (c, start) in sorted(running.items())]
            out.append((pushes, cut))
            t0 = pushes[-1][0] + self.apply_time
        return out


class _LocalSGD(_Engine):
    def simulate(self) -> None:
        H = self.config.consistency.period
        assert H is not None
        C = self.config.run.clocks
        X = self.draws(C)
        xs = None if self.server.x is None else [self.server.x.copy() for _ in range(self.P)]
        for r in range(1, self.R + 1):
            t0 = float(self.M[r - 1])
            steps = range((r - 1) * H + 1, min(r * H, C) + 1)
            begin = np.full(self.P, t0 + self.m)
            rows = []
            for c in steps:
                for p in range(self.P):
                    loss, eta = float("nan"), float("nan")
                    if self.math:
                        assert xs is not None
                        loss, grad = self.loss_grad(xs[p], p, c)
                        assert grad is not None
                        eta = self.server.step(round_robin_index(p, c, self.P), 0)
                        xs[p] -= eta * self.server.momentum[p].direction(grad)
                    rows.append((p, c, float(begin[p]), float(X[p, c - 1]), loss, eta))
                    begin[p] += X[p, c - 1]
            finish = begin + self.push
            end = float(finish.max()) + self.apply_time
            self.M[r] = end
            if xs is not None:
                assert self.server.x is not None
                self.server.x = np.mean(xs, axis=0)
                xs = [self.server.x.copy() for _ in range(self.P)]
            before = self.server.commits
            self.server.commits += len(rows)
            last = steps[-1]
            rows.sort(key=lambda row: (row[2] + row[3], row[0]))  # in order of local completion
            for p, c, start, comp, loss, eta in rows:
                self.rows.add(worker=p, clock=c, read_time=t0 if c == steps[0] else start, start_time=start,
                              commit_time=end, wait_time=end - float(finish[p]) if c == last else 0.0,
                              compute_time=comp, visible_clock=(r - 1) * H, read_updates=before, update_staleness=0,
                              step=eta, loss=loss, discarded=0)
            if any(self.evaluator.due(c) for c in steps):
                self.evaluate(r, last)
            self.tick(r)


def summarize_rounds(table: dict[str, np.ndarray], M: np.ndarray, evals: list[dict[str, float]], *,
                     workers: int, clocks: int, target: float | None, message_cost: float) -> dict[str, Any]:
    """Summary figures of a round-based run, under the names :func:`sspsim.trace.summarize` uses."""
    R = len(M) - 1
    total = float(M[-1])
    worker = table["worker"]
    kept = table["discarded"] == 0
    compute = np.bincount(worker, weights=table["compute_time"], minlength=workers)
    wait = np.bincount(worker, weights=table["wait_time"], minlength=workers)
    finish = np.full(workers, total)
    busy = float(finish.sum())
    n = len(worker)
    return {
        "workers": workers,
        "clocks": clocks,
        "rounds": R,
        "iterations": n,
        "applied": int(kept.sum()),
        "discarded": int(n - kept.sum()),
        "total_time": total,
        "time_per_clock": total / clocks,
        "time_per_round": total / R,
        "throughput": float(kept.sum()) / total if total > 0 else float("inf"),
        "mean_iteration_time": total / clocks,
        "mean_compute_time": float(table["compute_time"].mean()),
        "wait_fraction": float(wait.sum() / busy) if busy > 0 else 0.0,
        "communication_fraction": float(2 * message_cost * n / busy) if busy > 0 else 0.0,
        "mean_staleness": 0.0,
        "max_staleness": 0,
        "staleness_histogram": [n],
        "mean_update_staleness": float(table["update_staleness"].mean()),
        "max_update_staleness": int(table["update_staleness"].max()),
        "per_worker": {
            "compute": [float(v) for v in compute],
            "wait": [float(v) for v in wait],
            "finish": [float(v) for v in finish],
        },
        **objective_summary(evals, target),
    }
