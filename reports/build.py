"""``build_report(dirs, out)``: run or sweep directories in, one self-contained HTML file out.

The HTML embeds every figure as a base64 data URI and inlines its CSS; the same figures are
written beside it in ``<out stem>_files/`` as PNG, SVG and PDF.  That folder is sspsim's
(sspsim.outdir's marker): a folder of that name that sspsim did not create is never written
into.  Sections whose data are missing (no layered model, no real run, no time to target, ...)
say so in one line instead of drawing an empty figure.  Predicted against measured pairs runs
as ``sspsim compare`` does, and prints what it prints.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sspsim.errors import InputError
from sspsim.outdir import MARKER, is_sspsim_file, read_marker, write_marker
from sspsim.reports import data as D
from sspsim.reports import figures as F
from sspsim.reports.html import FigureSink, esc, note, page, section, table

__all__ = ["Report", "build_report", "make_report"]


@dataclass
class Report:
    """What :func:`make_report` wrote."""

    path: Path
    figures: list[Path]
    sections: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    runs: int = 0
    vectors: list[Path] = field(default_factory=list)  # the SVG and PDF beside each PNG


Pairs = list[tuple[str | Path, str | Path]]


def build_report(dirs: list[Path], out: Path, *, title: str | None = None, pairs: Pairs | None = None,
                 vectors: bool = True) -> Path:
    """Write the report of ``dirs`` (run directories or sweep directories) to ``out``; return its path.

    ``pairs``: the (simulated, real) run directories to compare; default, each real run with its
    prediction as :func:`sspsim.comparison.pair_runs` chooses it.  ``vectors``: write each figure
    as SVG and PDF beside its PNG.
    """
    return make_report(dirs, out, title=title, pairs=pairs, vectors=vectors).path


def make_report(dirs: Iterable[str | Path], out: str | Path, *, title: str | None = None,
                pairs: Pairs | None = None, vectors: bool = True) -> Report:
    """:func:`build_report`, returning the figure files and the sections written or skipped as well."""
    out = Path(out)
    if out.is_dir():
        raise InputError("-o", str(out), "is a directory; give the HTML file to write, e.g. report.html")
    sources, entries = D.expand_dirs(dirs)
    chosen = D.pair_sim_real(entries, pairs) if pairs else None
    folder = figures_folder(out)
    check_figures_folder(out)
    _prepare_figures_folder(folder, out)
    sink = FigureSink(folder, write_vectors=vectors)
    styles = F.run_styles((e.label, e.backend) for e in entries)
    report = Report(out, sink.files, runs=len(entries), vectors=sink.vectors)
    parts: list[tuple[str, str, str]] = []  # (anchor, title, html)

    def add(anchor: str, name: str, body: str | None, why: str | None = None) -> None:
        if body is None:
            report.skipped[anchor] = why or "not supported by these runs"
            parts.append((anchor, name, note(f"Skipped: {why}.")))
        else:
            report.sections.append(anchor)
            parts.append((anchor, name, body))

    add("runs", "Runs", _runs_section(sources, entries))
    for anchor, name, builder in (
        ("objective-time", "Objective against time", lambda: _objective_section(entries, sink, "time", styles)),
        ("objective-updates", "Objective against updates",
         lambda: _objective_section(entries, sink, "updates", styles)),
        ("staleness", "Staleness", lambda: _staleness_section(entries, sink, styles)),
        ("time-split", "Where the time went, per worker", lambda: _time_split_section(entries, sink)),
        ("layers", "Per-layer convergence", lambda: _layers_section(entries, sink, styles)),
        ("speedup", "Speedup against workers", lambda: _speedup_section(entries, sink)),
        ("predicted-measured", "Predicted against measured", lambda: _overlay_section(entries, sink, styles, chosen)),
    ):
        body, why = builder()
        add(anchor, name, body, why)

    from sspsim.reports.kumar2015 import kumar_section, looks_like_kumar_sweep

    if looks_like_kumar_sweep([e.run for e in entries]):
        add("kumar2015", "The seed paper's claims (Kumar et al. 2015, arXiv 1512.02728)",
            kumar_section([e.run for e in entries], figures=sink, labels={id(e.run): e.label for e in entries}))
    body, why = _verdicts_section(sources, entries)
    add("verdicts", "Theorem verdicts", body, why)

    heading = title or f"sspsim report: {len(entries)} run{'s' if len(entries) != 1 else ''}"
    backends = sorted({e.backend for e in entries})
    problems = sorted({e.problem for e in entries})
    subtitle = (f"{len(entries)} run(s) from {', '.join(str(s.path) for s in sources)}; backend(s): "
                f"{', '.join(backends)}; problem(s): {', '.join(problems)}; {sink.count} figure(s). "
                f"Written by sspsim {_version()}.")
    body_html = "\n".join(section(a, t, h) for a, t, h in parts)
    text = page(heading, subtitle, [(a, t) for a, t, _ in parts], body_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return report


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FIGURE_FILE = re.compile(r"^[0-9]{2,}-[a-z0-9-]+\.(png|svg|pdf)$")
"""The names of the figure files a report writes (``NN-name.png``, ``.svg``, ``.pdf``)."""


def figures_folder(out: Path) -> Path:
    """Where the figures of the report ``out`` go: ``<out stem>_files/`` beside it."""
    return out.with_name(out.stem + "_files")


def check_figures_folder(out: str | Path) -> None:
    """InputError unless sspsim may write the figures folder of ``out``: absent, empty, marked as
    sspsim's, or holding only figure files beside a report ``out`` that sspsim wrote (an earlier
    sspsim's folder, from before it marked its folders)."""
    out = Path(out)
    folder = figures_folder(out)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise InputError("-o", str(out), f"{folder} exists and is not a folder (the figures go there)")
    if read_marker(folder) is not None:
        return
    if is_sspsim_file(out) and all(p.is_file() and FIGURE_FILE.match(p.name) for p in folder.iterdir()):
        return
    raise InputError("-o", str(out), f"{folder} (where the figures go) exists and was not created by sspsim "
                     f"(no {MARKER} marker); sspsim never writes into it: choose another -o")


