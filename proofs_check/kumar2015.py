"""Kumar, Xie, Yin, Xing 2015, *Distributed training of deep neural networks with theoretical analysis:
under SSP setting* (arXiv 1512.02728) -- **RECONSTRUCTION [X]** (reference/theorems.md §5.2-§5.3).

Only the paper's abstract was available [V]: SSP data-parallel DNN training converges to the same
optima as undistributed training, with layerwise convergence and convergence of the weights in
probability.  The statements below are the reconstruction E1-E4 of theorems.md §5.3, *not* the
paper's theorems; every verdict's detail says so.

* **E1 same optimum** (sweep): runs grouped by everything but workers.count, consistency.staleness,
  run.seed and read_policy; the group's one-worker runs are the serial reference.  The median
  final objective (last evals row) of every (P, s, read policy) cell over seeds is no worse than
  the serial run's by more than delta = 0.1 x (initial - serial final) + (serial half-way - serial
  final): a tenth of the serial descent (our choice), widened by what the serial run still gained
  in its second half, because a finite run only approximates the optimum (an honest BSP run at a
  large step ended 0.2 above an unconverged serial run, twice 0.1 x the descent).  Runs applying
  P times the updates usually finish *lower*; that is reported, not counted against E1.
* **E2 layerwise tracking** (run; exact): with x_t the round-robin reference state built from the
  run's *own* updates (Ho et al.'s decomposition, x~_t = x_t - sum_{A_t} u_i + sum_{B_t} u_i),
  the triangle inequality gives, for every layer l and read t,
  ``||W~_{l,t} - W_{l,t}|| <= sum_{i in A_t u B_t} ||u_{l,i}||`` (relative float tolerance 1e-9 for
  the simulator, 1e-4 for other backends).  A_t u B_t comes from the read sets
  (:mod:`sspsim.proofs_check.readsets`): for each worker q the block of its clocks between what the read
  holds and what the reference holds.  The reads are the audit log's parameters (what the workers
  really used) when present; without an audit log the replay rebuilds them from the read sets,
  which makes the check an arithmetic one.  The relative distance
  D_l(t) = ||W~_{l,t} - W_{l,t}|| / ||W_{l,t}|| and the slope of log D_l on log t over the second
  half of the run (inv_sqrt only) are reported beside it, not judged.
* **E3 layerwise convergence** (run): holds when every layer's full-gradient norm (evals
  ``grad_norm_<layer>``) is smaller on average over the last quarter of the evaluations than over
  the first; violated when the run diverged (non-finite values, or a last-quarter objective more
  than 10% above the initial one); otherwise not_applicable (not yet in the convergent phase --
  honest nonconvex runs often see a layer's gradient grow for a long while).
* **E4 weights in probability** (sweep of >= 10 seeds, inv_sqrt steps): p_l(t) =
  Pr(||W~_{l,t} - W_{l,t}|| > eps) over 6 windows of t (after the first clock), eps = the median of
  the first window's distances over all runs (so p_l(first) is about 1/2; our choice).  Checked:
  p_l(last) <= p_l(first) + 3 SE, and Markov's bound with the measured inconsistency,
  p_l(t) <= min(1, E[S_{l,t}] / eps) + 3 SE with S_{l,t} = sum_{i in A_t u B_t} ||u_{l,i}||
  (pointwise 1[dist > eps] <= S / eps, since dist <= S by E2).  SEs are over runs, floored at 1/N
  (runs whose reads do not depend on timing, e.g. lazy, are identical and have zero spread).

Like every oracle in :mod:`sspsim.proofs_check`, these checks restate the math on purpose and
import only data formats (the config, the run directory) from the core.  The report's claims
table (:mod:`sspsim.reports.kumar2015`) shows their verdicts and keeps no rule of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sspsim.proofs_check.dai2015 import groups_except
from sspsim.proofs_check.evidence import RunData, SweepData
from sspsim.proofs_check.readsets import read_sets
from sspsim.proofs_check.replay import MAX_VALUES, run_math
from sspsim.proofs_check.theorem import Finding, Reference, Theorem

__all__ = ["LayerGradients", "LayerwiseTracking", "SameOptimum", "Tracking", "WeightsInProbability", "tracking"]

SRC = "Kumar, Xie, Yin, Xing 2015 (arXiv 1512.02728)"
X = "reconstruction [X]"
E4_MIN_RUNS = 10
E4_WINDOWS = 6


# -- shared: reads against the round-robin reference, per layer -------------------------------

@dataclass
class Tracking:
    """Per row (commit order) and layer: ||W~ - W|| (dist), sum of the A u B update norms (S), ||W||."""

    layers: list[str]
    t: np.ndarray  # (rows,) round-robin index
    dist: np.ndarray  # (rows, layers)
    S: np.ndarray  # (rows, layers)
    ref_norm: np.ndarray  # (rows, layers)
    read_norm: np.ndarray  # (rows, layers)
    source: str


def layer_spans(rd: RunData) -> list[tuple[str, slice]]:
    """The problem's layers (weight and bias together), or one layer ``all`` for a flat model."""
    problem = rd.problem
    layers = getattr(problem, "layers", ()) or ()
    if layers:
        return [(layer.name, layer.span) for layer in layers]
    return [("all", slice(0, problem.n_params))]


