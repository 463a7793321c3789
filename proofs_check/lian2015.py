"""Lian, Huang, Li, Liu 2015, *Asynchronous parallel stochastic gradient for nonconvex optimization*
(NIPS; arXiv 1506.08272), Theorem 1 (AsySG-con) with a constant step [R]
(reference/theorems.md §6: the abstract is [V], the constants are recalled, not re-read).

Algorithm: ``x_{k+1} = x_k - gamma_k sum_{m=1}^{M} G(x_{k - tau_{k,m}}; xi_{k,m})``.  A parameter
server that applies each worker's minibatch gradient as it arrives is the case **M = 1**, and the
delay ``tau_k`` of update k is its *update staleness*: the number of updates committed between the
read and the commit (the trace's ``update_staleness``).  With an ``eager`` read policy every read
is a past server state ``x_{k - tau_k}`` (a prefix of the commit order), which is what the theorem
assumes; lazy and push reads are mixtures that are no server state, so they are out of scope.

Assumptions: unbiased stochastic gradients with ``E||G - grad f||^2 <= sigma^2``; ``grad f``
L-Lipschitz; delays bounded, ``tau_k <= T``.  For one sample the problem's constants give
``gradient_variance``; a minibatch of b samples drawn with replacement has ``sigma^2 =
gradient_variance / b``.  T is the run's measured maximum update staleness.

Theorem 1 with a constant step gamma (so ``sum_{j=k-T}^{k-1} gamma_j^2 <= T gamma^2``):
if ``L gamma + 2 L^2 T^2 gamma^2 <= 1`` then

    (1/K) sum_{k=1}^{K} E||grad f(x_k)||^2
        <= [2 (f(x_1) - f*) + K (gamma^2 L + 2 L^2 gamma T gamma^2) sigma^2] / (K gamma),

with x_1 = x0 and x_k the server state before the k-th update (x0 plus the first k - 1 updates in
commit order).  f* is replaced by the problem's exact minimum when known, else by its lower bound
f_lower <= f* (which only loosens the bound).

The theorem bounds an expectation; one run gives one realisation.  The realised average differs
from its expectation mainly through the martingale ``sum_k gamma <grad f(x_k), xi_k>`` of the
proof's descent step, whose standard deviation, carried through the proof's factor 2 / (K gamma),
is at most ``2 sigma sqrt(mean ||grad f(x_k)||^2 / K)``.  The check allows three of those above
the bound (a one-sided 3-sigma tolerance) and reports it.
"""

from __future__ import annotations

import math

import numpy as np

from sspsim.proofs_check.evidence import RunData
from sspsim.proofs_check.replay import run_math
from sspsim.proofs_check.theorem import Finding, Reference, Theorem

__all__ = ["MAX_WORK", "ErgodicRate", "server_states"]

SRC = "Lian, Huang, Li, Liu 2015 (NIPS, arXiv 1506.08272)"
MAX_WORK = 400_000_000  # states x samples x parameters evaluated (full gradients) per check


def server_states(rd: RunData) -> tuple[np.ndarray, str] | str:
    """x_k = x0 + the first k updates in commit order, k = 0..rows, and where they came from
    (the audit log's applied updates, else the replay); a one-line reason when unavailable."""
    math_ = run_math(rd)
    if isinstance(math_, str):
        return math_
    return math_.server_states(), math_.source


