"""Runtime of synchronous, asynchronous and SSP SGD with random compute times: the runtime
table of Dutta, Joshi, Ghosh, Dube, Nagpurkar 2018, *Slow and stale gradients can win the race:
error-runtime trade-offs in distributed SGD* (AISTATS; arXiv 1803.01113), as recalled in
reference/theorems.md §8 [R], every row re-derived and Monte-Carlo checked there (§12) [D].

The model, in DESIGN's terms: worker p's iteration c lasts ``D_pc = 2 m + X_pc`` (pull, compute,
push; ``m`` = message cost), with ``X_pc`` independent, drawn from the configured speed model
and multiplied by p's persistent straggler slowdown ``k_p`` (so ``F_p(x) = F(x / k_p)``), and
the server applies updates instantly (``network.apply_time = 0``).

* **Fully synchronous (s = 0, BSP)** [R]+[D].  The gate admits clock c when clock c - 1 is
  complete everywhere, so ``M_c - M_{c-1} = max_p D_pc``: i.i.d. per clock, with mean

      E[T_sync] = 2 m + E[max_p X_p] = 2 m + ∫_0^∞ (1 - Π_p F_p(x)) dx,

  ``H_P mu`` for Exp(mean mu), ``shift + H_P mu`` for shift + Exp(mu), the value itself for
  constant times; the integral (scipy ``quad`` on the models' CDFs) otherwise.
  Check: the mean per-clock duration lies in its 99% normal CI, ``±2.576 SD/sqrt(n)``.
* **Asynchronous (s = inf, ASP; Dutta's K-batch-async with K = 1)** [R]+[D].  Nobody waits:
  each worker reads right after its own commit, so its durations ``D_pc`` are i.i.d. with mean
  ``E[D_p]`` and the server's time per update is the renewal-reward value

      E[T_async] = 1 / Σ_p (1 / E[D_p])   (= E[D] / P for identical workers).

  Check: every wait is 0, and ``1 / Σ_p 1/mean_p`` of the measured per-worker durations lies
  in its 99% CI (delta method over the independent workers).
* **K-sync (``consistency.model = "ksync"``)** [R]+[D].  Every worker restarts each round at the
  same parameters and the round ends at the K-th push, so ``M_r - M_{r-1} = 2m + X_{K:P}``, the
  K-th order statistic, with mean

      E[T_Ksync] = 2 m + E[X_{K:P}] = 2 m + ∫_0^∞ P(fewer than K of the P have X_p <= x) dx,

  ``mu (H_P - H_{P-K})`` for Exp(mean mu) (Dutta et al.'s K-sync runtime lemma [R]; K = P is
  the synchronous row, backup workers b = P - K); the Poisson-binomial integral otherwise [D].
  Check: exactly K applied and P - K discarded per round, and the mean round length in its 99% CI.
* **K-batch-sync (``model = "kbatch_sync"``)** [R]+[D].  Workers keep computing at the round's
  parameters, and the round ends at the K-th push from any of them.  With exponential times
  (rate ``1/(k_p mu)`` for worker p) and no message cost the pushes form P independent Poisson
  processes (memorylessness also makes restarting at a round's end harmless), whose
  superposition has rate ``Λ = Σ_p 1/(k_p mu)``: ``T ~ Gamma(K, Λ)``, ``E[T] = K / Λ``, which
  is Dutta et al.'s ``K / (P mu)`` [R] for identical workers (mu there a rate) [D].
  Check: exactly K applied per round, and the mean round length in its 99% CI.
* **SSP (0 < s < inf)** [D] (not in Dutta; derived and simulated in theorems.md §8).  With
  identical draws, every commit time is non-increasing in s (induction on the recurrence
  ``A[p,c] = max(C[p,c-1], M[c-1-s])``, ``C[p,c] = A[p,c] + D_pc``), so time per clock is
  non-increasing in s, equals BSP's at s = 0, and is never below the slowest worker's own
  work, ``max_p Σ_c D_pc / clocks``, at any s.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable

import numpy as np
import scipy.integrate

from sspsim import speeds as sp
from sspsim.proofs_check.evidence import RunData, SweepData
from sspsim.proofs_check.multiplicity import FAMILY_LEVEL, holm_rejections
from sspsim.proofs_check.theorem import Finding, Reference, Theorem

__all__ = [
    "AsyncRuntime",
    "KBatchSyncRuntime",
    "KSyncRuntime",
    "LocalSGDRuntime",
    "SSPRuntime",
    "SyncRuntime",
    "expected_kth",
    "expected_max",
    "mean_time",
    "speed_cdf",
    "straggler_scales",
]

SRC = "Dutta et al. 2018 (AISTATS)"
Z99 = 2.5758293035489004  # two-sided 99% normal quantile


def two_sided_p(excess: float, se: float) -> float:
    """Two-sided normal p-value of a deviation ``excess`` (beyond the rounding tolerance) with standard
    error ``se``: erfc(z / sqrt 2), z = excess / se.  A run is outside the 99% CI exactly when p < 0.01.

    >>> round(two_sided_p(2.5758293035489004, 1.0), 6)
    0.01
    """
    if excess <= 0:
        return 1.0
    if not se > 0:
        return 0.0
    return math.erfc(excess / se / math.sqrt(2.0))
MIN_CLOCKS = 30


# -- the speed models' distributions ------------------------------------------------------


def straggler_scales(rd: RunData) -> np.ndarray:
    """Persistent slowdown of each worker (product of its ``stragglers`` entries; 1 if none)."""
    k = np.ones(rd.P)
    for s in rd.config.workers.stragglers:
        if 0 <= s.worker < rd.P:
            k[s.worker] *= s.slowdown
    return k


def _constant_value(speed: sp.SpeedModel) -> float | None:
    """The value of a speed model that is deterministic (None if it is random)."""
    return speed.constant_value


def mean_time(speed: sp.SpeedModel) -> float:
    """E[X] of a speed model (inf for a Pareto with alpha <= 1)."""
    return float(speed.mean)


def speed_cdf(speed: sp.SpeedModel) -> tuple[Callable[[float], float], float, float]:
    """(F, lo, hi): the CDF of X and its support [lo, hi] (hi may be inf), as the model states it.

    For the built-in models: exponential ``1 - e^{-x/mu}``; shifted exponential
    ``1 - e^{-(x-shift)/mu}`` above the shift; lognormal with the mean parametrisation
    ``mu = log(mean) - sigma^2 / 2``; Pareto type I, ``F(x) = 1 - (scale / x)^alpha``; uniform
    on [low, high].  A model without a distribution (trace, empirical) raises TypeError.
    """
    return speed.cdf()


def expected_max(speed: sp.SpeedModel, scales: np.ndarray) -> tuple[float, str]:
    """E[max_p k_p X_p] for independent X_p from ``speed``; returns (value, how it was computed).

    Closed forms for identical workers (constant, exponential, shifted exponential); otherwise
    ``lo + ∫_lo^hi (1 - Π_p F(x / k_p)) dx`` with ``lo = max_p k_p lo_X`` (below it the product is 0).
    """
    scales = np.asarray(scales, dtype=float)
    P = len(scales)
    const = _constant_value(speed)
    if const is not None:
        return float(const * scales.max()), "constant times"
    same = bool(np.all(scales == scales[0]))
    H = float(np.sum(1.0 / np.arange(1, P + 1)))
    if same and isinstance(speed, sp.Exponential):
        return float(scales[0] * speed.mean * H), "closed form H_P mu"
    if same and isinstance(speed, sp.ShiftedExponential):
        return float(scales[0] * (speed.shift + speed.mean_excess * H)), "closed form shift + H_P mu"
    F, lo, hi = speed_cdf(speed)
    ks = [float(k) for k in scales]
    lower = lo * max(ks)
    upper = hi * max(ks)

    def tail(x: float) -> float:
        prod = 1.0
        for k in ks:
            prod *= F(x / k)
            if prod == 0.0:
                return 1.0
        return 1.0 - prod

    return _integrate_tail(tail, speed, ks, lo, hi, lower, upper), "numerical order-statistic integral"


def _integrate_tail(tail: Callable[[float], float], speed: sp.SpeedModel, ks: list[float], lo: float, hi: float,
                    lower: float, upper: float) -> float:
    """``lower + ∫_lower^upper tail(x) dx``: E[T] of a time T >= lower with ``tail(x) = P(T > x)``.

    The support's breakpoints ``lo k_p``, ``hi k_p`` are given to the quadrature; an infinite
    support is a finite stretch where the bulk lies, then the (power or exponential) tail.
    """
    opts = dict(epsabs=1e-12, epsrel=1e-10, limit=400)
    with warnings.catch_warnings():  # quad's "roundoff detected" notes: its estimate is still ~1e-10 relative
        warnings.simplefilter("ignore", scipy.integrate.IntegrationWarning)
        if math.isfinite(upper):
            breaks = sorted({lo * k for k in ks} | {hi * k for k in ks})
            inner = [b for b in breaks if lower < b < upper]
            val = scipy.integrate.quad(tail, lower, upper, points=inner or None, **opts)[0]
        else:
            mid = lower + 50.0 * max(ks) * max(mean_time(speed), 1e-300)
            val = scipy.integrate.quad(tail, lower, mid, **opts)[0] + scipy.integrate.quad(tail, mid, math.inf, **opts)[0]
    return float(lower + val)


def expected_kth(speed: sp.SpeedModel, scales: np.ndarray, k: int) -> tuple[float, str]:
    """E[X_{K:P}], the K-th smallest of independent ``k_p X_p`` (K = P: :func:`expected_max`).

    Closed forms for identical workers: ``mu (H_P - H_{P-K})`` (exponential), ``shift +`` that
    (shifted exponential), the K-th smallest scaled value (constant).  Otherwise
    ``∫_0^∞ P(N(x) < K) dx``, ``N(x)`` the number of workers done by x, Poisson-binomial with
    probabilities ``F(x / k_p)`` (computed by the usual recursion over workers).
    """
    scales = np.asarray(scales, dtype=float)
    P = len(scales)
    if not 1 <= k <= P:
        raise ValueError(f"k = {k} must lie in 1..{P}")
    const = _constant_value(speed)
    if const is not None:
        return float(np.sort(const * scales)[k - 1]), "constant times"
    same = bool(np.all(scales == scales[0]))
    gap = float(np.sum(1.0 / np.arange(P - k + 1, P + 1)))  # H_P - H_{P-K}
    if same and isinstance(speed, sp.Exponential):
        return float(scales[0] * speed.mean * gap), "closed form mu (H_P - H_{P-K})"
    if same and isinstance(speed, sp.ShiftedExponential):
        return float(scales[0] * (speed.shift + speed.mean_excess * gap)), "closed form shift + mu (H_P - H_{P-K})"
    F, lo, hi = speed_cdf(speed)
    ks = [float(v) for v in scales]
    lower = float(np.sort(lo * scales)[k - 1])  # below it fewer than K can be done
    upper = float(np.sort(hi * scales)[k - 1]) if math.isfinite(hi) else math.inf

    def tail(x: float) -> float:
        dist = np.zeros(P + 1)
        dist[0] = 1.0
        for i, kp in enumerate(ks):
            q = F(x / kp)
            dist[1:i + 2] = dist[1:i + 2] * (1 - q) + dist[:i + 1] * q
            dist[0] *= 1 - q
        return float(dist[:k].sum())

    return _integrate_tail(tail, speed, ks, lo, hi, lower, upper), "numerical order-statistic integral (Poisson-binomial)"


# -- premises shared by the run checks -----------------------------------------------------


def _timing_unmet(rd: RunData) -> list[str]:
    """Premises of Dutta's model: configured parametric i.i.d. times, no contention, a full trace."""
    cfg = rd.config
    speed = cfg.workers.speed
    unmet = []
    if rd.backend != "sim":
        unmet.append(f"backend = {rd.backend!r}: only the simulator draws compute times from the configured model")
    if isinstance(speed, sp.TraceTimes):
        unmet.append("speed kind = trace: replayed times are not i.i.d. draws of a distribution")
    if cfg.workers.transient is not None and cfg.workers.transient.probability > 0:
        unmet.append("transient slowdowns make compute times dependent across iterations")
    if cfg.network.contention:
        unmet.append(f"network.apply_time = {cfg.network.apply_time:g}, serve_time = {cfg.network.serve_time:g}: "
                     "server contention is outside the model")
    if isinstance(speed, sp.Pareto) and speed.alpha <= 3:
        unmet.append(f"Pareto alpha = {speed.alpha:g} <= 3: the mean's normal CI needs a finite third moment")
    if rd.trace is None or "commit_time" not in rd.trace.columns:
        unmet.append('needs trace.csv (the run used trace = "summary")')
    elif not rd.complete:
        unmet.append("the run is incomplete")
    return unmet


