"""Error control across the runs of a sweep: Holm's step-down procedure (Holm 1979).

A check that is a confidence interval (a statistical test of an expectation) says ``violated``
on an honest run with probability about its level (1 % for the 99 % intervals of Dutta et al.'s
runtime laws).  A sweep's report makes m such claims at once (every interval check on every
run), so the chance of at least one false alarm grows to about 1 - 0.99^m.  Holm's procedure
keeps the family-wise error rate of the whole report at ``FAMILY_LEVEL`` whatever the dependence
between the claims [V, textbook]: with the p-values sorted, p_(1) <= ... <= p_(m), reject
H_(1), ..., H_(k-1), where k is the first index with p_(k) > alpha / (m - k + 1).

The family level is 0.1 %, below the per-run 1 %: a user runs many sweeps, and one false alarm
in a hundred sweeps would still be one too many [D: at 0.1 %, about 0.1 expected over 100].  A
single run keeps its per-run 99 % interval.

Only verdicts whose outcome rests on a p-value alone are adjusted: a check marks those with
``extra["p_value"]`` and ``extra["statistical"] = True``.  A structural failure (a learner that
waited under ASP, a runtime below the slowest worker) stays ``violated`` whatever the p-value.
Each adjusted verdict records the procedure, the family size and the level in ``extra``.
"""

from __future__ import annotations

import dataclasses

from sspsim.proofs_check.verdict import Outcome, Verdict

__all__ = ["FAMILY_LEVEL", "holm", "holm_rejections"]

FAMILY_LEVEL = 0.001  # the family-wise error rate of a sweep's interval checks


def holm_rejections(p_values: list[float], level: float = FAMILY_LEVEL) -> list[bool]:
    """Which hypotheses Holm's procedure rejects at family-wise level ``level``.

    >>> holm_rejections([0.001, 0.2, 0.006], level=0.01)
    [True, False, False]
    >>> holm_rejections([0.001, 0.2, 0.003], level=0.01)
    [True, False, True]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    reject = [False] * m
    for k, i in enumerate(order):  # k = 0 .. m-1: threshold level / (m - k)
        if p_values[i] > level / (m - k):
            break
        reject[i] = True
    return reject


def holm(verdicts: list[Verdict], level: float = FAMILY_LEVEL) -> list[Verdict]:
    """``verdicts`` (a sweep's run-scope verdicts) with Holm's procedure applied to the family of all
    that carry a p-value; a per-run violation Holm does not reject becomes ``holds``, saying so."""
    members = [i for i, v in enumerate(verdicts)
               if v.extra.get("statistical") and v.extra.get("p_value") is not None
               and v.outcome is not Outcome.NOT_APPLICABLE]
    out = list(verdicts)
    if members:
        m = len(members)
        rejected = holm_rejections([float(verdicts[i].extra["p_value"]) for i in members], level)
        for i, reject in zip(members, rejected):
            v = verdicts[i]
            extra = {**v.extra, "multiplicity": "holm", "family_size": m, "family_level": level}
            outcome, detail = v.outcome, v.detail
            if v.violated and not reject:
                outcome = Outcome.HOLDS
                detail = (f"{detail}; outside its per-run interval, but not a violation after Holm-Bonferroni "
                          f"over the sweep's {m} interval checks at family level {level:g} (p = {v.extra['p_value']:.3g})")
            elif not v.violated and reject:  # pragma: no cover - a p-value below every threshold is outside the interval
                outcome = Outcome.VIOLATED
            elif v.violated:
                detail = f"{detail}; rejected by Holm-Bonferroni over the sweep's {m} interval checks at family level {level:g}"
            out[i] = dataclasses.replace(v, outcome=outcome, detail=detail, extra=extra)
    return out