def _prepare_figures_folder(folder: Path, out: Path) -> None:
    """Mark ``folder`` as sspsim's and remove the figure files a previous build wrote, nothing else."""
    if folder.is_dir():
        for f in folder.iterdir():
            if f.is_file() and FIGURE_FILE.match(f.name):
                f.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    write_marker(folder, "report-figures", report=out.name)


def _version() -> str:
    from sspsim import __version__

    return __version__


# -- sections --------------------------------------------------------------------------------------

Section = tuple[str | None, str | None]


def _what(text: str) -> str:
    return f'<p class="what">{esc(text)}</p>'


def _runs_section(sources: list[D.Source], entries: list[D.RunEntry]) -> str:
    rows = []
    for e in entries:
        s = e.summary
        rows.append([e.label, str(e.path), e.backend, e.problem, e.P, D.staleness_text(e.s), e.policy,
                     D.fmt(e.clocks), D.fmt(s.get("time_per_clock")),
                     "\u2014" if s.get("wait_fraction") is None else f"{100 * float(s['wait_fraction']):.1f} %",
                     D.fmt(s.get("mean_staleness")), D.fmt(s.get("final_objective")), D.fmt(s.get("time_to_target")),
                     e.meta.get("status", "complete")])
    sweeps = [s for s in sources if s.kind == "sweep"]
    text = _what("Every run in this report, labelled by the config keys that tell it apart; the figures use these labels.")
    if sweeps:
        text += _what("Sweep directories expanded: " + "; ".join(f"{s.path} ({len(s.runs)} runs)" for s in sweeps) + ".")
    header = ["label", "directory", "backend", "problem", "P", "s", "read policy", "clocks", "time/clock",
              "waiting", "mean staleness", "final objective", "time to target", "status"]
    num = ["", "", "", "", "num", "num", "", "num", "num", "num", "num", "num", "num", ""]
    return text + table(header, rows, classes=num)