def _per_worker_commits(rd: RunData) -> list[np.ndarray]:
    commit = rd.trace_table["commit_time"].to_numpy(dtype=float)
    out = []
    for q in range(rd.P):
        rows = np.flatnonzero(rd.worker == q)
        out.append(commit[rows[np.argsort(rd.clock[rows], kind="stable")]])
    return out


# -- the checks ------------------------------------------------------------------------------


def _round_ends(rd: RunData) -> np.ndarray:
    """M[1..R]: the instants rounds ended (every row of a round commits or is dropped then)."""
    assert rd.trace is not None
    return np.unique(rd.trace_table["commit_time"].to_numpy(dtype=float))


def _round_findings(rd: RunData, k: int, predicted: float, how: str, law: str) -> Finding:
    """Exactly ``k`` applied per round, and the mean round length against ``predicted`` (99% CI)."""
    M = _round_ends(rd)
    assert rd.trace is not None
    commit = rd.trace_table["commit_time"].to_numpy(dtype=float)
    kept = rd.trace["discarded"].to_numpy() == 0
    rnd = np.searchsorted(M, commit)
    applied = np.bincount(rnd[kept], minlength=len(M))
    wrong = np.flatnonzero(applied != k)
    durations = np.diff(np.concatenate([[0.0], M]))
    n = len(durations)
    measured = float(durations.mean())
    sd = float(durations.std(ddof=1)) if n > 1 else 0.0
    half = Z99 * sd / math.sqrt(n) + 1e-9 * abs(predicted) + 1e-12
    in_ci = abs(measured - predicted) <= half
    detail = (f"mean round length {measured:.5g} over {n} rounds vs {law} = {predicted:.5g} ({how}); "
              f"99% CI half-width {half:.3g}; {k} gradient(s) applied per round")
    if len(wrong):
        detail = (f"{len(wrong)} round(s) applied other than K = {k} gradients, e.g. round {int(wrong[0]) + 1} "
                  f"applied {int(applied[wrong[0]])}: " + detail)
    elif not in_ci:
        detail = f"round length outside the 99% CI (|diff| = {abs(measured - predicted):.3g}): " + detail
    return Finding(not len(wrong) and in_ci, measured, predicted, detail,
                   {"ci_half_width": half, "sd": sd, "rounds": n, "method": how, "bad_rounds": len(wrong),
                    "relative_error": abs(measured - predicted) / predicted if predicted else None})


