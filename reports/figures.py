"""The report's figures: one function per figure, pandas in, a matplotlib Figure out.

This module (with the rest of ``reports``) is the only place that imports seaborn and
matplotlib.  Figures are built on the Agg canvas directly (``matplotlib.figure.Figure``, not
pyplot), so nothing touches the global backend or leaks open figures, and the same data always
give the same PNG, SVG and PDF bytes (:func:`figure_bytes` writes no timestamp).

Runs are told apart by colour *and* line style (:func:`run_styles`): colours from the Okabe-Ito
palette (categorical, readable with colour-blindness), and, beside real runs, simulated runs
dashed and real runs solid; otherwise a line-style cycle that is out of step with the colours.
The objective is drawn on a log scale when it is positive, with the target objective marked.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sspsim.outdir import FILE_MARK

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

__all__ = [
    "FORMATS",
    "PALETTE",
    "RunStyle",
    "Styles",
    "categorical",
    "cost_of_staleness_figure",
    "figure_bytes",
    "final_objective_figure",
    "layers_figure",
    "objective_figure",
    "overlay_figure",
    "png_bytes",
    "run_styles",
    "speedup_figure",
    "staleness_figure",
    "time_split_figure",
]

STYLE: dict[RcKeyType, Any] = {
    **sns.axes_style("whitegrid"),
    **sns.plotting_context("paper", font_scale=1.1),
    "font.family": "DejaVu Sans",
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "axes.titlesize": 10,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "pdf.fonttype": 42,  # TrueType in the PDF, which journals accept (not Type 3)
    "svg.hashsalt": "sspsim",  # the same SVG ids on every build
}
DPI = 100
MANY = 12  # above this many runs in one panel, legends show staleness levels instead of run labels
LINESTYLES = ("-", "--", ":", "-.")
SIM_LINESTYLES = ("--", ":", "-.")
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000")
"""Okabe & Ito's categorical palette (without its yellow, too pale on white)."""
FORMATS = ("png", "svg", "pdf")
"""Every figure is written in each of these formats."""
SPLIT_COLORS = {"compute": "#4c72b0", "wait": "#dd8452", "communication": "#55a868"}
SPLIT_NAMES = {"compute": "compute", "wait": "waiting at the gate", "communication": "communication"}

F = TypeVar("F", bound=Callable[..., Figure])


def _styled(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": FILE_MARK},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": FILE_MARK, "Producer": None},
}


