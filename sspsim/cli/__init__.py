"""The ``sspsim`` command line (DESIGN §Command line).

Bad input (config, trace file, command line) prints one line, ``sspsim: error: ...``, naming
the field, the value and the rule, and exits with 2.  Progress bars appear on a terminal only.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import NoReturn, Sequence

from sspsim.errors import InputError

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
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...", required=True,
                    help="a key and its values, e.g. --grid consistency.staleness=0,3,inf (repeatable)")
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
    dep.add_argument("--node-rank", type=int, default=0)
    dep.add_argument("--nproc-per-node", type=int, default=None)
    dep.add_argument("--rdzv-endpoint", default=None, metavar="HOST:PORT")
    common(dep)

    demo = sub.add_parser("demo", help="BSP vs SSP vs ASP on the digits MLP with variable speeds")
    demo.add_argument("--out", type=Path, default=Path("sspsim-demo"), help="where the run directories go")
    demo.add_argument("--quiet", "-q", action="store_true")
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
        if args.command == "demo":
            from sspsim.cli.demo import run_demo

            return run_demo(args.out, quiet=args.quiet)
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
    points = expand_grid(raw, base, args.grid, _overrides(args))
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

    from proofs_check import CATALOGUE, check_path

    if args.list:
        from sspsim.cli.console import print_table

        print_table("theorem catalogue", ("theorem", "reference", "scope", "statement"),
                    [(t.name, str(t.reference), t.scope, t.summary) for t in CATALOGUE])
        return 0
    if args.dir is None:
        raise InputError("DIR", None, "give a run directory or a sweep directory to check (or --list)")
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
        from real.launch import resume_config

        out, config = args.resume, resume_config(args.resume)
    else:
        if args.config is None or args.out is None:
            raise InputError("deploy", None, "needs CONFIG and --out DIR (or --resume DIR)")
        out, config = args.out, load_config(args.config, _overrides(args))
    if args.print_command:
        from real.launch import torchrun_command

        if args.config is None or args.out is None:
            raise InputError("--print-command", None, "needs CONFIG and --out DIR")
        need = config.workers.count + (0 if args.baseline else 1)
        nproc = args.nproc_per_node or -(-need // args.nnodes)
        if nproc * args.nnodes != need:
            raise InputError("--nproc-per-node", nproc, f"x --nnodes {args.nnodes} must equal {need} processes")
        cmd = torchrun_command(args.config, args.out, nproc=nproc, nnodes=args.nnodes, node_rank=args.node_rank,
                               endpoint=args.rdzv_endpoint or "HOST:29500", baseline=args.baseline)
        print(" ".join(["torchrun", *cmd[3:]]))
        return 0
    from real.launch import deploy

    meta = deploy(config, out, resume=args.resume is not None, baseline=args.baseline)
    if meta.get("status") != "complete":
        sys.stderr.write(f"sspsim: run incomplete: {meta.get('reason', 'unknown reason')} (see {out})\n")
        return 1
    if not args.quiet:
        from sspsim.rundir import read_run

        _print_summary(read_run(out))
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
