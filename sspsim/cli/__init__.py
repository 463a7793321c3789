"""The ``sspsim`` command line (DESIGN §Command line).

Bad input (config, trace file, command line) prints one line, ``sspsim: error: ...``, naming
the field, the value and the rule, and exits with 2.  Progress bars appear on a terminal only.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import tomllib
from pathlib import Path
from typing import NoReturn, Sequence

from sspsim.errors import MISSING, InputError

__all__ = ["main"]

EXIT_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"sspsim: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_INPUT)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sspsim", description="Stale Synchronous Parallel SGD: simulate, check, deploy, report.")
    p.add_argument("--version", action="version", version=f"sspsim {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set consistency.staleness=3 (repeatable)")
        q.add_argument("--seed", type=int, default=None, help="shorthand for --set run.seed=N")
        q.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no table")

    sim = sub.add_parser("simulate", help="simulate one config into a run directory")
    sim.add_argument("config", type=Path, help="TOML config (DESIGN §Config)")
    sim.add_argument("--out", type=Path, required=True, help="run directory to write")
    common(sim)

    sw = sub.add_parser("sweep", help="simulate the cartesian product of --grid values, in parallel")
    sw.add_argument("config", type=Path)
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="a key and its values, e.g. --grid consistency.staleness=0,3,inf (repeatable; "
                         "default: the config's [sweep] table)")
    sw.add_argument("--out", type=Path, required=True, help="sweep directory: one run directory per point")
    sw.add_argument("--jobs", "-j", type=int, default=1, help="processes to run in parallel (default 1)")
    common(sw)

    chk = sub.add_parser("check", help="theorem verdicts for a run directory or a sweep directory")
    chk.add_argument("dir", type=Path, nargs="?", help="a run directory, or a folder of run directories (a sweep)")
    chk.add_argument("--json", action="store_true", help="print the verdicts as a JSON list")
    chk.add_argument("--theorem", action="append", default=[], metavar="NAME",
                     help="check only this theorem (a name or a prefix such as ho2013; repeatable)")
    chk.add_argument("--list", action="store_true", help="list the catalogue and exit")

    dep = sub.add_parser("deploy", help="run the config for real: torchrun, one server and P worker processes")
    dep.add_argument("config", type=Path, nargs="?", help="TOML config (not needed with --resume)")
    dep.add_argument("--out", type=Path, help="run directory to write")
    dep.add_argument("--baseline", choices=("ddp",), help="train the same problem with DistributedDataParallel (BSP all-reduce)")
    dep.add_argument("--resume", type=Path, metavar="DIR", help="continue an incomplete run from DIR/checkpoint.pt")
    dep.add_argument("--print-command", action="store_true",
                     help="print the torchrun command of one node of a multi-node run and exit")
    dep.add_argument("--nnodes", type=int, default=1)
    dep.add_argument("--nproc-per-node", type=int, default=None)
    dep.add_argument("--rdzv-endpoint", default=None, metavar="HOST:PORT")
    common(dep)

    cal = sub.add_parser("calibrate", help="profile this machine with short real runs; write a calibrated simulator config")
    cal.add_argument("config", type=Path)
    cal.add_argument("--out", type=Path, required=True, help="the calibrated config to write (TOML)")
    cal.add_argument("--clocks", type=int, default=40, help="clocks of the profile run (default 40)")
    cal.add_argument("--workdir", type=Path, default=None, help="keep the profile runs here (default: beside --out)")
    common(cal)

    pl = sub.add_parser("plan", help="predict the best staleness and worker count (sweep over seeds) and say why")
    pl.add_argument("config", type=Path, help="a (calibrated) config with run.target set, or --target")
    pl.add_argument("--out", type=Path, required=True, help="sweep directory for the plan's runs (plan.json inside)")
    pl.add_argument("--staleness", default="0,1,3,inf", help="values of consistency.staleness (default 0,1,3,inf)")
    pl.add_argument("--workers", default=None, help="values of workers.count (default: the config's)")
    pl.add_argument("--read-policy", default=None, help="values of consistency.read_policy (default: the config's)")
    pl.add_argument("--seeds", type=int, default=5, help="seeds per configuration (default 5)")
    pl.add_argument("--target", type=float, default=None, help="objective to reach (default: run.target)")
    pl.add_argument("--jobs", "-j", type=int, default=1)
    common(pl)

    cmp_ = sub.add_parser("compare", help="predicted (a simulated run) against measured (a real run)")
    cmp_.add_argument("sim_dir", type=Path)
    cmp_.add_argument("real_dir", type=Path)
    cmp_.add_argument("--json", action="store_true")

    demo = sub.add_parser("demo", help="BSP vs SSP vs ASP on the digits MLP with variable speeds")
    demo.add_argument("--out", type=Path, default=Path("sspsim-demo"), help="where the run directories go")
    demo.add_argument("--quiet", "-q", action="store_true")

    from sspsim.cli.report import add_parser as add_report

    add_report(sub)
    from sspsim.cli.schema import add_parser as add_schema

    add_schema(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sspsim`` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "check":
            return _check(args)
        if args.command == "deploy":
            return _deploy(args)
        if args.command == "calibrate":
            return _calibrate(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "plan":
            return _plan(args)
        if args.command == "demo":
            from sspsim.cli.demo import run_demo

            return run_demo(args.out, quiet=args.quiet)
        if args.command == "report":
            from sspsim.cli.report import run as run_report

            return run_report(args)
        if args.command == "schema":
            return args.handler(args)
    except InputError as exc:
        sys.stderr.write(f"sspsim: error: {exc}\n")
        return EXIT_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("sspsim: interrupted; unfinished run directories were not written\n")
        return 130
    raise AssertionError(args.command)  # pragma: no cover


def _overrides(args: argparse.Namespace) -> list[str]:
    extra = [] if args.seed is None else [f"run.seed={args.seed}"]
    return [*args.overrides, *extra]


def _simulate(args: argparse.Namespace) -> int:
    from sspsim.cli.console import interactive, progress_bar
    from sspsim.config import load_config
    from sspsim.sim import simulate

    config = load_config(args.config, _overrides(args))
    with progress_bar("simulating", enabled=interactive() and not args.quiet) as progress:
        run = simulate(config, args.out, progress=progress)
    if not args.quiet:
        _print_summary(run)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from sspsim.cli.console import interactive, print_table, progress_bar
    from sspsim.sim.sweep import expand_grid, run_sweep

    if args.jobs < 1:
        raise InputError("--jobs", args.jobs, "must be >= 1")
    raw, base = _read_toml(args.config)
    grids, variants = args.grid, None
    if not grids:
        from sspsim.sim.sweep import grids_from_config

        if "sweep" not in raw:
            raise InputError("--grid", MISSING, "give at least one --grid KEY=V1,V2,... or a [sweep] table in the config")
        grids, variants = grids_from_config(raw)
    points = expand_grid(raw, base, grids, _overrides(args), variants)
    with progress_bar(f"{len(points)} runs", enabled=interactive() and not args.quiet) as progress:
        rows = run_sweep(points, args.out, jobs=args.jobs, progress=progress)
    if not args.quiet:
        cols = ("run", "time/clock", "wait", "staleness", "final objective", "time to target")
        print_table(
            f"sweep: {len(rows)} runs in {args.out}",
            cols,
            [(r["name"], r["time_per_clock"], r["wait_fraction"], r["mean_staleness"], r["final_objective"], r["time_to_target"]) for r in rows],
        )
    return 0


def _check(args: argparse.Namespace) -> int:
    """Exit 0: nothing violated; 1: something violated; 2: input that cannot be read."""
    import json

    from sspsim.proofs_check import CATALOGUE, check_path

    if args.list:
        from sspsim.cli.console import print_table

        print_table("theorem catalogue", ("theorem", "reference", "scope", "statement"),
                    [(t.name, str(t.reference), t.scope, t.summary) for t in CATALOGUE])
        return 0
    if args.dir is None:
        raise InputError("DIR", MISSING, "give a run directory or a sweep directory to check (or --list)")
    verdicts = check_path(args.dir, args.theorem)
    if args.json:
        print(json.dumps([v.to_dict() for v in verdicts], indent=2))
    else:
        from sspsim.cli.console import print_verdicts

        print_verdicts(verdicts)
    return 1 if any(v.violated for v in verdicts) else 0


def _deploy(args: argparse.Namespace) -> int:
    """Exit 0: the run completed; 1: it ended incomplete (run.json says why); 2: bad input."""
    from sspsim.config import load_config

    if args.resume is not None:
        from sspsim.real.launch import resume_config

        if args.overrides or args.seed is not None or args.config is not None:
            raise InputError("--resume", str(args.resume), "continues with the run's own config: drop CONFIG, --set and --seed")
        out, config = args.resume, resume_config(args.resume)
    else:
        if args.config is None or args.out is None:
            raise InputError("deploy", MISSING, "needs CONFIG and --out DIR (or --resume DIR)")
        out, config = args.out, load_config(args.config, _overrides(args))
    if args.print_command:
        from sspsim.real.launch import torchrun_command

        if args.config is None or args.out is None:
            raise InputError("--print-command", MISSING, "needs CONFIG and --out DIR")
        need = config.workers.count + (0 if args.baseline else 1)
        nproc = args.nproc_per_node
        if nproc is None:
            if need % args.nnodes:
                raise InputError("--nproc-per-node", MISSING, f"{need} processes do not split evenly over {args.nnodes} "
                                 "nodes: give each node's count (they must add up to {need})".replace("{need}", str(need)))
            nproc = need // args.nnodes
        cmd = torchrun_command(args.config, args.out, nproc=nproc, nnodes=args.nnodes,
                               endpoint=args.rdzv_endpoint or "HOST:29500", baseline=args.baseline)
        print(" ".join(["torchrun", *cmd[3:]]))
        return 0
    from sspsim.real.launch import deploy

    meta = deploy(config, out, resume=args.resume is not None, baseline=args.baseline)
    if meta.get("status") != "complete":
        sys.stderr.write(f"sspsim: run incomplete: {meta.get('reason', 'unknown reason')} (see {out})\n")
        return 1
    if not args.quiet:
        from sspsim.rundir import read_run

        _print_summary(read_run(out))
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from sspsim.config import load_config

    config = load_config(args.config, _overrides(args))
    if args.clocks < 4:
        raise InputError("--clocks", args.clocks, "must be >= 4")
    from sspsim.real.calibrate import calibrate

    workdir = args.workdir or args.out.with_suffix("").with_name(args.out.stem + "-profile")
    facts = calibrate(config, args.out, workdir=workdir, clocks=args.clocks)
    if not args.quiet:
        from sspsim.cli.console import print_table

        c = facts["compute"]
        rows = [
            ("real compute per iteration (s)", f"mean {c['mean']:.4g}, p50 {c['p50']:.4g}, p99 {c['p99']:.4g} (n = {c['n']})"),
            ("lognormal fit", f"KS {c['lognormal']['ks']:.3f}, p = {c['lognormal']['p_value']:.3g}" if "lognormal" in c else "-"),
            ("pull at 1x / 10x / 100x bytes (s)", " / ".join(f"{v:.4g}" for v in facts["pull_seconds"])),
            ("latency (s), bandwidth (B/s)", f"{facts['latency']:.4g}, {facts['bandwidth']:.4g}"),
            ("server busy per push (s)", f"{facts['server_busy_per_push']:.4g}"),
            ("start-up time (s)", f"{facts['startup_time']:.3g}"),
        ]
        print_table(f"calibrated config: {args.out} (profile runs in {workdir})", ("", "measured"), rows)
    return 0


def _plan(args: argparse.Namespace) -> int:
    import math

    from sspsim.cli.console import interactive, print_table, progress_bar
    from sspsim.sim.plan import plan

    if args.seeds < 1 or args.jobs < 1:
        raise InputError("--seeds/--jobs", (args.seeds, args.jobs), "must be >= 1")
    if args.seed is not None or any(o.startswith("run.seed=") for o in args.overrides):
        raise InputError("--seed", args.seed, "plan runs seeds 0..N-1 of every configuration: set how many with --seeds")
    raw, base = _read_toml(args.config)
    axes = {"consistency.staleness": [v.strip() for v in args.staleness.split(",") if v.strip()]}
    if args.workers:
        axes["workers.count"] = [v.strip() for v in args.workers.split(",") if v.strip()]
    if args.read_policy:
        axes["consistency.read_policy"] = [f'"{v.strip()}"' for v in args.read_policy.split(",") if v.strip()]
    from sspsim.config import apply_overrides

    raw = apply_overrides(raw, _overrides(args))
    with progress_bar("planning", enabled=interactive() and not args.quiet) as progress:
        result = plan(raw, base, args.out, axes=axes, seeds=args.seeds, target=args.target, jobs=args.jobs, progress=progress)
    if not args.quiet:
        best = result.best
        rows = []
        for p in sorted(result.points, key=lambda p: p.median):
            lo, hi = p.spread
            mark = " <- best" if p is best else ""
            fmt = lambda v: "not reached" if math.isinf(v) else f"{v:.4g}"  # noqa: E731
            rows.append((p.label + mark, fmt(p.median), f"{fmt(lo)} .. {fmt(hi)}", f"{100 * p.reached:.0f} %",
                         float(np.median(p.time_per_clock)), f"{100 * np.median(p.wait_fraction):.1f} %",
                         float(np.median(p.mean_staleness))))
        print_table(f"plan: time to objective {result.target:g}, {args.seeds} seeds each ({args.out})",
                    ("configuration", "median time", "p10 .. p90", "reached", "time/clock", "waiting", "staleness"), rows,
                    caption=f"{result.diagnosis['kind']}: {result.diagnosis['advice']}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    import json

    from sspsim.compare import METRICS, compare_runs

    result = compare_runs(args.sim_dir, args.real_dir)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    from sspsim.cli.console import print_table

    labels = dict(METRICS)
    rows = [(labels[m.name], m.predicted, m.measured, None if m.error is None else f"{100 * m.error:.1f} %") for m in result.metrics]
    g = result.geomean_error
    print_table(f"predicted ({args.sim_dir}) against measured ({args.real_dir})", ("metric", "predicted", "measured", "error"),
                rows, caption=None if g is None else f"geometric mean of the errors: {100 * g:.1f} %")
    return 0


def _read_toml(path: Path) -> tuple[dict, Path]:
    if not path.is_file():
        raise InputError("config", str(path), "file not found")
    try:
        return tomllib.loads(path.read_text()), path.parent
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError("config", str(path), f"not valid TOML ({exc})") from None


def _print_summary(run) -> None:  # type: ignore[no-untyped-def]
    from sspsim.cli.console import print_table

    s = run.summary
    cfg = run.meta["config"]
    rows = [
        ("engine", s["engine"]),
        ("workers x clocks", f"{s['workers']} x {s['clocks']}"),
        ("staleness bound s", cfg["consistency"]["staleness"]),
        ("read policy", cfg["consistency"]["read_policy"]),
        ("simulated time (s)" if run.meta.get("backend") == "sim" else "run time (s)", s["total_time"]),
        ("time per clock (s)", s["time_per_clock"]),
        ("waiting at the gate", f"{100 * s['wait_fraction']:.1f} %"),
        ("mean / max staleness (clocks)", f"{s['mean_staleness']:.3g} / {s['max_staleness']}"),
        ("mean update staleness", s["mean_update_staleness"]),
    ]
    if "final_objective" in s:
        rows.append(("objective: first -> last", f"{s['initial_objective']:.4g} -> {s['final_objective']:.4g}"))
        if s.get("target") is not None:
            rows.append((f"time to objective {s['target']:g}", s["time_to_target"]))
    rows.append(("wall time (s)", s["wall_time"]))
    print_table(f"run directory: {run.path}", ("", "value"), rows)


def _version() -> str:
    from sspsim import __version__

    return __version__


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