def tracking(rd: RunData) -> Tracking | str:
    """Distances of every read from its reference state, and the E2 bounds, or why not available."""
    if rd.trace is None:
        return 'no trace.csv (the run used trace = "summary")'
    if rd.config.problem.kind == "none":
        return "problem.kind = 'none' has no parameters"
    if not rd.complete:
        return "the run is incomplete (the reference order needs every update)"
    problem = rd.problem
    rows, d = len(rd.trace_table), problem.n_params
    if rows * d > MAX_VALUES:
        return f"{rows} rows x {d} parameters is too large"
    sets = read_sets(rd)
    if isinstance(sets, str):
        return sets
    math_ = run_math(rd)
    if isinstance(math_, str):
        return math_
    x0, reads, updates = math_.x0, math_.reads, math_.updates
    source = math_.source if rd.audit is not None else (
        "replay (no audit log: reads rebuilt from the read sets, so only the arithmetic is tested)")
    P = rd.P
    t = rd.t_index
    order = np.argsort(t, kind="stable")
    spans = layer_spans(rd)
    n_l = len(spans)
    dist = np.empty((rows, n_l))
    S = np.empty((rows, n_l))
    ref_norm = np.empty((rows, n_l))
    read_norm = np.empty((rows, n_l))
    ref_index = sets.reference
    for j, (_, span) in enumerate(spans):
        u = updates[:, span]
        cum = np.vstack([x0[span], x0[span] + np.cumsum(u[order], axis=0)])
        ref = np.empty((rows, u.shape[1]))
        ref[order] = cum[:-1]  # x_t: x0 plus every update with index < t
        w = reads[:, span]
        dist[:, j] = np.linalg.norm(w - ref, axis=1)
        ref_norm[:, j] = np.linalg.norm(ref, axis=1)
        read_norm[:, j] = np.linalg.norm(w, axis=1)
        norms = np.linalg.norm(u, axis=1)
        total = np.zeros(rows)
        for q in range(P):
            mine = np.flatnonzero(rd.worker == q)
            mine = mine[np.argsort(rd.clock[mine])]
            cn = np.concatenate([[0.0], np.cumsum(norms[mine])])  # cn[k]: norms of q's updates 1..k
            k_read = np.clip(sets.K[:, q], 0, len(mine))
            k_ref = np.clip(ref_index[:, q], 0, len(mine))
            total += np.abs(cn[k_read] - cn[k_ref])
        S[:, j] = total
    return Tracking([name for name, _ in spans], t, dist, S, ref_norm, read_norm, source)


def _relative_tolerance(rd: RunData) -> float:
    return 1e-9 if rd.backend == "sim" else 1e-4


# -- E1 ---------------------------------------------------------------------------------------

class _GroupedTheorem(Theorem[SweepData]):
    """A sweep-scope check over groups of runs; ``_groups`` returns the usable groups and why others are not."""

    def _groups(self, sweep: SweepData) -> tuple[list[list[RunData]], list[str]]:
        raise NotImplementedError

    def assumptions(self, sweep: SweepData) -> list[str]:
        good, reasons = self._groups(sweep)
        return [] if good else (list(dict.fromkeys(reasons)) or ["needs a sweep"])


