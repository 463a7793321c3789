"""The seed paper's claims beside what a sweep measured (Kumar, Xie, Yin, Xing 2015, arXiv 1512.02728).

Only the paper's abstract was available (reference/theorems.md §0, §5.1): about 6x faster with 6
machines on an ImageNet instance [V], convergence to the same optimum as undistributed training
[V], layerwise convergence and convergence of the weights in probability (claimed [V]; the
statements are reconstructions [X], §5.2).  The PMLS DNN app of the same lab documents 4.1x
from 1 to 6 machines [V] (§9).  The paper gives no figure for the cost of staleness.

:func:`kumar_section` reads a sweep over workers.count (ideally {1, 2, 4, 6}) and
consistency.staleness (ideally {0, 1, 3, 5, 10}), per problem (e.g. timit_like and mlp), and
computes every verdict from the runs; nothing here is hard-coded but the paper's numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from sspsim.reports import data as D
from sspsim.reports.html import FigureSink, esc, note
from sspsim.rundir import Run

__all__ = ["Claim", "PAPER_P", "PAPER_SPEEDUP", "APP_SPEEDUP", "kumar_claims", "kumar_section", "looks_like_kumar_sweep"]

PAPER_P = 6
PAPER_SPEEDUP = 6.0  # "close to 6x faster" with 6 machines on an ImageNet instance [V]
APP_SPEEDUP = 4.1  # PMLS/Bosen DNN app documentation: about 4.1x from 1 to 6 machines [V]
APP_STALENESS = 5  # the app documentation's example staleness [V]
LINEAR_OK = 0.8  # "close to 6x": at least 80 % of linear
LINEAR_PARTLY = 0.6
SUPERLINEAR = 1.1
APP_TOLERANCE = 0.2  # within 20 % of the app's figure (scaled to the sweep's largest P)
TARGET_MARGIN = 0.05  # derived target: 5 % of the descent above the worst run's best objective
E1_FRACTION = 0.1  # same-optimum tolerance: a tenth of the serial descent (proofs_check.kumar2015 E1)


@dataclass(frozen=True)
class Claim:
    """One row of the claims table: the paper's statement, what sspsim measured, and whether they agree."""

    claim: str
    paper: str
    measured: str
    matches: str  # "yes" | "no" | "partly" | "n/a"
    why: str = ""


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
    if len(targets) == 1 and None not in targets and all(m.summary.get("time_to_target") is not None for m in members):
        return float(targets.pop()), "the configured [run] target, reached by every run"
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