def _rounds_unmet(rd: RunData) -> list[str]:
    unmet = _timing_unmet(rd)
    if not unmet and not rd.has("discarded"):
        unmet.append("needs the trace's discarded column")
    if not unmet:
        n = len(_round_ends(rd))
        if n < MIN_CLOCKS:
            unmet.append(f"needs at least {MIN_CLOCKS} rounds for a CI (has {n})")
    return unmet


class KSyncRuntime(Theorem[RunData]):
    """Runs with ``consistency.model = "ksync"``.  [R] for identical exponential workers, where
    Dutta et al. state ``E[T] = mu (H_P - H_{P-K})``; [D] elsewhere (the order-statistic
    integral over the workers' slowdowns, of which that is the closed form).  A server that
    waits for more pushes, or applies other than K, is caught (tests/test_alternatives.py)."""

    name = "dutta2018.ksync_runtime"
    models = ("ksync",)
    reference = Reference(SRC, "K-sync SGD runtime: E[T] = E[X_{K:P}] = mu (H_P - H_{P-K}) for Exp(mu) (+ 2 message costs)", "R")
    summary = "K-sync: K gradients applied per round, and the mean round length equals 2m + E[X_{K:P}], within a 99% CI"

    def assumptions(self, rd: RunData) -> list[str]:
        unmet = _rounds_unmet(rd)
        speed = rd.config.workers.speed
        if not unmet and isinstance(speed, sp.Pareto) and speed.alpha <= 1:
            unmet.append("Pareto alpha <= 1: infinite mean")
        return unmet

    def predicted(self, rd: RunData) -> tuple[float, str]:
        """2m + E[X_{K:P}] over the workers' slowdowns."""
        k = rd.config.consistency.k
        assert k is not None
        kth, how = expected_kth(rd.config.workers.speed, straggler_scales(rd), k)
        return 2.0 * rd.message_cost + kth, how

    def measure(self, rd: RunData) -> Finding:
        predicted, how = self.predicted(rd)
        k = rd.config.consistency.k
        assert k is not None
        return _round_findings(rd, k, predicted, how, "2m + E[X_{K:P}]")


