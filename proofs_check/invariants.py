"""SSP protocol invariants I0-I6 (reference/theorems.md §1; DESIGN §Semantics).

They are exact: each holds on every row of an honest run, and a scheduler or trace that breaks
the protocol breaks at least one of them (tests/test_mutants.py shows which catches what).

* I0 well-formed trace: each worker's iterations 1, 2, ... once each, in time order;
* I1 gate: no iteration begins while the slowest committed clock is below c - 1 - s;
* I2 read guarantee: the read holds every update of clocks <= c - 1 - s;
* I3 read-my-writes: the read holds all the reader's own earlier updates;
* I4 no future reads: the read holds only updates committed before it was taken;
* I5 replay: the parameters read are x0 plus the updates of the read set (exact, from the
  audit log), or, without one, the run's losses are those the read sets imply (replayed);
* I6 limits: s = 0 is synchronous minibatch SGD, P = 1 is serial SGD.
"""

from __future__ import annotations

import math

import numpy as np

from sspsim.proofs_check.evidence import RunData
from sspsim.proofs_check.readsets import read_sets
from sspsim.proofs_check.replay import MAX_VALUES, StepSize, replay
from sspsim.proofs_check.theorem import Finding, Reference, Theorem
from sspsim.sampling import sample_indices

__all__ = ["Gate", "Limits", "NoFutureReads", "ReadGuarantee", "ReadMyWrites", "ReplayNoisyView", "WellFormed"]

HO = "Ho et al. 2013 (SSP)"


def float_tolerance(rd: RunData) -> float:
    """Relative tolerance for recomputed floats: the simulator repeats its own arithmetic exactly;
    another backend (other libraries, float32 devices) only to float precision."""
    return 1e-12 if rd.backend == "sim" else 1e-4


def _needs_trace(rd: RunData, *columns: str) -> list[str]:
    if rd.trace is None:
        return ['needs trace.csv (the run used trace = "summary")']
    missing = [c for c in columns if c not in rd.trace.columns]
    return [f"needs trace column(s) {', '.join(missing)}"] if missing else []


def _rows(rd: RunData, mask: np.ndarray, limit: int = 3) -> str:
    idx = np.flatnonzero(mask)[:limit]
    return ", ".join(f"(worker {rd.worker[i]}, clock {rd.clock[i]})" for i in idx)


class WellFormed(Theorem[RunData]):
    needs_well_formed = False
    models = ("ssp", "ksync")  # one iteration per worker and clock, in time order
    name = "ssp.I0_well_formed"
    reference = Reference("DESIGN §Semantics", "clocks count committed iterations 1, 2, ...", "D")
    summary = "each worker's iterations appear once, numbered 1..n, read <= start <= commit, after its previous commit"

    def assumptions(self, rd: RunData) -> list[str]:
        return _needs_trace(rd)

    def measure(self, rd: RunData) -> Finding:
        problems = []
        bad = 0
        clocks = rd.config.run.clocks
        if rd.audit is not None and rd.structure_problem == "audit.npz rows do not match trace.csv rows":
            bad += 1
            problems.append(rd.structure_problem)
        for q in range(rd.P):
            rows = np.flatnonzero(rd.worker == q)
            seen = rd.clock[rows]
            expect = np.arange(1, len(rows) + 1)
            if not np.array_equal(np.sort(seen), expect) or (rd.complete and rd.fixed_iterations and len(rows) != clocks):
                bad += 1
                problems.append(f"worker {q} has clocks {sorted(set(seen.tolist()))[:5]}... ({len(rows)} rows, expected 1..{clocks})")
                continue
            order = rows[np.argsort(seen)]
            commit = rd.trace_table["commit_time"].to_numpy()[order]
            start = rd.trace_table["start_time"].to_numpy()[order]
            read = rd.read_instant[order]
            prev = np.concatenate([[0.0], commit[:-1]])
            wrong = (np.diff(commit) < 0).sum() + (start < read).sum() + (read < prev).sum() + (commit < start).sum()
            if wrong:
                bad += int(wrong)
                problems.append(f"worker {q}: {int(wrong)} iteration(s) out of time order")
        detail = "every worker's iterations are 1..n in time order" if not bad else "; ".join(problems[:3])
        return Finding(bad == 0, float(bad), 0.0, detail)


