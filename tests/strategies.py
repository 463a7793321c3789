"""The test suite's Hypothesis helpers, built on the public strategies of :mod:`sspsim.testing`.

Only what the public module does not offer lives here: trace speeds whose matrix travels with
the table (:func:`materialize` writes it), a staleness strategy of the caller's choice, and
the run-wide example budget.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

import sspsim
from sspsim.speeds import parse_speed
from sspsim.testing import SPEED_KINDS as DRAWN_KINDS
from sspsim.testing import config_tables, speed_models, write_times

__all__ = ["CONTINUOUS_KINDS", "MATH_PROBLEMS", "SPEED_KINDS", "budget", "materialize", "sim_configs", "small_staleness",
           "staleness", "write_times"]

SPEED_KINDS = (*DRAWN_KINDS, "trace")
CONTINUOUS_KINDS = tuple(k for k in DRAWN_KINDS if k != "constant")
"""Kinds that :func:`sim_configs` draws without point masses (ties between events have probability 0)."""
MATH_PROBLEMS = ("logistic", "least_squares", "nonconvex")


def budget(fraction: float) -> settings:
    """Settings with ``fraction`` of the active profile's max_examples (so "nightly" scales every test)."""
    return settings(max_examples=max(5, int(settings().max_examples * fraction)))


staleness = st.one_of(st.integers(0, 10), st.just("inf"))
small_staleness = st.one_of(st.integers(0, 4), st.just("inf"))


def _trace_table(draw: st.DrawFn, workers: int, clocks: int) -> dict[str, Any]:
    """A trace speed; its matrix rides under the private key ``_times`` (see :func:`materialize`).

    A few distinct values, so ties (simultaneous events) are common.  Zero-length iterations are
    left out here (see test_schedule.py::test_zero_length_iterations_batch).
    """
    values = draw(st.lists(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0]), min_size=workers * clocks, max_size=workers * clocks))
    return {"kind": "trace", "file": "times.csv", "_times": np.array(values, dtype=float).reshape(workers, clocks)}


def _no_point_mass(table: dict[str, Any]) -> bool:
    return table["kind"] == "constant" or parse_speed(table, "speed", Path(".")).constant_value is None


@st.composite
def sim_configs(
    draw: st.DrawFn,
    *,
    max_workers: int = 16,
    max_clocks: int = 6,
    problems: tuple[str, ...] = ("none", *MATH_PROBLEMS),
    policies: tuple[str, ...] = ("eager", "lazy", "push"),
    speed_kinds: tuple[str, ...] = SPEED_KINDS,
    stalenesses: st.SearchStrategy[Any] = staleness,
    apply_time: bool = True,
) -> dict[str, Any]:
    """A small, valid simulator config table (from :func:`sspsim.testing.config_tables`) covering every
    speed model, read policy and network option; ``stalenesses`` draws s, ``apply_time`` False keeps
    the server free of contention (no apply or serve time)."""
    raw = draw(config_tables(problems=problems, read_policies=policies, max_workers=max_workers, max_clocks=max_clocks,
                             speed_kinds=("constant",), audit=False))
    P, C = raw["workers"]["count"], raw["run"]["clocks"]
    kind = draw(st.sampled_from(speed_kinds))
    if kind == "trace":
        raw["workers"]["speed"] = _trace_table(draw, P, C)
    else:
        raw["workers"]["speed"] = draw(speed_models((kind,)).filter(_no_point_mass))
    s = draw(stalenesses)
    policy = raw["consistency"]["read_policy"]
    if policy == "lazy" and s == "inf":
        policy = draw(st.sampled_from([p for p in policies if p != "lazy"] or ["eager"]))
    raw["consistency"] = {"staleness": s, "read_policy": policy}
    if not apply_time:
        raw["network"].pop("apply_time", None)
        raw["network"].pop("serve_time", None)
    return raw


@contextmanager
def materialize(raw: dict[str, Any]) -> Iterator[sspsim.Config]:
    """Build the Config of ``raw`` (writing its trace CSV to a temporary folder if it has one)."""
    raw = {k: dict(v) for k, v in raw.items()}
    speed = dict(raw["workers"]["speed"])
    times = speed.pop("_times", None)
    raw["workers"]["speed"] = speed
    with tempfile.TemporaryDirectory() as d:
        if times is not None:
            write_times(Path(d) / speed["file"], times)
        yield sspsim.config_from_dict(raw, base_dir=d)
