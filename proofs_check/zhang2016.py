"""The staleness law of asynchronous SGD, after Zhang, Gupta, Lian, Liu 2016, *Staleness-aware
async-SGD for distributed deep learning* (IJCAI; arXiv 1511.05950): the paper measures an average
staleness of about n for n-softsync [R]; the exact statements checked here are derived and
Monte-Carlo checked in reference/theorems.md §7.4 and §12 [D].

Setting: ASP (s = inf), eager reads, the server applies every gradient at once
(``network.apply_time = 0``), and P workers whose iteration durations are i.i.d. draws of one
continuous distribution.  The update staleness tau of an update (``update_staleness``: updates
applied between its read and its commit) counts the other workers' commits inside one of its
worker's renewal intervals.  In steady state the other P - 1 workers are stationary renewal
processes of rate 1/E[D], independent of that interval, whose mean length is E[D], so

    E[tau] = (P - 1)                                 (any i.i.d. continuous law) [D]

and, when the durations are exponential with no message cost (memoryless: the sequence of
committing workers is i.i.d. uniform), one worker's successive staleness values are i.i.d.

    Pr(tau = k) = (1/P) ((P - 1)/P)^k,  k = 0, 1, ...   (geometric) [D].

Measurement.  Steady state: rows after the first 10% in commit order and after clock 2, and
only while every worker is still running (commits up to the first worker's last one; after it
the remaining workers see fewer commits and tau is biased low).  The mean's 99% CI uses batch
means (20 batches in commit order, Student t with 19 degrees of freedom) for the correlation
between neighbouring updates, widened where needed to the exact boundary term of the counting
identity Σ tau = (P - 1) n + S(start) - S(end + 1) (see :func:`recurrence_sums`).  The geometric law is tested per worker (those samples are exactly
i.i.d.) with a chi-square goodness-of-fit test, tail bins pooled to expected counts >= 5, the P
p-values combined by Bonferroni; it fails iff the combined p-value is below 0.001.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.stats

from sspsim import speeds as sp
from sspsim.proofs_check.evidence import RunData
from sspsim.proofs_check.theorem import Finding, Reference, Theorem

__all__ = ["AsyncStalenessLaw", "geometric_gof", "steady_rows"]

SRC = "Zhang et al. 2016 (IJCAI)"
MIN_UPDATES = 200
BATCHES = 20
P_FAIL = 1e-3
Z99 = 2.5758293035489004


def _continuous(speed: sp.SpeedModel) -> bool:
    if isinstance(speed, sp.Constant):
        return False
    if isinstance(speed, sp.Uniform):
        return speed.high > speed.low
    if isinstance(speed, sp.LogNormal):
        return speed.sigma > 0
    return isinstance(speed, (sp.Exponential, sp.ShiftedExponential, sp.Pareto))


def steady_rows(rd: RunData) -> np.ndarray:
    """Row positions (commit order) of the steady state, a contiguous stretch: after the first 10%
    and after every row of clocks 1-2, up to the first worker's last commit (all still running)."""
    n = len(rd.trace_table)
    early = np.flatnonzero(rd.clock <= 2)
    start = max(math.ceil(0.1 * n), int(early.max()) + 1 if len(early) else 0)
    last = [int(np.flatnonzero(rd.worker == q).max()) for q in range(rd.P)]
    end = min(last)  # rows are in commit order
    return np.arange(start, end + 1) if end >= start else np.zeros(0, dtype=np.int64)


def recurrence_sums(rd: RunData, positions: np.ndarray) -> np.ndarray:
    """S(i) = Σ_p (i - 1 - L_p(i)), L_p(i) the position of p's last commit before position i.

    For eager ASP reads taken at the reader's own commit, tau of the update at position u is
    u - 1 - (its worker's previous position), so over a contiguous window [i0, i1] of n updates
    Σ tau = (P - 1) n + S(i0) - S(i1 + 1): the sample mean's only deviation from P - 1 is this
    boundary term, and S is stationary, so the deviation's SD is about sqrt(2 Var S) / n.
    """
    out = np.zeros(len(positions), dtype=float)
    for q in range(rd.P):
        pos = np.flatnonzero(rd.worker == q)
        k = np.searchsorted(pos, positions, side="left") - 1
        have = k >= 0
        out += np.where(have, positions - 1 - pos[np.maximum(k, 0)], np.nan)
    return out


def geometric_gof(samples: np.ndarray, P: int) -> tuple[float, int]:
    """Chi-square p-value of ``samples`` against Pr(k) = (1/P)((P-1)/P)^k, tail pooled (expected >= 5).

    Returns (p-value, number of bins); p = 1 when there are fewer than 2 bins to compare.
    """
    n = len(samples)
    q = (P - 1) / P
    if n == 0 or P < 2:
        return 1.0, 0
    # bins 0..K-1 single values, bin K = {k >= K}; K the largest with every expected count >= 5
    K = 0
    while n * (1 - q) * q ** K >= 5 and n * q ** (K + 1) >= 5:
        K += 1
    if K < 1:
        return 1.0, 0
    probs = np.append((1 - q) * q ** np.arange(K), q**K)
    observed = np.append(np.bincount(np.minimum(samples, K), minlength=K + 1)[:K], (samples >= K).sum())
    _, p = scipy.stats.chisquare(observed, n * probs)
    return float(p), K + 1