class KBatchSyncRuntime(Theorem[RunData]):
    """Runs with ``consistency.model = "kbatch_sync"``, exponential times, no message cost.  [R]
    for identical workers (``K / (P mu)``, mu a rate); [D] with persistent stragglers
    (``K / Σ_p rate_p``, the rate of the superposed Poisson pushes)."""

    name = "dutta2018.kbatch_sync_runtime"
    models = ("kbatch_sync",)
    reference = Reference(SRC, "K-batch-sync SGD runtime: E[T] = K / (P mu) for exponential times of rate mu", "R")
    summary = "K-batch-sync: K gradients applied per round, and the mean round length equals K / Σ_p rate_p, within a 99% CI"

    def assumptions(self, rd: RunData) -> list[str]:
        unmet = _rounds_unmet(rd)
        if not isinstance(rd.config.workers.speed, sp.Exponential):
            unmet.append(f"speed kind = {type(rd.config.workers.speed).__name__}: the law needs exponential times (memorylessness)")
        if rd.message_cost > 0:
            unmet.append(f"message cost {rd.message_cost:g} > 0: an iteration 2m + X is not exponential")
        if rd.config.workers.compute is not None:
            unmet.append("workers.compute adds a second draw: an iteration is not exponential")
        return unmet

    def predicted(self, rd: RunData) -> tuple[float, str]:
        """K / Λ, Λ = Σ_p 1 / (k_p mu)."""
        k = rd.config.consistency.k
        assert k is not None
        rate = float(np.sum(1.0 / (straggler_scales(rd) * mean_time(rd.config.workers.speed))))
        return k / rate, "K / Σ_p rate_p (Poisson superposition)"

    def measure(self, rd: RunData) -> Finding:
        predicted, how = self.predicted(rd)
        k = rd.config.consistency.k
        assert k is not None
        return _round_findings(rd, k, predicted, how, "K / (P mu)")


