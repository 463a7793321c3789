"""Dai, Kumar, Wei, Ho, Gibson, Xing 2015, *High-performance distributed ML at scale through parameter
server consistency models* (AAAI; arXiv 1410.8043): the SSP tail bound (Theorem 2 as recalled) and
ESSP's smaller inconsistency [R] (reference/theorems.md §4; the abstract is [V], the theorem text
and constants are recalled, not re-read).

**Tail bound [R].**  Convex f = sum_t f_t with every f_t L-Lipschitz, D(x* || x) <= F^2 along the
run, steps eta_t = eta / sqrt(t).  With gamma_t = |A_t| + |B_t| the inconsistency of update t
(Ho et al.'s sets against the round-robin order, :mod:`sspsim.proofs_check.readsets`), mu_gamma its mean
and sigma_gamma its variance over the run, for every tau > 0

    Pr[ R[X]/T - (eta L^2 + F^2/eta + 2 eta L^2 mu_gamma) / sqrt(T) >= tau ]
        <= exp( -T tau^2 / (2 etabar_T sigma_gamma + (2/3) eta L^2 (2s + 1) P tau) ),
    etabar_T = eta^2 L^4 (ln T + 1) / T.

Checked over a sweep of runs that differ only in ``run.seed`` with the data stream fixed
(``problem.seed`` set, so the stream and its minimiser x* are common): the randomness is the
compute-time draws.  Each run's statistic uses its own mu_gamma; the right-hand side uses the
largest sigma_gamma of the group: RHS grows with sigma_gamma, so the largest bounds every run's
event, and the frequency of the events over the group estimates a probability that is at most it.
For each tau (the positive observed statistics, and the tau at which RHS = 0.5, 0.2, 0.05, 0.01)
the frequency must stay within RHS + 3 SE, SE = sqrt(RHS (1 - RHS) / N); an excess counts only
if the exact binomial tail is also below the one-sided 3-sigma level 0.00135 divided by the
number of tau tested (the normal approximation is poor where RHS is tiny).  The bound is loose
(theorems.md §4): on honest runs the event rarely happens at all.

**ESSP [R] + [D].**  A ``push`` read (ESSP: the server pushes every completed clock) holds every
update of clocks <= the slowest committed clock, a ``lazy`` read only clocks <= c - 1 - s; the gate
makes the first at least the second, and both hold the reader's own updates.  Both are below the
reference position of every other worker, so gamma_t = sum_q |K_q - ref_q| is smaller for push
read by read: ``gamma_t(push) <= gamma_t(lazy)`` for every (worker, clock), hence for the means,
exactly (the timing does not depend on the read policy, and even if it did the inequality holds
per read).
"""

from __future__ import annotations

import json
import math

import numpy as np
import scipy.stats

from sspsim.proofs_check.evidence import RunData, SweepData
from sspsim.proofs_check.ho2013 import stream_regret
from sspsim.proofs_check.readsets import read_sets
from sspsim.proofs_check.replay import run_math
from sspsim.proofs_check.theorem import Finding, Reference, Theorem

__all__ = ["EsspInconsistency", "TailBound", "config_key", "groups_except"]

SRC = "Dai, Kumar, Wei, Ho, Gibson, Xing 2015 (AAAI, arXiv 1410.8043)"
MIN_RUNS = 20
LEVELS = (0.5, 0.2, 0.05, 0.01)
ONE_SIDED_3SIGMA = 0.00135


def config_key(rd: RunData, drop: tuple[str, ...]) -> str:
    """The run's resolved config without the ``section.key`` entries in ``drop``, as a comparable text."""
    raw = rd.config.to_dict()
    for dotted in drop:
        section, _, key = dotted.partition(".")
        table = raw.get(section)
        if isinstance(table, dict):
            table.pop(key, None)
    return json.dumps(raw, sort_keys=True, default=str)


def groups_except(sweep: SweepData, drop: tuple[str, ...]) -> list[list[RunData]]:
    """Runs grouped by everything in their config except the keys in ``drop`` (largest group first)."""
    by: dict[str, list[RunData]] = {}
    for rd in sweep.runs:
        by.setdefault(config_key(rd, drop), []).append(rd)
    return sorted(by.values(), key=len, reverse=True)


# -- tail bound -----------------------------------------------------------------------------

def _tail_run_unmet(rd: RunData) -> list[str]:
    cfg = rd.config
    if rd.trace is None or "loss" not in rd.trace.columns:
        return ["needs trace.csv with the loss column"]
    unmet = []
    if math.isinf(rd.s):
        unmet.append("needs a finite staleness s (the bound uses (2s + 1) P)")
    const = rd.meta.get("problem", {}).get("constants", {})
    if not const.get("convex") or const.get("lipschitz") is None or const.get("diameter") is None:
        unmet.append(f"needs a convex problem with known L and F (problem.kind = {cfg.problem.kind!r} has none)")
    if cfg.optimizer.schedule != "inv_sqrt":
        unmet.append(f"needs schedule = inv_sqrt (eta_t = eta / sqrt(t)); has {cfg.optimizer.schedule!r}")
    if cfg.optimizer.momentum or cfg.optimizer.staleness_aware:
        unmet.append("needs plain SGD (no momentum, no staleness-aware steps)")
    if cfg.problem.seed is None:
        unmet.append("needs problem.seed set, so that every run trains on the same stream (common x*)")
    if not rd.complete:
        unmet.append("needs complete runs")
    return unmet


