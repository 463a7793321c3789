"""Property-testing helpers for people who test their own SSP code against sspsim's theorems.

Two kinds of helpers:

* Hypothesis strategies that generate valid inputs: :func:`configs` (whole
  :class:`sspsim.Config` values; :func:`config_tables` gives them as TOML-shaped tables),
  :func:`speed_models` (``[workers] speed`` tables, drawn by each registered model) and
  :func:`schedules` (trace-driven compute-time matrices with the config that replays them);
* :func:`assert_run_satisfies`, which runs the theorem catalogue of ``proofs_check`` on a run
  directory and fails with every violated verdict in the message.

Hypothesis is a development dependency (``pip install 'sspsim[dev]'``).  It is imported only
when a strategy is built, so ``import sspsim.testing`` and :func:`assert_run_satisfies` work
without it.  ``proofs_check`` is likewise imported only when a run is checked.

A property test, for example::

    import tempfile
    from hypothesis import given
    import sspsim
    from sspsim.testing import assert_run_satisfies, configs

    @given(configs(problems=("logistic",), max_workers=4))
    def test_my_config_space(config):
        with tempfile.TemporaryDirectory() as d:
            run = sspsim.simulate(config, f"{d}/run")
            assert_run_satisfies(run)

(Use ``tempfile.TemporaryDirectory`` inside the test: pytest's ``tmp_path`` is shared by every
example Hypothesis tries.)
"""

from __future__ import annotations

import atexit
import inspect
import itertools
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import numpy as np

from sspsim.config import Activation, ReadPolicy, Schedule
from sspsim.speeds import SPEED_MODELS, SpeedModel
from sspsim.speeds import speed_kinds as _registered_kinds

if TYPE_CHECKING:  # pragma: no cover
    from hypothesis.strategies import SearchStrategy

    from sspsim.config import Config
    from sspsim.proofs_check import Verdict

__all__ = [
    "PROBLEMS",
    "READ_POLICIES",
    "SPEED_KINDS",
    "assert_run_satisfies",
    "config_tables",
    "configs",
    "drawable_speed_kinds",
    "schedules",
    "speed_models",
    "write_times",
]

PROBLEMS: tuple[str, ...] = ("none", "logistic", "least_squares", "nonconvex", "quadratic", "mlp")
"""Problem kinds :func:`configs` draws from (``mlp`` with one or two small hidden layers)."""

READ_POLICIES: tuple[str, ...] = get_args(ReadPolicy)
"""Read policies :func:`configs` draws from."""


def drawable_speed_kinds() -> tuple[str, ...]:
    """The registered speed kinds whose model draws its own tables (overrides
    :meth:`~sspsim.speeds.SpeedModel.tables`); a model defined later (in a test, say) is included from then on."""
    return tuple(k for k in _registered_kinds() if SPEED_MODELS[k].tables.__func__ is not SpeedModel.tables.__func__)  # type: ignore[attr-defined]


SPEED_KINDS: tuple[str, ...] = drawable_speed_kinds()
"""The built-in speed models :func:`speed_models` draws from (``trace`` speeds come from
:func:`schedules`); ``kinds=None`` also draws any model registered since."""


def _strategies():  # type: ignore[no-untyped-def]
    """``hypothesis.strategies``, or an ImportError that says how to install it."""
    try:
        from hypothesis import strategies
    except ImportError as exc:  # pragma: no cover - exercised only without the dev extra
        raise ImportError(
            "sspsim.testing's strategies need Hypothesis, a development dependency: "
            "pip install 'sspsim[dev]' (or pip install hypothesis)"
        ) from exc
    return strategies


def _check_choices(what: str, given: Sequence[str], known: Sequence[str], hint: str = "") -> tuple[str, ...]:
    chosen = tuple(given)
    if not chosen:
        raise ValueError(f"{what}: give at least one of {', '.join(known)}")
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise ValueError(f"{what}: unknown {', '.join(map(repr, unknown))}; known: {', '.join(known)}{hint}")
    return chosen


# -- speeds ------------------------------------------------------------------------------