class LocalSGDRuntime(Theorem[RunData]):
    """Runs with ``consistency.model = "local_sgd"``, period H.  [D]: Dutta et al.'s synchronous
    row with an iteration replaced by H local steps: a round lasts ``2m + max_p k_p (X_p1 + ... +
    X_pH)``; for Exp(mu) times the H-step sum is Gamma(H, mu), so ``E[T] = 2m + ∫_0^∞ (1 - Π_p
    G_H(x / (k_p mu))) dx``, G_H the Gamma(H) CDF; for constant times ``2m + H c max_p k_p``.
    Only full rounds count (a last, shorter round is left out)."""

    name = "dutta2018.local_sgd_runtime"
    models = ("local_sgd",)
    reference = Reference(SRC, "synchronous runtime with H local steps per round: E[max_p (2m + Σ_H X_p)]", "D")
    summary = "local SGD: every worker takes H steps per round, and the mean round length equals 2m + E[max_p Σ_H X_p], within a 99% CI"

    def assumptions(self, rd: RunData) -> list[str]:
        unmet = _rounds_unmet(rd)
        speed = rd.config.workers.speed
        if _constant_value(speed) is None and not isinstance(speed, sp.Exponential):
            unmet.append(f"speed kind = {type(speed).__name__}: the law needs exponential or constant times")
        if rd.config.workers.compute is not None:
            unmet.append("workers.compute adds a second draw per step")
        return unmet

    def predicted(self, rd: RunData) -> tuple[float, str]:
        """2m + E[max_p k_p Gamma(H, mu)] (or its constant-time value)."""
        H = rd.config.consistency.period
        assert H is not None
        scales = straggler_scales(rd)
        speed = rd.config.workers.speed
        const = _constant_value(speed)
        if const is not None:
            return 2.0 * rd.message_cost + H * const * float(scales.max()), "constant times"
        import scipy.stats

        mu = mean_time(speed)

        def tail(x: float) -> float:
            return 1.0 - float(np.prod(scipy.stats.gamma.cdf(x / (scales * mu), H)))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.integrate.IntegrationWarning)
            mid = 50.0 * H * float(scales.max()) * mu
            val = (scipy.integrate.quad(tail, 0.0, mid, epsabs=1e-12, epsrel=1e-10, limit=400)[0]
                   + scipy.integrate.quad(tail, mid, math.inf, epsabs=1e-12, epsrel=1e-10, limit=400)[0])
        return 2.0 * rd.message_cost + val, "numerical integral of the Gamma(H) maximum"

    def measure(self, rd: RunData) -> Finding:
        H = rd.config.consistency.period
        assert H is not None and rd.trace is not None
        M = _round_ends(rd)
        commit = rd.trace_table["commit_time"].to_numpy(dtype=float)
        rnd = np.searchsorted(M, commit)
        steps = np.bincount(rnd * rd.P + rd.worker, minlength=len(M) * rd.P).reshape(len(M), rd.P)
        full = len(M) if rd.config.run.clocks % H == 0 else len(M) - 1
        wrong = np.flatnonzero((steps[:full] != H).any(axis=1))
        durations = np.diff(np.concatenate([[0.0], M]))[:full]
        predicted, how = self.predicted(rd)
        n = len(durations)
        measured = float(durations.mean())
        sd = float(durations.std(ddof=1)) if n > 1 else 0.0
        half = Z99 * sd / math.sqrt(n) + 1e-9 * abs(predicted) + 1e-12
        in_ci = abs(measured - predicted) <= half
        detail = (f"mean round length {measured:.5g} over {n} full rounds vs 2m + E[max_p Σ_H X_p] = {predicted:.5g} "
                  f"({how}); 99% CI half-width {half:.3g}; H = {H} steps per worker per round")
        if len(wrong):
            detail = f"{len(wrong)} round(s) where a worker took other than H = {H} steps, e.g. round {int(wrong[0]) + 1}: " + detail
        elif not in_ci:
            detail = f"round length outside the 99% CI (|diff| = {abs(measured - predicted):.3g}): " + detail
        return Finding(not len(wrong) and in_ci, measured, predicted, detail,
                       {"ci_half_width": half, "sd": sd, "rounds": n, "method": how, "bad_rounds": len(wrong)})