def _objective_section(entries: list[D.RunEntry], sink: FigureSink, x: str, styles: F.Styles) -> Section:
    df = D.evals_long(entries)
    if x == "updates" and "updates" in df.columns:
        df = df.dropna(subset=["updates"])
    if df.empty:
        return None, "no run has an objective in evals.csv (problem.kind = 'none', or no evaluations)"
    if x == "time":
        what = ("The full training objective (evals.csv) against wall time of the run (simulated seconds for "
                "sim runs, wall clock for real ones), one line per run, each run in its own colour and line style "
                "(beside real runs, simulated ones are dashed and real ones solid); log scale when the objective "
                "is positive, the target objective ([run] target) dotted.")
    else:
        what = ("The same objective against the number of updates the server had applied: this separates "
                "statistical efficiency (progress per update) from hardware efficiency (updates per second); "
                "curves for small s should nearly overlap.")
    fig = F.objective_figure(df, x=x, styles=styles)
    return _what(what) + sink.add(fig, f"objective-{x}", f"Objective against {'time' if x == 'time' else 'updates applied'}."), None


def _staleness_section(entries: list[D.RunEntry], sink: FigureSink, styles: F.Styles) -> Section:
    counts = D.staleness_counts(entries)
    if counts.empty:
        return None, "no run has a trace.csv or a staleness histogram"
    what = ("How stale each run's reads were: clock staleness (c - 1 - visible clock, never above s under SSP) and "
            "update staleness (updates committed before this one that its read missed, the delay of "
            "asynchronous-SGD theory); the dashed line is the mean.  Each panel has its own axes.")
    body = _what(what) + sink.add(F.staleness_figure(counts, styles), "staleness", "Staleness histograms per run (fraction of reads).")
    rows = []
    for label, g in counts.groupby("label", sort=False):
        c = g[g["measure"] == "clock"]
        u = g[g["measure"] == "update"]
        rows.append([label, _mean(c), int(c["value"].max()) if len(c) else None, _mean(u),
                     int(u["value"].max()) if len(u) else None])
    body += table(["run", "mean clock staleness", "max", "mean update staleness", "max"],
                  [[r[0], *map(D.fmt, r[1:])] for r in rows], classes=["", "num", "num", "num", "num"])
    return body, None


def _mean(g: pd.DataFrame) -> float | None:
    if g.empty:
        return None
    return float((g["value"] * g["count"]).sum() / g["count"].sum())


def _time_split_section(entries: list[D.RunEntry], sink: FigureSink) -> Section:
    split = D.time_split(entries)
    if split.empty:
        return None, "no run has per-iteration times (trace.csv) or per-worker totals"
    slow = D.stragglers(split)
    named = {lab: ws for lab, ws in slow.items() if ws}
    what = ("Each worker's time split into compute, waiting at the SSP gate, and communication "
            "(everything else: pull, push and the server's queue, i.e. the sum of commit - start - compute "
            "plus start - read over its iterations). Stragglers are workers whose mean compute time is more "
            f"than {D.STRAGGLER_FACTOR}x the median worker's.")
    body = _what(what) + sink.add(F.time_split_figure(split, slow), "time-split", "Per-worker time: compute, gate wait, communication.")
    if named:
        body += "<p><strong>Stragglers:</strong> " + "; ".join(
            esc(f"{lab}: " + ", ".join(f"worker {w} ({r:.2f}x the median worker's compute)" for w, r in ws))
            for lab, ws in named.items()) + ".</p>"
    else:
        body += note("No stragglers: no worker's mean compute time is above 1.5x the median worker's.")
    tot = split.groupby("label", sort=False)[["compute", "wait", "communication"]].sum()
    share = tot.div(tot.sum(axis=1).replace(0, math.nan), axis=0)
    rows = [[lab, *(f"{100 * share.loc[lab, c]:.1f} %" if pd.notna(share.loc[lab, c]) else "\u2014"
                    for c in ("compute", "wait", "communication")),
             ", ".join(f"w{w}" for w, _ in slow.get(lab, [])) or "none"] for lab in tot.index]
    body += table(["run", "compute", "waiting at the gate", "communication", "stragglers"], rows,
                  classes=["", "num", "num", "num", ""])
    return body, None


