"""Ho, Cipar, Cui, Kim, Lee, Gibbons, Gibson, Ganger, Xing 2013, *More effective distributed ML via
a stale synchronous parallel parameter server* (NIPS): Lemma 1 (inconsistency sets) and
Theorem 1 (regret of SGD under SSP).  Statements as recalled in reference/theorems.md §2-§3 [R],
with the s = 0 correction and the index window under DESIGN's gate derived there [D].
"""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize

from sspsim.config import Config
from sspsim.proofs_check.evidence import RunData
from sspsim.proofs_check.readsets import read_sets
from sspsim.proofs_check.replay import run_math
from sspsim.proofs_check.theorem import Finding, Reference, Theorem
from sspsim.sampling import sample_indices

__all__ = ["InconsistencyBound", "IndexWindow", "Regret", "RegretRate", "stream_regret", "theorem_step"]

SRC = "Ho et al. 2013"


class InconsistencyBound(Theorem[RunData]):
    name = "ho2013.inconsistency_bound"
    reference = Reference(SRC, "Lemma 1: |A_t| + |B_t| <= 2s(P-1), with the s = 0 correction max(2s,1)(P-1)", "D")
    summary = "gamma_t = |A_t| + |B_t| <= max(2s, 1)(P - 1) against the round-robin order t = P(c-1) + p + 1"

    def assumptions(self, rd: RunData) -> list[str]:
        if math.isinf(rd.s):
            return ["staleness = inf (ASP): no bound on the inconsistency sets"]
        sets = read_sets(rd)
        return [f"read sets unavailable: {sets}"] if isinstance(sets, str) else []

    def measure(self, rd: RunData) -> Finding:
        sets = read_sets(rd)
        assert not isinstance(sets, str)
        gamma = sets.gamma
        bound = max(2 * rd.s, 1) * (rd.P - 1)
        worst = int(gamma.max()) if len(gamma) else 0
        ok = worst <= bound
        detail = (f"max gamma_t {worst}, mean {gamma.mean():.3g}, variance {gamma.var():.3g} over {len(gamma)} updates"
                  if ok else f"{int((gamma > bound).sum())} update(s) with gamma_t above max(2s,1)(P-1) = {bound}")
        return Finding(ok, float(worst), float(bound), detail,
                       {"mean_gamma": float(gamma.mean()), "var_gamma": float(gamma.var())})


class IndexWindow(Theorem[RunData]):
    name = "ho2013.index_window"
    reference = Reference(SRC, "Lemma 1 index window, t - (s+1)P < i < t + (s+1)P under DESIGN's gate", "D")
    summary = "every update a read misses or holds beyond the reference lies within (s + 1)P of t"

    def assumptions(self, rd: RunData) -> list[str]:
        return InconsistencyBound().assumptions(rd)

    def measure(self, rd: RunData) -> Finding:
        sets = read_sets(rd)
        assert not isinstance(sets, str)
        back, ahead = sets.window()
        bound = (rd.s + 1) * rd.P
        worst = int(max(back.max(initial=0), ahead.max(initial=0)))
        ok = worst < bound
        ho = rd.s * rd.P
        detail = (f"oldest missing update {int(back.max(initial=0))} and newest extra {int(ahead.max(initial=0))} "
                  f"positions from t (Ho et al.'s t + sP = t + {int(ho)} for reads taken at admission)")
        if not ok:
            detail = f"an update {worst} positions from t, outside the window of {int(bound)}: " + detail
        return Finding(ok, float(worst), float(bound), detail)


def theorem_step(config: Config, diameter: float, lipschitz: float = 1.0) -> float:
    """sigma = F / (L sqrt(2 (s + 1) P)): Theorem 1's step constant, eta_t = sigma / sqrt(t).

    >>> from sspsim.config import config_from_dict
    >>> round(theorem_step(config_from_dict({"workers": {"count": 4}, "consistency": {"staleness": 1}}), 2.0), 4)
    0.5
    """
    return diameter / (lipschitz * math.sqrt(2 * (config.consistency.staleness + 1) * config.workers.count))


