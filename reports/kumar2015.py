"""The seed paper's claims beside what a sweep measured (Kumar, Xie, Yin, Xing 2015, arXiv 1512.02728).

Only the paper's abstract was available (reference/theorems.md §0, §5.1): about 6x faster with 6
machines on an ImageNet instance [V], convergence to the same optimum as undistributed training
[V], layerwise convergence and convergence of the weights in probability (claimed [V]; the
statements are reconstructions [X], §5.2).  The PMLS DNN app of the same lab documents 4.1x
from 1 to 6 machines [V] (§9).  The paper gives no figure for the cost of staleness.

:func:`kumar_section` reads a sweep over workers.count (ideally {1, 2, 4, 6}) and
consistency.staleness (ideally {0, 1, 3, 5, 10}), per problem (e.g. timit_like and mlp).  The
rows for the reconstructed statements (same optimum, layerwise tracking, layerwise convergence,
weights in probability) show the verdicts of the catalogue's ``kumar2015`` checks
(:mod:`sspsim.proofs_check.kumar2015`) on those runs, so the report and ``sspsim check`` cannot
disagree; the report holds no rule of its own for them.  The speedup rows set the measured
speedup beside the paper's figures (no theorem covers them); nothing is hard-coded but those
figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sspsim.proofs_check import Outcome, Verdict
from sspsim.proofs_check.runner import check_runs
from sspsim.reports import data as D
from sspsim.reports.html import FigureSink, esc, note
from sspsim.rundir import Run

__all__ = [
    "APP_SPEEDUP", "PAPER_P", "PAPER_SPEEDUP", "Claim", "kumar_claims", "kumar_section", "kumar_verdicts",
    "looks_like_kumar_sweep", "verdict_claim",
]

PAPER_P = 6
PAPER_SPEEDUP = 6.0  # "close to 6x faster" with 6 machines on an ImageNet instance [V]
APP_SPEEDUP = 4.1  # PMLS/Bosen DNN app documentation: about 4.1x from 1 to 6 machines [V]
APP_STALENESS = 5  # the app documentation's example staleness [V]
LINEAR_OK = 0.8  # "close to 6x": at least 80 % of linear
LINEAR_PARTLY = 0.6
SUPERLINEAR = 1.1
APP_TOLERANCE = 0.2  # within 20 % of the app's figure (scaled to the sweep's largest P)
TARGET_MARGIN = 0.05  # derived target: 5 % of the descent above the worst run's best objective


@dataclass(frozen=True)
class Claim:
    """One row of the claims table: the paper's statement, what sspsim measured, and whether they agree.

    ``theorem`` names the proofs_check check whose verdicts gave ``matches`` (empty for the
    speedup rows, which compare measured numbers with the paper's).
    """

    claim: str
    paper: str
    measured: str
    matches: str  # "yes" | "no" | "partly" | "n/a"
    why: str = ""
    theorem: str = ""


def looks_like_kumar_sweep(runs: Sequence[Run]) -> bool:
    """At least three distinct workers.count values, one of them 1 (the serial reference)."""
    Ps = {int(r.meta.get("config", {}).get("workers", {}).get("count", 0)) for r in runs}
    return len(Ps) >= 3 and 1 in Ps


def _entries(runs: Sequence[Run], labels: dict[int, str] | None) -> list[D.RunEntry]:
    entries = [D.RunEntry(r, r.path or Path(f"run{i}")) for i, r in enumerate(runs)]
    if labels and all(id(r) in labels for r in runs):
        for e in entries:
            e.label = labels[id(e.run)]
    else:
        D.label_runs(entries)
    return entries


# -- per-run measurements ---------------------------------------------------------------------------

def _group_target(members: list[D.RunEntry]) -> tuple[float | None, str]:
    """The objective whose first crossing defines "time to target", and where it came from."""
    targets = {m.summary.get("target") for m in members}
    configured = next(iter(targets)) if len(targets) == 1 else None
    if configured is not None and all(m.summary.get("time_to_target") is not None for m in members):
        return float(configured), "the configured [run] target, reached by every run"
    best, initial = [], []
    for m in members:
        ev = m.evals()
        if ev is None or "objective" not in ev.columns or ev["objective"].isna().all():
            continue
        obj = ev["objective"].to_numpy(dtype=float)
        if not np.isfinite(obj).all():
            continue
        best.append(float(np.min(obj)))
        initial.append(float(obj[0]))
    if not best:
        return None, "no run has a finite objective in evals.csv"
    worst_best = max(best)
    start = float(np.median(initial))
    if worst_best >= start:
        return None, "some run never improved on the initial objective"
    why = ("configured targets differ or were not reached by every run; " if None not in targets else "no [run] target configured; ")
    return (worst_best + TARGET_MARGIN * (start - worst_best),
            why + f"derived: the highest best-objective over the runs plus {TARGET_MARGIN:.0%} of the descent to it, "
                  "so every run reaches it")


def _first_reach(ev: pd.DataFrame, target: float, column: str) -> float | None:
    hit = ev[ev["objective"] <= target]
    return None if hit.empty or column not in ev.columns else float(hit[column].iloc[0])


def _cells(members: list[D.RunEntry], target: float | None) -> pd.DataFrame:
    rows = []
    for m in members:
        ev = m.evals()
        scored = ev if ev is not None and "objective" in ev.columns and len(ev) else None
        final = float(scored["objective"].iloc[-1]) if scored is not None else None
        rows.append({
            "label": m.label, "problem": m.problem, "P": m.P, "s": m.s, "staleness": f"s={D.staleness_text(m.s)}",
            "seed": m.seed, "final_objective": final,
            "time_to_target": _first_reach(scored, target, "time") if scored is not None and target is not None else None,
            "updates_to_target": _first_reach(scored, target, "updates") if scored is not None and target is not None else None,
        })
    return pd.DataFrame(rows)


def _median_cells(cells: pd.DataFrame, column: str) -> pd.DataFrame:
    return (cells.dropna(subset=[column]).groupby(["problem", "P", "s", "staleness"], as_index=False)[column].median())


# -- claims -------------------------------------------------------------------------------------------

ANALOGUE = {
    "mlp": "this problem (the digits MLP) is the ImageNet-like stand-in, so this row is the direct comparison",
    "timit_like": "this problem is the TIMIT-like stand-in; the paper's TIMIT speedup is unknown [unknown]",
}
APP_ANALOGUE = {
    "timit_like": "the app's TIMIT setup is the closest documented one to this problem",
}


FIGURE_ONLY = "a measured figure set beside the paper's, not a theorem check (the catalogue has none for speedup)"


def _speedup_claims(sp: pd.DataFrame, P_max: int, problem: str = "") -> list[Claim]:
    at = sp[sp["P"] == P_max].sort_values("s")
    scale = "" if P_max == PAPER_P else f" (the sweep's largest P is {P_max}, so the paper's claim is read as linear: {P_max}x)"
    if at.empty:
        why = f"no run at P={P_max} and no P = 1 run reached the target"
        return [Claim(f"speedup at {P_max} machines", "about 6x at 6 machines, ImageNet instance [V]", why, "n/a"),
                Claim(f"speedup from 1 to {P_max} machines (lab's DNN app)", "4.1x from 1 to 6 machines [V]", why, "n/a")]
    per_s = ", ".join(f"{r.staleness}: {r.speedup:.2f}x" for r in at.itertuples())
    best = at.loc[at["speedup"].idxmax()]
    b = float(best["speedup"])
    eff = b / P_max
    if eff > SUPERLINEAR:
        verdict, why = "no", f"superlinear ({eff:.2f} of linear): more than the paper claims; check the time model"
    elif eff >= LINEAR_OK:
        verdict, why = "yes", f"best {eff:.0%} of linear (>= {LINEAR_OK:.0%} counts as 'close to' linear)"
    elif eff >= LINEAR_PARTLY:
        verdict, why = "partly", f"best {eff:.0%} of linear ({LINEAR_PARTLY:.0%}-{LINEAR_OK:.0%})"
    else:
        verdict, why = "no", f"best {eff:.0%} of linear (< {LINEAR_PARTLY:.0%})"
    paper = "close to 6x with 6 machines on an ImageNet instance [V]"
    if problem in ANALOGUE:
        paper += f"; {ANALOGUE[problem]}"
    rows = [Claim(f"speedup at {P_max} machines{scale}", paper,
                  f"best {b:.2f}x at {best['staleness']} ({per_s})", verdict, f"{why}; {FIGURE_ONLY}")]
    app_expected = APP_SPEEDUP * P_max / PAPER_P
    app_row = at[at["s"] == APP_STALENESS]
    if len(app_row):
        m, which = float(app_row["speedup"].iloc[0]), f"at s={APP_STALENESS} (the app's example staleness)"
    else:
        m, which = b, f"best over s (s={APP_STALENESS}, the app's example staleness, is not in the sweep)"
    rel = m / app_expected - 1
    if abs(rel) <= APP_TOLERANCE:
        verdict, why = "yes", f"within {APP_TOLERANCE:.0%} of {app_expected:.2f}x"
    else:
        verdict, why = "no", f"{abs(rel):.0%} {'above' if rel > 0 else 'below'} {app_expected:.2f}x"
    expected = "4.1x from 1 to 6 machines [V] (the app's documentation, not necessarily the paper's figure)"
    if P_max != PAPER_P:
        expected += f"; same efficiency at P={P_max}: {app_expected:.2f}x"
    if problem in APP_ANALOGUE:
        expected += f"; {APP_ANALOGUE[problem]}"
    rows.append(Claim(f"speedup from 1 to {P_max} machines, lab's DNN app", expected, f"{m:.2f}x {which}", verdict,
                      f"{why}; {FIGURE_ONLY}"))
    return rows


def _staleness_cost_claim(cells: pd.DataFrame) -> Claim:
    paper = "no figure available [unknown]"
    utt = _median_cells(cells[cells["P"] > 1], "updates_to_target")
    if utt.empty:
        return Claim("cost of staleness (updates to target against s)", paper, "no run with P > 1 reached the target", "n/a")
    P_max = int(utt["P"].max())
    at = utt[utt["P"] == P_max].sort_values("s")
    values = at["updates_to_target"].to_numpy(dtype=float)
    series = ", ".join(f"{r.staleness}: {r.updates_to_target:.0f}" for r in at.itertuples())
    first, last = values[0], values[-1]
    ratio = f"; {at['staleness'].iloc[-1]} needs {last / first:.2f}x the updates of {at['staleness'].iloc[0]}" if first > 0 and len(values) > 1 else ""
    return Claim("cost of staleness (updates to target against s)", paper, f"at P={P_max}: {series}{ratio}", "n/a",
                 "nothing to compare: the paper is silent (the figure below shows the measurement)")


VERDICT_CLAIMS: tuple[tuple[str, str, str], ...] = (
    ("kumar2015.same_optimum", "same final objective across P and s",
     ("converges to the same optimum as undistributed (single-machine) training [V]; the statement is reconstructed "
      "[X] (theorems.md §5.3 E1)")),
    ("kumar2015.layerwise_tracking", "layerwise tracking of the serial reference",
     "layerwise analysis, claimed in the abstract [V]; the statement is reconstructed [X] (theorems.md §5.3 E2)"),
    ("kumar2015.layer_gradients", "layerwise convergence",
     "layerwise convergence, claimed in the abstract [V]; the statement is reconstructed [X] (theorems.md §5.3 E3)"),
    ("kumar2015.weights_in_probability", "convergence of the weights in probability",
     ("the weights converge in probability, claimed in the abstract [V]; the statement is reconstructed [X] "
      "(theorems.md §5.3 E4)")),
)
"""(proofs_check theorem, claims-table row, the paper's side) for the rows whose verdict is a check's."""

MATCHES = {Outcome.HOLDS: "yes", Outcome.VIOLATED: "no", Outcome.NOT_APPLICABLE: "n/a"}
"""A check's outcome as the claims table's "matches?" (one run, or a sweep-scope check)."""


def verdict_claim(theorem: str, claim: str, paper: str, verdicts: Sequence[Verdict]) -> Claim:
    """The row of ``theorem`` from its verdicts on the group's runs (run scope: one per run; sweep
    scope: one).  matches is the verdict's outcome (holds: yes, violated: no, not_applicable:
    n/a); over several runs: no if any is violated, yes if all hold, n/a if none applies,
    partly when some hold and the others are not applicable."""
    vs = [v for v in verdicts if v.theorem == theorem]
    why = f"sspsim check {theorem}"
    if not vs:
        return Claim(claim, paper, "not checked", "n/a", why, theorem)
    if len(vs) == 1:
        v = vs[0]
        return Claim(claim, paper, v.detail, MATCHES[v.outcome], f"{why}: {v.outcome.value}", theorem)
    by = {o: [v for v in vs if v.outcome is o] for o in Outcome}
    n = len(vs)
    counts = ", ".join(f"{len(by[o])} {o.value}" for o in Outcome if by[o])
    if by[Outcome.VIOLATED]:
        first = by[Outcome.VIOLATED][0]
        return Claim(claim, paper, f"violated on {len(by[Outcome.VIOLATED])} of {n} runs, e.g. {first.run}: {first.detail}",
                     "no", f"{why}: {counts}", theorem)
    if len(by[Outcome.HOLDS]) == n:
        return Claim(claim, paper, f"holds on all {n} runs, e.g. {vs[0].run}: {vs[0].detail}", "yes", f"{why}: {counts}", theorem)
    if not by[Outcome.HOLDS]:
        return Claim(claim, paper, f"not applicable on any of the {n} runs: {vs[0].detail}", "n/a", f"{why}: {counts}", theorem)
    na = by[Outcome.NOT_APPLICABLE][0]
    return Claim(claim, paper, f"holds on {len(by[Outcome.HOLDS])} of {n} runs; not applicable on the others, e.g. "
                 f"{na.run}: {na.detail}", "partly", f"{why}: {counts}", theorem)


def kumar_verdicts(members: Sequence[Run], name: str = "runs") -> list[Verdict]:
    """The catalogue's kumar2015 checks on a group of runs (run scope on each, sweep scope on the group)."""
    return check_runs(Path(name), list(members), ("kumar2015",))