class Gate(Theorem[RunData]):
    name = "ssp.I1_gate"
    reference = Reference(HO, "bounded staleness (rule 1); DESIGN gate c_p - min_q c_q <= s", "R")
    summary = "no iteration begins while the slowest committed clock is below c - 1 - s"

    def assumptions(self, rd: RunData) -> list[str]:
        if math.isinf(rd.s):
            return ["staleness = inf (ASP) has no gate"]
        return _needs_trace(rd)

    def measure(self, rd: RunData) -> Finding:
        slowest = rd.complete_clock_at(rd.read_instant)
        lead = (rd.clock - 1) - slowest
        worst = int(lead.max()) if len(lead) else 0
        how = "read_time" if rd.has("read_time") else "start_time (no read_time column: a weaker test)"
        ok = worst <= rd.s
        detail = (
            f"every iteration began at most {worst} clocks ahead of the slowest committed clock (at its {how})"
            if ok else f"{int((lead > rd.s).sum())} iteration(s) began more than s ahead, e.g. {_rows(rd, lead > rd.s)}"
        )
        return Finding(ok, float(worst), float(rd.s), detail)


class ReadGuarantee(Theorem[RunData]):
    name = "ssp.I2_read_guarantee"
    reference = Reference(HO, "read guarantee (rule 2): every update of clocks <= c - s - 1", "R")
    summary = "visible_clock >= c - 1 - s, i.e. staleness <= s, and the recorded staleness matches the read set"

    def assumptions(self, rd: RunData) -> list[str]:
        if math.isinf(rd.s):
            return ["staleness = inf (ASP) guarantees nothing"]
        return _needs_trace(rd)

    def measure(self, rd: RunData) -> Finding:
        recorded_visible = rd.trace_table["visible_clock"].to_numpy()
        recorded = rd.trace_table["staleness"].to_numpy()
        sets = read_sets(rd)
        visible = recorded_visible if isinstance(sets, str) else sets.visible
        staleness = rd.clock - 1 - visible
        worst = int(staleness.max()) if len(staleness) else 0
        inconsistent = (recorded != rd.clock - 1 - recorded_visible) | (recorded_visible != visible)
        if inconsistent.any():
            return Finding(False, float(worst), float(rd.s),
                           f"recorded staleness/visible_clock disagree with the read set at {_rows(rd, inconsistent)}")
        ok = worst <= rd.s
        detail = (f"largest staleness {worst} clocks (read sets: {'recorded' if isinstance(sets, str) else sets.source})"
                  if ok else f"{int((staleness > rd.s).sum())} read(s) staler than s, e.g. {_rows(rd, staleness > rd.s)}")
        return Finding(ok, float(worst), float(rd.s), detail)


class ReadMyWrites(Theorem[RunData]):
    name = "ssp.I3_read_my_writes"
    reference = Reference(HO, "read-my-writes (rule 4)", "R")
    summary = "each read holds all of the reader's own earlier updates"

    def assumptions(self, rd: RunData) -> list[str]:
        unmet = _needs_trace(rd)
        if not unmet and rd.policy != "eager" and not rd.has("read_updates") and rd.audit is None:
            unmet.append("a lazy/push trace shows its own updates only through read_updates or the audit log")
        return unmet

    def measure(self, rd: RunData) -> Finding:
        missing = np.zeros(len(rd.trace_table), dtype=np.int64)
        sets = read_sets(rd)
        if isinstance(sets, str):
            return Finding(False, None, 0.0, f"read sets unavailable: {sets}")
        if rd.policy == "eager":
            missing = (rd.clock - 1) - sets.own
            how = "commit-order prefixes"
        elif rd.has("read_updates"):
            counted = rd.trace_table["read_updates"].to_numpy()
            assert sets.cutoff is not None  # lazy/push read sets always carry their cutoff
            missing = ((rd.P - 1) * sets.cutoff + (rd.clock - 1)) - counted
            how = "read_updates counts"
        else:
            how = "the audit log"
        if rd.audit is not None:
            own_gap = _audit_own_gap(rd, sets)
            if own_gap is not None:
                missing = np.maximum(missing, (own_gap > float_tolerance(rd)).astype(np.int64))
                how += " and the audit log"
        worst = int(np.abs(missing).max()) if len(missing) else 0
        ok = worst == 0
        detail = (f"every read holds its own earlier updates ({how})" if ok
                  else f"{int((missing != 0).sum())} read(s) lack own updates, e.g. {_rows(rd, missing != 0)}")
        return Finding(ok, float(worst), 0.0, detail)


