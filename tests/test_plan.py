"""sspsim plan: a sweep over staleness and workers with seeds, a recommendation and a diagnosis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sspsim.cli import main
from sspsim.sim.plan import plan

BASE = {
    "run": {"clocks": 40, "target": 1.6},
    "problem": {"kind": "mlp", "hidden": [8], "samples": 400},
    "optimizer": {"lr": 0.1, "schedule": "constant"},
    "workers": {"count": 4, "speed": {"kind": "constant", "value": 1.0}},
}


def _plan(tmp_path: Path, workers: dict) -> dict:
    raw = {**BASE, "workers": {**BASE["workers"], **workers}}
    result = plan(raw, tmp_path, tmp_path / "plan", axes={"consistency.staleness": ["0", "3", "inf"]}, seeds=2)
    assert (tmp_path / "plan" / "plan.json").is_file()
    return result.to_dict()


def test_transient_slowdowns_are_diagnosed_as_what_staleness_absorbs(tmp_path: Path) -> None:
    """Random 4x slowdowns: finite s is faster per clock than BSP, and the plan says so."""
    out = _plan(tmp_path, {"transient": {"probability": 0.2, "factor": 4.0, "duration": 1}})
    assert out["diagnosis"]["kind"].startswith("transient variability")
    assert out["diagnosis"]["speedup_finite_s_over_bsp"] > 1.1
    assert out["best"] is not None and len(out["points"]) == 3
    assert all(p["p10"] <= p["median_time_to_target"] <= p["p90"] for p in out["points"])


def test_persistent_straggler_is_diagnosed_and_asp_advised(tmp_path: Path) -> None:
    """One worker 4x slower all along: no finite s helps; the advice names ASP and rebalancing."""
    out = _plan(tmp_path, {"stragglers": [{"worker": 0, "slowdown": 4.0}]})
    assert out["diagnosis"]["kind"] == "persistent straggler"
    assert out["diagnosis"]["slowest_over_median_pace"] == pytest.approx(4.0, rel=0.01)
    assert "ASP" in out["diagnosis"]["advice"] and "rebalanc" in out["diagnosis"]["advice"]


def test_homogeneous_workers_gain_little(tmp_path: Path) -> None:
    out = _plan(tmp_path, {})
    assert out["diagnosis"]["kind"] == "homogeneous"


def test_plan_cli_needs_a_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without run.target or --target the plan cannot rank anything: exit 2, one line."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[problem]\nkind = "mlp"\nhidden = [8]\n[run]\nclocks = 10\n')
    assert main(["plan", str(cfg), "--out", str(tmp_path / "p"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sspsim: error: run.target") and len(err.strip().splitlines()) == 1


def test_plan_cli_prints_the_best(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[problem]\nkind = "mlp"\nhidden = [8]\nsamples = 400\n[run]\nclocks = 30\ntarget = 1.5\n'
                   '[workers]\ncount = 3\nspeed = { kind = "exponential", mean = 1.0 }\n')
    assert main(["plan", str(cfg), "--out", str(tmp_path / "p"), "--staleness", "0,2", "--workers", "2,3", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "<- best" in out
    data = json.loads((tmp_path / "p" / "plan.json").read_text())
    # 2 staleness x 2 worker counts, and one backup worker (ksync, K = P - 1) at each worker count
    assert len(data["points"]) == 6 and data["best"] in {p["label"] for p in data["points"]}
    backups = sorted(p["settings"]["consistency.k"] for p in data["points"] if "consistency.model" in p["settings"])
    assert backups == ["1", "2"]
