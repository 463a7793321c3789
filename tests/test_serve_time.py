"""``[network] serve_time``: the server's one thread sends reads one at a time (DESIGN §Semantics,
docs/reference/config.md).  After a commit it sends the reads the commit released, in release
order, then the pusher's own; a read is admitted when its send begins."""

from __future__ import annotations

import numpy as np
import pytest

import sspsim
from sspsim.errors import ConfigError
from tests.simcheck import check_trace


def _raw(**over: object) -> dict:
    raw: dict = {
        "run": {"clocks": 3, "seed": 1, "trace": "full"},
        "problem": {"kind": "none"},
        "consistency": {"staleness": 0},
        "workers": {"count": 2, "speed": {"kind": "constant", "value": 1.0}},
        "network": {"serve_time": 0.1},
    }
    for key, value in over.items():
        section, name = key.split("__")
        raw[section][name] = value
    return raw


def _rows(run: sspsim.Run) -> list[tuple[int, int, float, float]]:
    tr = run.trace.sort_values(["clock", "worker"])
    return [(int(w), int(c), round(float(r), 9), round(float(m), 9))
            for w, c, r, m in zip(tr.worker, tr.clock, tr.read_time, tr.commit_time, strict=True)]


def test_bsp_two_workers_by_hand() -> None:
    """BSP, compute 1, serve 0.1.  The first reads go out at 0 and 0.1.  Worker 0 commits at 1.0 and
    is held; worker 1's commit at 1.1 releases it (its read is sent first, at 1.1), then worker 1's
    own read goes out at 1.2."""
    run = sspsim.simulate(sspsim.config_from_dict(_raw()))
    assert _rows(run) == [(0, 1, 0.0, 1.0), (1, 1, 0.1, 1.1), (0, 2, 1.1, 2.1), (1, 2, 1.2, 2.2),
                          (0, 3, 2.2, 3.2), (1, 3, 2.3, 3.3)]
    assert run.summary["engine"] == "event"
    waits = run.trace.sort_values(["clock", "worker"]).wait_time.round(9).tolist()
    assert waits == [0.0, 0.1, 0.1, 0.1, 0.1, 0.1]


def test_released_reads_go_out_before_the_pushers_own() -> None:
    """s = 0, three workers, worker 2 three times slower: its commit of each clock releases
    workers 0 and 1 (in the order they were held), and its own read goes out third."""
    raw = _raw(workers__count=3, run__clocks=2)
    raw["workers"]["stragglers"] = [{"worker": 2, "slowdown": 3.0}]
    run = sspsim.simulate(sspsim.config_from_dict(raw))
    # first reads at 0, 0.1, 0.2; commits 1.0, 1.1 (held), 3.2 (worker 2) -> sends at 3.2, 3.3, 3.4
    assert _rows(run) == [(0, 1, 0.0, 1.0), (1, 1, 0.1, 1.1), (2, 1, 0.2, 3.2),
                          (0, 2, 3.2, 4.2), (1, 2, 3.3, 4.3), (2, 2, 3.4, 6.4)]


def test_a_push_waits_for_the_sends_before_it() -> None:
    """The server takes the next push only after its sends: with serve 0.6 the first reads go out
    at 0, 0.6, 1.2; worker 0's push at 1.0 waits until 1.8 (both commit then, one after the other)."""
    raw = _raw(workers__count=3, network__serve_time=0.6, consistency__staleness=5, run__clocks=1)
    run = sspsim.simulate(sspsim.config_from_dict(raw))
    assert _rows(run) == [(0, 1, 0.0, 1.8), (1, 1, 0.6, 1.8), (2, 1, 1.2, 2.2)]


@pytest.mark.parametrize("policy", ["eager", "lazy", "push"])
@pytest.mark.parametrize("kind", ["none", "logistic"])
def test_every_read_policy_keeps_the_semantics(policy: str, kind: str) -> None:
    """Random speeds, SSP s = 1, apply and serve times: the gate, staleness bound, read policy and the
    server's one-thing-at-a-time, recomputed from trace.csv (tests/simcheck.py)."""
    raw = _raw(workers__count=4, run__clocks=8, consistency__staleness=1, consistency__read_policy=policy,
               problem__kind=kind, network__apply_time=0.03)
    raw["workers"]["speed"] = {"kind": "exponential", "mean": 0.5}
    config = sspsim.config_from_dict(raw)
    run = sspsim.simulate(config)
    check_trace(run, config)
    assert (run.trace.wait_time > 0).sum() > 4


def test_the_check_catches_reads_sent_at_once() -> None:
    """The trace check fails on a run whose reads all went out at once (serve_time ignored)."""
    raw = _raw(workers__count=4, run__clocks=6, consistency__staleness=1)
    raw["workers"]["speed"] = {"kind": "exponential", "mean": 0.5}
    instant = sspsim.simulate(sspsim.config_from_dict({**raw, "network": {}}))
    with pytest.raises(AssertionError):
        check_trace(instant, sspsim.config_from_dict(raw))


def test_a_timing_only_run_takes_simpy_not_the_heapq_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto`` would take the heapq loop for contention; a read queue needs the SimPy engine."""
    import sspsim.sim.run as run_module

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the heapq loop ran")

    monkeypatch.setattr(run_module, "simulate_heapq", refuse)
    monkeypatch.setattr(run_module, "summarize_heapq", refuse)
    for trace in ("full", "summary"):
        run = sspsim.simulate(sspsim.config_from_dict(_raw(run__trace=trace)))
        assert run.summary["engine"] == "event" and run.summary["total_time"] == pytest.approx(3.3)


def test_the_heapq_loop_refuses_a_read_queue() -> None:
    from sspsim.sim.heapq_engine import simulate_heapq

    config = sspsim.config_from_dict(_raw())
    problem = sspsim.make_problem(config.problem, config.problem_seed)
    with pytest.raises(ValueError, match="serve_time"):
        simulate_heapq(config, problem, np.ones((2, 3)))


@pytest.mark.parametrize(("over", "field"), [
    ({"run__engine": "batch"}, "run.engine"),
    ({"consistency__model": "ksync", "consistency__k": 1}, "network.serve_time"),
    ({"network__serve_time": -0.1}, "network.serve_time"),
])
def test_bad_settings_name_the_field(over: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        sspsim.config_from_dict(_raw(**over))
    assert str(err.value).startswith(f"{field} = ")


def test_zero_serve_time_is_the_instant_read() -> None:
    """serve_time = 0 (the default) keeps the instant read: every read after the first clock is taken at
    a commit's instant, and the trace check's exact admission rule (admitted when the gate opens)
    holds; with a serve time the same run's reads come later than the commits that let them through."""
    raw = _raw(workers__count=3, run__clocks=5, consistency__staleness=1, run__engine="event", network__serve_time=0.0)
    raw["workers"]["speed"] = {"kind": "exponential", "mean": 0.5}
    config = sspsim.config_from_dict(raw)
    instant = sspsim.simulate(config)
    check_trace(instant, config)
    later = instant.trace[instant.trace.clock > 1]
    assert later.read_time.isin(set(instant.trace.commit_time)).all()
    raw["network"]["serve_time"] = 0.05
    queued = sspsim.simulate(sspsim.config_from_dict(raw)).trace
    assert not queued[queued.clock > 1].read_time.isin(set(queued.commit_time)).all()