class NoFutureReads(Theorem[RunData]):
    name = "ssp.I4_no_future_reads"
    reference = Reference(HO, "reads hold committed updates only (best effort within the window)", "R")
    summary = "a read holds only updates committed before it was taken"

    def assumptions(self, rd: RunData) -> list[str]:
        return _needs_trace(rd)

    def measure(self, rd: RunData) -> Finding:
        sets = read_sets(rd)
        if isinstance(sets, str):
            return Finding(False, None, 0.0, f"read sets unavailable: {sets}")
        instant = rd.read_instant
        if rd.policy == "eager":
            held = sets.K.sum(axis=1)
            committed = rd.commits_at(instant)
        else:
            held = sets.cutoff
            committed = rd.complete_clock_at(instant)
        excess = held - committed
        worst = int(excess.max()) if len(excess) else 0
        unit = "updates" if rd.policy == "eager" else "clocks"
        ok = worst <= 0
        detail = (f"every read held only what was committed at its {'read_time' if rd.has('read_time') else 'start_time'}"
                  if ok else f"{int((excess > 0).sum())} read(s) held {unit} committed later, e.g. {_rows(rd, excess > 0)}")
        return Finding(ok, float(max(worst, 0)), 0.0, detail)


class ReplayNoisyView(Theorem[RunData]):
    name = "ssp.I5_replay"
    reference = Reference(HO, "noisy-view decomposition x~ = x0 + sum of the read set (reference/theorems.md §1)", "R")
    summary = "parameters read = x0 + the updates of the read set (audit), or the losses the read sets imply (replay)"

    def assumptions(self, rd: RunData) -> list[str]:
        unmet = _needs_trace(rd, "loss")
        if rd.config.problem.kind == "none":
            unmet.append("problem.kind = 'none' has no math to replay")
        n_params = (rd.meta.get("problem") or {}).get("n_params")
        if rd.audit is None and rd.trace is not None and n_params and len(rd.trace) * int(n_params) > MAX_VALUES:
            # too large to measure is not a violation: without the audit log there is nothing to compare
            unmet.append(f"no audit log, and replaying {len(rd.trace)} rows x {n_params} parameters exceeds "
                         f"{MAX_VALUES:,} values (run with [run] audit = true, or fewer clocks)")
        return unmet

    def measure(self, rd: RunData) -> Finding:
        tol = float_tolerance(rd)
        if rd.audit is not None:
            tol = max(tol, 4e-16 * len(rd.trace_table))  # per-worker sums reorder the server's commit-order sum
            sets = read_sets(rd)
            if isinstance(sets, str):
                return Finding(False, None, tol, f"read sets unavailable: {sets}")
            expected = _audit_read_params(rd, sets)
            actual = rd.audit_log["params"]
            scale = np.maximum(np.abs(expected).max(axis=1), 1.0)
            err = np.abs(actual - expected).max(axis=1) / scale
            loss_err, update_err = _audit_math_gap(rd)
            worst = float(max(err.max(initial=0.0), loss_err.max(initial=0.0), update_err.max(initial=0.0)))
            if err.max(initial=0.0) > tol:
                detail = f"{int((err > tol).sum())} read(s) differ from x0 + their read set, e.g. {_rows(rd, err > tol)}"
            elif loss_err.max(initial=0.0) > tol:
                detail = f"{int((loss_err > tol).sum())} recorded loss(es) differ from the loss at the parameters read, e.g. {_rows(rd, loss_err > tol)}"
            elif update_err.max(initial=0.0) > tol:
                detail = f"{int((update_err > tol).sum())} update(s) differ from -eta * the gradient at the parameters read, e.g. {_rows(rd, update_err > tol)}"
            else:
                detail = "every read equals x0 + its read set; every loss and update is the SGD step at that read (audit log)"
            return Finding(worst <= tol, worst, tol, detail)
        result = replay(rd)
        if isinstance(result, str):
            return Finding(False, None, tol, f"cannot replay: {result}")
        recorded = rd.trace_table["loss"].to_numpy()
        err = np.abs(result.losses - recorded) / np.maximum(np.abs(recorded), 1.0)
        err = np.where(np.isnan(err), np.inf, err)
        worst = float(err.max()) if len(err) else 0.0
        ok = worst <= tol
        detail = ("every loss equals the replay of its read set" if ok
                  else f"{int((err > tol).sum())} loss(es) differ from the replay of their read sets, e.g. {_rows(rd, err > tol)}")
        return Finding(ok, worst, tol, detail)