def speed_models(kinds: Sequence[str] | None = None, *, max_mean: float = 3.0) -> SearchStrategy[dict[str, Any]]:
    """Strategy for ``[workers] speed`` tables, e.g. ``{"kind": "lognormal", "mean": 1.2, "sigma": 0.5}``.

    ``kinds`` restricts the models (default: every registered model that draws its own tables,
    see :func:`drawable_speed_kinds`; trace-driven schedules come from :func:`schedules`).  Each
    model's :meth:`~sspsim.speeds.SpeedModel.tables` draws the tables, with mean compute times in
    about ``[0.05, max_mean]`` seconds.  The tables are TOML-shaped, ready for
    ``config_from_dict({"workers": {"speed": table}})``.
    """
    st = _strategies()
    known = drawable_speed_kinds()
    kinds = _check_choices("speed_models kinds", known if kinds is None else kinds, known,
                           "; trace-driven speeds come from schedules()")
    if not max_mean >= 0.1:
        raise ValueError(f"speed_models max_mean = {max_mean}: must be >= 0.1")
    return st.one_of(*(SPEED_MODELS[k].tables(st, max_mean) for k in kinds))


# -- configs -----------------------------------------------------------------------------


def _problem_table(draw, st, kind: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    batch = draw(st.integers(1, 8))
    if kind == "none":
        return {"kind": kind, "dim": draw(st.integers(1, 1000))}
    if kind == "mlp":
        hidden = draw(st.lists(st.integers(1, 8), min_size=1, max_size=2))
        return {"kind": kind, "hidden": hidden, "activation": draw(st.sampled_from(get_args(Activation))),
                "samples": draw(st.integers(20, 200)), "batch_size": batch}
    table: dict[str, Any] = {"kind": kind, "dim": draw(st.integers(1, 6)), "samples": draw(st.integers(5, 120)),
                             "batch_size": batch}
    if kind == "logistic":
        # Tiny logistic data sets can be separable, and Logistic.x_star then has no minimiser (see
        # tests/test_problems.py::test_logistic_tiny_separable_data); these (samples, seed) are known good.
        table["samples"] = draw(st.sampled_from([40, 80]))
        table["seed"] = draw(st.integers(0, 7))
        return table
    if kind == "quadratic":
        table["curvature"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
        table["noise"] = draw(st.sampled_from([0.0, 0.5, 1.0]))
    if draw(st.booleans()):
        table["seed"] = draw(st.integers(0, 2**16))
    return table


def config_tables(
    *,
    problems: Sequence[str] = PROBLEMS,
    read_policies: Sequence[str] = READ_POLICIES,
    speed_kinds: Sequence[str] | None = None,
    min_workers: int = 1,
    max_workers: int = 16,
    min_staleness: int = 0,
    max_staleness: int = 10,
    allow_inf: bool = True,
    min_clocks: int = 1,
    max_clocks: int = 8,
    stragglers: bool = True,
    transient: bool = True,
    network: bool = True,
    momentum: bool = True,
    staleness_aware: bool = True,
    audit: bool | None = None,
) -> SearchStrategy[dict[str, Any]]:
    """Strategy for valid, small configs as TOML-shaped tables (what :func:`configs` builds).

    Every keyword narrows what is drawn:

    * ``problems``: kinds among :data:`PROBLEMS` (small data; ``mlp`` has hidden widths <= 8);
    * ``read_policies``: among ``eager``, ``lazy``, ``push`` (``lazy`` never meets s = inf,
      which the config rejects);
    * ``speed_kinds``: speed models, see :func:`speed_models` (None: every drawable model);
    * ``min_workers``/``max_workers`` (P, 1..16 by default), ``min_staleness``/``max_staleness``
      (s, 0..10) and ``allow_inf`` (also s = inf, ASP), ``min_clocks``/``max_clocks``;
    * ``stragglers``, ``transient``, ``network`` (latency, bandwidth, server apply time),
      ``momentum``, ``staleness_aware``: False leaves that feature off;
    * ``audit``: None draws it, True/False fixes ``[run] audit`` (audited runs also write the
      parameters read and the updates, so I5 compares them exactly).

    Steps are small (lr <= 0.5) so that runs of a few clocks do not diverge.
    """
    st = _strategies()
    problems = _check_choices("configs problems", problems, PROBLEMS)
    read_policies = _check_choices("configs read_policies", read_policies, READ_POLICIES)
    speed = speed_models(speed_kinds)
    if not 1 <= min_workers <= max_workers:
        raise ValueError(f"configs: need 1 <= min_workers <= max_workers (got {min_workers}, {max_workers})")
    if not 0 <= min_staleness <= max_staleness:
        raise ValueError(f"configs: need 0 <= min_staleness <= max_staleness (got {min_staleness}, {max_staleness})")
    if not 1 <= min_clocks <= max_clocks:
        raise ValueError(f"configs: need 1 <= min_clocks <= max_clocks (got {min_clocks}, {max_clocks})")
    finite = st.integers(min_staleness, max_staleness)

    @st.composite
    def draw_table(draw) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        P = draw(st.integers(min_workers, max_workers))
        policy = draw(st.sampled_from(read_policies))
        s: int | str = draw(finite if (policy == "lazy" or not allow_inf) else st.one_of(finite, st.just("inf")))
        kind = draw(st.sampled_from(problems))
        raw: dict[str, Any] = {
            "run": {"seed": draw(st.integers(0, 2**16)), "clocks": draw(st.integers(min_clocks, max_clocks)),
                    "audit": draw(st.booleans()) if audit is None else audit},
            "problem": _problem_table(draw, st, kind),
            "optimizer": {"lr": draw(st.sampled_from([0.01, 0.05, 0.1, 0.5])),
                          "schedule": draw(st.sampled_from(get_args(Schedule)))},
            "consistency": {"staleness": s, "read_policy": policy},
            "workers": {"count": P, "speed": draw(speed)},
            "network": {},
        }
        if momentum:
            raw["optimizer"]["momentum"] = draw(st.sampled_from([0.0, 0.0, 0.5]))
        if staleness_aware:
            raw["optimizer"]["staleness_aware"] = draw(st.booleans())
        if network:
            if draw(st.booleans()):
                raw["network"]["latency"] = draw(st.floats(0.0, 0.5))
            if draw(st.booleans()):
                raw["network"]["bandwidth"] = draw(st.floats(1e3, 1e6))
            if draw(st.integers(0, 3)) == 0:
                raw["network"]["apply_time"] = draw(st.floats(0.001, 0.3))
            if draw(st.integers(0, 3)) == 0:
                raw["network"]["serve_time"] = draw(st.floats(0.001, 0.3))
        if stragglers and draw(st.booleans()):
            who = draw(st.lists(st.integers(0, P - 1), min_size=1, max_size=P, unique=True))
            raw["workers"]["stragglers"] = [{"worker": w, "slowdown": draw(st.floats(1.0, 5.0))} for w in who]
        if transient and draw(st.booleans()):
            raw["workers"]["transient"] = {"probability": draw(st.floats(0.0, 1.0)), "factor": draw(st.floats(1.0, 5.0)),
                                           "duration": draw(st.integers(1, 3))}
        return raw

    return draw_table()


def configs(**restrictions: Any) -> SearchStrategy[Config]:
    """Strategy for valid, small :class:`sspsim.Config` values: :func:`config_tables` (same
    keywords) built with ``sspsim.config_from_dict``."""
    from sspsim.config import config_from_dict

    return config_tables(**restrictions).map(config_from_dict)


configs.__signature__ = inspect.signature(config_tables).replace(  # type: ignore[attr-defined]
    return_annotation="SearchStrategy[Config]")


# -- trace-driven schedules ----------------------------------------------------------------

_SCHEDULE_DIR: Path | None = None
_SCHEDULE_COUNT = itertools.count()


def _schedule_dir() -> Path:
    """One folder per process for the CSVs of :func:`schedules`, removed when the process exits."""
    global _SCHEDULE_DIR
    if _SCHEDULE_DIR is None or not _SCHEDULE_DIR.is_dir():
        _SCHEDULE_DIR = Path(tempfile.mkdtemp(prefix="sspsim-schedules-"))
        atexit.register(shutil.rmtree, _SCHEDULE_DIR, True)
    return _SCHEDULE_DIR


def write_times(path: str | os.PathLike[str], times: np.ndarray) -> Path:
    """Write a compute-time CSV (one row per worker, one column per clock, seconds, no header)."""
    path = Path(path)
    path.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in np.atleast_2d(times)) + "\n")
    return path


