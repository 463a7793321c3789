"""Exact facts about gradient descent with a fixed delay (reference/theorems.md §7.1 [D]).

On the quadratic problem (``problem.kind = "quadratic"``: f(x) = h ||x||^2 / 2 + noise xi-bar . x)
every coordinate of ``y = x - x*`` follows, with a constant step eta and an update that read the
parameters tau updates before the newest one (eager reads: the read is a prefix of the commit
order, so update k reads x_{k-1-tau}),

    y_k = y_{k-1} - a y_{k-1-tau} - eta e_k,   a = eta h,

where e_k is the minibatch's gradient noise (mean 0 over the sample table, per-coordinate
variance v = noise^2 Var(xi) / batch_size, independent across updates: indices are drawn with
replacement).

* **Stability threshold** (Levin & May 1976, the classical result for linear delay-difference
  equations) [D]: with noise = 0 the recursion decays iff ``0 < a < 2 sin(pi / (2 (2 tau + 1)))``
  (tau = 0: 2; tau = 1: 1; tau = 3: 0.445); checked numerically in theorems.md §12.
* **Stationary loss** [D]: with noise, the state z_k = (y_k, ..., y_{k-tau}) follows
  z_k = A z_{k-1} + b e_k with the companion matrix A (first row (1, 0, ..., 0, -a), ones below the
  diagonal) and b = (-eta, 0, ..., 0), so its covariance solves the discrete Lyapunov equation
  ``Sigma = A Sigma A^T + v b b^T`` and the stationary excess loss is

      E[f(x) - f*] = (h / 2) Sigma_00 dim,

  which for tau = 0 is eta v dim / (2 (2 - eta h)) (h = 1, eta = 0.2, tau = 3: 0.1082 v per
  coordinate against 0.0556 without delay).  The check compares the run's mean excess loss with
  the exact expectation of the same recursion driven by the trace's own delays (the first P
  updates read x_0), which tends to the Lyapunov value.

Premise for both: the delay is the same tau for every update after the first P (e.g. ASP with
staggered deterministic workers: tau = P - 1).  A scheduler whose reads silently lack an update
the trace says they hold behaves like tau + 1, and the prediction for the recorded tau fails.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.stats

from sspsim.proofs_check.evidence import RunData
from sspsim.proofs_check.theorem import Finding, Reference, Theorem

__all__ = ["StabilityThreshold", "StationaryLoss", "companion", "constant_delay", "stationary_excess", "threshold"]

SRC = "Levin & May 1976; delayed gradient descent (theorems.md §7.1)"
MARGIN = 0.03
CONVERGED = 1e-3
BATCHES = 20
REL_TOL = 0.01


def threshold(tau: int) -> float:
    """2 sin(pi / (2 (2 tau + 1))): the largest stable a = eta h at delay tau."""
    return 2.0 * math.sin(math.pi / (2.0 * (2 * tau + 1)))


def companion(a: float, tau: int, width: int | None = None) -> np.ndarray:
    """The companion matrix of y_k = y_{k-1} - a y_{k-1-tau} on states (y_k, ..., y_{k-width+1})."""
    n = tau + 1 if width is None else width
    A = np.zeros((n, n))
    A[0, 0] += 1.0
    A[0, tau] -= a
    A[np.arange(1, n), np.arange(n - 1)] = 1.0
    return A


def stationary_excess(a: float, eta: float, h: float, tau: int, v: float = 1.0) -> float:
    """(h / 2) Sigma_00 per coordinate, Sigma = A Sigma A^T + v b b^T, b = (eta, 0, ..., 0)."""
    A = companion(a, tau)
    b = np.zeros(tau + 1)
    b[0] = eta
    sigma = scipy.linalg.solve_discrete_lyapunov(A, v * np.outer(b, b))
    return 0.5 * h * float(sigma[0, 0])


def spectral_radius(a: float, tau: int) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(companion(a, tau)))))


def constant_delay(rd: RunData) -> int | None:
    """The common update staleness of every update after the first P (None if it varies)."""
    tau = rd.trace_table["update_staleness"].to_numpy().astype(np.int64)
    rest = tau[rd.P:]
    if len(rest) == 0 or not np.all(rest == rest[0]):
        return None
    return int(rest[0])


def _setting_unmet(rd: RunData, *, noisy: bool) -> list[str]:
    cfg = rd.config
    unmet = []
    if cfg.problem.kind != "quadratic":
        return [f"problem.kind = {cfg.problem.kind!r}: needs the quadratic problem"]
    if cfg.optimizer.schedule != "constant":
        unmet.append(f"schedule = {cfg.optimizer.schedule!r}: needs a constant step")
    if cfg.optimizer.momentum:
        unmet.append(f"momentum = {cfg.optimizer.momentum:g}: needs plain SGD")
    if cfg.optimizer.staleness_aware:
        unmet.append("staleness-aware steps: the step must not depend on the delay")
    noise = cfg.problem.noise or 0.0
    if noisy and noise <= 0:
        unmet.append("problem.noise = 0: the stationary loss needs gradient noise")
    if not noisy and noise != 0:
        unmet.append(f"problem.noise = {noise:g}: the threshold check needs exact gradients (noise = 0)")
    if rd.P > 1 and rd.policy != "eager":
        unmet.append(f"read_policy = {rd.policy!r}: a delay tau means the read is a prefix (eager reads)")
    if rd.trace is None or "update_staleness" not in rd.trace.columns:
        unmet.append("needs trace.csv with the update_staleness column")
    elif len(rd.trace) <= rd.P:
        unmet.append("needs more than P updates")
    elif (rd.trace["update_staleness"].to_numpy() < 0).any():
        unmet.append("negative update_staleness: the trace's delays are not delays")
    elif constant_delay(rd) is None:
        tau = rd.trace["update_staleness"].to_numpy()[rd.P:]
        unmet.append(f"delay not constant (update staleness {int(tau.min())}..{int(tau.max())} after the first P updates)")
    if rd.evals is None or not {"objective", "updates"} <= set(rd.evals.columns) or len(rd.evals) < 2:
        unmet.append("needs evals.csv with objective and updates")
    return unmet


def _delays(rd: RunData) -> np.ndarray:
    return rd.trace_table["update_staleness"].to_numpy().astype(np.int64)


def _deterministic_factor(a: float, delays: np.ndarray, upto: int) -> float:
    """u_upto of u_k = u_{k-1} - a u_{k-1-tau_k}, u_j = 1 for j <= 0 (every coordinate scales by it)."""
    T = int(delays[:upto].max()) if upto else 0
    u = np.ones(upto + T + 1)
    for k in range(1, upto + 1):
        u[k + T] = u[k - 1 + T] - a * u[k - 1 + T - int(delays[k - 1])]
        if not math.isfinite(u[k + T]) or abs(u[k + T]) > 1e150:
            return math.inf
    return float(u[upto + T])


class StabilityThreshold(Theorem[RunData]):
    name = "delayed.stability_threshold"
    reference = Reference(SRC, "x_{k+1} = x_k - a x_{k-tau} is stable iff a < 2 sin(pi / (2 (2 tau + 1)))", "D")
    summary = "with a constant delay tau and exact gradients, the run converges iff eta h < 2 sin(pi/(2(2 tau+1)))"

    def assumptions(self, rd: RunData) -> list[str]:
        return _setting_unmet(rd, noisy=False)

    def measure(self, rd: RunData) -> Finding:
        tau = constant_delay(rd)
        assert tau is not None
        h = float(rd.config.problem.curvature or 1.0)
        a = rd.config.optimizer.lr * h
        thr = threshold(tau)
        stable = a < thr
        extra = {"tau": tau, "a": a}
        if abs(a - thr) < MARGIN * thr:
            return Finding(True, a, thr, f"a = {a:.4g} within {MARGIN:.0%} of the threshold {thr:.4g} (tau = {tau}): "
                           "too close to the threshold to decide from one finite run", extra, applicable=False)
        obj = rd.evals_table["objective"].to_numpy(dtype=float)
        updates = int(rd.evals_table["updates"].to_numpy()[-1])
        initial, final = float(obj[0]), float(obj[-1])
        # what the recursion with the recorded delays predicts after this many updates
        u = _deterministic_factor(a, _delays(rd), min(updates, len(rd.trace_table)))
        expect = u * u
        extra.update({"initial": initial, "final": final, "predicted_final_ratio": expect})
        if (stable and not expect < CONVERGED) or (not stable and not expect > 1.0):
            return Finding(True, a, thr, f"run too short: after {updates} updates the recursion with tau = {tau} "
                           f"predicts f/f0 = {expect:.3g}, not yet {'converged' if stable else 'diverged'}", extra,
                           applicable=False)
        diverged = not math.isfinite(final) or final > initial
        converged = math.isfinite(final) and final < initial * CONVERGED
        if not (diverged or converged):
            return Finding(True, a, thr, f"run too short: final objective {final:.3g} is neither above the initial "
                           f"{initial:.3g} nor below {CONVERGED:g} of it", extra, applicable=False)
        ok = converged == stable
        verb = "converged" if converged else "diverged"
        detail = (f"a = eta h = {a:.4g} {'<' if stable else '>'} threshold {thr:.4g} at tau = {tau}: predicted "
                  f"{'stable' if stable else 'unstable'}; the run {verb} (f {initial:.3g} -> {final:.3g} in {updates} updates)")
        if not ok:
            detail = "prediction failed: " + detail
        return Finding(ok, a, thr, detail, extra)


class StationaryLoss(Theorem[RunData]):
    name = "delayed.stationary_loss"
    reference = Reference(SRC, "stationary excess loss (h/2) Sigma_00 dim, Sigma = A Sigma A^T + v b b^T", "D")
    summary = "with a constant delay tau and gradient noise, the mean excess loss matches the Lyapunov solution (99% CI)"

    def assumptions(self, rd: RunData) -> list[str]:
        unmet = _setting_unmet(rd, noisy=True)
        if unmet:
            return unmet
        tau = constant_delay(rd)
        assert tau is not None
        a = rd.config.optimizer.lr * float(rd.config.problem.curvature or 1.0)
        if a >= threshold(tau) * (1 - MARGIN):
            return [f"a = {a:.4g} not below the stability threshold {threshold(tau):.4g} (tau = {tau}) with "
                    f"{MARGIN:.0%} margin: no stationary loss"]
        window = self._window(rd)
        if len(window) < 2 * BATCHES:
            return [f"needs at least {2 * BATCHES} evaluations in the second half of evals.csv (has {len(window)}); "
                    "set run.eval_every small"]
        ups = rd.evals_table["updates"].to_numpy()[window]
        batch_updates = (int(ups[-1]) - int(ups[0])) / BATCHES
        mixing = 1.0 / (1.0 - spectral_radius(a, tau))
        if batch_updates < 10 * mixing:
            return [f"run too short: batches of {batch_updates:.0f} updates, need >= 10 correlation times "
                    f"({10 * mixing:.0f}) for the batch-means CI"]
        return []

    @staticmethod
    def _window(rd: RunData) -> np.ndarray:
        n = len(rd.evals_table)
        return np.arange(max(1, n // 2), n)

    def expected_curve(self, rd: RunData, at: np.ndarray) -> tuple[np.ndarray, float]:
        """Exact E[f(x_k) - f*] at update counts ``at`` for the recursion with the trace's delays,
        and the stationary (Lyapunov) value."""
        cfg = rd.config
        problem = rd.problem
        h = float(cfg.problem.curvature or 1.0)
        eta = cfg.optimizer.lr
        a = eta * h
        v = problem.sample_noise_variance / cfg.problem.batch_size
        dim = problem.n_params
        y0 = problem.initial_params() - problem.x_star
        mean_sq = float(y0 @ y0)
        delays = _delays(rd)
        tau = constant_delay(rd)
        assert tau is not None
        stationary = stationary_excess(a, eta, h, tau, v) * dim
        N = min(int(at.max()), len(delays))
        T = int(delays[:N].max())
        width = T + 1
        m = np.ones(width)
        S = np.zeros((width, width))
        e = np.zeros(width)
        e[0] = eta
        noise = v * np.outer(e, e)
        vals = np.empty(N + 1)
        vals[0] = 0.5 * h * mean_sq
        mats: dict[int, np.ndarray] = {}
        last_varying = int(np.flatnonzero(delays[:N] != tau).max()) + 1 if np.any(delays[:N] != tau) else 0
        k = 0
        while k < N:
            d = int(delays[k])
            A = mats.get(d)
            if A is None:
                A = mats[d] = companion(a, d, width)
            m = A @ m
            S = A @ S @ A.T + noise
            k += 1
            vals[k] = 0.5 * h * (mean_sq * m[0] ** 2 + dim * S[0, 0])
            if k > last_varying and mean_sq * m[0] ** 2 < 1e-14 * stationary and \
                    abs(vals[k] - stationary) <= 1e-12 * stationary:
                vals[k:] = stationary
                break
        return vals[np.minimum(at, N)], stationary

    def measure(self, rd: RunData) -> Finding:
        window = self._window(rd)
        ev = rd.evals_table
        ups = ev["updates"].to_numpy().astype(np.int64)[window]
        f_star = float(rd.problem.constants().f_star)
        excess = ev["objective"].to_numpy(dtype=float)[window] - f_star
        expected, stationary = self.expected_curve(rd, ups)
        measured = float(excess.mean())
        bound = float(expected.mean())
        size = len(excess) // BATCHES
        diff = excess[: size * BATCHES] - expected[: size * BATCHES]
        batch = diff.reshape(BATCHES, size).mean(axis=1)
        se = float(batch.std(ddof=1)) / math.sqrt(BATCHES)
        half = float(scipy.stats.t.ppf(0.995, BATCHES - 1)) * se + REL_TOL * bound
        ok = math.isfinite(measured) and abs(measured - bound) <= half
        tau = constant_delay(rd)
        detail = (f"mean excess loss {measured:.5g} over {len(excess)} evaluations (updates {ups[0]}..{ups[-1]}) vs "
                  f"{bound:.5g} expected at tau = {tau} (stationary Lyapunov value {stationary:.5g}); "
                  f"99% CI half-width {half:.3g}")
        if not ok:
            detail = "excess loss outside the 99% CI: " + detail
        return Finding(ok, measured, bound, detail,
                       {"ci_half_width": half, "stationary": stationary, "tau": tau, "batch_se": se})