class Limits(Theorem[RunData]):
    name = "ssp.I6_limits"
    reference = Reference(HO, "s = 0 is BSP (synchronous minibatch SGD); P = 1 is serial SGD", "R")
    summary = "with s = 0 (or P = 1) every loss equals synchronous minibatch (serial) SGD on the same samples"

    def assumptions(self, rd: RunData) -> list[str]:
        unmet = _needs_trace(rd, "loss")
        if not (rd.s == 0 or rd.P == 1):
            unmet.append(f"needs staleness = 0 or one worker (has s = {rd.s}, P = {rd.P})")
        if rd.config.problem.kind == "none":
            unmet.append("problem.kind = 'none' has no math")
        if rd.config.optimizer.staleness_aware:
            unmet.append("staleness-aware steps depend on the commit order")
        return unmet

    def measure(self, rd: RunData) -> Finding:
        problem = rd.problem
        cfg = rd.config
        P, C = rd.P, int(rd.clock.max())
        step = StepSize.from_config(cfg.optimizer)
        seed, batch, n, beta = cfg.problem_seed, cfg.problem.batch_size, problem.n_samples, cfg.optimizer.momentum
        x = problem.initial_params()
        reference = np.full((P, C), np.nan)
        directions: list[np.ndarray | None] = [None] * P
        # each clock's updates are applied one by one in the run's commit order, x <- x + (-eta d), as a
        # server applies them: the same sum in the same order, so rounding cannot grow apart (it does,
        # chaotically, on a network trained for many clocks, when the order differs)
        by_clock: list[list[int]] = [[] for _ in range(C + 1)]  # workers in commit order, per clock
        if rd.has("commit_index"):
            for r in np.lexsort((rd.trace_table["commit_index"].to_numpy(), rd.clock)):
                by_clock[int(rd.clock[r])].append(int(rd.worker[r]))
        for c in range(1, C + 1):
            updates: dict[int, np.ndarray] = {}
            for p in range(P):
                loss, g = problem.loss_grad(x, sample_indices(seed, p, c, batch, n))
                reference[p, c - 1] = loss
                if beta:
                    previous = directions[p]
                    g = g if previous is None else g + beta * previous
                    directions[p] = g
                updates[p] = -step(P * (c - 1) + p + 1, 0) * g
            applied = by_clock[c] if len(by_clock[c]) == P else range(P)
            for p in applied:
                x = x + updates[p]
        expected = reference[rd.worker, rd.clock - 1]
        recorded = rd.trace_table["loss"].to_numpy()
        err = np.abs(expected - recorded) / np.maximum(np.abs(expected), 1.0)
        err = np.where(np.isnan(err), np.inf, err)
        tol = max(float_tolerance(rd), 1e-9)
        worst = float(err.max()) if len(err) else 0.0
        what = "serial SGD" if P == 1 else "synchronous minibatch SGD (batch P x b)"
        ok = worst <= tol
        detail = (f"every loss equals {what} on the same samples" if ok
                  else f"{int((err > tol).sum())} loss(es) differ from {what}, e.g. {_rows(rd, err > tol)}")
        return Finding(ok, worst, tol, detail)