class AsyncStalenessLaw(Theorem[RunData]):
    name = "zhang2016.async_staleness"
    reference = Reference(SRC, "async staleness law (theorems.md §7.4): mean P - 1; geometric under Exp times", "D")
    summary = "ASP update staleness has steady-state mean P - 1 (99% batch-means CI); geometric for exponential times"

    def assumptions(self, rd: RunData) -> list[str]:
        cfg = rd.config
        speed = cfg.workers.speed
        unmet = []
        if not math.isinf(rd.s):
            unmet.append(f"staleness = {rd.s:g}: the law is for ASP (s = inf)")
        if rd.policy != "eager":
            unmet.append(f"read_policy = {rd.policy!r}: the law counts eager reads (everything committed)")
        if rd.P < 2:
            unmet.append("needs at least 2 workers")
        if rd.backend != "sim":
            unmet.append(f"backend = {rd.backend!r}: i.i.d. compute times are known only for simulated runs")
        if isinstance(speed, sp.TraceTimes):
            unmet.append("speed kind = trace: replayed times are not i.i.d.")
        elif not _continuous(speed):
            unmet.append(f"speed kind = {speed.kind} is deterministic: simultaneous commits break the renewal law")
        if isinstance(speed, sp.Pareto) and speed.alpha <= 3:
            unmet.append(f"Pareto alpha = {speed.alpha:g} <= 3: the batch-means CI needs lighter tails")
        if cfg.workers.stragglers and any(s.slowdown != 1 for s in cfg.workers.stragglers):
            unmet.append("stragglers: speeds are not identically distributed")
        if cfg.workers.transient is not None and cfg.workers.transient.probability > 0:
            unmet.append("transient slowdowns: speeds are not i.i.d.")
        if cfg.network.contention:
            unmet.append(f"network.apply_time = {cfg.network.apply_time:g}, serve_time = {cfg.network.serve_time:g}: "
                         "server contention reorders commits")
        if rd.trace is None or "update_staleness" not in rd.trace.columns:
            unmet.append("needs trace.csv with the update_staleness column")
        elif not unmet and int(rd.clocks_per_worker.min()) == 0:
            unmet.append("some worker has no iterations in the trace")
        elif not unmet:
            kept = len(steady_rows(rd))
            if kept < MIN_UPDATES:
                unmet.append(f"needs at least {MIN_UPDATES} steady-state updates (has {kept})")
        return unmet

    def measure(self, rd: RunData) -> Finding:
        rows = steady_rows(rd)
        tau = rd.trace_table["update_staleness"].to_numpy().astype(np.int64)[rows]
        P = rd.P
        target = float(P - 1)
        if (tau < 0).any():
            return Finding(False, float(tau.mean()), target,
                           f"{int((tau < 0).sum())} update(s) with negative update_staleness: the version count is broken")
        mean = float(tau.mean())
        size = len(tau) // BATCHES
        batch_means = tau[: size * BATCHES].reshape(BATCHES, size).mean(axis=1)
        se = float(batch_means.std(ddof=1)) / math.sqrt(BATCHES)
        crit = float(scipy.stats.t.ppf(0.995, BATCHES - 1))
        # the boundary term of the counting identity (see recurrence_sums): exact SD where the
        # batch means degenerate (P = 2 with nearly periodic commits)
        S = recurrence_sums(rd, rows)
        S = S[np.isfinite(S)]
        boundary = Z99 * math.sqrt(2.0 * float(S.var())) / len(tau) + 1.0 / len(tau) if len(S) > 1 else 0.0
        half = max(crit * se, boundary)
        mean_ok = abs(mean - target) <= half
        extra: dict = {"ci_half_width": half, "steady_updates": len(tau), "batch_se": se, "boundary_half_width": boundary}
        detail = f"mean update staleness {mean:.4g} over {len(tau)} steady-state updates vs P - 1 = {P - 1} (99% CI ±{half:.3g})"
        ok = mean_ok
        if not mean_ok:
            detail = f"mean staleness outside the 99% CI (|diff| = {abs(mean - target):.3g}): " + detail
        speed = rd.config.workers.speed
        if isinstance(speed, sp.Exponential) and rd.message_cost == 0:
            workers = rd.worker[rows]
            pvals = [geometric_gof(tau[workers == q], P)[0] for q in range(P)]
            p_comb = min(1.0, P * min(pvals))
            counts = np.bincount(tau)
            k = np.arange(len(counts))
            pmf = (1 / P) * ((P - 1) / P) ** k
            tv = 0.5 * (np.abs(counts / len(tau) - pmf).sum() + (1 - pmf.sum()))
            extra.update({"p_value": p_comb, "tv_distance": float(tv), "per_worker_p": pvals})
            geo_ok = p_comb >= P_FAIL
            detail += f"; geometric law: chi-square p = {p_comb:.3g} (Bonferroni over {P} workers), TV {tv:.3g}"
            if not geo_ok:
                detail = f"staleness histogram rejects the geometric law (p < {P_FAIL:g}): " + detail
            ok = ok and geo_ok
        return Finding(ok, mean, target, detail, extra)