def figure_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """The figure as PNG, SVG or PDF bytes, deterministic for the same figure (no timestamp).

    The PNG is cropped to its contents; the vector files keep the constrained layout's page,
    which saves a drawing pass (a quarter of their time)."""
    buf = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format=fmt, dpi=DPI, bbox_inches="tight" if fmt == "png" else None, metadata=_METADATA[fmt])
    return buf.getvalue()


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes (:func:`figure_bytes`)."""
    return figure_bytes(fig, "png")


@dataclass(frozen=True)
class RunStyle:
    """How one run is drawn in every figure of a report."""

    color: str
    ls: str


Styles = Mapping[str, RunStyle]
"""A run label -> how the run is drawn."""


def run_styles(runs: Iterable[tuple[str, str]]) -> dict[str, RunStyle]:
    """(label, backend) of each run, in report order -> its colour and line style.

    Colours cycle through :data:`PALETTE`.  When real and simulated runs are both present, real
    runs are solid and simulated ones dashed (then dotted, dash-dotted); otherwise the line style
    cycles too, one step out of phase after each round of colours, so no two of the first
    ``len(PALETTE) * len(LINESTYLES)`` runs look alike.
    """
    runs = list(dict.fromkeys(runs))
    mixed = len({b for _, b in runs} & {"sim", "real"}) == 2
    out: dict[str, RunStyle] = {}
    n_sim = 0
    for i, (label, backend) in enumerate(runs):
        color = PALETTE[i % len(PALETTE)]
        if mixed:
            ls = "-" if backend != "sim" else SIM_LINESTYLES[n_sim % len(SIM_LINESTYLES)]
            n_sim += backend == "sim"
        else:
            ls = LINESTYLES[(i % len(PALETTE) + i // len(PALETTE)) % len(LINESTYLES)]
        out.setdefault(label, RunStyle(color, ls))
    return out


def _styles_of(df: pd.DataFrame, styles: Mapping[str, RunStyle] | None) -> Mapping[str, RunStyle]:
    if styles is not None and set(df["label"]) <= set(styles):
        return styles
    return run_styles(zip(df["label"], df["backend"] if "backend" in df.columns else ["?"] * len(df)))


def _objective_scale(ax: Any, values: pd.Series, targets: Iterable[float]) -> None:
    """Log scale when every objective is positive; each finite target drawn as a labelled line."""
    marks = sorted({float(t) for t in targets if t is not None and math.isfinite(float(t))})
    if len(values) and (values > 0).all() and all(t > 0 for t in marks):
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    for t in marks:
        ax.axhline(t, color="0.25", lw=0.9, ls=(0, (1, 1.5)), zorder=1)
        ax.annotate(f"target {t:g}", (1.0, t), xycoords=("axes fraction", "data"), xytext=(-3, 2),
                    textcoords="offset points", ha="right", va="bottom", fontsize=7.5, color="0.25")


def _figure(nrows: int, ncols: int, w: float, h: float, **kw: Any) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(w * ncols, h * nrows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _hide_unused(axes: np.ndarray, used: int) -> None:
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def _s_key(text: str) -> float:
    v = text.split("=", 1)[-1]
    return math.inf if v == "inf" else float(v)


def categorical(values: Iterable[Any]) -> dict[Any, str]:
    """Each value, in the order given (duplicates dropped), -> a colour of :data:`PALETTE`."""
    return {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(dict.fromkeys(values))}


def staleness_palette(levels: Iterable[str]) -> dict[str, Any]:
    """Staleness level text ("s=3") -> a categorical colour, in order from BSP to ASP."""
    return categorical(sorted(set(levels), key=_s_key))


def _palette(df: pd.DataFrame, hue: str) -> dict[Any, Any]:
    if hue == "staleness":
        return staleness_palette(df["staleness"])
    return categorical(sorted(set(df[hue])))


def _draw_runs(ax: Any, df: pd.DataFrame, x: str, y: str, palette: dict[Any, Any], styles: dict[Any, str],
               *, hue: str = "staleness", style_of: str = "P", lw: float = 1.6,
               per_run: Mapping[str, RunStyle] | None = None) -> int:
    """One line per run (df rows grouped by label, in order of first appearance): coloured by ``hue``
    and styled by ``style_of``, or, given ``per_run``, in each run's own colour and line style."""
    n = 0
    for label, g in df.groupby("label", sort=False):
        g = g.sort_values(x)
        if per_run is not None:
            color, ls = per_run[str(label)].color, per_run[str(label)].ls
        else:
            color, ls = palette[g[hue].iloc[0]], styles.get(g[style_of].iloc[0], "-")
        ax.plot(g[x].to_numpy(), g[y].to_numpy(), color=color, ls=ls, lw=lw, label=str(label))
        n += 1
    return n


def _legend(ax: Any, df: pd.DataFrame, palette: dict[Any, Any], styles: dict[Any, str], *, per_run: bool,
            hue: str = "staleness", style_name: str = "P", loc: str = "best") -> None:
    if per_run:
        ax.legend(loc=loc, frameon=True, framealpha=0.85)
        return
    levels = sorted(set(df[hue]), key=_s_key) if hue == "staleness" else sorted(set(df[hue]))
    handles = [Line2D([], [], color=palette[h], lw=2, label=h if hue == "staleness" else f"{hue}={h}") for h in levels]
    if len(styles) > 1:
        handles += [Line2D([], [], color="0.3", ls=ls, label=k if style_name == "staleness" else f"{style_name}={k}")
                    for k, ls in styles.items()]
    ax.legend(handles=handles, loc=loc, frameon=True, framealpha=0.85)


def _styles(values: Iterable[Any]) -> dict[Any, str]:
    levels = sorted(set(values), key=lambda v: _s_key(v) if isinstance(v, str) else float(v))
    return {v: LINESTYLES[i % len(LINESTYLES)] for i, v in enumerate(levels)}


# -- (a), (b) objective ----------------------------------------------------------------------------

