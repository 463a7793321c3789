"""Run the catalogue on a run directory or a sweep directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sspsim.proofs_check.evidence import RunData, SweepData, evidence_of, load_evidence
from sspsim.proofs_check.multiplicity import holm
from sspsim.proofs_check.registry import select
from sspsim.proofs_check.theorem import Theorem
from sspsim.proofs_check.verdict import Outcome, Verdict

if TYPE_CHECKING:  # pragma: no cover
    from sspsim.rundir import Run

__all__ = ["check_evidence", "check_path", "check_runs"]


def check_path(path: str | Path, theorems: list[str] | tuple[str, ...] = (), *, complete_only: bool = False) -> list[Verdict]:
    """Verdicts for a run directory (its run-scope theorems) or a sweep directory (each run's,
    with Holm's procedure over the runs for the interval checks (:mod:`.multiplicity`), then the
    sweep-scope theorems over the group)."""
    return check_evidence(load_evidence(path, complete_only=complete_only), select(theorems))


def check_runs(path: str | Path, runs: Sequence[Run], theorems: list[str] | tuple[str, ...] = ()) -> list[Verdict]:
    """:func:`check_path` on runs already read from ``path`` (by :func:`sspsim.rundir.read_runs`):
    the same verdicts, without reading the files again."""
    return check_evidence(evidence_of(path, list(runs)), select(theorems))


def check_evidence(evidence: RunData | SweepData, theorems: tuple[Theorem, ...]) -> list[Verdict]:
    verdicts: list[Verdict] = []
    if isinstance(evidence, RunData):
        for theorem in theorems:
            if theorem.scope == "run":
                verdicts.append(theorem.check(evidence, run=evidence.name))
            else:
                verdicts.append(theorem._verdict(
                    Outcome.NOT_APPLICABLE, None, None, "needs a sweep directory (a folder of run directories)",
                    evidence.name, 1))
        return verdicts
    for run in evidence.runs:
        verdicts.extend(theorem.check(run, run=run.name) for theorem in theorems if theorem.scope == "run")
    verdicts = holm(verdicts)  # interval checks: control the false alarms across the sweep's runs
    for theorem in theorems:
        if theorem.scope == "sweep":
            verdicts.append(theorem.check(evidence, run=evidence.name, n_runs=len(evidence)))
    return verdicts