class SyncRuntime(Theorem[RunData]):
    name = "dutta2018.sync_runtime"
    reference = Reference(SRC, "runtime table, fully synchronous SGD: E[T] = E[X_{P:P}] (+ 2 message costs)", "R")
    summary = "BSP time per clock equals E[max_p (2m + X_p)] (closed form or order-statistic integral), within a 99% CI"

    def assumptions(self, rd: RunData) -> list[str]:
        unmet = []
        if rd.s != 0:
            unmet.append(f"staleness = {rd.s:g}: the synchronous formula needs s = 0 (BSP)")
        unmet += _timing_unmet(rd)
        if not unmet:
            M = rd.clock_completion
            n = int(np.isfinite(M[1:]).sum())
            if n < MIN_CLOCKS:
                unmet.append(f"needs at least {MIN_CLOCKS} complete clocks for a CI (has {n})")
            if isinstance(rd.config.workers.speed, sp.Pareto) and rd.config.workers.speed.alpha <= 1:
                unmet.append("Pareto alpha <= 1: infinite mean")
        return unmet

    def predicted(self, rd: RunData) -> tuple[float, str]:
        """2m + E[max_p k_p X_p]."""
        emax, how = expected_max(rd.config.workers.speed, straggler_scales(rd))
        return 2.0 * rd.message_cost + emax, how

    def measure(self, rd: RunData) -> Finding:
        M = rd.clock_completion
        M = M[np.isfinite(M)]
        durations = np.diff(M)
        n = len(durations)
        measured = float(durations.mean())
        sd = float(durations.std(ddof=1))
        predicted, how = self.predicted(rd)
        tol = 1e-9 * abs(predicted) + 1e-12
        half = Z99 * sd / math.sqrt(n) + tol
        ok = abs(measured - predicted) <= half
        p_value = two_sided_p(abs(measured - predicted) - tol, sd / math.sqrt(n))
        detail = (f"mean time per clock {measured:.5g} over {n} clocks vs 2m + E[max_p X_p] = {predicted:.5g} ({how}); "
                  f"99% CI half-width {half:.3g}")
        if not ok:
            detail = f"time per clock outside the 99% CI (|diff| = {abs(measured - predicted):.3g}): " + detail
        return Finding(ok, measured, predicted, detail,
                       {"ci_half_width": half, "sd": sd, "clocks": n, "method": how,
                        "p_value": p_value, "statistical": True})