def _layers_section(entries: list[D.RunEntry], sink: FigureSink, styles: F.Styles) -> Section:
    df = D.layers_long(entries)
    if df.empty:
        return None, "no layered model (evals.csv has no grad_norm_<layer> / weight_norm_<layer> columns)"
    what = ("For layered models (mlp, timit_like): each layer's full-gradient norm (log scale) and weight norm "
            "against time, from evals.csv, one line per run. Layerwise convergence shows as every layer's "
            "gradient norm falling.")
    fig = F.layers_figure(df, x="time", styles=styles)
    return _what(what) + sink.add(fig, "layers", "Per-layer gradient and weight norms against time."), None


def _speedup_section(entries: list[D.RunEntry], sink: FigureSink) -> Section:
    if len({e.P for e in entries}) < 2:
        return None, "all runs have the same workers.count"
    tab = D.speedup_table(entries)
    if tab.empty:
        return None, ("no experiment has a P = 1 run and a larger-P run that both reached the target objective "
                      "(time_to_target in run.json; set [run] target)")
    what = ("speedup(P) = time to the target objective with one worker / with P workers, per staleness bound; "
            "the dashed line is ideal linear speedup (speedup = P). Seeds of one cell are combined by their median.")
    body = _what(what) + sink.add(F.speedup_figure(tab), "speedup", "Speedup in time to target against the number of workers.")
    rows = [[r.problem, r.backend, r.staleness, r.policy, r.P, D.fmt(r.time_to_target), D.fmt(r.speedup, 3),
             D.fmt(r.speedup / r.P, 3)] for r in tab.itertuples()]
    body += table(["problem", "backend", "s", "read policy", "P", "time to target", "speedup", "efficiency (speedup/P)"],
                  rows, classes=["", "", "num", "", "num", "num", "num", "num"])
    over = tab[tab["speedup"] > tab["P"] * 1.1]
    if len(over):
        body += note("Superlinear speedup (above 1.1 P) in " + ", ".join(
            f"{r.problem} {r.staleness} P={r.P}" for r in over.itertuples())
            + ": more workers apply more updates per clock, and the target can be reached in fewer steps per "
              "worker; if the time model is the question, compare updates to target as well.")
    return body, None


def _fidelity_limits(real: D.RunEntry) -> str:
    """What limits the prediction, measured on the real run: processes per core, how much of an
    iteration is real computation (which contends for the cores), the server's time per push."""
    run = real.run
    ranks = run.meta.get("hardware", {}).get("ranks") or []
    cores = max((r.get("cpus") or 0 for r in ranks), default=0)
    trace = run.trace
    parts = []
    if ranks and cores:
        parts.append(f"{len(ranks)} processes shared {cores} cores")
    if "real_compute_time" in trace.columns and trace.compute_time.mean() > 0:
        share = float(trace.real_compute_time.mean() / trace.compute_time.mean())
        parts.append(f"real computation was {100 * share:.0f} % of the compute time (the rest injected delay, "
                     "which uses no CPU)")
    busy = (run.meta.get("server") or {}).get("busy_per_push")
    if busy:
        parts.append(f"the server spent {1e3 * busy:.2f} ms per push, {100 * busy / run.summary['mean_iteration_time']:.1f} % "
                     "of an iteration, serially")
    text = ("What limits the fidelity: " + "; ".join(parts) + ". The simulator models the measured computation, "
            "the message cost and the server's time per push (a FIFO queue); it does not model CPU contention beyond "
            "what the calibration profile saw, so predictions degrade when computation dominates on fewer cores than "
            "processes, and at sub-millisecond iterations, where scheduler and timer noise are of the order of an "
            "iteration.") if parts else ""
    return _what(text) if text else ""