def schedules(
    configs_strategy: SearchStrategy[Config] | None = None,
    *,
    durations: SearchStrategy[float] | None = None,
) -> SearchStrategy[tuple[np.ndarray, Config]]:
    """Strategy for trace-driven schedules: ``(times, config)`` pairs.

    ``times`` is a positive float array of shape ``(P, clocks)`` (seconds of compute of each
    worker's each iteration); ``config`` is a config drawn from ``configs_strategy`` (default
    ``configs(max_workers=8)``) whose speed model is replaced by ``{kind = "trace", file = ...}``
    pointing at ``times`` written as CSV.  Stragglers and transient slowdowns of the drawn
    config still multiply these times.

    ``durations`` draws each entry (default: a mix of a few repeated values, which makes
    simultaneous events common, and floats in [0.01, 5]).

    The CSV lives in a temporary folder that is kept until the Python process exits, because
    the config, and the ``run.json`` of any run simulated from it, name the file by absolute
    path and ``sspsim check`` reads it again.
    """
    st = _strategies()
    base = configs_strategy if configs_strategy is not None else configs(max_workers=8)
    entry = durations if durations is not None else st.one_of(
        st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0]), st.floats(0.01, 5.0))

    @st.composite
    def draw_schedule(draw) -> tuple[np.ndarray, Config]:  # type: ignore[no-untyped-def]
        from sspsim.config import config_from_dict

        config = draw(base)
        P, C = config.workers.count, config.run.clocks
        values = draw(st.lists(entry, min_size=P * C, max_size=P * C))
        times = np.array(values, dtype=float).reshape(P, C)
        if not (np.isfinite(times).all() and (times > 0).all()):
            raise ValueError("schedules: durations must draw finite positive seconds")
        path = write_times(_schedule_dir() / f"times-{os.getpid()}-{next(_SCHEDULE_COUNT)}.csv", times)
        raw = config.to_dict()
        raw["workers"]["speed"] = {"kind": "trace", "file": str(path)}
        return times, config_from_dict(raw)

    return draw_schedule()


