"""Fuzz the command line's input boundary (issue 9, item 7).

Hypothesis generates ``--set`` values, whole TOML files, compute-time CSVs and damaged run
directories.  Every input must give exit 0 with a complete run (or, for ``check``, exit 1 with
its verdicts), or exit 2 with one line and no output folder: never a traceback, never exit 3.

The budget: ``FUZZ_EXAMPLES`` inputs in all (300 by default; 10,000 with the ``nightly``
profile: ``HYPOTHESIS_PROFILE=nightly`` or ``SSPSIM_HYPOTHESIS_PROFILE=nightly``;
``SSPSIM_FUZZ_EXAMPLES=N`` sets it directly).  With ``SSPSIM_FUZZ_COUNTS=FILE`` the counts of
inputs tried, one-line errors, runs completed and tracebacks are written to FILE as JSON (under
``pytest -n N`` each xdist worker writes ``FILE.gwK``, so no worker overwrites another's counts).
See docs/howto/property-tests.md.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sspsim
from sspsim.config import SECTIONS, section_keys
from sspsim.speeds import speed_kinds
from tests.cli_harness import BASE_CONFIG, run_cli

pytestmark = pytest.mark.fuzz

PROFILE = os.environ.get("SSPSIM_HYPOTHESIS_PROFILE") or os.environ.get("HYPOTHESIS_PROFILE") or "ci"
FUZZ_EXAMPLES = int(os.environ.get("SSPSIM_FUZZ_EXAMPLES") or (10_000 if PROFILE == "nightly" else 300))
SHARES = {"set": 0.35, "toml": 0.25, "csv": 0.15, "rundir": 0.25}
"""Each test's share of ``FUZZ_EXAMPLES``."""

COUNTS: Counter[str] = Counter()


def _budget(test: str) -> settings:
    return settings(max_examples=max(5, int(FUZZ_EXAMPLES * SHARES[test])), deadline=None, derandomize=PROFILE != "dev",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def _write_counts() -> None:
    target = os.environ.get("SSPSIM_FUZZ_COUNTS")
    if target:
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        Path(f"{target}.{worker}" if worker else target).write_text(json.dumps(dict(COUNTS), indent=2) + "\n")


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Iterator[None]:
    yield
    _write_counts()


def _tried() -> None:
    COUNTS["inputs tried"] += 1
    if COUNTS["inputs tried"] % 100 == 0:
        _write_counts()  # a run cut short still leaves its counts


# -- values -----------------------------------------------------------------------------

# Integers: small ones (valid or just out of range), enormous ones (refused by the memory budget
# or harmless), some past the float range and past Python's digit limit.
INTS = st.one_of(
    st.integers(-3, 12),
    st.integers(10**12, 10**40),
    st.sampled_from([2**31, 2**63, 2**64, 10**400, -(10**400), 1099511627776]),
)
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0.0, 4.0), st.sampled_from([1e300, 1e-300, 5e-324]))
STRINGS = st.one_of(st.sampled_from(["inf", "-inf", "nan", "eager", "lazy", "push", "summary", "none", "mlp", "", "timit_like",
                                     "logistic", "quadratic", "batch", "event", "cuda"]),
                    st.text(max_size=12))


