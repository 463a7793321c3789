"""Property tests: no honest simulation violates any theorem of the catalogue.

Configs come from the public strategies of :mod:`sspsim.testing` (the ones users get), runs are
written to a fresh temporary directory per example (pytest's ``tmp_path`` is shared by every
Hypothesis example), and :func:`sspsim.testing.assert_run_satisfies` runs the whole catalogue.
The active Hypothesis profile (tests/conftest.py; derandomized "ci" by default) sets the number
of examples; the ``slow`` variants run four times as many.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sspsim
from sspsim.proofs_check import CATALOGUE, RunData
from sspsim.testing import PROBLEMS, READ_POLICIES, SPEED_KINDS, assert_run_satisfies, configs, schedules, speed_models
from tests.strategies import budget


def simulate_and_check(config: sspsim.Config) -> list:
    """Simulate into a temporary run directory and assert that no catalogue check is violated."""
    with tempfile.TemporaryDirectory() as d:
        run = sspsim.simulate(config, Path(d) / "run")
        verdicts = assert_run_satisfies(run)
    assert len(verdicts) == len(CATALOGUE)
    return verdicts


def _more() -> settings:
    return settings(max_examples=4 * settings().max_examples)


# -- the properties ----------------------------------------------------------------------------

@budget(1.0)
@given(configs())
def test_generated_configs_violate_no_theorem(config: sspsim.Config) -> None:
    """Any valid small config (every problem, read policy, speed model, s in 0..10 and inf,
    P in 1..16, stragglers, transient slowdowns, network costs): nothing violated."""
    simulate_and_check(config)


@budget(0.6)
@given(configs(problems=("logistic", "least_squares", "nonconvex", "quadratic", "mlp"), audit=True, max_workers=6, min_clocks=4, max_clocks=10))
def test_audited_math_runs_violate_no_theorem(config: sspsim.Config) -> None:
    """Runs with math and an audit log: I3 and I5 compare the parameters actually read."""
    verdicts = simulate_and_check(config)
    assert {v.theorem: v.outcome.value for v in verdicts}["ssp.I5_replay"] == "holds"


@budget(0.6)
@given(configs(problems=("logistic", "least_squares", "nonconvex", "quadratic"), audit=False, max_workers=6, min_clocks=4, max_clocks=10))
def test_replayed_math_runs_violate_no_theorem(config: sspsim.Config) -> None:
    """Runs with math and no audit log: I5 replays the losses from the read sets alone."""
    verdicts = simulate_and_check(config)
    assert {v.theorem: v.outcome.value for v in verdicts}["ssp.I5_replay"] == "holds"


@budget(0.6)
@given(schedules())
def test_trace_driven_schedules_violate_no_theorem(schedule: tuple[np.ndarray, sspsim.Config]) -> None:
    """Hand-made compute-time matrices (many ties: simultaneous commits and reads): nothing violated."""
    times, config = schedule
    assert times.shape == (config.workers.count, config.run.clocks) and (times > 0).all()
    simulate_and_check(config)


@budget(0.4)
@given(configs(min_staleness=0, max_staleness=0, allow_inf=False, problems=("logistic", "quadratic", "mlp"),
               momentum=False, staleness_aware=False) | configs(min_workers=1, max_workers=1, problems=("least_squares", "nonconvex")))
def test_limits_hold_at_s0_and_one_worker(config: sspsim.Config) -> None:
    """s = 0 (minibatch SGD) or P = 1 (serial SGD): I6 applies and holds."""
    verdicts = {v.theorem: v for v in simulate_and_check(config)}
    limits = verdicts["ssp.I6_limits"]
    assert limits.outcome.value == ("not_applicable" if config.optimizer.staleness_aware else "holds"), str(limits)


@pytest.mark.slow
@_more()
@given(configs())
def test_generated_configs_violate_no_theorem_long(config: sspsim.Config) -> None:
    """The long variant: four times the profile's examples."""
    simulate_and_check(config)


@pytest.mark.slow
@_more()
@given(schedules(configs(max_workers=12, max_clocks=12)))
def test_trace_driven_schedules_violate_no_theorem_long(schedule: tuple[np.ndarray, sspsim.Config]) -> None:
    simulate_and_check(schedule[1])


# -- the strategies themselves -------------------------------------------------------------------

@budget(1.0)
@given(st.data())
def test_configs_respect_their_restrictions(data: st.DataObject) -> None:
    """configs(...) draws only what its keywords allow."""
    problems = data.draw(st.lists(st.sampled_from(PROBLEMS), min_size=1, unique=True))
    policies = data.draw(st.lists(st.sampled_from(READ_POLICIES), min_size=1, unique=True))
    kinds = data.draw(st.lists(st.sampled_from(SPEED_KINDS), min_size=1, unique=True))
    max_workers = data.draw(st.integers(1, 16))
    max_staleness = data.draw(st.integers(0, 10))
    allow_inf = data.draw(st.booleans())
    max_clocks = data.draw(st.integers(1, 8))
    config = data.draw(configs(problems=problems, read_policies=policies, speed_kinds=kinds, max_workers=max_workers,
                               max_staleness=max_staleness, allow_inf=allow_inf, max_clocks=max_clocks, stragglers=False,
                               transient=False, network=False, momentum=False, staleness_aware=False, audit=True))
    assert isinstance(config, sspsim.Config)
    assert config.problem.kind in problems and config.consistency.read_policy in policies
    assert config.workers.speed.kind in kinds
    assert 1 <= config.workers.count <= max_workers and 1 <= config.run.clocks <= max_clocks
    s = config.consistency.staleness
    assert (s == sspsim.INF and allow_inf and config.consistency.read_policy != "lazy") or 0 <= s <= max_staleness
    assert not config.workers.stragglers and config.workers.transient is None
    assert config.network.latency == 0 and config.network.apply_time == 0 and config.network.bandwidth == sspsim.INF
    assert config.optimizer.momentum == 0 and not config.optimizer.staleness_aware and config.run.audit
    if config.problem.kind == "mlp":
        assert config.problem.hidden is not None and max(config.problem.hidden) <= 8