@_styled
def objective_figure(evals: pd.DataFrame, x: str = "time", hue: str = "staleness",
                     styles: Mapping[str, RunStyle] | None = None) -> Figure:
    """Full objective against ``x`` ("time" or "updates"), one line per run, on a log scale when it is
    positive, with the target objective marked.

    ``evals``: label, staleness ("s=3"), P, problem, backend, time, updates, objective, target (see
    sspsim.reports.data.evals_long).  With ``hue`` "staleness" and up to MANY runs, each run has its own
    colour and line style (``styles``, default :func:`run_styles` in order of appearance).  With more
    runs, colour tells the staleness apart and line style P, one panel per (problem, P).  With ``hue``
    "P", colour tells P apart and line style s.  One panel per problem.
    """
    problems = sorted(set(evals["problem"]))
    many = evals["label"].nunique() > MANY and hue == "staleness"
    Ps = sorted(set(evals["P"])) if many else [None]
    fig, axes = _figure(len(problems), len(Ps), 5.2 if len(Ps) == 1 else 3.6, 3.4)
    palette = _palette(evals, hue)
    style_of = "P" if hue == "staleness" else "staleness"
    per_run = _styles_of(evals, styles) if hue == "staleness" and not many else None
    line_styles = _styles(evals[style_of]) if not many and per_run is None else {}
    for i, problem in enumerate(problems):
        for j, P in enumerate(Ps):
            ax = axes[i, j]
            sub = evals[(evals["problem"] == problem) & ((evals["P"] == P) if P is not None else True)]
            n = _draw_runs(ax, sub, x, "objective", palette, line_styles, hue=hue, style_of=style_of, per_run=per_run)
            _objective_scale(ax, sub["objective"], sub["target"] if "target" in sub.columns else ())
            ax.set_title(problem if P is None else f"{problem}, P={P}")
            ax.set_xlabel("time (s)" if x == "time" else "updates applied")
            ax.set_ylabel("objective" + (" (log scale)" if ax.get_yscale() == "log" else ""))
            if n:
                _legend(ax, sub, palette, line_styles, per_run=n <= MANY, hue=hue, style_name=style_of)
    return fig


# -- (c) staleness ------------------------------------------------------------------------------------

@_styled
def staleness_figure(counts: pd.DataFrame, styles: Mapping[str, RunStyle] | None = None) -> Figure:
    """Staleness histograms per run: clock staleness and update staleness (fraction of reads).

    ``counts``: label, staleness, measure ("clock" | "update"), value, fraction.  Up to MANY runs:
    one row of two bar panels per run, in the run's colour (``styles``), each panel with its own
    axes (a run whose reads are rarely stale is not flattened by another's scale).  More: two
    heatmaps, one row per run.
    """
    labels = list(dict.fromkeys(counts["label"]))
    measures = [("clock", "clock staleness (clocks)"), ("update", "update staleness (updates missed)")]
    if len(labels) > MANY:
        return _staleness_heatmaps(counts, labels, measures)
    per_run = _styles_of(counts, styles)
    fig, axes = _figure(len(labels), 2, 3.4, 1.45)
    for i, label in enumerate(labels):
        for j, (measure, name) in enumerate(measures):
            ax = axes[i, j]
            g = counts[(counts["label"] == label) & (counts["measure"] == measure)].sort_values("value")
            if len(g) == 0:
                ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, color="0.4")
                ax.set_xticks([])
            else:
                ax.bar(g["value"].to_numpy(), g["fraction"].to_numpy(), width=0.85,
                       color=per_run[label].color, edgecolor="none")
                top = int(g["value"].max())
                ax.set_xlim(-0.7, top + 0.7)
                if top <= 10:
                    ax.set_xticks(range(top + 1))
                else:
                    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
                mean = float(np.average(g["value"], weights=g["fraction"]))
                ax.axvline(mean, color="0.2", lw=1, ls="--")
                ax.text(0.98, 0.9, f"mean {mean:.3g}", ha="right", va="top", transform=ax.transAxes, fontsize=8)
                ax.set_ylim(0, min(1.0, float(g["fraction"].max())) * 1.4)
            ax.set_title(f"{label}: {name}", fontsize=8)
    fig.supylabel("fraction of reads", fontsize=9)
    return fig