class AsyncRuntime(Theorem[RunData]):
    name = "dutta2018.async_runtime"
    reference = Reference(SRC, "runtime table, async (K-batch-async, K = 1): E[T] = E[X] / P, nobody waits", "R")
    summary = "ASP: no worker ever waits, and the time per update 1/Σ_p 1/E[D_p] matches, within a 99% CI"

    def assumptions(self, rd: RunData) -> list[str]:
        unmet = []
        if not math.isinf(rd.s):
            unmet.append(f"staleness = {rd.s:g}: the async formula needs s = inf (ASP)")
        unmet += _timing_unmet(rd)
        if not unmet:
            speed = rd.config.workers.speed
            if isinstance(speed, sp.Pareto) and speed.alpha <= 1:
                unmet.append("Pareto alpha <= 1: infinite mean")
            fewest = int(rd.clocks_per_worker.min()) if rd.P else 0
            if fewest < MIN_CLOCKS:
                unmet.append(f"needs at least {MIN_CLOCKS} iterations per worker for a CI (has {fewest})")
        return unmet

    def measure(self, rd: RunData) -> Finding:
        commits = _per_worker_commits(rd)
        scale = max(1.0, max(float(c.max()) for c in commits))
        # waits: each read against the reader's own previous commit (and the recorded wait_time)
        read = rd.read_instant.astype(float)
        if not rd.has("read_time"):  # start_time = read + one message cost
            read = read - rd.message_cost
        prev = np.zeros(len(read))
        for q, c in enumerate(commits):
            rows = np.flatnonzero(rd.worker == q)
            order = rows[np.argsort(rd.clock[rows], kind="stable")]
            prev[order] = np.concatenate([[0.0], c[:-1]])
        waits = read - prev
        if rd.has("wait_time"):
            waits = np.maximum(waits, rd.trace_table["wait_time"].to_numpy(dtype=float))
        max_wait = float(waits.max()) if len(waits) else 0.0
        waited = waits > 1e-12 * scale

        ED = 2.0 * rd.message_cost + straggler_scales(rd) * mean_time(rd.config.workers.speed)
        predicted = 1.0 / float(np.sum(1.0 / ED))
        durations = [np.diff(np.concatenate([[0.0], c])) for c in commits]
        means = np.array([d.mean() for d in durations])
        sds = np.array([d.std(ddof=1) for d in durations])
        ns = np.array([len(d) for d in durations])
        with np.errstate(divide="ignore", invalid="ignore"):  # a worker whose iterations took no time
            measured = 1.0 / float(np.sum(1.0 / means))
            se = math.sqrt(float(np.sum((measured**2 / means**2) ** 2 * sds**2 / ns)))  # delta method
        tol = 1e-9 * predicted + 1e-12
        half = Z99 * se + tol
        in_ci = bool(np.isfinite(half)) and abs(measured - predicted) <= half
        p_value = two_sided_p(abs(measured - predicted) - tol, se) if np.isfinite(half) else 0.0
        ok = in_ci and not waited.any()
        detail = (f"time per update 1/Σ_p 1/mean_p = {measured:.5g} vs 1/Σ_p 1/E[D_p] = {predicted:.5g} "
                  f"(99% CI half-width {half:.3g}); largest wait {max_wait:.3g}")
        if waited.any():
            i = int(np.flatnonzero(waited)[0])
            detail = (f"{int(waited.sum())} ASP read(s) waited after the worker's own commit, e.g. worker "
                      f"{rd.worker[i]} clock {rd.clock[i]} waited {waits[i]:.4g}: " + detail)
        elif not in_ci:
            detail = f"time per update outside the 99% CI (|diff| = {abs(measured - predicted):.3g}): " + detail
        return Finding(ok, measured, predicted, detail,
                       {"ci_half_width": half, "max_wait": max_wait, "waits": int(waited.sum()),
                        "p_value": p_value, "statistical": not bool(waited.any()),
                        "per_worker_mean": means.tolist(), "per_worker_expected": ED.tolist()})


def _group_key(rd: RunData) -> str:
    cfg = rd.config.to_dict()
    cfg.get("consistency", {}).pop("staleness", None)
    return json.dumps(cfg, sort_keys=True, default=str)


def _time_per_clock(rd: RunData) -> float | None:
    if rd.trace is not None and "commit_time" in rd.trace.columns and len(rd.trace):
        return float(rd.trace["commit_time"].max()) / float(rd.clock.max())
    tpc = rd.summary.get("time_per_clock")
    return None if tpc is None else float(tpc)


