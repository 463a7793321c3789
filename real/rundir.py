"""The run directory of a real run: DESIGN's layout, written in place as the run goes.

``run.json`` says ``"status": "running"`` from the first moment, so an interrupted run never
looks complete; at the end ``trace.csv`` and ``evals.csv`` are written (each atomically) and
``run.json`` last, with ``complete`` or ``incomplete`` and the reason.
"""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path
from typing import Any

import numpy as np

from sspsim.config import Config
from sspsim.rundir import run_meta, write_meta
from sspsim.trace import Recording, summarize, trace_table

__all__ = ["RealRun", "hardware_facts"]


def hardware_facts(device: str) -> dict[str, Any]:
    """What one process runs on (gathered from every rank into run.json)."""
    import torch

    facts: dict[str, Any] = {
        "host": socket.gethostname(), "platform": platform.platform(), "cpus": os.cpu_count(), "device": device,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    if device.startswith("cuda"):
        facts["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return facts


class RealRun:
    """Writes the files of one real run into ``out``."""

    def __init__(self, out: Path, config: Config, facts: dict[str, Any], *, engine: str, problem: dict[str, Any]) -> None:
        self.out = Path(out)
        self.config = config
        self.facts = facts
        self.engine = engine
        self.problem = problem

    def _meta(self, status: str, **more: Any) -> dict[str, Any]:
        import torch

        return run_meta(self.config, backend="real", problem=self.problem, extra_versions={"torch": torch.__version__},
                         engine=self.engine, status=status, hardware=self.facts, **more)

    def mark_running(self, **more: Any) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        write_meta(self.out, self._meta("running", **more))

    def write(
        self,
        rec: Recording,
        committed: np.ndarray,
        evals: list[dict[str, float]],
        *,
        status: str,
        wall: float,
        reason: str | None = None,
        extra: dict[str, np.ndarray] | None = None,
        **more: Any,
    ) -> None:
        """Write trace.csv (committed iterations only, in commit order, plus ``extra`` columns given
        as (workers x clocks) arrays), evals.csv, and run.json last."""
        import pandas as pd

        table = trace_table(rec)
        order = np.argsort(rec.commit_index, axis=None, kind="stable")
        for name, values in (extra or {}).items():
            table[name] = np.asarray(values).reshape(-1)[order]
        keep = np.asarray(committed).reshape(-1)[order]
        table = {k: v[keep] for k, v in table.items()}
        for name, frame in (("trace.csv", pd.DataFrame(table)), ("evals.csv", pd.DataFrame(evals))):
            tmp = self.out / f"{name}.tmp"
            frame.to_csv(tmp, index=False, lineterminator="\n")
            os.replace(tmp, self.out / name)
        if status == "complete":
            summary = summarize(rec, evals, target=self.config.run.target, message_cost=0.0)
            summary.pop("communication_fraction", None)
        else:
            summary = {"iterations_committed": int(np.asarray(committed).sum())}
        summary["engine"] = self.engine
        summary["wall_time"] = wall
        meta = self._meta(status, summary=summary, files={"trace": "trace.csv", "evals": "evals.csv", "audit": None}, **more)
        if reason:
            meta["reason"] = reason
        write_meta(self.out, meta)