def _staleness_heatmaps(counts: pd.DataFrame, labels: list[str], measures: list[tuple[str, str]]) -> Figure:
    fig, axes = _figure(1, 2, 6.0, max(3.0, 0.22 * len(labels) + 1.2))
    for j, (measure, name) in enumerate(measures):
        ax = axes[0, j]
        g = counts[counts["measure"] == measure]
        if len(g) == 0:
            ax.set_visible(False)
            continue
        top = int(g["value"].max())
        bins = np.arange(top + 2) if top < 30 else np.unique(np.linspace(0, top + 1, 31).astype(int))
        mat = np.zeros((len(labels), len(bins) - 1))
        for i, label in enumerate(labels):
            r = g[g["label"] == label]
            if len(r):
                mat[i], _ = np.histogram(r["value"], bins=bins, weights=r["fraction"])
        xt = [str(b) if top < 30 else f"{b}-{e - 1}" for b, e in itertools.pairwise(bins)]
        sns.heatmap(pd.DataFrame(mat, index=labels, columns=xt), ax=ax, cmap="rocket_r", vmin=0, vmax=1,
                    cbar=j == 1, cbar_kws={"label": "fraction of reads"}, linewidths=0)
        ax.set_title(name)
        ax.set_xlabel("staleness")
        ax.tick_params(axis="y", labelsize=7)
        if j:
            ax.set_yticklabels([])
    return fig


# -- (d) per-worker time ------------------------------------------------------------------------------