def kumar_claims(runs: Sequence[Run], labels: dict[int, str] | None = None) -> dict[str, list[Claim]]:
    """Problem -> the claims table rows: speedups measured from the runs, the reconstructed
    statements from the kumar2015 checks' verdicts (see the module docstring)."""
    out: dict[str, list[Claim]] = {}
    for key, members, cells, _target, _why, sp in _groups(_entries(runs, labels)):
        out[key] = _claims(key, members, cells, sp)
    return out


def _claims(key: str, members: list[D.RunEntry], cells: pd.DataFrame, sp: pd.DataFrame) -> list[Claim]:
    P_max = int(max(m.P for m in members))
    verdicts = kumar_verdicts([m.run for m in members], key)
    checked = [verdict_claim(theorem, claim, paper, verdicts) for theorem, claim, paper in VERDICT_CLAIMS]
    return [*_speedup_claims(sp, P_max, members[0].problem), checked[0], _staleness_cost_claim(cells), *checked[1:]]


def _groups(entries: list[D.RunEntry]) -> Iterable[tuple[str, list[D.RunEntry], pd.DataFrame, float | None, str, pd.DataFrame]]:
    by: dict[tuple[str, str], list[D.RunEntry]] = {}
    for e in entries:
        by.setdefault((e.problem, e.backend), []).append(e)
    multi_backend = len({b for _, b in by}) > 1
    for (problem, backend), members in sorted(by.items()):
        target, why = _group_target(members)
        cells = _cells(members, target)
        times = {r.label: r.time_to_target for r in cells.itertuples()}
        sp = D.speedup_table(members, times=times)
        key = f"{problem} ({backend})" if multi_backend else problem
        yield key, members, cells, target, why, sp


