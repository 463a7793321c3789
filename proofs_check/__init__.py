"""Executable convergence theorems for SSP runs: ``check(run_dir) -> [Verdict]``.

Each module holds one source's statements (Ho et al. 2013, Dai et al. 2015, Lian et al. 2015,
Dutta et al. 2018, Kumar et al. 2015, and the protocol invariants).  Checks read run
directories only, from any backend or written by hand, and return frozen verdicts; they never
assert or print.
"""

from sspsim.proofs_check.evidence import RunData, SweepData, load_evidence
from sspsim.proofs_check.registry import CATALOGUE, select
from sspsim.proofs_check.runner import check_evidence, check_path
from sspsim.proofs_check.theorem import Finding, Reference, Theorem
from sspsim.proofs_check.verdict import Outcome, Verdict

__all__ = [
    "CATALOGUE",
    "Finding",
    "Outcome",
    "Reference",
    "RunData",
    "SweepData",
    "Theorem",
    "Verdict",
    "check_evidence",
    "check_path",
    "load_evidence",
    "select",
]