class SameOptimum(_GroupedTheorem):
    name = "kumar2015.same_optimum"
    scope = "sweep"
    reference = Reference(SRC, "E1 (reconstructed from the abstract's 'same optima as the undistributed setting')", "X")
    summary = ("median final objective per (P, s, read policy) no worse than the serial (P = 1) run's by more than "
               "delta = 0.1 x (initial - serial final) + the serial run's second-half progress")

    DROP = ("workers.count", "consistency.staleness", "run.seed", "consistency.read_policy")

    @staticmethod
    def _final(rd: RunData) -> tuple[float, float, float] | None:
        """(initial, half-way, final) objective of the run's evaluations."""
        ev = rd.evals
        if ev is None or "objective" not in ev.columns or len(ev) < 2:
            return None
        obj = ev["objective"].to_numpy(dtype=float)
        return float(obj[0]), float(obj[len(obj) // 2]), float(obj[-1])

    def _groups(self, sweep: SweepData) -> tuple[list[list[RunData]], list[str]]:
        good, reasons = [], []
        for group in groups_except(sweep, self.DROP):
            if any(rd.config.problem.kind == "none" or self._final(rd) is None for rd in group):
                reasons.append("needs evals.csv with an objective column (a problem with math)")
                continue
            if not any(rd.P == 1 for rd in group):
                reasons.append("needs a serial reference: a run with workers.count = 1 in the group")
                continue
            if not any(rd.P > 1 for rd in group):
                reasons.append("needs distributed runs (workers.count > 1) beside the serial one")
                continue
            good.append(group)
        return good, reasons

    def measure(self, sweep: SweepData) -> Finding:
        good, _ = self._groups(sweep)
        cells_out, worst, lower = [], None, []
        for group in good:
            firsts = [self._final(rd)[0] for rd in group]  # type: ignore[index]
            serial = float(np.median([self._final(rd)[2] for rd in group if rd.P == 1]))  # type: ignore[index]
            serial_mid = float(np.median([self._final(rd)[1] for rd in group if rd.P == 1]))  # type: ignore[index]
            initial = float(np.median(firsts))
            descent = initial - serial
            still = max(0.0, serial_mid - serial)
            delta = 0.1 * descent + still
            if not descent > 0:
                return Finding(True, None, None, f"{X}: the serial run did not lower the objective "
                               f"(initial {initial:.4g}, final {serial:.4g}), so there is no optimum to compare",
                               applicable=False)
            cells: dict[tuple, list[float]] = {}
            for rd in group:
                if rd.P > 1:
                    cells.setdefault((rd.P, rd.s, rd.policy), []).append(self._final(rd)[2])  # type: ignore[index]
            for (P, s, policy), finals in sorted(cells.items(), key=lambda kv: str(kv[0])):
                med = float(np.median([f if math.isfinite(f) else math.inf for f in finals]))  # a diverged run is worst
                gap = med - serial
                cells_out.append({"P": P, "s": s if math.isfinite(s) else "inf", "policy": policy, "median_final": med,
                                  "serial_final": serial, "delta": delta, "serial_still_descending": still,
                                  "runs": len(finals)})
                if gap < -delta:
                    lower.append(f"P={P}, s={s:g}")
                if worst is None or gap / delta > worst[0] / worst[1]:
                    worst = (gap, delta, P, s, policy, med, serial, len(finals))
        assert worst is not None
        gap, delta, P, s, policy, med, serial, n = worst
        bad = [c for c in cells_out if c["median_final"] - c["serial_final"] > c["delta"]]
        ok = not bad
        detail = (f"worst cell P={P}, s={s:g}, {policy}: median final objective {med:.4g} over {n} seed(s) vs serial "
                  f"{serial:.4g}; delta = {delta:.3g} = 0.1 x (initial - serial final) + (serial half-way - serial final) "
                  "(our choice: a tenth of the serial descent, widened by what the serial run still gained in its second "
                  "half, since a finite run only approximates the optimum)")
        if lower:
            detail += f"; finished lower than serial by more than delta (more updates applied): {', '.join(lower)}"
        if not ok:
            detail = f"{len(bad)} cell(s) end worse than the serial optimum by more than delta; " + detail
        return Finding(ok, gap, delta, f"{X}: {detail}", {"cells": cells_out})


# -- E2 ---------------------------------------------------------------------------------------

class LayerwiseTracking(Theorem[RunData]):
    name = "kumar2015.layerwise_tracking"
    reference = Reference(SRC, "E2 (reconstructed layerwise tracking): ||W~_l,t - W_l,t|| <= sum over A_t u B_t of ||u_l,i||", "X")
    summary = "per layer, each read is within the summed norms of the updates it misses or adds of the round-robin reference state"

    def assumptions(self, rd: RunData) -> list[str]:
        if rd.trace is None:
            return ['needs trace.csv (the run used trace = "summary")']
        if rd.config.problem.kind == "none":
            return ["needs a problem with math (problem.kind = 'none' has no parameters)"]
        if not rd.complete:
            return ["needs a complete run (the reference order needs every update)"]
        return []

    def measure(self, rd: RunData) -> Finding:
        tr = tracking(rd)
        if isinstance(tr, str):
            return Finding(False, None, None, f"{X}: cannot track the reads: {tr}", applicable=False)
        rel = _relative_tolerance(rd)
        scale = np.maximum(np.maximum(tr.ref_norm, tr.read_norm), 1.0)
        allowed = tr.S + rel * scale
        ratio = tr.dist / allowed
        worst = float(ratio.max()) if ratio.size else 0.0
        broken = tr.dist > allowed
        ok = not broken.any()
        r, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.size else (0, 0)
        slopes = self._slopes(rd, tr)
        detail = (f"max over reads and layers of ||W~ - W|| / (sum of A u B update norms + tolerance) = {worst:.4g} "
                  f"(layer {tr.layers[j]}, t = {int(tr.t[r])}); {tr.source}")
        if not ok:
            rows = np.flatnonzero(broken.any(axis=1))
            examples = ", ".join(f"(worker {rd.worker[i]}, clock {rd.clock[i]})" for i in rows[:3])
            layers = [tr.layers[k] for k in range(len(tr.layers)) if broken[:, k].any()]
            detail = (f"{int(broken.sum())} read/layer pair(s) farther from the reference than the triangle bound allows, "
                      f"in layer(s) {', '.join(layers)}, e.g. {examples}; " + detail)
        detail = f"{X}: {detail}"
        extra = {"relative_tolerance": rel, "slopes": slopes,
                 "mean_relative_distance": {name: float(np.mean(tr.dist[:, k] / np.maximum(tr.ref_norm[:, k], 1e-300)))
                                            for k, name in enumerate(tr.layers)}}
        return Finding(ok, worst, 1.0, detail, extra)

    @staticmethod
    def _slopes(rd: RunData, tr: Tracking) -> dict[str, float | None]:
        """Slope of log D_l(t) on log t over the second half of the run (inv_sqrt schedule only; informative)."""
        out: dict[str, float | None] = {}
        if rd.config.optimizer.schedule != "inv_sqrt":
            return {name: None for name in tr.layers}
        half = tr.t > tr.t.max() / 2
        for k, name in enumerate(tr.layers):
            D = tr.dist[half, k] / np.maximum(tr.ref_norm[half, k], 1e-300)
            keep = D > 0
            if keep.sum() < 8:
                out[name] = None
                continue
            out[name] = float(np.polyfit(np.log(tr.t[half][keep]), np.log(D[keep]), 1)[0])
        return out


# -- E3 ---------------------------------------------------------------------------------------

class LayerGradients(Theorem[RunData]):
    """E3, finite-run form.  Convergence is asymptotic and a finite run cannot refute it, except by
    diverging.  Honest nonconvex runs routinely show a layer's gradient norm *rising* for a long
    while as the network leaves the flat region around its initial point (sigmoid and relu
    plateaus: up to ~6x over the first quarter in 120 random honest runs), so "the late gradient is
    below the early one" is evidence for the claim, not a consequence of it.  Hence:

    * violated: the run diverged -- an objective or gradient norm is not finite, or the objective over
      the last quarter of the evaluations is above the initial one by more than ``RISE`` of it;
    * holds: every layer's mean gradient norm over the last quarter is below that over the first;
    * not_applicable otherwise, naming the unmet premise (the run has not reached the convergent phase
      in some layer while its objective fell).
    """

    name = "kumar2015.layer_gradients"
    reference = Reference(SRC, "E3 (reconstructed layerwise convergence): every layer's gradient norm decreases", "X")
    summary = ("per layer, the mean full-gradient norm over the last quarter of the evaluations is below that of the "
               "first quarter; a diverging run violates it")

    RISE = 0.1

    @staticmethod
    def _layers(rd: RunData) -> list[str]:
        return [str(layer["name"]) for layer in rd.meta.get("problem", {}).get("layers", [])]

    def assumptions(self, rd: RunData) -> list[str]:
        layers = self._layers(rd)
        if not layers:
            return [f"needs a layered model (problem.kind = {rd.config.problem.kind!r} has no layers)"]
        ev = rd.evals
        if ev is None:
            return ["needs evals.csv"]
        missing = [c for c in ["objective", *(f"grad_norm_{name}" for name in layers)] if c not in ev.columns]
        if missing:
            return [f"needs evals column(s) {', '.join(missing)}"]
        if len(ev) < 8:
            return [f"needs at least 8 evaluations to compare quarters (has {len(ev)})"]
        return []

    def measure(self, rd: RunData) -> Finding:
        ev = rd.evals_table
        n = len(ev)
        q = n // 4
        ratios: dict[str, float] = {}
        finite = True
        for name in self._layers(rd):
            g = ev[f"grad_norm_{name}"].to_numpy(dtype=float)
            finite &= bool(np.all(np.isfinite(g)))
            first, last = float(np.mean(g[:q])), float(np.mean(g[n - q:]))
            ratios[name] = last / first if first > 0 and math.isfinite(last) and math.isfinite(first) else math.inf
        worst = max(ratios, key=lambda k: ratios[k])
        shown = ", ".join(f"{k} {v:.3g}" for k, v in ratios.items())
        obj = ev["objective"].to_numpy(dtype=float)
        extra = {"ratios": ratios}
        about = f"last-quarter / first-quarter mean gradient norm per layer over {n} evaluations: {shown}"
        if not finite or not np.all(np.isfinite(obj)):
            return Finding(False, math.inf, 1.0, f"{X}: diverged: non-finite objective or gradient norms; {about}", extra)
        late = float(np.mean(obj[n - q:]))
        if late > obj[0] + self.RISE * abs(obj[0]):
            return Finding(False, ratios[worst], 1.0, f"{X}: diverged: the objective rose from {obj[0]:.4g} to a last-quarter "
                           f"mean of {late:.4g} (more than {self.RISE:.0%}); {about}", extra)
        rising = [k for k, v in ratios.items() if not v < 1]
        if rising:
            return Finding(True, ratios[worst], 1.0,
                           f"{X}: premise unmet: the run has not reached its convergent phase in layer(s) {', '.join(rising)} "
                           f"(gradient norm still above its early level while the objective went from {obj[0]:.4g} to "
                           f"{obj[-1]:.4g}); the claim is asymptotic, run longer. {about}", extra, applicable=False)
        return Finding(True, ratios[worst], 1.0, f"{X}: {about}", extra)


# -- E4 ---------------------------------------------------------------------------------------

class WeightsInProbability(_GroupedTheorem):
    name = "kumar2015.weights_in_probability"
    scope = "sweep"
    reference = Reference(SRC, "E4 (reconstructed convergence of the weights in probability, Markov form)", "X")
    summary = ("over seeds: p_l(t) = Pr(||W~_l,t - W_l,t|| > eps) does not grow along the run and stays within "
               "Markov's bound E[S_l,t]/eps (+ 3 SE)")

    @staticmethod
    def _run_unmet(rd: RunData) -> list[str]:
        unmet = []
        if rd.trace is None:
            return ['needs trace.csv (the run used trace = "summary")']
        if rd.config.problem.kind == "none":
            return ["needs a problem with math (problem.kind = 'none' has no parameters)"]
        if rd.config.optimizer.schedule != "inv_sqrt":
            unmet.append(f"needs schedule = inv_sqrt so the steps shrink (has {rd.config.optimizer.schedule!r})")
        if math.isinf(rd.s):
            unmet.append("needs a finite staleness s")
        if not rd.complete:
            unmet.append("needs complete runs")
        return unmet

    def _groups(self, sweep: SweepData) -> tuple[list[list[RunData]], list[str]]:
        good, reasons = [], []
        for group in groups_except(sweep, ("run.seed",)):
            if len(group) < E4_MIN_RUNS:
                reasons.append(f"needs >= {E4_MIN_RUNS} runs that differ only in run.seed (largest such group has {len(group)})")
                continue
            unmet = sorted({u for rd in group for u in self._run_unmet(rd)})
            if unmet:
                reasons.extend(unmet)
                continue
            if group[0].P * group[0].config.run.clocks < 2 * E4_WINDOWS * group[0].P:
                reasons.append(f"needs at least {2 * E4_WINDOWS} clocks for {E4_WINDOWS} windows")
                continue
            good.append(group)
        return good, reasons

    def measure(self, sweep: SweepData) -> Finding:
        good, _ = self._groups(sweep)
        results = []
        for group in good:
            res = self._group(group)
            if isinstance(res, Finding):
                return res
            results.extend(res)
        if not results:
            return Finding(True, None, None, f"{X}: every read equals its reference state (eps = 0 in every layer): "
                           "nothing to test", applicable=False)
        bad = [r for r in results if not r["ok"]]
        worst = max(results, key=lambda r: r["excess"])
        ok = not bad
        detail = (f"eps = median of the first window's distances (per layer); worst layer {worst['layer']}: "
                  f"p(first) {worst['p'][0]:.3g}, p(last) {worst['p'][-1]:.3g} (+ 3 SE {3 * worst['se_mono']:.3g}); "
                  f"Markov bound min(1, E[S]/eps) over windows {', '.join(f'{b:.3g}' for b in worst['markov'])}; "
                  f"N = {worst['n']} runs, {E4_WINDOWS} windows of t")
        if not ok:
            what = []
            for r in bad:
                if r["mono_bad"]:
                    what.append(f"{r['layer']}: p rises from {r['p'][0]:.3g} to {r['p'][-1]:.3g}")
                if r["markov_bad"]:
                    w = r["markov_bad"][0]
                    what.append(f"{r['layer']}: p {r['p'][w]:.3g} above Markov's {r['markov'][w]:.3g} in window {w + 1}")
            detail = "; ".join(what[:4]) + "; " + detail
        detail = f"{X}: {detail}"
        extra = {"layers": {r["layer"]: {"eps": r["eps"], "p": r["p"], "markov": r["markov"]} for r in results}}
        return Finding(ok, worst["p"][-1], worst["p"][0] + 3 * worst["se_mono"], detail, extra)

    def _group(self, group: list[RunData]) -> list[dict] | Finding:
        tracks = []
        for rd in group:
            tr = tracking(rd)
            if isinstance(tr, str):
                return Finding(False, None, None, f"{X}: cannot track the reads of {rd.name}: {tr}", applicable=False)
            tracks.append(tr)
        P = group[0].P
        T = int(max(tr.t.max() for tr in tracks))
        edges = np.linspace(P, T, E4_WINDOWS + 1)  # skip the first clock (everyone reads x0)
        N = len(tracks)
        out = []
        for k, layer in enumerate(tracks[0].layers):
            first = np.concatenate([tr.dist[(tr.t > edges[0]) & (tr.t <= edges[1]), k] for tr in tracks])
            eps = float(np.median(first)) if len(first) else 0.0
            if not eps > 0:
                continue
            frac = np.empty((N, E4_WINDOWS))
            mark = np.empty((N, E4_WINDOWS))
            for i, tr in enumerate(tracks):
                for w in range(E4_WINDOWS):
                    inside = (tr.t > edges[w]) & (tr.t <= edges[w + 1])
                    frac[i, w] = float(np.mean(tr.dist[inside, k] > eps)) if inside.any() else np.nan
                    mark[i, w] = float(np.mean(tr.S[inside, k])) / eps if inside.any() else np.nan
            p = np.nanmean(frac, axis=0)
            markov = np.minimum(1.0, np.nanmean(mark, axis=0))
            diff = frac[:, -1] - frac[:, 0]
            # SE of the per-run change, floored at one run's worth (1/N): runs whose reads do not depend on
            # the timing (lazy) are identical, and a zero spread would make any rise look significant.
            se_mono = max(float(np.nanstd(diff, ddof=1) / math.sqrt(N)) if N > 1 else 0.0, 1.0 / N)
            mono_bad = bool(p[-1] > p[0] + 3 * se_mono)
            markov_bad = []
            for w in range(E4_WINDOWS):
                d = frac[:, w] - np.minimum(1.0, mark[:, w])
                se = max(float(np.nanstd(d, ddof=1) / math.sqrt(N)) if N > 1 else 0.0, 1.0 / N)
                if p[w] > markov[w] + 3 * se:
                    markov_bad.append(w)
            out.append({"layer": layer, "eps": eps, "p": p.tolist(), "markov": markov.tolist(), "se_mono": se_mono,
                        "mono_bad": mono_bad, "markov_bad": markov_bad, "ok": not mono_bad and not markov_bad,
                        "excess": float(p[-1] - p[0] - 3 * se_mono), "n": N})
        return out