def _overlay_section(entries: list[D.RunEntry], sink: FigureSink, styles: F.Styles,
                     chosen: list[tuple[D.RunEntry, D.RunEntry]] | None) -> Section:
    reals = [e for e in entries if e.backend == "real"]
    if not reals:
        return None, "no real run (backend = \"real\") among the runs"
    pairs = chosen if chosen is not None else D.pair_sim_real(entries)
    if not pairs:
        return None, ("no simulated run of the same experiment as a real run (same workers.count, staleness, "
                      "read_policy, clocks and problem)")
    from sspsim.comparison import EXACT_TITLE, calibrated, compare_runs

    frames = []
    tables = []
    header = ["metric", "predicted (sim)", "measured (real)", "error"]
    classes = ["", "num", "num", "num"]
    for sim, real in pairs:
        name = f"{sim.label} against {real.label}"
        for e in (sim, real):
            ev = e.evals()
            if ev is not None and "objective" in ev.columns:
                frames.append(pd.DataFrame({"pair": name, "label": e.label, "backend": e.backend, "time": ev["time"],
                                            "objective": ev["objective"], "target": D.target(e)}))
        try:
            comp = compare_runs(sim.path, real.path)
        except InputError as exc:
            tables.append(f"<h3>{esc(name)}</h3>" + note(f"compare_runs refused this pair: {exc}"))
            continue
        how = "calibrated (its config has a [calibration] table)" if calibrated(sim.config) else "not calibrated"
        text = (_what(f"sspsim compare {sim.path} {real.path}: simulated {how}.")
                + f'<p class="headline">{esc(comp.headline)}</p>'
                + table(header, [_comparison_row(r) for r in comp.rows()], classes=classes))
        exact = comp.rows(by_construction=True)
        if exact:
            text += _what(EXACT_TITLE[0].upper() + EXACT_TITLE[1:] + ":") + table(
                header, [_comparison_row(r) for r in exact], classes=classes)
        tables.append(f"<h3>{esc(name)}</h3>" + text + _fidelity_limits(real))
    how = ("Each real run is paired with its prediction, the simulated run of the same experiment (same workers, "
           "staleness, read policy, clocks and problem) that sspsim compare should be given: a calibrated one "
           "(its config has a [calibration] table) first." if chosen is None else "The pairs are those chosen with --pair.")
    what = (f"{how} The prediction (dashed) is drawn over the measurement (solid), each run in its colour, and each "
            "table is what sspsim compare prints for its pair: the largest timing error as the headline, every "
            "metric's error, and the metrics equal by construction apart.")
    body = _what(what)
    if frames:
        body += sink.add(F.overlay_figure(pd.concat(frames, ignore_index=True), styles), "predicted-vs-measured",
                         "Objective against time: predicted (sim, dashed) and measured (real, solid).")
    else:
        body += note("Neither run of any pair has an objective in evals.csv; only the metrics are compared.")
    return body + "\n".join(tables), None


def _comparison_row(row: tuple[str, float | None, float | None, str | None]) -> list[str]:
    label, predicted, measured, error = row
    return [label, D.fmt(predicted), D.fmt(measured), "\u2014" if error is None else error]


# -- verdicts ----------------------------------------------------------------------------------------