# -- the HTML section -------------------------------------------------------------------------------

def kumar_section(runs: Sequence[Run], *, figures: FigureSink | None = None, labels: dict[int, str] | None = None) -> str:
    """HTML: the paper's claims beside the sweep's measurements (a table per problem), with the figures.

    ``figures`` collects the PNGs (build_report passes its own so they are also written to disk);
    ``labels`` maps ``id(run)`` to the report's run labels.
    """
    sink = figures or FigureSink()
    from sspsim.reports import figures as F

    entries = _entries(runs, labels)
    Ps = sorted({e.P for e in entries})
    ss = sorted({e.s for e in entries})
    problems = sorted({e.problem for e in entries})
    parts = [
        f'<p class="what">{esc(_intro(Ps, ss, problems))}</p>',
        note("Source status: only the paper's abstract was available [V]; its theorems are reconstructed [X] "
             "(reference/theorems.md §5.2) and its figures, network sizes and staleness values are unknown. "
             "The 4.1x figure is the lab's PMLS DNN app documentation [V]. The speedups are measured from these "
             "runs; every other verdict is the outcome of sspsim check's kumar2015 checks on them."),
    ]
    all_cells, all_sp, tables = [], [], []
    summary: dict[str, list[str]] = {"yes": [], "partly": [], "no": [], "n/a": []}
    for key, members, cells, target, why, sp in _groups(entries):
        claims = _claims(key, members, cells, sp)
        for c in claims:
            summary[c.matches].append(f"{c.claim} ({key})")
        tgt = "no target could be set" if target is None else f"target objective {target:.4g}"
        tables.append(f"<h3>{esc(key)}: {len(members)} runs</h3>"
                      f'<p class="what">Time to target uses the {esc(tgt)} ({esc(why)}).</p>' + _claims_table(claims))
        c2 = cells.copy()
        c2["key"] = key
        serial = c2[c2["P"] == 1]["final_objective"].median()
        c2["serial"] = serial
        all_cells.append(c2)
        if len(sp):
            sp = sp.copy()
            sp["problem"] = key
            all_sp.append(sp)
    parts.append(_summary_html(summary))
    parts.extend(tables)

    cells = pd.concat(all_cells, ignore_index=True) if all_cells else pd.DataFrame()
    if all_sp:
        sp = pd.concat(all_sp, ignore_index=True)
        parts.append('<p class="what">Speedup in time to target against the number of workers, one line per '
                     "staleness bound, beside ideal linear speedup and the two published figures (red stars).</p>")
        parts.append(sink.add(F.speedup_figure(sp, marks=[(PAPER_P, PAPER_SPEEDUP, "paper: ~6x (ImageNet) [V]"),
                                                          (PAPER_P, APP_SPEEDUP, "PMLS DNN app: 4.1x [V]")]),
                              "kumar-speedup", "Speedup against P, per s, with the paper's and the app's figures."))
    else:
        parts.append(note("No speedup figure: no P = 1 run and larger-P run of one problem both reached the target."))
    ev = D.evals_long(entries)
    if not ev.empty:
        s_mid = _middle_staleness(ss)
        sub = ev[ev["s"] == s_mid]
        parts.append(f'<p class="what">Objective against time at s = {esc(D.staleness_text(s_mid))}, one curve '
                     "per number of workers (the paper's plot of convergence against wall-clock time).</p>")
        parts.append(sink.add(F.objective_figure(sub, x="time", hue="P"), "kumar-objective-time",
                              f"Objective against time per P at s = {D.staleness_text(s_mid)}."))
    if not cells.empty and cells["final_objective"].notna().any():
        fo = _median_cells(cells.assign(problem=cells["key"]), "final_objective")
        fo["serial"] = fo["problem"].map(cells.groupby("key")["serial"].first())
        parts.append('<p class="what">Final objective of every (P, s) cell (median over seeds) beside the serial '
                     "run's: the same-optimum claim asks that no cell end clearly above serial.</p>")
        parts.append(sink.add(F.final_objective_figure(fo), "kumar-final-objective", "Final objective per (P, s)."))
    if not cells.empty and cells["updates_to_target"].notna().any():
        ut = _median_cells(cells.assign(problem=cells["key"]), "updates_to_target")
        parts.append('<p class="what">Updates applied before the objective first reached the target, against the '
                     "staleness bound, one line per P: the statistical cost of staleness, for which the paper gives "
                     "no figure.</p>")
        parts.append(sink.add(F.cost_of_staleness_figure(ut), "kumar-staleness-cost", "Updates to target against s."))
    layers = D.layers_long([e for e in entries if e.P == max(Ps)])
    if not layers.empty:
        parts.append(f'<p class="what">Per-layer gradient and weight norms against updates at P = {max(Ps)}, one '
                     "line per staleness bound: layerwise convergence shows as every layer's gradient norm "
                     "falling.</p>")
        parts.append(sink.add(F.layers_figure(layers, x="updates"), "kumar-layers",
                              f"Per-layer norms at P = {max(Ps)} against updates."))
    else:
        parts.append(note("No layerwise figure: no layered model among the runs."))
    return "\n".join(parts)