def _toml(v: Any) -> str:
    """A value as TOML text (the writer accepts what TOML cannot hold: floats nan and inf stay bare words)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return {"inf": "inf", "-inf": "-inf"}.get(repr(v), "nan" if v != v else repr(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"


SPEED_KEYS = ("kind", "mean", "sigma", "value", "shift", "alpha", "scale", "low", "high", "samples", "file", "rate")
SCALARS = st.one_of(INTS, FLOATS, STRINGS, st.booleans())
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from([*SPEED_KEYS, "worker", "slowdown", "probability", "factor", "duration"]), inner,
                        max_size=4),
    ),
    max_leaves=8,
)
SPEED_TABLES = st.builds(
    lambda kind, rest: {"kind": kind, **rest},
    st.one_of(st.sampled_from(speed_kinds()), STRINGS),
    st.dictionaries(st.sampled_from(SPEED_KEYS[1:]), st.one_of(INTS, FLOATS, st.lists(FLOATS, max_size=3)), max_size=3),
)
KNOWN_KEYS = [f"{s}.{k}" for s in SECTIONS for k in section_keys(s)]
KEYS = st.one_of(
    st.sampled_from(KNOWN_KEYS),
    st.sampled_from(["run", "run.", ".seed", "workers.speed.mean", "workers.speed.kind", "problem", "sweep.x",
                     "calibration.a.b", "nosuch.key", "run.seed.deeper"]),
    st.text(max_size=10),
)


def _value_text(key: str) -> st.SearchStrategy[str]:
    speed = key in ("workers.speed", "workers.compute")
    tables = SPEED_TABLES.map(_toml) if speed else VALUES.map(_toml)
    raw = st.text(max_size=16)  # not TOML: taken as a string
    return st.one_of(tables, VALUES.map(_toml), raw)


SETTINGS = st.lists(KEYS.flatmap(lambda k: _value_text(k).map(lambda v: f"{k}={v}")), min_size=1, max_size=3)


# -- the one rule ----------------------------------------------------------------------

def _expect_run_or_one_line(argv: list[str], out: Path) -> None:
    """Exit 0 with a complete run at ``out``, or exit 2 with one line and ``out`` absent."""
    code, _, err = run_cli(argv)
    _tried()
    lines = err.strip().splitlines()
    if code == 3 or "Traceback" in err:
        COUNTS["tracebacks"] += 1
    assert code in (0, 2), f"exit {code} for {argv!r}: {err}"
    if code == 0:
        COUNTS["runs completed"] += 1
        assert json.loads((out / "run.json").read_text())["status"] == "complete"
    else:
        COUNTS["one-line errors"] += 1
        assert len(lines) == 1 and lines[0].startswith("sspsim: error: "), f"{argv!r}: {err}"
        assert not os.path.lexists(out), f"{argv!r} left {out}"


def _simulate(config: Path, sets: list[str], where: Path) -> None:
    out = where / "run"
    argv = ["simulate", str(config), "--out", str(out), "-q"]
    for item in sets:
        argv += ["--set", item]
    _expect_run_or_one_line(argv, out)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "base.toml"
    path.write_text(BASE_CONFIG)
    return path


# -- --set -----------------------------------------------------------------------------

@_budget("set")
@given(sets=SETTINGS)
def test_set_values(base: Path, sets: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        _simulate(base, sets, Path(d))


# -- whole TOML files -----------------------------------------------------------------

SECTION_NAMES = st.one_of(st.sampled_from([*SECTIONS, "calibration", "sweep"]), st.text(min_size=1, max_size=8))


@st.composite
def toml_files(draw: st.DrawFn) -> bytes:
    """A config file: structured (sections of known and unknown keys) or damaged text and bytes."""
    how = draw(st.sampled_from(["structured", "structured", "structured", "text", "bytes", "deep"]))
    if how == "bytes":
        return draw(st.binary(max_size=200))
    if how == "text":
        return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    if how == "deep":
        depth = draw(st.integers(1, 3000))
        return ("[run]\nseed = " + "[" * depth + "]" * depth + "\n").encode()
    lines = [BASE_CONFIG] if draw(st.booleans()) else []
    sections = draw(st.dictionaries(SECTION_NAMES, st.lists(st.one_of(st.sampled_from(KNOWN_KEYS), KEYS), max_size=4),
                                    max_size=4))
    for name, keys in sections.items():
        lines.append(f"[{json.dumps(name)}]")
        for key in dict.fromkeys(k.rsplit(".", 1)[-1] for k in keys):
            lines.append(f"{json.dumps(key)} = {draw(_value_text(name + '.' + key))}")
    return "\n".join(lines).encode("utf-8", "surrogatepass")


@_budget("toml")
@given(content=toml_files())
def test_toml_files(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        config = Path(d) / "config.toml"
        config.write_bytes(content)
        _simulate(config, [], Path(d))


# -- compute-time CSVs ---------------------------------------------------------------

CELLS = st.one_of(
    st.floats(0.0, 3.0).map(repr),
    st.sampled_from(["", " ", "nan", "inf", "-1", "1e400", "0", "#", "1,5", '"2"', "9" * 400, "\x00"]),
    st.text(max_size=6),
)


@st.composite
def time_csvs(draw: st.DrawFn) -> tuple[bytes, int]:
    """A compute-time CSV and the workers.count to run it with."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300)), draw(st.integers(1, 4))
    width = draw(st.integers(1, 6))
    rows = draw(st.lists(st.lists(CELLS, min_size=width, max_size=width + draw(st.integers(0, 1))), min_size=0, max_size=4))
    text = "".join(",".join(r) + "\n" for r in rows)
    if draw(st.integers(0, 19)) == 0:
        text += "1" * 140_000 + "\n"  # one cell over the csv module's field limit
    return text.encode("utf-8", "surrogatepass"), max(1, len(rows) + draw(st.integers(-1, 1)))