def _own_work(rd: RunData) -> float | None:
    """max_p Σ_c (compute + 2m + apply_time) / clocks: no schedule finishes sooner (time per clock)."""
    if not rd.has("compute_time"):
        return None
    work = np.bincount(rd.worker, weights=rd.trace_table["compute_time"].to_numpy(dtype=float), minlength=rd.P)
    per = work + rd.clocks_per_worker * (2.0 * rd.message_cost + rd.config.network.apply_time)
    return float(per.max()) / float(rd.clock.max())


class SSPRuntime(Theorem[SweepData]):
    name = "dutta2018.ssp_runtime"
    reference = Reference(SRC, "SSP runtime facts (theorems.md §8): monotone in s, BSP at s = 0, >= slowest worker", "D")
    scope = "sweep"
    summary = ("runs differing only in s (same draws): time per clock non-increasing in s, s = 0 matches BSP, "
               "and never below the slowest worker's own work")

    def _groups(self, sweep: SweepData) -> list[list[RunData]]:
        groups: dict[str, list[RunData]] = {}
        for rd in sweep.runs:
            if not rd.complete or rd.model != "ssp" or _time_per_clock(rd) is None:
                continue
            groups.setdefault(_group_key(rd), []).append(rd)
        out = []
        for runs in groups.values():
            if len({r.s for r in runs}) >= 2 and not runs[0].config.network.contention:
                out.append(sorted(runs, key=lambda r: r.s))
        return out

    def assumptions(self, sweep: SweepData) -> list[str]:
        if not self._groups(sweep):
            return ["needs a group of complete runs that differ only in consistency.staleness (>= 2 values, "
                    "same seed and config, no server contention: network.apply_time = serve_time = 0)"]
        return []

    def measure(self, sweep: SweepData) -> Finding:
        problems: list[str] = []
        bsp_tests: list[Finding] = []
        worst_ratio = 0.0
        lowest_margin = math.inf
        table = []
        bsp_checks = []
        for runs in self._groups(sweep):
            tpcs = [t for r in runs if (t := _time_per_clock(r)) is not None]  # every run: _groups keeps those
            row = {"s": [r.s if math.isfinite(r.s) else "inf" for r in runs], "time_per_clock": tpcs}
            for a, b, ra, rb in zip(tpcs, tpcs[1:], runs, runs[1:]):
                ratio = b / a if a > 0 else (1.0 if b == 0 else math.inf)
                worst_ratio = max(worst_ratio, ratio)
                if b > a * (1 + 1e-9) + 1e-12:
                    problems.append(f"time per clock rose from {a:.5g} (s = {ra.s:g}) to {b:.5g} (s = {rb.s:g})")
            lows: list[float | None] = []
            for r, t in zip(runs, tpcs):
                low = _own_work(r)
                lows.append(low)
                if low is None:
                    continue
                lowest_margin = min(lowest_margin, t / low if low > 0 else math.inf)
                if t < low * (1 - 1e-9) - 1e-12:
                    problems.append(f"s = {r.s:g}: time per clock {t:.5g} below the slowest worker's own work {low:.5g}")
            row["lower_limit"] = lows
            zero = [r for r in runs if r.s == 0]
            if zero:
                sync = SyncRuntime()
                unmet = sync.assumptions(zero[0])
                if unmet:
                    bsp_checks.append(f"s = 0 vs BSP formula not applicable ({unmet[0]})")
                else:
                    found = sync.measure(zero[0])
                    row["bsp"] = {"measured": found.measured, "predicted": found.bound}
                    bsp_checks.append(f"s = 0 {found.measured:.4g} vs BSP {found.bound:.4g}")
                    bsp_tests.append(found)
            table.append(row)
        # the s = 0 runs against the BSP interval: one test per group, Holm across them (multiplicity.py)
        p_values = [float((f.extra or {}).get("p_value", 0.0 if not f.holds else 1.0)) for f in bsp_tests]
        for found, reject in zip(bsp_tests, holm_rejections(p_values, FAMILY_LEVEL)):
            if reject:
                problems.append("s = 0 run does not match BSP: " + found.detail)
        ok = not problems
        detail = (f"{len(table)} group(s); time per clock non-increasing in s (largest ratio of consecutive s "
                  f"{worst_ratio:.4g}), smallest margin over the slowest worker's work {lowest_margin:.4g}"
                  + (f"; {'; '.join(bsp_checks)}" if bsp_checks else ""))
        if problems:
            detail = "; ".join(problems[:3]) + f" ({len(problems)} problem(s))"
        return Finding(ok, worst_ratio, 1.0, detail, {"groups": table, "min_lower_margin": lowest_margin})
