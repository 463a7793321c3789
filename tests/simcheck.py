"""Checks of a simulated trace against the SSP semantics, recomputed from the trace itself."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

import sspsim


def _s(config: sspsim.Config) -> float:
    return config.consistency.staleness


def per_worker_commits(trace: pd.DataFrame, P: int) -> list[np.ndarray]:
    """Sorted commit times of each worker."""
    return [np.sort(trace.commit_time[trace.worker == q].to_numpy()) for q in range(P)]


def complete_counts(commits: list[np.ndarray], when: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """min over workers of (commits strictly before when-eps) and of (commits at or before when+eps)."""
    lo = np.min([np.searchsorted(c, when - eps, side="left") for c in commits], axis=0)
    hi = np.min([np.searchsorted(c, when + eps, side="right") for c in commits], axis=0)
    return lo, hi


def check_trace(run: sspsim.Run, config: sspsim.Config) -> None:
    """Assert every trace invariant of DESIGN §Semantics on ``run`` (see the test docstrings)."""
    tr = run.trace
    P, C, s = config.workers.count, config.run.clocks, _s(config)
    policy = config.consistency.read_policy
    cost = float(run.meta["problem"]["message_cost"])
    apply_time = config.network.apply_time
    serve = config.network.serve_time
    scale = max(1.0, float(tr.commit_time.abs().max()))
    eps = 1e-9 * scale

    assert len(tr) == P * C
    # commit order: rows are in commit order, indices 1..N, times non-decreasing
    assert (tr.commit_index.to_numpy() == np.arange(1, P * C + 1)).all()
    assert (np.diff(tr.commit_time.to_numpy()) >= 0).all()
    assert (tr.t == P * (tr.clock - 1) + tr.worker + 1).all()

    # (c) per worker: consecutive clocks, increasing commits, start after own previous commit
    prev_commit = np.zeros(len(tr))
    for q in range(P):
        rows = tr[tr.worker == q]
        assert rows.clock.tolist() == list(range(1, C + 1))
        commits = rows.commit_time.to_numpy()
        assert (np.diff(commits) >= 0).all()
        if (rows.compute_time.to_numpy()[1:] + 2 * cost + apply_time > 0).all():
            assert (np.diff(commits) > 0).all()
        prev = np.concatenate([[0.0], commits[:-1]])
        assert (rows.start_time.to_numpy() >= prev - eps).all()
        prev_commit[rows.index.to_numpy()] = prev

    admission = tr.read_time.to_numpy()
    assert np.allclose(tr.start_time.to_numpy(), admission + cost, rtol=0, atol=eps)
    clock = tr.clock.to_numpy()
    need = clock - 1 - s  # guaranteed clock (may be -inf or negative)
    commits = per_worker_commits(tr, P)
    lo, hi = complete_counts(commits, admission, eps)

    # (a) nobody begins ahead of the gate
    assert (hi >= need).all(), tr[hi < need]
    # ... and nobody waits longer than needed: admission = max(own previous commit, gate opening)
    M = np.array([0.0] + [max(c[k - 1] for c in commits) for k in range(1, C + 1)])
    gate_open = np.where(need >= 1, M[np.clip(np.nan_to_num(need, neginf=0), 0, C).astype(int)], 0.0)
    base = np.maximum(prev_commit, gate_open)
    if serve == 0:
        assert np.allclose(admission, base, rtol=0, atol=eps)
    else:
        # reads queue at the server: sent k-th (k < P) by the push that let them through (or at time 0)
        k = np.round((admission - base) / serve)
        assert np.allclose(admission, base + k * serve, rtol=0, atol=P * eps), tr[~np.isclose(admission, base + k * serve)]
        assert ((k >= 0) & (k <= P - 1)).all()
        # and the server's thread does one thing at a time: applies [commit - apply_time, commit], sends [admit, admit + serve]
        spans = np.concatenate([np.stack([tr.commit_time.to_numpy() - apply_time, tr.commit_time.to_numpy()], 1),
                                np.stack([admission, admission + serve], 1)])
        spans = spans[np.lexsort((spans[:, 1], spans[:, 0]))]
        assert (spans[1:, 0] >= spans[:-1, 1] - P * eps).all()
    assert np.allclose(tr.wait_time.to_numpy(), admission - prev_commit, rtol=0, atol=eps)
    assert (tr.wait_time >= -eps).all()
    if not config.network.contention:
        assert np.allclose(tr.commit_time, tr.start_time + tr.compute_time + cost, rtol=0, atol=eps)
    else:
        assert (tr.commit_time >= tr.start_time + tr.compute_time + cost + apply_time - eps).all()

    # (b) staleness
    visible = tr.visible_clock.to_numpy()
    assert (tr.staleness.to_numpy() == clock - 1 - visible).all()
    assert (tr.staleness.to_numpy() <= s).all()
    assert (visible >= 0).all() and (visible <= clock - 1).all()

    # what each read policy sees
    reads = tr.read_updates.to_numpy()
    if policy == "lazy":
        # (d) only what the guarantee forces
        expected = np.maximum(0, clock - 1 - s) if P > 1 else clock - 1
        assert (visible == expected).all()
        assert (reads == (P - 1) * np.maximum(0, clock - 1 - s) + (clock - 1)).all()
    else:
        # eager and push see exactly the clocks complete at the admission instant
        if P > 1:
            assert ((lo <= visible) & (visible <= hi)).all()
        else:
            assert (visible == clock - 1).all()
        if policy == "eager":
            all_commits = np.sort(tr.commit_time.to_numpy())
            total_lo = np.searchsorted(all_commits, admission - eps, side="left")
            total_hi = np.searchsorted(all_commits, admission + eps, side="right")
            assert ((total_lo <= reads) & (reads <= total_hi)).all()
        else:
            assert (reads == (P - 1) * visible + (clock - 1)).all()
    tau = tr.update_staleness.to_numpy()
    assert (tau == tr.commit_index.to_numpy() - 1 - reads).all()
    assert (tau >= 0).all()

    # math columns
    if config.problem.kind == "none":
        assert tr.loss.isna().all() and tr.step.isna().all()
    else:
        assert np.isfinite(tr.loss).all()
        opt = config.optimizer
        eta = np.full(len(tr), opt.lr) if opt.schedule == "constant" else opt.lr / np.sqrt(tr.t.to_numpy())
        if opt.staleness_aware:
            eta = eta / np.maximum(1, tau)
        assert np.allclose(tr.step.to_numpy(), eta, rtol=1e-15, atol=0)

    # summary agrees with the trace
    summ = run.summary
    assert summ["max_staleness"] == int(tr.staleness.max())
    assert math.isclose(summ["total_time"], float(tr.commit_time.max()), rel_tol=0, abs_tol=0)
    assert summ["iterations"] == P * C