@_budget("csv")
@given(csv=time_csvs(), clocks=st.integers(1, 6))
def test_speed_trace_csvs(base: Path, csv: tuple[bytes, int], clocks: int) -> None:
    content, workers = csv
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "times.csv").write_bytes(content)
        sets = ['workers.speed={kind="trace", file="times.csv"}', f"workers.count={workers}", f"run.clocks={clocks}"]
        config = Path(d) / "config.toml"
        config.write_text(BASE_CONFIG)
        _simulate(config, sets, Path(d))


# -- damaged run directories: check and compare ---------------------------------------

@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory, base: Path) -> Path:
    out = tmp_path_factory.mktemp("fuzzrun") / "good"
    sspsim.simulate(sspsim.load_config(base), out)
    return out


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), INTS, st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
META_KEYS = st.sampled_from(["config", "summary", "status", "format", "backend", "seed", "problem", "versions"])
TRACE_COLUMNS = st.sampled_from(["worker", "clock", "start_time", "commit_time", "visible_clock", "staleness",
                                 "commit_index", "compute_time"])


@st.composite
def damages(draw: st.DrawFn) -> tuple[str, Any]:
    """One damage to a run directory."""
    return draw(st.one_of(
        st.tuples(st.just("meta"), st.tuples(META_KEYS, st.one_of(st.just("<drop>"), JSON_VALUES))),
        st.tuples(st.just("config"), st.tuples(st.sampled_from(KNOWN_KEYS), st.one_of(st.just("<drop>"), JSON_VALUES))),
        st.tuples(st.just("cell"), st.tuples(TRACE_COLUMNS, st.integers(0, 11), st.one_of(CELLS, INTS.map(str)))),
        st.tuples(st.just("bytes"), st.tuples(st.sampled_from(["run.json", "trace.csv", "evals.csv"]), st.binary(max_size=64))),
        st.tuples(st.just("remove"), st.sampled_from(["run.json", "trace.csv", "evals.csv"])),
    ))


def _damage(run: Path, damage: tuple[str, Any]) -> None:
    what, how = damage
    if what in ("meta", "config"):
        meta = json.loads((run / "run.json").read_text())
        key, value = how
        table, name = (meta, key) if what == "meta" else (meta["config"].setdefault(key.split(".")[0], {}), key.split(".")[1])
        if value == "<drop>":
            table.pop(name, None)
        else:
            table[name] = value
        (run / "run.json").write_text(json.dumps(meta))
    elif what == "cell":
        column, row, value = how
        lines = (run / "trace.csv").read_text().splitlines()
        header = lines[0].split(",")
        if column in header:
            cells = lines[1 + row % (len(lines) - 1)].split(",")
            cells[header.index(column)] = value
            lines[1 + row % (len(lines) - 1)] = ",".join(cells)
        (run / "trace.csv").write_text("\n".join(lines) + "\n")
    elif what == "bytes":
        name, content = how
        (run / name).write_bytes(content)
    else:
        (run / how).unlink()


@_budget("rundir")
@given(damage=st.lists(damages(), min_size=1, max_size=2), command=st.sampled_from(["check", "compare"]))
def test_damaged_run_directories(good_run: Path, damage: list[tuple[str, Any]], command: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        run = Path(d) / "run"
        shutil.copytree(good_run, run)
        for dmg in damage:
            try:
                _damage(run, dmg)
            except (OSError, ValueError, TypeError, AttributeError, IndexError, KeyError):
                pass  # an earlier damage left nothing this one applies to
        argv = ["check", str(run)] if command == "check" else ["compare", str(good_run), str(run)]
        code, _, err = run_cli(argv)
        _tried()
        if code == 3 or "Traceback" in err:
            COUNTS["tracebacks"] += 1
        assert code in (0, 1, 2), f"exit {code} after {damage!r}: {err}"
        if code == 2:
            COUNTS["one-line errors"] += 1
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("sspsim: error: "), f"{damage!r}: {err}"
        else:
            COUNTS["runs completed"] += 1  # verdicts or a comparison printed
