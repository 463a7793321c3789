"""The catalogue: every check, in the order reports list them (an explicit tuple, no discovery)."""

from __future__ import annotations

from sspsim.errors import InputError
from sspsim.proofs_check import dai2015, delayed, dutta2018, ho2013, invariants, kumar2015, lian2015, zhang2016
from sspsim.proofs_check.theorem import Theorem

__all__ = ["CATALOGUE", "select"]

CATALOGUE: tuple[Theorem, ...] = (
    invariants.WellFormed(),
    invariants.Gate(),
    invariants.ReadGuarantee(),
    invariants.ReadMyWrites(),
    invariants.NoFutureReads(),
    invariants.ReplayNoisyView(),
    invariants.Limits(),
    ho2013.InconsistencyBound(),
    ho2013.IndexWindow(),
    ho2013.Regret(),
    ho2013.RegretRate(),
    dai2015.TailBound(),
    dai2015.EsspInconsistency(),
    lian2015.ErgodicRate(),
    zhang2016.AsyncStalenessLaw(),
    delayed.StabilityThreshold(),
    delayed.StationaryLoss(),
    dutta2018.SyncRuntime(),
    dutta2018.AsyncRuntime(),
    dutta2018.SSPRuntime(),
    dutta2018.KSyncRuntime(),
    dutta2018.KBatchSyncRuntime(),
    dutta2018.LocalSGDRuntime(),
    kumar2015.SameOptimum(),
    kumar2015.LayerwiseTracking(),
    kumar2015.LayerGradients(),
    kumar2015.WeightsInProbability(),
)


def select(names: list[str] | tuple[str, ...] = ()) -> tuple[Theorem, ...]:
    """The theorems named (exactly, or by a prefix such as ``ho2013`` or ``ssp.I``); all when none."""
    if not names:
        return CATALOGUE
    chosen: list[Theorem] = []
    for name in names:
        hits = [t for t in CATALOGUE if t.name == name or t.name.startswith(name)]
        if not hits:
            known = ", ".join(t.name for t in CATALOGUE)
            raise InputError("--theorem", name, f"no such theorem; known: {known}")
        chosen.extend(t for t in hits if t not in chosen)
    return tuple(chosen)