# -- audit helpers -------------------------------------------------------------------------

def _own_prefix_sums(rd: RunData) -> list[np.ndarray]:
    """cum[q][k] = sum of worker q's updates 1..k (from the audit log)."""
    updates = rd.audit_log["update"]
    d = updates.shape[1]
    out = []
    for q in range(rd.P):
        rows = np.flatnonzero(rd.worker == q)
        rows = rows[np.argsort(rd.clock[rows])]
        out.append(np.vstack([np.zeros(d), np.cumsum(updates[rows], axis=0)]))
    return out


def _audit_read_params(rd: RunData, sets) -> np.ndarray:  # type: ignore[no-untyped-def]
    """x0 + sum over workers of their read prefixes, per row."""
    cum = _own_prefix_sums(rd)
    out = np.repeat(rd.audit_log["x0"][None, :], len(rd.trace_table), axis=0)
    for q in range(rd.P):
        out += cum[q][sets.K[:, q]]
    return out


def _audit_math_gap(rd: RunData) -> tuple[np.ndarray, np.ndarray]:
    """Per row (relative): recorded loss vs the loss at the audited parameters, and the audited
    update vs -eta * (momentum) direction of the gradient there, on samples (seed, p, c)."""
    problem = rd.problem
    cfg = rd.config
    params, updates = rd.audit_log["params"], rd.audit_log["update"]
    recorded = rd.trace_table["loss"].to_numpy()
    step = StepSize.from_config(cfg.optimizer)
    tau = rd.trace_table["update_staleness"].to_numpy() if rd.has("update_staleness") else np.zeros(len(recorded), dtype=int)
    steps = rd.trace_table["step"].to_numpy() if (cfg.optimizer.staleness_aware and rd.has("step")) else None
    seed, batch, n, beta = cfg.problem_seed, cfg.problem.batch_size, problem.n_samples, cfg.optimizer.momentum
    loss_err = np.zeros(len(recorded))
    update_err = np.zeros(len(recorded))
    for q in range(rd.P):
        rows = np.flatnonzero(rd.worker == q)
        direction = None
        for r in rows[np.argsort(rd.clock[rows])]:
            c = int(rd.clock[r])
            loss, g = problem.loss_grad(params[r], sample_indices(seed, q, c, batch, n))
            direction = g if (not beta or direction is None) else g + beta * direction
            eta = steps[r] if steps is not None else step(rd.P * (c - 1) + q + 1, int(tau[r]))
            expected = -eta * direction
            loss_err[r] = abs(loss - recorded[r]) / max(abs(loss), 1.0) if np.isfinite(recorded[r]) else np.inf
            update_err[r] = np.abs(updates[r] - expected).max() / max(np.abs(expected).max(), 1e-300)
    return loss_err, update_err


def _audit_own_gap(rd: RunData, sets) -> np.ndarray | None:  # type: ignore[no-untyped-def]
    """Per row: how far the own part of the parameters read is from all own earlier updates (relative)."""
    cum = _own_prefix_sums(rd)
    others = np.repeat(rd.audit_log["x0"][None, :], len(rd.trace_table), axis=0)
    for q in range(rd.P):
        mask = rd.worker != q
        others[mask] += cum[q][sets.K[mask, q]]
    own_part = rd.audit_log["params"] - others
    own_all = np.vstack([cum[p][c - 1] for p, c in zip(rd.worker, rd.clock)])
    scale = np.maximum(np.abs(rd.audit_log["params"]).max(axis=1), 1.0)
    return np.abs(own_part - own_all).max(axis=1) / scale
