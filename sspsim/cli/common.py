"""What several commands share: the config options, reading a TOML config, a run's summary table."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from sspsim.cli.boundary import reading
from sspsim.errors import InputError

if TYPE_CHECKING:
    from sspsim.config import Config
    from sspsim.rundir import Run
    from sspsim.sim.executors import Executor

__all__ = ["add_config_options", "add_executor_options", "add_tensorboard_option", "executor", "load_config", "overrides", "print_summary",
           "read_toml"]


def add_config_options(p: argparse.ArgumentParser) -> None:
    """``--set``, ``--seed`` and ``--quiet``: the options of every command that reads a config."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set consistency.staleness=3 (repeatable)")
    p.add_argument("--seed", type=int, default=None, help="shorthand for --set run.seed=N")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no table")


def add_tensorboard_option(p: argparse.ArgumentParser) -> None:
    """``--tensorboard DIR``: also write the run's scalars as TensorBoard events (:mod:`sspsim.tblog`)."""
    p.add_argument("--tensorboard", type=Path, default=None, metavar="DIR",
                   help="also write TensorBoard scalars (objective, per-worker iteration time, waiting, staleness, "
                        "throughput) into the new folder DIR (needs sspsim[tensorboard]; --force replaces DIR if sspsim wrote it)")


def add_executor_options(p: argparse.ArgumentParser) -> None:
    """``--jobs``, ``--executor`` and ``--address``: where the runs of ``sweep`` and ``plan`` execute."""
    p.add_argument("--jobs", "-j", type=int, default=None,
                   help="processes in parallel (default 1); with --executor ray, the CPUs of a local Ray instance "
                        "(default: every core)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: a process pool on this machine (default); ray: a Ray cluster (needs sspsim[ray])")
    p.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="an existing Ray cluster's address (with --executor ray; default: a local Ray instance)")


def executor(args: argparse.Namespace) -> Executor:
    """The executor the command line asks for (``--executor``, ``--jobs``, ``--address``)."""
    from sspsim.sim.executors import make_executor

    return make_executor(args.executor, jobs=args.jobs, address=args.address)


def overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set`` overrides, then ``run.seed`` from ``--seed``."""
    extra = [] if args.seed is None else [f"run.seed={args.seed}"]
    return [*args.overrides, *extra]


def load_config(path: Path, args: argparse.Namespace) -> Config:
    """The validated config at ``path`` with the command line's overrides applied."""
    from sspsim.config import load_config as load

    with reading("config", str(path)):
        return load(path, overrides(args))


def read_toml(path: Path) -> tuple[dict, Path]:
    """The raw TOML table of a config file, and the folder its relative paths resolve against."""
    if not path.is_file():
        raise InputError("config", str(path), "file not found")
    with reading("config", str(path)):
        try:
            return tomllib.loads(path.read_text()), path.parent
        except (ValueError, UnicodeDecodeError) as exc:  # TOMLDecodeError, or an integer past the digit limit
            raise InputError("config", str(path), f"not valid TOML ({exc})") from None


def print_summary(run: Run) -> None:
    """The table ``simulate`` and ``deploy`` print: the run's shape, timing, staleness and objective."""
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
