"""Holm's procedure across the runs of a sweep: no false alarms by design, mutants still caught."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sspsim.proofs_check.multiplicity import FAMILY_LEVEL, holm, holm_rejections
from sspsim.proofs_check.verdict import Outcome, Verdict

ROOT = Path(__file__).resolve().parents[1]


def _verdict(p: float, violated: bool, statistical: bool = True, theorem: str = "dutta2018.sync_runtime") -> Verdict:
    return Verdict(theorem, Outcome.VIOLATED if violated else Outcome.HOLDS, 1.0, 1.0, "d", "ref", "R",
                   extra={"p_value": p, "statistical": statistical})


def test_holm_matches_its_definition_on_random_p_values() -> None:
    """Against a direct transcription: reject while p_(k) <= level / (m - k + 1), k = 1..m."""
    rng = np.random.default_rng(0)
    for _ in range(500):
        m = int(rng.integers(1, 15))
        p = list(rng.uniform(0, 0.02, m) if rng.random() < 0.5 else rng.uniform(0, 1, m))
        got = holm_rejections(p, 0.01)
        ranked = sorted(range(m), key=lambda i: p[i])
        k = next((j for j, i in enumerate(ranked) if p[i] > 0.01 / (m - j)), m)
        assert got == [i in set(ranked[:k]) for i in range(m)]
        # Holm rejects at least what Bonferroni rejects, and nothing a per-run test at the same level keeps
        assert all(g for g, pi in zip(got, p) if pi <= 0.01 / m)
        assert not any(g for g, pi in zip(got, p) if pi > 0.01)


def test_a_marginal_per_run_violation_is_not_a_violation_of_the_sweep() -> None:
    verdicts = [_verdict(0.004, True)] + [_verdict(0.3 + 0.05 * i, False, theorem=f"t{i % 2}") for i in range(11)]
    out = holm(verdicts)
    assert not any(v.violated for v in out)
    assert "Holm-Bonferroni over the sweep's 12 interval checks at family level 0.001" in out[0].detail
    assert all(v.extra["family_size"] == 12 and v.extra["family_level"] == FAMILY_LEVEL for v in out)


def test_a_clear_violation_stays_and_structural_ones_are_never_adjusted() -> None:
    verdicts = [_verdict(1e-9, True), _verdict(0.5, True, statistical=False)] + [_verdict(0.5, False) for _ in range(10)]
    out = holm(verdicts)
    assert out[0].violated and "rejected by Holm-Bonferroni" in out[0].detail
    assert out[1] == verdicts[1]  # a learner that waited under ASP: no p-value rescues it
    assert holm([_verdict(1e-4, True)])[0].violated
    assert not holm([_verdict(0.004, True)])[0].violated  # above the family level


def _grid(tmp_path: Path, seed: int, **more: object) -> Path:
    """The README's example grid (staleness x workers), timing only: the runtime laws do not read the math."""
    from sspsim.cli import main

    out = tmp_path / f"grid{seed}"
    sets = ["problem.kind=none", f"run.seed={seed}", *[f"{k}={v}" for k, v in more.items()]]
    args = ["sweep", str(ROOT / "examples" / "design.toml"), "--grid", "consistency.staleness=0,1,3,inf",
            "--grid", "workers.count=4,8,16", "--out", str(out), "-q"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return out


def _dutta(verdicts: list[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.theorem.startswith("dutta2018.") and v.outcome is not Outcome.NOT_APPLICABLE]


def test_readme_grid_checks_clean_and_a_doctored_grid_is_caught(tmp_path: Path) -> None:
    from sspsim.proofs_check import check_path

    out = _grid(tmp_path, 0)
    verdicts = _dutta(check_path(out))
    assert verdicts and not any(v.violated for v in verdicts)
    assert all(v.extra.get("multiplicity") == "holm" for v in verdicts if v.n_runs == 1)
    # the mutant "times x 1.1": every run's commits stretched; the runtime laws must still say violated
    for run in sorted(p for p in out.iterdir() if (p / "trace.csv").is_file()):
        trace = pd.read_csv(run / "trace.csv")
        for col in ("read_time", "start_time", "commit_time", "wait_time", "compute_time"):
            trace[col] = trace[col] * 1.1
        trace.to_csv(run / "trace.csv", index=False)
    doctored = _dutta(check_path(out))
    assert any(v.violated and v.theorem in ("dutta2018.sync_runtime", "dutta2018.async_runtime") for v in doctored)


@pytest.mark.slow
def test_one_hundred_honest_readme_grids_raise_no_false_alarm(tmp_path: Path) -> None:
    """Over 100 seeds of the README grid (1,200 runs), the interval checks never say violated."""
    from sspsim.proofs_check import check_path

    worst = []
    for seed in range(100):
        out = _grid(tmp_path, seed)
        verdicts = _dutta(check_path(out))
        bad = [f"seed {seed}: {v.theorem} {v.run}: {v.detail}" for v in verdicts if v.violated]
        assert not bad, bad
        ps = [v.extra["p_value"] for v in verdicts if "p_value" in v.extra]
        worst.append(min(ps) if ps else math.nan)
    (tmp_path / "smallest_p.json").write_text(json.dumps(worst))


def test_dutta_verdicts_carry_their_p_value() -> None:
    """Outside the 99 % interval exactly when p < 0.01 (the link the procedure relies on)."""
    from sspsim.proofs_check.dutta2018 import Z99, two_sided_p

    assert two_sided_p(Z99 * 0.999, 1.0) > 0.01 > two_sided_p(Z99 * 1.001, 1.0)
    assert two_sided_p(-1.0, 1.0) == 1.0 and two_sided_p(1.0, 0.0) == 0.0