@budget(1.0)
@given(speed_models())
def test_speed_models_are_valid_speed_tables(table: dict) -> None:
    """Every drawn table parses as a [workers] speed and draws non-negative finite times."""
    config = sspsim.config_from_dict({"workers": {"count": 2, "speed": table}, "run": {"clocks": 3}})
    assert config.workers.speed.kind == table["kind"] != "trace"
    times = config.workers.speed.draw(np.random.default_rng(0), 100)
    assert np.isfinite(times).all() and (times >= 0).all()


def test_strategy_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="timit_like"):
        configs(problems=("timit_like",))
    with pytest.raises(ValueError, match="schedules"):
        speed_models(("trace",))
    with pytest.raises(ValueError, match="min_workers"):
        configs(min_workers=3, max_workers=2)
    with pytest.raises(ValueError, match="at least one"):
        configs(read_policies=())


@settings(max_examples=3)
@given(schedules(configs(max_workers=3, max_clocks=3, problems=("none",))))
def test_schedule_files_outlive_the_example(schedule: tuple[np.ndarray, sspsim.Config]) -> None:
    """The trace CSV of a schedule holds ``times``; the run directory keeps its own copy (speeds.csv),
    so `sspsim check` reloads the config from run.json even after the original file is gone."""
    times, config = schedule
    path = Path(config.workers.speed.file)
    assert np.array_equal(np.loadtxt(path, delimiter=",", ndmin=2), times)
    with tempfile.TemporaryDirectory() as d:
        run = sspsim.simulate(config, Path(d) / "run")
        speed = RunData.load(run.path).config.workers.speed
        assert speed.file == run.path / "speeds.csv"
        assert np.array_equal(speed.times, times[:, : config.run.clocks])
    assert path.is_file()


# -- assert_run_satisfies ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def honest_and_broken(tmp_path_factory: pytest.TempPathFactory) -> tuple[sspsim.Run, sspsim.Run]:
    from tests.test_mutants import NoGate, config

    base = tmp_path_factory.mktemp("assert")
    cfg = config("eager", s=1)
    return sspsim.simulate(cfg, base / "honest"), sspsim.simulate(cfg, base / "broken", server_class=NoGate)


def test_assert_run_satisfies_accepts_run_path_and_rundata(honest_and_broken: tuple[sspsim.Run, sspsim.Run]) -> None:
    honest, _ = honest_and_broken
    assert honest.path is not None
    for given_ in (honest, honest.path, str(honest.path), RunData.load(honest.path)):
        verdicts = assert_run_satisfies(given_)
        assert [v.theorem for v in verdicts] == [t.name for t in CATALOGUE]
    only = assert_run_satisfies(honest, "ho2013")
    assert only and all(v.theorem.startswith("ho2013.") for v in only)
    assert [v.theorem for v in assert_run_satisfies(honest, ["ssp.I1_gate"])] == ["ssp.I1_gate"]


def test_assert_run_satisfies_names_every_violation(honest_and_broken: tuple[sspsim.Run, sspsim.Run]) -> None:
    _, broken = honest_and_broken
    from sspsim.proofs_check import check_path

    violated = [v for v in check_path(broken.path) if v.violated]
    assert len(violated) >= 2
    with pytest.raises(AssertionError) as info:
        assert_run_satisfies(broken)
    for v in violated:
        assert str(v) in str(info.value)
    assert_run_satisfies(broken, "ssp.I0")  # a selection that misses the violations passes


def test_assert_run_satisfies_needs_a_directory() -> None:
    run = sspsim.simulate(sspsim.config_from_dict({"run": {"clocks": 2}, "workers": {"count": 2}}))
    with pytest.raises(ValueError, match="out="):
        assert_run_satisfies(run)
    with pytest.raises(sspsim.InputError):
        assert_run_satisfies("/nonexistent/run/dir")


def test_import_without_hypothesis() -> None:
    """`import sspsim.testing` needs neither Hypothesis nor proofs_check; a strategy without
    Hypothesis says how to install it."""
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import sspsim.testing as t\n"
        "assert 'proofs_check' not in sys.modules\n"
        "try:\n    t.configs()\nexcept ImportError as e:\n    print(e)\nelse:\n    raise SystemExit('no ImportError')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'sspsim[dev]'" in proc.stdout


@pytest.mark.parametrize("audit", [False, True])
def test_a_run_too_large_to_replay_is_not_a_violation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, audit: bool) -> None:
    """I5 without an audit log replays the run; beyond the replay's size limit that is a premise
    it cannot meet (not applicable, naming the audit log), never "violated".  The audit log needs
    no replay, so an audited run of the same size still holds."""
    import sspsim.proofs_check.invariants as invariants

    monkeypatch.setattr(invariants, "MAX_VALUES", 10)
    config = sspsim.config_from_dict({"run": {"clocks": 4, "audit": audit}, "problem": {"kind": "logistic"},
                                      "workers": {"count": 2, "speed": {"kind": "exponential", "mean": 1.0}}})
    run = sspsim.simulate(config, tmp_path / "run")
    verdict = assert_run_satisfies(run, "ssp.I5_replay")[0]
    if audit:
        assert verdict.outcome.value == "holds"
    else:
        assert verdict.outcome.value == "not_applicable" and "audit" in str(verdict.to_dict())
