"""The real backend's K-sync server (backup workers), its loop run in one process: the worker
threads talk to it through an :class:`InProcessTransport`, as in test_server_loop.py."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

import sspsim  # noqa: E402
from sspsim.problems import make_problem  # noqa: E402
from sspsim.proofs_check.evidence import RunData  # noqa: E402
from sspsim.proofs_check.invariants import WellFormed  # noqa: E402
from sspsim.real.ksync import KSyncServer  # noqa: E402
from sspsim.real.transport import InProcessHub  # noqa: E402
from sspsim.real.worker import Worker  # noqa: E402

C, P, K = 12, 3, 2


def _run(out: Path) -> int:
    config = sspsim.config_from_dict({
        "run": {"clocks": C}, "problem": {"kind": "mlp", "hidden": [8], "samples": 200},
        "optimizer": {"lr": 0.1, "schedule": "constant"}, "consistency": {"model": "ksync", "k": K},
        "workers": {"count": P, "speed": {"kind": "constant", "value": 0.004},
                    "stragglers": [{"worker": 0, "slowdown": 6.0}]},
        "real": {"timeout": 10},
    })
    problem = make_problem(config.problem, config.problem_seed)
    hub = InProcessHub(P + 1, problem.n_params, timeout=30)
    threads = [threading.Thread(target=lambda p=p: Worker(config, p, torch.device("cpu"), transport=hub.endpoint(p + 1),
                                                          problem=problem).run(), daemon=True) for p in range(P)]
    for t in threads:
        t.start()
    try:
        code = KSyncServer(config, out, facts={"ranks": []}, transport=hub.endpoint(0), problem=problem).run()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive(), "a worker thread never finished"
    finally:
        hub.close()
    return code


def test_ksync_server_applies_k_per_round_and_drops_the_straggler(tmp_path: Path) -> None:
    assert _run(tmp_path / "run") == 0
    run = sspsim.read_run(tmp_path / "run")
    assert run.meta["status"] == "complete"
    trace = pd.DataFrame(run.trace)
    kept = trace[trace["discarded"] == 0]
    assert len(kept) == K * C  # exactly K gradients applied in each of the C rounds
    assert np.all(np.diff(kept["commit_time"].to_numpy()) >= 0)
    # the 6x slower worker rarely makes the first K: it runs fewer iterations, most of them dropped
    slow = trace[trace["worker"] == 0]
    assert len(slow) < C and slow["discarded"].mean() > 0.5
    assert trace[trace["discarded"] == 1]["loss"].isna().all()
    evals = pd.DataFrame(run.evals)
    assert evals["objective"].iloc[-1] < evals["objective"].iloc[0]
    assert WellFormed().check(RunData.from_run(run)).outcome.value == "holds"