@_styled
def time_split_figure(split: pd.DataFrame, stragglers: dict[str, list[tuple[int, float]]]) -> Figure:
    """Where each worker's time went: compute, waiting at the gate, communication (stacked bars).

    ``split``: label, worker, compute, wait, communication (seconds).  Stragglers (mean compute
    above 1.5x the median worker's) are named in each panel's title and their bars are hatched.
    Up to MANY runs: one panel per run, one bar per worker.  More: one bar per run (fractions of
    all workers' time), stragglers named beside the label.
    """
    labels = list(dict.fromkeys(split["label"]))
    parts = ["compute", "wait", "communication"]
    handles = [Patch(color=SPLIT_COLORS[p], label=SPLIT_NAMES[p]) for p in parts]
    named = {lab: ws for lab, ws in stragglers.items() if ws}
    if len(labels) > MANY:
        fig, axes = _figure(1, 1, 8.0, max(3.0, 0.24 * len(labels) + 1.0))
        ax = axes[0, 0]
        tot = split.groupby("label", sort=False)[parts].sum().reindex(labels)
        frac = tot.div(tot.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
        left = np.zeros(len(labels))
        y = np.arange(len(labels))
        for p in parts:
            ax.barh(y, frac[p].to_numpy(), left=left, color=SPLIT_COLORS[p], height=0.8)
            left += frac[p].to_numpy()
        ticks = [lab + (" \u2014 stragglers: " + ", ".join(f"w{w}" for w, _ in named[lab]) if lab in named else "")
                 for lab in labels]
        ax.set_yticks(y, ticks, fontsize=7)
        for t, lab in zip(ax.get_yticklabels(), labels):
            if lab in named:
                t.set_color("#c44e52")
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("fraction of all workers' time")
        ax.legend(handles=handles, loc="lower right", framealpha=0.9)
        fig.suptitle(_straggler_title(named), fontsize=10)
        return fig
    ncols = 1 if len(labels) == 1 else 2 if len(labels) <= 4 else 3
    nrows = math.ceil(len(labels) / ncols)
    maxP = int(split["worker"].max()) + 1 if len(split) else 1
    fig, axes = _figure(nrows, ncols, 4.4, max(1.6, 0.26 * maxP + 1.0))
    for ax, label in zip(axes.flat, labels):
        g = split[split["label"] == label].sort_values("worker")
        y = g["worker"].to_numpy()
        left = np.zeros(len(g))
        slow = {w for w, _ in named.get(label, [])}
        for p in parts:
            v = g[p].to_numpy()
            bars = ax.barh(y, v, left=left, color=SPLIT_COLORS[p], height=0.8)
            for w, bar in zip(y, bars):
                if w in slow:
                    bar.set_hatch("//")
                    bar.set_edgecolor("#c44e52")
            left += v
        ax.set_yticks(y, [f"w{w}" for w in y], fontsize=7)
        for t, w in zip(ax.get_yticklabels(), y):
            if w in slow:
                t.set_color("#c44e52")
                t.set_fontweight("bold")
        ax.invert_yaxis()
        ax.set_xlabel("seconds")
        title = label
        if slow:
            title += "\nstragglers: " + ", ".join(f"worker {w} ({r:.1f}x median compute)" for w, r in named[label])
        ax.set_title(title, fontsize=8.5, color="#c44e52" if slow else "black")
    _hide_unused(axes, len(labels))
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    fig.suptitle(_straggler_title(named), fontsize=10)
    return fig


def _straggler_title(named: dict[str, list[tuple[int, float]]]) -> str:
    """The figure's title; the stragglers themselves are named once, where their bars are."""
    if not named:
        return "per-worker time: no stragglers (no worker's mean compute above 1.5x the median worker's)"
    return "per-worker time; stragglers (mean compute > 1.5x the median worker's) named in red"


# -- (e) per-layer -------------------------------------------------------------------------------------

@_styled
def layers_figure(layers: pd.DataFrame, x: str = "time", styles: Mapping[str, RunStyle] | None = None) -> Figure:
    """Per-layer full-gradient norm (log scale) and weight norm against ``x``, one line per run.

    ``layers``: label, staleness, P, problem, layer, time, updates, grad_norm, weight_norm.
    Columns: layers; rows: gradient norm then weight norm, for each problem.  Up to MANY runs, each
    run in its own colour and line style (``styles``); more, colour = staleness and line style = P.
    """
    problems = sorted(set(layers["problem"]))
    names = sorted(set(layers["layer"]), key=_natural)
    fig, axes = _figure(2 * len(problems), len(names), 3.4, 2.5)
    palette = staleness_palette(layers["staleness"])
    per_run = _styles_of(layers, styles) if layers["label"].nunique() <= MANY else None
    styles_p = _styles(layers["P"])
    for i, problem in enumerate(problems):
        for j, name in enumerate(names):
            sub = layers[(layers["problem"] == problem) & (layers["layer"] == name)]
            for r, (col, ylab) in enumerate((("grad_norm", "gradient norm"), ("weight_norm", "weight norm"))):
                ax = axes[2 * i + r, j]
                if len(sub) == 0:
                    ax.set_visible(False)
                    continue
                _draw_runs(ax, sub, x, col, palette, styles_p, lw=1.2, per_run=per_run)
                if col == "grad_norm" and (sub[col] > 0).all():
                    ax.set_yscale("log")
                ax.set_title(f"{problem}: {name}, {ylab}")
                ax.set_xlabel("time (s)" if x == "time" else "updates applied")
                ax.set_ylabel(ylab)
    found: dict[str, Any] = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            found.setdefault(lab, h)
    if len(found) > MANY:
        handles = [Line2D([], [], color=palette[h], lw=2, label=h) for h in sorted(set(layers["staleness"]), key=_s_key)]
        handles += [Line2D([], [], color="0.3", ls=ls, label=f"P={k}") for k, ls in styles_p.items()] if len(styles_p) > 1 else []
        found = {str(h.get_label()): h for h in handles}
    fig.legend(list(found.values()), list(found.keys()), loc="outside right upper", fontsize=7.5, frameon=False)
    return fig


def _natural(name: str) -> tuple[str, int]:
    head = name.rstrip("0123456789")
    tail = name[len(head):]
    return head, int(tail) if tail else -1


# -- (g) speedup ----------------------------------------------------------------------------------------

@_styled
def speedup_figure(table: pd.DataFrame, marks: Sequence[tuple[float, float, str]] = ()) -> Figure:
    """speedup(P) = time to target at P = 1 / at P, one line per staleness, with the ideal line speedup = P.

    ``table``: problem, staleness, P, speedup (reports.data.speedup_table); ``marks``: reference
    points (P, speedup, text) drawn as stars, e.g. a paper's reported speedup.
    """
    problems = sorted(set(table["problem"]))
    fig, axes = _figure(1, len(problems), 4.4, 3.6)
    palette = staleness_palette(table["staleness"])
    top = max([float(table["P"].max()), *[m[0] for m in marks]])
    for ax, problem in zip(axes.flat, problems):
        sub = table[table["problem"] == problem]
        ax.plot([1, top], [1, top], color="0.4", ls="--", lw=1, label="ideal (speedup = P)")
        for (stale, _), g in sub.groupby(["staleness", "group"], sort=False):
            g = g.sort_values("P")
            ax.plot(g["P"], g["speedup"], marker="o", color=palette[stale], lw=1.6,
                    label=stale if sub[sub["staleness"] == stale]["group"].nunique() == 1 else f"{stale} ({g['policy'].iloc[0]}, {g['backend'].iloc[0]})")
        for P, sp, text in marks:
            ax.plot([P], [sp], marker="*", ms=13, color="#c44e52", ls="none")
            ax.annotate(text, (P, sp), textcoords="offset points", xytext=(-6, 8), ha="right", fontsize=7.5,
                        color="#c44e52")
        ax.set_xlabel("workers P")
        ax.set_ylabel("speedup in time to target")
        ax.set_title(problem)
        ax.set_xlim(0.5, top + 0.5)
        ax.set_ylim(0, max(top, float(sub["speedup"].max())) * 1.12)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), loc="upper left", framealpha=0.9)
    return fig


