"""Verdicts: what a theorem check found, as a value (checks never assert or print)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Outcome", "Verdict"]


class Outcome(StrEnum):
    """``holds``, ``violated``, or ``not_applicable`` (an assumption is unmet; never "holds")."""

    HOLDS = "holds"
    VIOLATED = "violated"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class Verdict:
    """One theorem on one run (or one sweep): the measured value beside the bound.

    ``ratio = measured / bound`` where both are numbers; for an upper bound, ratio <= 1 means
    the statement held with that much room.
    """

    theorem: str
    outcome: Outcome
    measured: float | None
    bound: float | None
    detail: str
    reference: str
    tag: str
    run: str | None = None
    n_runs: int = 1
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def ratio(self) -> float | None:
        if self.measured is None or self.bound is None or self.bound == 0:
            return None
        if not (math.isfinite(self.measured) and math.isfinite(self.bound)):
            return None
        return self.measured / self.bound

    @property
    def violated(self) -> bool:
        return self.outcome is Outcome.VIOLATED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the objects ``sspsim check --json`` prints)."""
        out: dict[str, Any] = {
            "theorem": self.theorem,
            "outcome": self.outcome.value,
            "measured": _num(self.measured),
            "bound": _num(self.bound),
            "ratio": _num(self.ratio),
            "detail": self.detail,
            "reference": self.reference,
            "tag": self.tag,
            "run": self.run,
            "n_runs": self.n_runs,
        }
        if self.extra:
            out["extra"] = {k: _num(v) if isinstance(v, float) else v for k, v in self.extra.items()}
        return out

    def __str__(self) -> str:
        nums = ""
        if self.measured is not None:
            nums = f" measured {self.measured:.4g}"
            if self.bound is not None:
                nums += f" vs bound {self.bound:.4g}"
        return f"{self.theorem}: {self.outcome.value}{nums} ({self.detail})"


def _num(v: float | None) -> float | str | None:
    if v is None:
        return None
    v = float(v)
    if math.isfinite(v):
        return v
    return "inf" if v > 0 else "-inf" if v < 0 else "nan"