def stream_regret(rd: RunData, upto: int | None = None) -> tuple[float, np.ndarray, int]:
    """R[X] = sum_t f_t(x~_t) - min_x sum_t f_t(x) over the updates with t <= ``upto``.

    f_t is the minibatch loss of update t (the trace's ``loss``, evaluated at the parameters that
    update read); the comparator minimises the same stream.  Returns (R, x*, T).
    """
    problem = rd.problem
    cfg = rd.config
    keep = np.ones(len(rd.trace_table), dtype=np.bool_) if upto is None else rd.t_index <= upto
    rows = np.flatnonzero(keep)
    b, n = cfg.problem.batch_size, problem.n_samples
    idx = np.concatenate([sample_indices(cfg.problem_seed, int(rd.worker[r]), int(rd.clock[r]), b, n) for r in rows])
    T = len(rows)

    def total(x: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad = problem.loss_grad(x, idx)  # mean over T * b samples = (1/T) sum_t f_t
        return T * loss, T * grad

    res = scipy.optimize.minimize(total, problem.initial_params(), jac=True, method="L-BFGS-B",
                                  options={"gtol": 1e-10, "ftol": 0.0, "maxiter": 5000})
    incurred = float(rd.trace_table["loss"].to_numpy()[rows].sum())
    return incurred - float(res.fun), res.x, T


def _theorem1_unmet(rd: RunData) -> list[str]:
    cfg = rd.config
    unmet = []
    if rd.trace is None or "loss" not in rd.trace.columns:
        return ["needs trace.csv with the loss column"]
    if math.isinf(rd.s):
        unmet.append("staleness = inf: Theorem 1 needs a finite s")
    const = rd.meta.get("problem", {}).get("constants", {})
    if not const.get("convex") or const.get("lipschitz") is None or const.get("diameter") is None:
        unmet.append(f"needs a convex problem with known L and F (problem.kind = {cfg.problem.kind!r} has none)")
        return unmet
    if cfg.optimizer.schedule != "inv_sqrt":
        unmet.append("needs schedule = inv_sqrt (eta_t = sigma / sqrt(t))")
    if cfg.optimizer.momentum or cfg.optimizer.staleness_aware:
        unmet.append("needs plain SGD (no momentum, no staleness-aware steps)")
    if not unmet:
        sigma = theorem_step(cfg, const["diameter"], const["lipschitz"])
        if abs(cfg.optimizer.lr - sigma) > 1e-6 * sigma:
            unmet.append(f"needs optimizer.lr = sigma = F/(L sqrt(2(s+1)P)) = {sigma:.6g} (has {cfg.optimizer.lr:g})")
    return unmet


class Regret(Theorem[RunData]):
    name = "ho2013.regret"
    reference = Reference(SRC, "Theorem 1: R[X] <= 4 F L sqrt(2 (s+1) P T)", "R")
    summary = "regret of the stale reads against the best fixed x on the same stream"

    def assumptions(self, rd: RunData) -> list[str]:
        return _theorem1_unmet(rd)

    def measure(self, rd: RunData) -> Finding:
        const = rd.meta["problem"]["constants"]
        F, L = const["diameter"], const["lipschitz"]
        R, x_star, T = stream_regret(rd)
        bound = 4 * F * L * math.sqrt(2 * (rd.s + 1) * rd.P * T)
        # Precondition: D(x* || x~_t) <= F^2 along the run.  If it fails, the theorem says nothing.
        math_ = run_math(rd)
        if not isinstance(math_, str):
            reach = float(0.5 * (np.linalg.norm(math_.reads - x_star, axis=1) ** 2).max())
            if reach > F * F:
                return Finding(True, R, bound, f"assumption violated, not the theorem: max D(x*||x~_t) = {reach:.4g} > F^2 = {F * F:.4g}",
                               applicable=False)
        ok = R <= bound
        return Finding(ok, R, bound, f"T = {T} updates, regret per update {R / T:.4g}", {"regret_per_update": R / T})


class RegretRate(Theorem[RunData]):
    """Theorem 1 at every prefix of the run, and the fitted slope of log R on log T.

    The theorem bounds R(T) / sqrt(T) by 4 F L sqrt(2 (s+1) P) for every T; that is what can be
    checked without false alarms.  The fitted slope (1/2 asymptotically) is reported beside it:
    over a finite run it is pre-asymptotic and honest runs show slopes up to about 0.7.
    """

    name = "ho2013.regret_rate"
    reference = Reference(SRC, "Theorem 1 rate: R(T) / sqrt(T) <= 4 F L sqrt(2 (s+1) P) at every T", "R")
    summary = "the regret of every prefix of the run stays within the sqrt(T) rate (slope of log R on log T reported)"

    def assumptions(self, rd: RunData) -> list[str]:
        unmet = _theorem1_unmet(rd)
        if not unmet and len(rd.trace_table) < 16 * rd.P:
            unmet.append(f"needs at least 16 clocks for a rate (has {len(rd.trace_table) // rd.P})")
        return unmet

    def measure(self, rd: RunData) -> Finding:
        const = rd.meta["problem"]["constants"]
        rate_bound = 4 * const["diameter"] * const["lipschitz"] * math.sqrt(2 * (rd.s + 1) * rd.P)
        T = int(rd.t_index.max())
        sizes = sorted({max(rd.P, (T // 2**j) // rd.P * rd.P) for j in range(6)})
        regrets = np.array([stream_regret(rd, upto=size)[0] for size in sizes])
        rates = regrets / np.sqrt(sizes)
        worst = float(rates.max())
        slope = None
        if (regrets > 0).all():
            slope = float(np.polyfit(np.log(sizes), np.log(regrets), 1)[0])
        shown = "undefined (regret <= 0 at a prefix)" if slope is None else f"{slope:.3g}"
        return Finding(worst <= rate_bound, worst, rate_bound,
                       f"max R(T)/sqrt(T) over T = {sizes}; slope of log R on log T {shown}",
                       {"slope": slope, "prefixes": sizes, "regrets": regrets.tolist()})
