"""What ``sspsim calibrate`` adds beyond latency, bandwidth and apply time: the push's receive
time (``[network] receive_time``) and the first iteration's start-up (``[workers] warmup``).
Every engine charges them the same way, exactly."""

from __future__ import annotations

import numpy as np
import pytest

import sspsim
from sspsim.speeds import Exponential, Straggler, Transient, compute_time_blocks, compute_times


def _config(engine: str, *, kind: str = "none", apply_time: float = 0.0, model: str = "ssp", **workers: object) -> sspsim.Config:
    consistency: dict = {"staleness": 0} if model == "ssp" else {"model": model, "k": 2}
    return sspsim.config_from_dict({
        "run": {"clocks": 4, "engine": engine, "trace": "full"},
        "problem": {"kind": kind, **({"dim": 5} if kind != "none" else {})},
        "consistency": consistency,
        "workers": {"count": 2, "speed": {"kind": "constant", "value": 0.010}, **workers},
        "network": {"latency": 0.001, "receive_time": 0.0005, "apply_time": apply_time},
    })


@pytest.mark.parametrize(("engine", "kind", "apply_time"), [
    ("batch", "none", 0.0), ("auto", "none", 0.0002), ("event", "none", 0.0002), ("auto", "least_squares", 0.0),
])
def test_every_ssp_engine_charges_the_receive_time_on_the_push(engine: str, kind: str, apply_time: float) -> None:
    """Equal constant speeds under BSP: an iteration lasts pull + compute + (pull + receive_time), plus
    the server's apply times queued behind each other; the read starts after the pull alone."""
    run = sspsim.simulate(_config(engine, kind=kind, apply_time=apply_time, warmup=0.002))
    trace = run.trace.sort_values(["worker", "clock"])
    one = 0.001 + 0.010 + 0.0015
    assert np.allclose(trace.start_time - trace.read_time, 0.001)
    assert run.summary["total_time"] == pytest.approx(4 * one + 0.002 + 4 * 2 * apply_time, abs=1e-12)
    first = trace[trace.clock == 1].commit_time.min()
    assert first == pytest.approx(one + 0.002 + apply_time, abs=1e-12)


def test_the_round_engine_charges_the_receive_time() -> None:
    """K-sync with K = P = 2 and equal speeds: each round is pull + compute + push + receive_time."""
    run = sspsim.simulate(_config("auto", model="ksync"))
    assert run.summary["total_time"] == pytest.approx(4 * (0.001 + 0.010 + 0.0015), abs=1e-12)


def test_warmup_lengthens_only_the_first_iteration_in_every_draw_path() -> None:
    """``warmup`` is added to column 0 after the slowdown factors, in both draw paths alike."""
    kw = {"workers": 3, "clocks": 7, "seed": 4, "stragglers": (Straggler(worker=1, slowdown=2.0),),
          "transient": Transient(probability=0.3, factor=3.0, duration=2)}
    plain = compute_times(Exponential(1.0), **kw)  # type: ignore[arg-type]
    warm = compute_times(Exponential(1.0), warmup=0.5, **kw)  # type: ignore[arg-type]
    assert np.allclose(warm[:, 0] - plain[:, 0], 0.5) and (warm[:, 1:] == plain[:, 1:]).all()
    blocks = np.concatenate(list(compute_time_blocks(Exponential(1.0), warmup=0.5, block=3, **kw)), axis=1)  # type: ignore[arg-type]
    assert (blocks == warm).all()


def test_the_new_keys_are_checked() -> None:
    """Negative costs are refused with one line naming the key."""
    for section, key in (("network", "receive_time"), ("workers", "warmup")):
        with pytest.raises(sspsim.ConfigError, match=f"{section}.{key}"):
            sspsim.config_from_dict({section: {key: -1.0}})


def test_the_profile_splits_the_first_iteration_from_the_typical_one() -> None:
    """``profile_costs`` on a hand-made trace (no injected delays): pull, push and compute are the
    means of the iterations after the first; ``warmup`` is the first iteration's read time plus its
    extra compute, pull and push beyond those means, averaged over workers."""
    import types

    import pandas as pd

    from sspsim.real.calibrate import profile_costs

    config = sspsim.config_from_dict({"run": {"clocks": 3}, "problem": {"kind": "none"},
                                      "workers": {"count": 2, "speed": {"kind": "constant", "value": 0.0}},
                                      "real": {"inject_delays": False}})
    rows = []
    for p in range(2):
        t = 0.0
        for c in (1, 2, 3):
            first = c == 1
            read = t + (0.004 * (p + 1) if first else 0.001)  # the first read waits for the start: 4 ms, 8 ms
            pull, compute, push = (0.003, 0.020, 0.005) if first else (0.001, 0.010, 0.002)
            start = read + pull
            commit = start + compute + push
            rows.append({"worker": p, "clock": c, "read_time": read, "start_time": start, "compute_time": compute,
                         "commit_time": commit})
            t = commit
    run = types.SimpleNamespace(config=config, trace=pd.DataFrame(rows))
    costs = profile_costs(run)  # type: ignore[arg-type]
    assert costs.pull == pytest.approx(0.001) and costs.push == pytest.approx(0.002)
    assert np.allclose(costs.compute, 0.010)
    assert costs.warmup == pytest.approx(0.006 + 0.010 + 0.002 + 0.003)  # mean read 6 ms; compute, pull, push extras
