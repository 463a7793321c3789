"""``compare``: the headline is the largest timing error; metrics equal by construction stand apart."""

from __future__ import annotations

from typing import Any

import pytest

from sspsim.comparison import TIMING_METRICS, by_construction, compare_runs
from sspsim.errors import InputError
from sspsim.rundir import Run


def _run(policy: str, s: Any, summary: dict[str, float], backend: str, workers: int = 3) -> Run:
    config = {"run": {"clocks": 50}, "workers": {"count": workers},
              "consistency": {"staleness": s, "read_policy": policy}, "optimizer": {"staleness_aware": False}}
    return Run({"config": config, "backend": backend, "status": "complete", "summary": summary})


MEASURED = {"mean_iteration_time": 0.10, "wait_fraction": 0.20, "time_to_target": 4.0, "throughput": 30.0,
            "mean_staleness": 1.5, "final_objective": 0.30}


def test_headline_is_the_largest_timing_error_and_exact_metrics_stay_out() -> None:
    """A wrong network model: timing far off, staleness and objective exact under lazy reads."""
    predicted = {**MEASURED, "mean_iteration_time": 0.147, "wait_fraction": 0.31, "throughput": 20.4}
    c = compare_runs(_run("lazy", 2, predicted, "sim"), _run("lazy", 2, MEASURED, "real"))
    errors = {m.name: m.error for m in c.metrics}
    assert c.max_timing_error == pytest.approx(0.55) == pytest.approx(errors["wait_fraction"])
    assert c.worst_timing_metric == "wait_fraction"
    flags = {m.name: m.by_construction for m in c.metrics}
    assert flags == {"mean_iteration_time": False, "wait_fraction": False, "time_to_target": False,
                     "throughput": False, "mean_staleness": True, "final_objective": True}
    # the geometric mean leaves out the exact metrics, yet an exact timing metric still pulls it down:
    # it is kept for continuity, not as the headline
    g = (0.47 * 0.55 * 1e-3 * (1 - 20.4 / 30.0)) ** 0.25
    assert c.geomean_error == pytest.approx(g) and c.geomean_error < c.max_timing_error
    d = c.to_dict()
    assert {"max_timing_error", "geomean_error", "metrics"} <= set(d)
    assert all({"timing", "by_construction"} <= set(m) for m in d["metrics"])


def test_eager_reads_make_staleness_and_objective_predictions() -> None:
    predicted = {**MEASURED, "mean_staleness": 1.2, "final_objective": 0.33}
    c = compare_runs(_run("eager", 2, predicted, "sim"), _run("eager", 2, MEASURED, "real"))
    assert not any(m.by_construction for m in c.metrics)
    assert c.max_timing_error == 0.0  # staleness and objective errors are not timing metrics
    assert c.geomean_error == pytest.approx((1e-3**4 * 0.2 * 0.1) ** (1 / 6))


@pytest.mark.parametrize(("policy", "s", "workers", "exact"), [
    ("lazy", 3, 4, {"mean_staleness", "final_objective"}),
    ("eager", 0, 4, {"mean_staleness"}),
    ("eager", 3, 1, {"mean_staleness", "final_objective"}),
    ("push", 3, 4, set()),
    ("eager", "inf", 4, set()),
])
def test_by_construction_rules(policy: str, s: Any, workers: int, exact: set[str]) -> None:
    config = {"workers": {"count": workers}, "consistency": {"staleness": s, "read_policy": policy}}
    assert by_construction(config) == exact
    assert not (by_construction(config) & TIMING_METRICS)


def test_staleness_aware_steps_make_the_objective_timing_dependent() -> None:
    config = {"workers": {"count": 4}, "consistency": {"staleness": 2, "read_policy": "lazy"},
              "optimizer": {"staleness_aware": True}}
    assert by_construction(config) == {"mean_staleness"}


def test_several_real_runs_are_compared_through_their_median_with_their_spread() -> None:
    """Three real runs: each metric is measured by their median, and their spread (max - min) / median
    stands beside it; the one-run form has neither."""
    runs = [{**MEASURED, "mean_iteration_time": t, "wait_fraction": w} for t, w in ((0.09, 0.25), (0.10, 0.20), (0.13, 0.10))]
    predicted = {**MEASURED, "mean_iteration_time": 0.11, "wait_fraction": 0.20}
    c = compare_runs(_run("eager", 2, predicted, "sim"), *(_run("eager", 2, r, "real") for r in runs))
    by = {m.name: m for m in c.metrics}
    assert by["mean_iteration_time"].measured == 0.10 and by["mean_iteration_time"].error == pytest.approx(0.1)
    assert by["mean_iteration_time"].spread == pytest.approx(0.4) and by["wait_fraction"].spread == pytest.approx(0.75)
    assert by["throughput"].spread == 0.0 and c.max_timing_spread == pytest.approx(0.75)
    assert c.max_timing_error == pytest.approx(0.1)
    d = c.to_dict()
    assert len(d["replicates"]) == 3 and d["metrics"][0]["runs"] == [0.09, 0.10, 0.13]
    one = compare_runs(_run("eager", 2, predicted, "sim"), _run("eager", 2, runs[0], "real"))
    assert "replicates" not in one.to_dict() and one.max_timing_spread is None
    with pytest.raises(InputError, match=r"workers\.count"):
        compare_runs(_run("eager", 2, predicted, "sim"), _run("eager", 2, runs[0], "real"),
                     _run("eager", 2, runs[1], "real", workers=4))


def _simulated(tmp_path, name: str, seed: int):  # type: ignore[no-untyped-def]
    import sspsim

    config = sspsim.config_from_dict({
        "run": {"clocks": 15, "seed": seed, "target": 0.6}, "problem": {"kind": "logistic", "samples": 200},
        "consistency": {"staleness": 1, "read_policy": "eager"}, "workers": {"count": 3}})
    return sspsim.simulate(config, tmp_path / name).path


def test_cli_max_error_and_json(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Two seeds of one config differ in timing: --max-error 0 exits 1, a loose limit exits 0."""
    import json

    from sspsim.cli import main

    a, b = _simulated(tmp_path, "a", 0), _simulated(tmp_path, "b", 1)
    assert main(["compare", str(a), str(b), "--max-error", "0"]) == 1
    out = capsys.readouterr().out
    assert "largest timing error" in out and "EXCEEDED" in out
    assert main(["compare", str(a), str(b), "--max-error", "100", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["max_timing_error"] > 0 and data["exceeded"] is False
    assert {m["name"] for m in data["metrics"] if m["timing"]} == set(TIMING_METRICS)
    assert main(["compare", str(a), str(b)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(a), str(b), "--max-error", "-1"])
    assert exc.value.code == 2
    c = _simulated(tmp_path, "c", 2)
    assert main(["compare", str(a), str(b), str(c), str(a), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["replicates"]) == 3 and data["max_timing_spread"] > 0
    assert all(m["measured"] == sorted(m["runs"])[1] for m in data["metrics"] if None not in m["runs"])
    assert main(["compare", str(a), str(b), str(c)]) == 0
    assert "median of 2 real runs" in capsys.readouterr().out


def test_cli_export(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from sspsim.cli import main

    a = _simulated(tmp_path, "a", 0)
    assert main(["export", str(a), "--perfetto", str(tmp_path / "t.json")]) == 0
    assert json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    assert main(["export", str(tmp_path / "nothing"), "--perfetto", str(tmp_path / "u.json")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