class TailBound(Theorem[SweepData]):
    name = "dai2015.tail_bound"
    scope = "sweep"
    reference = Reference(SRC, "Theorem 2 (SGD under SSP, convergence in probability): Bernstein-type tail of R[X]/T", "R")
    summary = ("over runs differing only in run.seed: frequency of R/T - (eta L^2 + F^2/eta + 2 eta L^2 mu_gamma)/sqrt(T) >= tau "
               "<= exp(-T tau^2 / (2 etabar_T sigma_gamma + (2/3) eta L^2 (2s+1) P tau)) + 3 SE")

    def _eligible(self, sweep: SweepData) -> tuple[list[list[RunData]], list[str]]:
        good, reasons = [], []
        for group in groups_except(sweep, ("run.seed",)):
            if len(group) < MIN_RUNS:
                reasons.append(f"needs >= {MIN_RUNS} runs that differ only in run.seed (largest such group has {len(group)})")
                continue
            unmet = sorted({u for rd in group for u in _tail_run_unmet(rd)})
            if unmet:
                reasons.extend(unmet)
                continue
            good.append(group)
        return good, reasons

    def assumptions(self, sweep: SweepData) -> list[str]:
        good, reasons = self._eligible(sweep)
        if good:
            return []
        return list(dict.fromkeys(reasons)) or ["needs a sweep"]

    def measure(self, sweep: SweepData) -> Finding:
        good, _ = self._eligible(sweep)
        results = []
        for group in good:
            found = self._group(group)
            if isinstance(found, Finding):
                return found  # a precondition failed on the run's own iterates
            results.append(found)
        worst = max(results, key=lambda r: r["excess"])
        ok = all(r["ok"] for r in results)
        detail = (f"{len(good)} group(s), {sum(r['n'] for r in results)} runs; tightest tau = {worst['tau']:.4g}: "
                  f"frequency {worst['freq']:.3g} vs RHS {worst['rhs']:.3g} + 3 SE {3 * worst['se']:.3g} "
                  f"(N = {worst['n']}, T = {worst['T']}, eta = {worst['eta']:g}, max sigma_gamma = {worst['sigma']:.4g}; "
                  f"statistic range [{worst['zmin']:.4g}, {worst['zmax']:.4g}])")
        if not ok:
            bad = [r for r in results if not r["ok"]]
            detail = (f"tail frequency above the bound at {sum(len(r['violations']) for r in bad)} tau "
                      f"(e.g. tau = {bad[0]['violations'][0]:.4g}); " + detail)
        extra = {"taus": worst["taus"], "frequencies": worst["freqs"], "rhs": worst["rhss"]}
        return Finding(ok, worst["freq"], worst["rhs"] + 3 * worst["se"], detail, extra)

    def _group(self, group: list[RunData]) -> dict | Finding:
        cfg = group[0].config
        const = group[0].meta["problem"]["constants"]
        F, L, eta = float(const["diameter"]), float(const["lipschitz"]), float(cfg.optimizer.lr)
        P, s = group[0].P, group[0].s
        stats, sigmas, Ts = [], [], set()
        for rd in group:
            R, x_star, T = stream_regret(rd)
            math_ = run_math(rd)
            if not isinstance(math_, str):
                reach = float(0.5 * (np.linalg.norm(math_.reads - x_star, axis=1) ** 2).max())
                if reach > F * F:
                    return Finding(True, None, None, f"assumption violated, not the theorem: run {rd.name} reaches "
                                   f"D(x*||x~_t) = {reach:.4g} > F^2 = {F * F:.4g}", applicable=False)
            sets = read_sets(rd)
            if isinstance(sets, str):
                return Finding(True, None, None, f"read sets unavailable for {rd.name}: {sets}", applicable=False)
            gamma = sets.gamma.astype(float)
            mu, var = float(gamma.mean()), float(gamma.var())
            stats.append(R / T - (eta * L**2 + F**2 / eta + 2 * eta * L**2 * mu) / math.sqrt(T))
            sigmas.append(var)
            Ts.add(T)
        T = max(Ts)
        Z = np.array(stats)
        sigma = max(sigmas)
        etabar = eta**2 * L**4 * (math.log(T) + 1) / T
        a = 2 * etabar * sigma
        b = (2.0 / 3.0) * eta * L**2 * (2 * s + 1) * P

        def rhs(tau: float) -> float:
            return math.exp(-T * tau * tau / (a + b * tau))

        taus = sorted({float(z) for z in Z if z > 0} | {self._tau_at(level, T, a, b) for level in LEVELS})
        N = len(Z)
        threshold = ONE_SIDED_3SIGMA / len(taus)
        freqs, rhss, ses, violations = [], [], [], []
        best = None
        for tau in taus:
            count = int((Z >= tau).sum())
            freq, bound = count / N, rhs(tau)
            se = math.sqrt(bound * (1 - bound) / N)
            freqs.append(freq)
            rhss.append(bound)
            ses.append(se)
            p_value = float(scipy.stats.binom.sf(count - 1, N, bound)) if count else 1.0
            if freq > bound + 3 * se and p_value < threshold:
                violations.append(tau)
            excess = freq - bound - 3 * se
            if best is None or excess > best[0]:
                best = (excess, tau, freq, bound, se)
        assert best is not None
        return {"ok": not violations, "violations": violations, "excess": best[0], "tau": best[1], "freq": best[2],
                "rhs": best[3], "se": best[4], "n": N, "T": T, "eta": eta, "sigma": sigma,
                "zmin": float(Z.min()), "zmax": float(Z.max()), "taus": taus, "freqs": freqs, "rhss": rhss}

    @staticmethod
    def _tau_at(level: float, T: int, a: float, b: float) -> float:
        """The tau > 0 where the right-hand side equals ``level``: T tau^2 = ln(1/level) (a + b tau)."""
        k = math.log(1 / level)
        return (k * b + math.sqrt((k * b) ** 2 + 4 * T * k * a)) / (2 * T)