class ErgodicRate(Theorem[RunData]):
    name = "lian2015.ergodic_rate"
    reference = Reference(SRC, "Theorem 1 (AsySG-con, M = 1, constant step): ergodic bound on the mean ||grad f(x_k)||^2", "R")
    summary = ("mean over server states of ||grad f(x_k)||^2 <= [2(f(x_1) - f*) + K(gamma^2 L + 2 L^2 T gamma^3) sigma^2] / (K gamma) "
               "when L gamma + 2 L^2 T^2 gamma^2 <= 1, T the measured maximum update delay")

    def assumptions(self, rd: RunData) -> list[str]:
        cfg = rd.config
        if rd.trace is None:
            return ['needs trace.csv (the run used trace = "summary")']
        if "update_staleness" not in rd.trace.columns:
            return ["needs the trace column update_staleness (the delay tau_k of each update)"]
        unmet = []
        if rd.policy != "eager":
            unmet.append(f"needs eager reads (each read a past server state x_(k - tau)); read_policy = {rd.policy!r} "
                         "reads mix clocks and are no server state")
        if cfg.optimizer.schedule != "constant":
            unmet.append(f"needs a constant step (schedule = {cfg.optimizer.schedule!r})")
        if cfg.optimizer.momentum or cfg.optimizer.staleness_aware:
            unmet.append("needs plain SGD (no momentum, no staleness-aware steps)")
        const = rd.meta.get("problem", {}).get("constants", {})
        missing = [k for k in ("smoothness", "gradient_variance") if const.get(k) is None]
        if const.get("f_star") is None and const.get("f_lower") is None:
            missing.append("f_star or f_lower")
        if cfg.problem.kind == "none" or missing:
            unmet.append(f"needs a problem with known {', '.join(missing) or 'math'} "
                         f"(problem.kind = {cfg.problem.kind!r}; nonconvex and logistic have them)")
            return unmet
        if not unmet:
            L, gamma, T = const["smoothness"], cfg.optimizer.lr, self._delay(rd)
            lhs = L * gamma + 2 * L * L * T * T * gamma * gamma
            if lhs > 1:
                unmet.append(f"step condition L gamma + 2 L^2 T^2 gamma^2 <= 1 fails: {lhs:.4g} "
                             f"(L = {L:.4g}, gamma = {gamma:g}, T = {T} measured)")
        return unmet

    @staticmethod
    def _delay(rd: RunData) -> int:
        tau = rd.trace_table["update_staleness"].to_numpy()
        return int(tau.max()) if len(tau) else 0

    def measure(self, rd: RunData) -> Finding:
        cfg = rd.config
        const = rd.meta["problem"]["constants"]
        L, gamma, T = float(const["smoothness"]), float(cfg.optimizer.lr), self._delay(rd)
        sigma2 = float(const["gradient_variance"]) / cfg.problem.batch_size
        f_opt, which = (const["f_star"], "f*") if const.get("f_star") is not None else (const["f_lower"], "f_lower")
        got = server_states(rd)
        if isinstance(got, str):
            return Finding(False, None, None, f"server states unavailable: {got}", applicable=False)
        states, source = got
        states = states[:-1]  # x_1 .. x_K: the state before each update
        K = len(states)
        problem = rd.problem
        everything = np.arange(problem.n_samples)  # f is the mean over the samples the minibatches draw from
        budget = max(64, MAX_WORK // max(1, problem.n_samples * problem.n_params))
        if K > budget:
            picked = np.unique(np.linspace(0, K - 1, budget).round().astype(np.int64))
            note = f"{len(picked)} evenly spaced of the {K} states (the full set is too costly)"
        else:
            picked = np.arange(K)
            note = f"all {K} states"
        sq = np.empty(len(picked))
        f1 = None
        for i, k in enumerate(picked):
            loss, grad = problem.loss_grad(states[k], everything)
            sq[i] = float(grad @ grad)
            if k == 0:
                f1 = loss
        if f1 is None:
            f1 = problem.loss_grad(states[0], everything)[0]
        if not np.all(np.isfinite(sq)):
            return Finding(False, math.inf, None, f"the gradient is not finite at some server state ({source})")
        measured = float(sq.mean())
        bound = (2 * (f1 - f_opt) + K * (gamma * gamma * L + 2 * L * L * gamma * T * gamma * gamma) * sigma2) / (K * gamma)
        tolerance = 6 * math.sqrt(sigma2) * math.sqrt(measured / K)
        ok = measured <= bound + tolerance
        detail = (f"mean ||grad f(x_k)||^2 over {note} of {source}: {measured:.4g} vs Theorem 1's {bound:.4g} "
                  f"+ 3-sigma realisation tolerance {tolerance:.2g}; K = {K}, T = {T}, gamma = {gamma:g}, L = {L:.4g}, "
                  f"sigma^2 = {sigma2:.4g}, f(x_1) - {which} = {f1 - f_opt:.4g}")
        if not ok:
            detail = "ergodic bound exceeded: " + detail
        return Finding(ok, measured, bound + tolerance, detail,
                       {"theorem_bound": bound, "tolerance": tolerance, "delay_T": T, "K": K, "sigma2": sigma2, "states_evaluated": len(picked)})
