"""What a theorem check is: a name, a reference with its evidence tag, assumptions, a measurement.

Tags (reference/theorems.md): **V** read in a source, **R** recalled from the named paper,
**D** derived here and checked numerically, **X** a reconstruction (never the paper's own
statement).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sspsim.proofs_check.verdict import Outcome, Verdict

__all__ = ["Finding", "Reference", "Theorem"]

E = TypeVar("E")


@dataclass(frozen=True)
class Reference:
    """Where a statement comes from, and how sure we are of it."""

    source: str  # "Ho et al. 2013"
    where: str  # "Theorem 1"
    tag: str  # V | R | D | X

    def __str__(self) -> str:
        return f"{self.source}, {self.where} [{self.tag}]"


@dataclass(frozen=True)
class Finding:
    """The result of a measurement: measured value, bound, whether the statement held, one line.

    ``applicable=False`` is for a premise that only the measurement can test (iterates leaving
    the region the theorem assumes): the verdict is then ``not_applicable``, never ``holds``.
    """

    holds: bool
    measured: float | None
    bound: float | None
    detail: str
    extra: dict | None = None
    applicable: bool = True


class Theorem(Generic[E]):
    """Base of every check.  Subclasses set ``name``, ``reference``, ``scope`` and implement
    ``assumptions`` (unmet ones, as one-line strings) and ``measure``."""

    name: str = ""
    reference: Reference
    scope: str = "run"  # "run": one run directory; "sweep": a group of runs
    summary: str = ""

    def assumptions(self, evidence: E) -> list[str]:
        """The unmet assumptions (empty: the statement applies)."""
        return []

    def measure(self, evidence: E) -> Finding:
        raise NotImplementedError

    needs_well_formed: bool = True  # every check but the one that tests it reads a well-formed trace
    models: tuple[str, ...] = ("ssp",)  # the consistency models (config consistency.model) the statement is about

    def check(self, evidence: E, *, run: str | None = None, n_runs: int = 1) -> Verdict:
        """Assumptions first: an unmet one gives ``not_applicable`` naming it, never ``holds``."""
        unmet = self._model(evidence)
        evidence = self._of_models(evidence)
        unmet = unmet or (self._structure(evidence) if self.needs_well_formed else [])
        unmet = unmet or self.assumptions(evidence)
        if unmet:
            return self._verdict(Outcome.NOT_APPLICABLE, None, None, "; ".join(unmet), run, n_runs)
        found = self.measure(evidence)
        if not found.applicable:
            outcome = Outcome.NOT_APPLICABLE
        else:
            outcome = Outcome.HOLDS if found.holds else Outcome.VIOLATED
        return self._verdict(outcome, found.measured, found.bound, found.detail, run, n_runs, found.extra)

    def _model(self, evidence: object) -> list[str]:
        """A run's consistency model outside :attr:`models` (for a sweep: when no run's is inside)."""
        runs = getattr(evidence, "runs", None) or [evidence]
        found = [getattr(getattr(getattr(rd, "config", None), "consistency", None), "model", "ssp") for rd in runs]
        if any(m in self.models for m in found):
            return []
        return [f"consistency.model = {found[0]!r}: this statement is about {' / '.join(self.models)}"]

    def _of_models(self, evidence: E) -> E:
        """A sweep narrowed to its runs of :attr:`models` (a run is returned as it is)."""
        runs = getattr(evidence, "runs", None)
        if runs is None:
            return evidence
        keep = [rd for rd in runs if rd.config.consistency.model in self.models]
        return evidence if len(keep) == len(runs) or not keep else type(evidence)(evidence.path, keep)  # type: ignore[attr-defined, call-arg]

    @staticmethod
    def _structure(evidence: object) -> list[str]:
        runs = getattr(evidence, "runs", None) or [evidence]
        for rd in runs:
            problem = getattr(rd, "structure_problem", None)
            if problem:
                return [f"{getattr(rd, 'name', 'run')}: trace not well-formed ({problem}; see ssp.I0_well_formed)"]
        return []

    def _verdict(self, outcome, measured, bound, detail, run, n_runs, extra=None) -> Verdict:  # type: ignore[no-untyped-def]
        return Verdict(
            theorem=self.name, outcome=outcome, measured=measured, bound=bound, detail=detail,
            reference=str(self.reference), tag=self.reference.tag, run=run, n_runs=n_runs, extra=extra or {},
        )

    def __repr__(self) -> str:
        return f"<Theorem {self.name}: {self.reference}>"