# -- ESSP -----------------------------------------------------------------------------------

class EsspInconsistency(Theorem[SweepData]):
    name = "dai2015.essp_inconsistency"
    scope = "sweep"
    reference = Reference(SRC, "ESSP (server push) has a smaller inconsistency gamma_t = |A_t| + |B_t| than lazy SSP", "D")
    summary = "for runs identical but for read_policy lazy vs push: gamma_t(push) <= gamma_t(lazy) read by read, so mean gamma too"

    @staticmethod
    def _pairs(sweep: SweepData) -> list[tuple[RunData, RunData]]:
        pairs: list[tuple[RunData, RunData]] = []
        for group in groups_except(sweep, ("consistency.read_policy",)):
            lazy = [rd for rd in group if rd.policy == "lazy"]
            push = [rd for rd in group if rd.policy == "push"]
            pairs.extend((a, b) for a in lazy for b in push)
        return pairs

    def assumptions(self, sweep: SweepData) -> list[str]:
        pairs = self._pairs(sweep)
        if not pairs:
            return ["needs pairs of runs identical except consistency.read_policy = lazy vs push"]
        unmet = []
        for lazy, push in pairs:
            for rd in (lazy, push):
                sets = read_sets(rd)
                if isinstance(sets, str):
                    unmet.append(f"read sets unavailable for {rd.name}: {sets}")
        return list(dict.fromkeys(unmet))

    def measure(self, sweep: SweepData) -> Finding:
        worst = None
        bad_pairs, bad_reads = 0, 0
        for lazy, push in self._pairs(sweep):
            gl, gp = self._gamma_grid(lazy), self._gamma_grid(push)
            if gl.shape != gp.shape:
                return Finding(True, None, None, f"{lazy.name} and {push.name} have different shapes {gl.shape} vs {gp.shape}",
                               applicable=False)
            both = ~np.isnan(gl) & ~np.isnan(gp)
            mean_l, mean_p = float(gl[both].mean()), float(gp[both].mean())
            per_read = int((gp[both] > gl[both]).sum())
            bad_reads += per_read
            if mean_p > mean_l or per_read:
                bad_pairs += 1
            excess = mean_p - mean_l
            if worst is None or excess > worst[0]:
                worst = (excess, mean_p, mean_l, lazy, push)
        assert worst is not None
        _, mean_p, mean_l, lazy, push = worst
        ok = bad_pairs == 0
        detail = (f"{len(self._pairs(sweep))} pair(s); closest: mean gamma {mean_p:.4g} (push, {push.name}) vs "
                  f"{mean_l:.4g} (lazy, {lazy.name})")
        if not ok:
            detail = (f"{bad_pairs} pair(s) where push reads are more inconsistent than lazy ones "
                      f"({bad_reads} read(s) with gamma_t(push) > gamma_t(lazy)); " + detail)
        return Finding(ok, mean_p, mean_l, detail, {"bad_reads": bad_reads})

    @staticmethod
    def _gamma_grid(rd: RunData) -> np.ndarray:
        """gamma_t indexed [worker, clock - 1] (NaN where a run lacks that iteration)."""
        sets = read_sets(rd)
        assert not isinstance(sets, str)
        grid = np.full((rd.P, int(rd.clock.max()) if len(rd.clock) else 0), np.nan)
        grid[rd.worker, rd.clock - 1] = sets.gamma
        return grid