def _claims_table(claims: list[Claim]) -> str:
    cls = {"yes": "yes", "no": "no", "partly": "partly", "n/a": ""}
    rows = []
    for c in claims:
        why = f"<br>{esc(c.why)}" if c.why else ""
        attr = f' class="{cls[c.matches]}"' if cls[c.matches] else ""
        rows.append(f"<tr><td>{esc(c.claim)}</td><td>{esc(c.paper)}</td><td>{esc(c.measured)}</td>"
                    f"<td{attr}><strong>{esc(c.matches)}</strong>{why}</td></tr>")
    return ('<table class="claims"><thead><tr><th>claim</th><th>paper</th><th>sspsim measured</th><th>matches?</th>'
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _intro(Ps: list[int], ss: list[float], problems: list[str]) -> str:
    paper_P, paper_s = [1, 2, 4, 6], [0, 1, 3, 5, 10]
    sweep = f"P in {{{', '.join(map(str, Ps))}}}, s in {{{', '.join(D.staleness_text(s) for s in ss)}}}"
    missing = [p for p in paper_P if p not in Ps]
    missing_s = [s for s in paper_s if s not in ss]
    gap = ""
    if missing or missing_s:
        gap = (" Not covered by this sweep: " + ", ".join(
            [*(f"P={p}" for p in missing), *(f"s={s}" for s in missing_s)]) + ".")
    return (f"The seed paper's claims set side by side with this sweep ({sweep}; problem(s): {', '.join(problems)}), "
            "following the reproduction plan of reference/theorems.md §9 (P in {1,2,4,6}, s in {0,1,3,5,10}, "
            f"a TIMIT-like and an image MLP).{gap}")


def _middle_staleness(ss: list[float]) -> float:
    finite = [s for s in ss if math.isfinite(s)]
    pool = finite or ss
    target = 3.0
    return min(pool, key=lambda s: (abs(s - target), s))


def _summary_html(summary: dict[str, list[str]]) -> str:
    lines = []
    names = {"yes": "Matches", "partly": "Partly matches", "no": "Does not match", "n/a": "Nothing to compare"}
    for k in ("yes", "partly", "no", "n/a"):
        if summary[k]:
            lines.append(f"<li><strong>{names[k]}:</strong> {esc('; '.join(summary[k]))}.</li>")
    return "<p><strong>In short</strong> (computed from these runs):</p><ul>" + "".join(lines) + "</ul>"