def _verdicts_section(sources: list[D.Source], entries: list[D.RunEntry]) -> Section:
    from sspsim.proofs_check import CATALOGUE, RunData, SweepData, check_evidence
    from sspsim.proofs_check.runner import check_runs

    by_path = {str(e.path): e for e in entries}
    read = {e.path.resolve(): e.run for e in entries}
    per_run: dict[str, list[Any]] = {}
    groups: list[tuple[str, list[Any]]] = []
    problems: list[str] = []
    done: set[Path] = set()
    for src in sources:
        if src.kind == "run" and src.path.resolve() in done:
            continue
        try:
            verdicts = check_runs(src.path, [read[p.resolve()] for p in src.runs])
        except InputError as exc:
            problems.append(f"{src.path}: {exc}")
            continue
        for v in verdicts:
            if src.kind == "sweep" and v.run == str(src.path):
                continue
            per_run.setdefault(str(v.run), []).append(v)
        if src.kind == "sweep":
            groups.append((f"sweep {src.path} ({len(src.runs)} runs)", [v for v in verdicts if v.run == str(src.path)]))
        done.update(p.resolve() for p in src.runs)
    loose = [s.path for s in sources if s.kind == "run"]
    if len(loose) >= 2:
        try:
            evidence = SweepData(Path("runs given"), [RunData.from_run(read[p.resolve()]) for p in loose])
            sweep_theorems = tuple(t for t in CATALOGUE if t.scope == "sweep")
            groups.append((f"the {len(loose)} run directories given, as one group",
                           check_evidence(evidence, sweep_theorems)))
        except InputError as exc:
            problems.append(f"group of the runs given: {exc}")
    if not per_run and not groups:
        return None, "the checks could not read any run: " + "; ".join(problems)

    what = ("Each theorem of proofs_check on each run: the measured value beside the bound, ratio = measured / "
            "bound (at most 1 means an upper bound held with that much room), the source and its evidence tag "
            "([V] verified, [R] recalled, [D] derived, [X] reconstruction). not_applicable names the unmet premise; "
            "it never counts as holds. Sweep-level theorems (over groups of runs) come last.")
    body = [_what(what)]
    overview = []
    for run, vs in per_run.items():
        label = by_path[run].label if run in by_path else run
        overview.append([label, _count(vs, "holds"), _count(vs, "violated"), _count(vs, "not_applicable")])
    for name, vs in groups:
        overview.append([name, _count(vs, "holds"), _count(vs, "violated"), _count(vs, "not_applicable")])
    body.append(table(["run / group", "holds", "violated", "not applicable"], overview,
                      classes=["", "num", "num", "num"], row_classes=["violated" if r[2] else "" for r in overview]))
    for p in problems:
        body.append(note(f"Could not check {p}"))
    for run, vs in per_run.items():
        label = by_path[run].label if run in by_path else run
        body.append(_verdict_block(f"{label} ({run})", vs))
    for name, vs in groups:
        body.append(_verdict_block(f"Sweep-level: {name}", vs, open_=True))
    return "\n".join(body), None


def _count(vs: list[Any], outcome: str) -> int:
    return sum(1 for v in vs if v.outcome.value == outcome)


def _reference(reference: str, tag: str) -> str:
    """A verdict's reference with its evidence tag once (``Reference.__str__`` already ends with it)."""
    return reference if reference.rstrip().endswith(f"[{tag}]") else f"{reference} [{tag}]"


def _verdict_block(title: str, vs: list[Any], open_: bool = False) -> str:
    rows, classes = [], []
    for v in vs:
        rows.append([esc(v.theorem), esc(v.outcome.value), esc(D.fmt(v.measured)), esc(D.fmt(v.bound)),
                     esc(D.fmt(v.ratio, 3)), esc(_reference(v.reference, v.tag)), esc(v.detail)])
        classes.append(v.outcome.value)
    bad = _count(vs, "violated")
    summary = (f"{title}: {_count(vs, 'holds')} hold, {bad} violated, {_count(vs, 'not_applicable')} not applicable")
    tab = table(["theorem", "outcome", "measured", "bound", "ratio", "reference [tag]", "detail"], rows,
                classes=["", "outcome", "num", "num", "num", "", ""], row_classes=classes, raw=True)
    opened = " open" if bad or open_ else ""
    return f'<details class="verdicts"{opened}><summary>{esc(summary)}</summary>\n{tab}\n</details>'