# -- checking ------------------------------------------------------------------------------


def assert_run_satisfies(run: Any, theorems: str | Sequence[str] | None = None) -> list[Verdict]:
    """Check a run against the theorem catalogue; raise AssertionError naming every violation.

    ``run`` is a :class:`sspsim.Run` written to a directory (``sspsim.simulate(config, out)``),
    a path to a run directory (or to a sweep directory), or a ``proofs_check.RunData`` /
    ``SweepData``.  ``theorems`` names theorems or prefixes (``"ssp.I"``, ``"ho2013"``; see
    ``sspsim check --list``); None checks the whole catalogue.

    Returns every verdict (``holds``, ``not_applicable`` or ``violated``) when none is violated.
    Unreadable input raises :class:`sspsim.InputError`, as ``sspsim check`` would exit 2.
    """
    from sspsim.proofs_check import RunData, SweepData, check_evidence, load_evidence, select
    from sspsim.rundir import Run

    names = (theorems,) if isinstance(theorems, str) else tuple(theorems or ())
    chosen = select(names)
    if isinstance(run, (RunData, SweepData)):
        evidence = run
    else:
        if isinstance(run, Run):
            if run.path is None:
                raise ValueError("assert_run_satisfies: this Run was not written to a directory; "
                                 "simulate it with sspsim.simulate(config, out=DIR)")
            path: Any = run.path
        else:
            path = run
        evidence = load_evidence(Path(os.fspath(path)))
    verdicts = check_evidence(evidence, chosen)
    violated = [v for v in verdicts if v.violated]
    if violated:
        lines = [f"  [{v.run}] {v}" for v in violated]
        raise AssertionError(
            f"{len(violated)} of {len(verdicts)} theorem verdict(s) violated on {evidence.name}:\n" + "\n".join(lines))
    return verdicts
