"""``sspsim demo``: the whole workflow on the embedded default, in about a minute.

The embedded config (``sspsim/data/demo.toml``: the digits MLP, 16 workers, log-normal speeds
and transient 4x stragglers) is simulated three times, changing only the staleness bound
(0, 3, inf); every run is checked against the theorem catalogue; one HTML report puts it all
side by side.  The table shows what bounded staleness buys: time to the target objective, the
time per clock, the fraction of time workers wait at the gate, and the staleness the reads had.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from sspsim.config import Config, config_from_dict
from sspsim.ssp import INF

__all__ = ["VARIANTS", "add_parser", "demo_config", "run", "run_demo"]

VARIANTS: tuple[tuple[str, int | float], ...] = (("BSP", 0), ("SSP", 3), ("ASP", INF))


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``demo`` on an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser("demo", help="BSP vs SSP vs ASP on the digits MLP with variable speeds")
    p.add_argument("--out", type=Path, default=Path("sspsim-demo"), help="where the run directories go")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Exit 0: no theorem check violated; 1: one was."""
    return run_demo(args.out, quiet=args.quiet)


def demo_config() -> Config:
    """The embedded default config of the demo."""
    text = resources.files("sspsim").joinpath("data/demo.toml").read_text()
    return config_from_dict(tomllib.loads(text))


def run_demo(out: Path, *, quiet: bool = False) -> int:
    """Simulate the three variants into ``out/<name>`` and print the comparison table."""
    from sspsim.cli.console import interactive, print_table, progress_bar
    from sspsim.sim import simulate

    base = demo_config()
    rows = []
    runs = []
    for name, s in VARIANTS:
        config = base.replace(consistency=dataclasses.replace(base.consistency, staleness=s))
        with progress_bar(f"{name} (s = {s})", enabled=interactive() and not quiet) as progress:
            runs.append((name, s, simulate(config, out / name.lower(), progress=progress, force=True)))
    bsp_time = runs[0][2].summary["time_to_target"]
    for name, s, run in runs:
        m = run.summary
        ttt = m["time_to_target"]
        speedup = bsp_time / ttt if (ttt and bsp_time) else None
        acc = run.evals["accuracy"].iloc[-1] if "accuracy" in run.evals else None
        rows.append((
            name, "inf" if s == INF else s, ttt, None if speedup is None else f"{speedup:.2f}x", m["time_per_clock"],
            f"{100 * m['wait_fraction']:.1f} %", m["mean_staleness"], m["max_staleness"], m["final_objective"],
            None if acc is None else f"{100 * acc:.1f} %",
        ))
    from sspsim.proofs_check import check_path

    verdicts = [v for name, _ in VARIANTS for v in check_path(out / name.lower())]
    held = sum(v.outcome.value == "holds" for v in verdicts)
    violated = sum(v.violated for v in verdicts)
    report = None
    try:
        from sspsim.reports import build_report

        report = build_report([out / name.lower() for name, _ in VARIANTS], out / "report.html",
                              title="sspsim demo: BSP, SSP and ASP with transient stragglers")
    except ImportError:  # reports need the [reports] extra (seaborn)
        report = None
    if not quiet:
        b = base
        speed = b.workers.speed
        transient = b.workers.transient
        print_table(
            f"sspsim demo: {b.workers.count} workers train an MLP on the 8x8 digits, {b.run.clocks} clocks each",
            ("run", "s", f"time to {b.run.target:g}", "vs BSP", "time/clock", "waiting", "mean stale", "max stale",
             "final loss", "train acc"),
            rows,
            caption=(
                f"speeds: {speed.kind}, mean {speed.mean:g} s; transient slowdowns: probability {transient.probability:g} "
                f"per iteration, x{transient.factor:g} for {transient.duration} iterations; times in simulated seconds"
                if transient else f"speeds: {speed.kind}, mean {speed.mean:g} s; times in simulated seconds"
            ),
        )
        print(f"theorem checks: {held} hold, {violated} violated, {len(verdicts) - held - violated} not applicable "
              f"(sspsim check {out / 'ssp'})")
        print("run directories:")
        for name, _, run in runs:
            print(f"  {name}: {run.path}")
        print(f"report: {report}" if report else "report: not written (install the reports extra: pip install 'sspsim[reports]')")
    return 1 if violated else 0