# -- (h) predicted against measured -------------------------------------------------------------------

@_styled
def overlay_figure(pairs: pd.DataFrame, styles: Mapping[str, RunStyle] | None = None) -> Figure:
    """Objective against time, predicted (sim) over measured (real), one panel per (sim, real) pair,
    each run in its colour and line style (``styles``: simulated dashed, real solid), on a log scale
    when positive, with the target marked.

    ``pairs``: pair (panel title), label, backend ("sim" | "real"), time, objective, target.
    """
    names = list(dict.fromkeys(pairs["pair"]))
    ncols = min(2, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = _figure(nrows, ncols, 4.8, 3.3)
    per_run = _styles_of(pairs, styles)
    for ax, name in zip(axes.flat, names):
        sub = pairs[pairs["pair"] == name]
        for backend, what in (("real", "measured"), ("sim", "predicted")):
            g = sub[sub["backend"] == backend].sort_values("time")
            if len(g):
                style = per_run[str(g["label"].iloc[0])]
                ax.plot(g["time"], g["objective"], ls=style.ls, lw=1.8, color=style.color,
                        label=f"{what}: {g['label'].iloc[0]}")
        _objective_scale(ax, sub["objective"], sub["target"] if "target" in sub.columns else ())
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("objective" + (" (log scale)" if ax.get_yscale() == "log" else ""))
        ax.legend(loc="best")
    _hide_unused(axes, len(names))
    return fig


# -- the seed paper's sweep --------------------------------------------------------------------------------

@_styled
def final_objective_figure(cells: pd.DataFrame) -> Figure:
    """Final objective of every (P, s) cell, as a heatmap per problem, beside the serial run's.

    ``cells``: problem, P, staleness, final_objective (median over seeds), serial (the P = 1
    final objective of the problem, for the title).
    """
    problems = sorted(set(cells["problem"]))
    fig, axes = _figure(1, len(problems), 4.6, 3.2)
    for ax, problem in zip(axes.flat, problems):
        sub = cells[cells["problem"] == problem]
        mat = sub.pivot_table(index="P", columns="staleness", values="final_objective", aggfunc="median")
        mat = mat[sorted(mat.columns, key=_s_key)]
        sns.heatmap(mat, ax=ax, annot=True, fmt=".3g", cmap="mako_r", cbar_kws={"label": "final objective"},
                    annot_kws={"fontsize": 7.5})
        serial = sub["serial"].iloc[0]
        ax.set_title(f"{problem}: serial (P=1) final {serial:.3g}")
        ax.set_xlabel("staleness")
        ax.set_ylabel("workers P")
    return fig


@_styled
def cost_of_staleness_figure(cells: pd.DataFrame) -> Figure:
    """Updates applied before the objective first reached the target, against s, one line per P.

    ``cells``: problem, P, s (float), updates_to_target.  ASP (s = inf) is drawn at the right end.
    """
    problems = sorted(set(cells["problem"]))
    fig, axes = _figure(1, len(problems), 4.4, 3.3)
    Ps = sorted(set(cells["P"]))
    colors = categorical(Ps)
    for ax, problem in zip(axes.flat, problems):
        sub = cells[cells["problem"] == problem].copy()
        finite = sorted(v for v in set(sub["s"]) if math.isfinite(v))
        inf_at = (max(finite) + 2 if finite else 1)
        sub["x"] = [v if math.isfinite(v) else inf_at for v in sub["s"]]
        for P in Ps:
            g = sub[sub["P"] == P].sort_values("x")
            if len(g):
                ax.plot(g["x"], g["updates_to_target"], marker="o", color=colors[P], label=f"P={P}")
        xs = sorted(set(sub["x"]))
        ax.set_xticks(xs, ["inf" if x == inf_at and not math.isfinite(max(sub["s"])) else f"{x:g}" for x in xs])
        ax.set_xlabel("staleness bound s")
        ax.set_ylabel("updates to target")
        ax.set_title(problem)
        ax.legend(loc="best", framealpha=0.9)
    return fig