def _layer_ratio(ev: pd.DataFrame) -> float | None:
    """max over layers of (mean gradient norm, last quarter of the evals) / (first quarter) (E3's measure)."""
    layers = [c for c in ev.columns if c.startswith("grad_norm_")]
    if not layers or len(ev) < 4:
        return None
    q = max(1, len(ev) // 4)
    ratios = []
    for c in layers:
        v = ev[c].to_numpy(dtype=float)
        if not np.isfinite(v).all():
            return math.inf
        first, last = v[:q].mean(), v[-q:].mean()
        ratios.append(last / first if first > 0 else math.inf)
    return float(max(ratios))


def _cells(members: list[D.RunEntry], target: float | None) -> pd.DataFrame:
    rows = []
    for m in members:
        ev = m.evals()
        has_obj = ev is not None and "objective" in ev.columns and len(ev)
        final = float(ev["objective"].iloc[-1]) if has_obj else None
        rows.append({
            "label": m.label, "problem": m.problem, "P": m.P, "s": m.s, "staleness": f"s={D.staleness_text(m.s)}",
            "seed": m.seed, "final_objective": final,
            "initial": float(ev["objective"].iloc[0]) if has_obj else None,
            "half": float(ev["objective"].iloc[len(ev) // 2]) if has_obj else None,
            "time_to_target": _first_reach(ev, target, "time") if has_obj and target is not None else None,
            "updates_to_target": _first_reach(ev, target, "updates") if has_obj and target is not None else None,
            "eval_gap": float(ev["updates"].diff().max()) if has_obj and "updates" in ev.columns and len(ev) > 1 else 0.0,
            "layer_ratio": _layer_ratio(ev) if has_obj else None,
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
                  f"best {b:.2f}x at {best['staleness']} ({per_s})", verdict, why)]
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
    rows.append(Claim(f"speedup from 1 to {P_max} machines, lab's DNN app", expected, f"{m:.2f}x {which}", verdict, why))
    return rows


def _same_optimum_claim(cells: pd.DataFrame) -> Claim:
    paper = "converges to the same optimum as undistributed (single-machine) training [V]"
    serial = cells[cells["P"] == 1].dropna(subset=["final_objective"])
    others = _median_cells(cells[cells["P"] > 1], "final_objective")
    if serial.empty or others.empty:
        return Claim("same final objective across P and s", paper, "needs P = 1 runs and P > 1 runs with an objective", "n/a")
    f1 = float(serial["final_objective"].median())
    start = float(serial["initial"].median())
    half = float(serial["half"].median())
    delta = E1_FRACTION * max(start - f1, 0.0) + max(half - f1, 0.0)
    gaps = others["final_objective"] - f1
    worst = others.loc[gaps.idxmax()]
    lower = int((gaps < 0).sum())
    lo, hi = float(others["final_objective"].min()), float(others["final_objective"].max())
    measured = (f"serial final {f1:.4g}; the {len(others)} (P>1, s) cells end in [{lo:.4g}, {hi:.4g}]; largest gap "
                f"to serial {float(gaps.max()):+.3g} at P={int(worst['P'])} {worst['staleness']} (tolerance {delta:.3g}); "
                f"{lower} cell(s) end lower than serial")
    ok = float(gaps.max()) <= delta
    why = ("every cell within the tolerance (a tenth of the serial descent plus what the serial run still gained in "
           "its second half; lower is not counted against it: P workers apply P times the updates)")
    return Claim("same final objective across P and s", paper, measured, "yes" if ok else "no",
                 why if ok else f"{int((gaps > delta).sum())} cell(s) end more than {delta:.3g} above serial")


def _staleness_cost_claim(cells: pd.DataFrame) -> Claim:
    paper = "no figure available [unknown]"
    utt = _median_cells(cells[cells["P"] > 1], "updates_to_target")
    if utt.empty:
        return Claim("cost of staleness (updates to target against s)", paper, "no run with P > 1 reached the target", "n/a")
    P_max = int(utt["P"].max())
    at = utt[utt["P"] == P_max].sort_values("s")
    tol = float(cells["eval_gap"].max() or 0.0)
    values = at["updates_to_target"].to_numpy(dtype=float)
    monotone = bool(np.all(np.diff(values) >= -tol)) if len(values) > 1 else True
    series = ", ".join(f"{r.staleness}: {r.updates_to_target:.0f}" for r in at.itertuples())
    first, last = values[0], values[-1]
    ratio = f"; {at['staleness'].iloc[-1]} needs {last / first:.2f}x the updates of {at['staleness'].iloc[0]}" if first > 0 and len(values) > 1 else ""
    why = (f"nothing to compare (the paper is silent); theorems.md §9 expects non-decreasing in s: "
           f"{'holds' if monotone else 'fails'} (tolerance one evaluation interval, {tol:.0f} updates)")
    return Claim("cost of staleness (updates to target against s)", paper, f"at P={P_max}: {series}{ratio}", "n/a", why)


def _layerwise_claim(cells: pd.DataFrame) -> Claim:
    paper = "layerwise convergence, claimed in the abstract [V]; the statement is reconstructed [X] (theorems.md §5.2)"
    r = cells.dropna(subset=["layer_ratio"])
    if r.empty:
        return Claim("layerwise convergence", paper, "no layered model (no grad_norm_<layer> in evals.csv)", "n/a")
    fell = r["layer_ratio"] < 1
    k, n = int(fell.sum()), len(r)
    measured = (f"{k} of {n} runs: every layer's mean gradient norm over the last quarter of the evaluations is below "
                f"the first quarter's (worst layer's ratio: median {float(r['layer_ratio'].median()):.3g}, "
                f"max {float(r['layer_ratio'].max()):.3g})")
    verdict = "yes" if k == n else "partly" if k >= n / 2 else "no"
    return Claim("layerwise convergence", paper, measured, verdict,
                 "an empirical reading of the reconstruction (E3), not the paper's theorem")


def kumar_claims(runs: Sequence[Run], labels: dict[int, str] | None = None) -> dict[str, list[Claim]]:
    """Problem -> the claims table rows, computed from the runs (see the module docstring)."""
    out: dict[str, list[Claim]] = {}
    for key, members, cells, target, why, sp in _groups(_entries(runs, labels)):
        out[key] = _claims(members, cells, sp)
    return out


def _claims(members: list[D.RunEntry], cells: pd.DataFrame, sp: pd.DataFrame) -> list[Claim]:
    P_max = int(max(m.P for m in members))
    return [*_speedup_claims(sp, P_max, members[0].problem), _same_optimum_claim(cells), _staleness_cost_claim(cells),
            _layerwise_claim(cells)]


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
             "The 4.1x figure is the lab's PMLS DNN app documentation [V]. Every verdict below is computed from "
             "these runs."),
    ]
    all_cells, all_sp, tables, summary = [], [], [], {"yes": [], "partly": [], "no": [], "n/a": []}
    for key, members, cells, target, why, sp in _groups(entries):
        claims = _claims(members, cells, sp)
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
