"""The real backend's server and worker loops in one process: threads talking through an
:class:`InProcessTransport` (the same messages as Gloo, without torchrun), so the loops get unit
tests that take a second."""

from __future__ import annotations

import json
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import sspsim  # noqa: E402
from sspsim.problems import make_problem  # noqa: E402
from sspsim.proofs_check import check_path  # noqa: E402
from sspsim.real.server import Server  # noqa: E402
from sspsim.real.transport import (  # noqa: E402
    HEADER,
    InProcessHub,
    InProcessTransport,
    Kind,
    ServerHeader,
    WorkerHeader,
    decode,
    encode,
    encode_into,
)
from sspsim.real.worker import Worker  # noqa: E402

CONFIG = """
[run]
clocks = 10
[problem]
kind = "mlp"
hidden = [8]
samples = 200
[optimizer]
lr = 0.1
schedule = "constant"
[consistency]
staleness = 1
[workers]
count = 3
speed = { kind = "constant", value = 0.002 }
stragglers = [ { worker = 0, slowdown = 3.0 } ]
[real]
timeout = 10
"""


def _config(**sets: str) -> sspsim.Config:
    raw = sspsim.config.apply_overrides(tomllib.loads(CONFIG), [f"{k.replace('__', '.')}={v}" for k, v in sets.items()])
    return sspsim.config_from_dict(raw)


class _GoesSilent:
    """A worker's transport that stops the worker, without a word, when it would push ``clock``."""

    def __init__(self, inner: InProcessTransport, clock: int) -> None:
        self.inner, self.clock = inner, clock

    def send(self, dst, header, payload=None):  # type: ignore[no-untyped-def]
        if header.kind is Kind.PUSH and header.clock == self.clock:
            raise _Silent()
        self.inner.send(dst, header, payload)

    def recv_from(self, src):  # type: ignore[no-untyped-def]
        return self.inner.recv_from(src)


class _Silent(Exception):
    pass


def _run(config: sspsim.Config, out: Path, *, silent: dict[int, int] | None = None,
         absent: tuple[int, ...] = (), late: dict[int, float] | None = None) -> tuple[int, dict[int, int | str]]:
    """The server loop on this thread, one thread per worker; exit codes of the server and workers.

    ``silent`` maps a worker to the clock it goes silent at; ``absent`` workers never start;
    ``late`` maps a worker to the seconds it sleeps before it starts.
    """
    problem = make_problem(config.problem, config.problem_seed)
    P = config.workers.count
    hub = InProcessHub(P + 1, problem.n_params, timeout=30)
    codes: dict[int, int | str] = {}

    def work(p: int) -> None:
        if late and p in late:
            time.sleep(late[p])
        transport = hub.endpoint(p + 1)
        if silent and p in silent:
            transport = _GoesSilent(transport, silent[p])  # type: ignore[assignment]
        try:
            codes[p] = Worker(config, p, torch.device("cpu"), transport=transport, problem=problem).run()
        except _Silent:
            codes[p] = "silent"

    threads = [threading.Thread(target=work, args=(p,), daemon=True) for p in range(P) if p not in absent]
    for t in threads:
        t.start()
    try:
        code = Server(config, out, facts={"ranks": []}, transport=hub.endpoint(0), problem=problem).run()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive(), "a worker thread never finished"
    finally:
        hub.close()
    return code, codes


def test_header_round_trip_through_the_wire_format() -> None:
    """Every field of both headers comes back with its type; the payload follows the header."""
    push = WorkerHeader(Kind.PUSH, worker=2, clock=7, loss=0.125, compute_time=0.5, start_time=1.7e9 + 0.25,
                        real_compute=0.1, sent=1.7e9 + 0.75)
    read = ServerHeader(Kind.READ, clock=8, read_time=3.5, visible_clock=6, read_updates=19, server_now=1.7e9)
    for header in (push, read, ServerHeader(Kind.STOP), WorkerHeader(Kind.HELLO, worker=0)):
        buf = encode(header, np.arange(3.0), 3)
        assert buf.shape == (HEADER + 3,)
        msg = decode(5, buf)
        assert msg.header == header and type(msg.header) is type(header) and msg.source == 5
        assert msg.payload.tolist() == [0.0, 1.0, 2.0]
    assert isinstance(decode(1, encode(push, None, 0)).header.clock, int)
    with pytest.raises(ValueError):
        decode(1, np.zeros(HEADER))  # kind 0 is no message


def test_in_process_receive_from_one_source_keeps_the_others() -> None:
    """Like Gloo's recv(src): messages from other ranks wait for their own receive."""
    hub = InProcessHub(3, 1, timeout=5)
    a, b, c = hub.endpoint(0), hub.endpoint(1), hub.endpoint(2)
    b.send(0, WorkerHeader(Kind.HELLO, worker=0))
    c.send(0, WorkerHeader(Kind.HELLO, worker=1))
    payload = np.array([4.0])
    b.send(0, WorkerHeader(Kind.PUSH, worker=0, clock=1), payload)
    payload[0] = -1.0  # the message is a copy, as over a wire
    assert a.recv_from(2).header == WorkerHeader(Kind.HELLO, worker=1)
    first, second = a.recv_from(1), a.recv_from(1)
    assert first.header.kind is Kind.HELLO and second.header.kind is Kind.PUSH
    assert second.payload.tolist() == [4.0]
    quiet = InProcessHub(2, 1, timeout=0.05).endpoint(1)
    with pytest.raises(ConnectionError, match="received nothing"):
        quiet.recv_from(0)


def test_server_loop_with_three_worker_threads_obeys_the_gate(tmp_path: Path) -> None:
    """3 workers, one 3x slower, s = 1: a complete run, one trace row per iteration, the gate and
    read guarantee hold, and the fast workers wait at the gate for the straggler."""
    code, workers = _run(_config(), tmp_path / "run")
    assert code == 0 and workers == {0: 0, 1: 0, 2: 0}
    run = sspsim.read_run(tmp_path / "run")
    assert run.meta["backend"] == "real" and run.complete
    trace = run.trace
    assert len(trace) == 3 * 10
    assert sorted(zip(trace.worker, trace.clock)) == [(p, c) for p in range(3) for c in range(1, 11)]
    assert sorted(trace.commit_index) == list(range(1, 31))
    assert trace.staleness.max() <= 1
    checks = check_path(tmp_path / "run")
    assert [str(v) for v in checks if v.violated] == []
    held = {v.theorem for v in checks if v.outcome.value == "holds"}
    assert {"ssp.I1_gate", "ssp.I2_read_guarantee"} <= held
    wait = trace.groupby("worker").wait_time.sum()
    assert wait.idxmin() == 0


def test_the_run_starts_when_every_worker_has_reported_in(tmp_path: Path) -> None:
    """A worker whose process comes up late does not make the others wait at the gate: the run's
    clock starts at its HELLO, so every first read is served at about time 0 and nobody waits
    for it (as in the simulator, where every worker starts at 0)."""
    code, _ = _run(_config(), tmp_path / "run", late={2: 0.5})
    assert code == 0
    trace = sspsim.read_run(tmp_path / "run").trace
    first = trace[trace.clock == 1]
    assert len(first) == 3 and first.read_time.max() < 0.25, first.read_time.tolist()
    assert first.wait_time.max() < 0.25 and trace.wait_time.sum() < 0.5, trace.wait_time.sum()


def test_bsp_lazy_loop_reproduces_the_simulator_trajectory(tmp_path: Path) -> None:
    """s = 0, lazy reads: the loop's losses equal the simulator's (the reads are forced)."""
    config = _config(consistency__staleness="0", consistency__read_policy='"lazy"', workers__count="2",
                     workers__stragglers="[]")
    code, _ = _run(config, tmp_path / "run")
    assert code == 0
    real = sspsim.read_run(tmp_path / "run").trace.sort_values(["worker", "clock"])
    sim = sspsim.simulate(config).trace.sort_values(["worker", "clock"])
    assert (real.staleness == 0).all()
    assert np.allclose(real.loss.to_numpy(), sim.loss.to_numpy(), rtol=1e-12, atol=1e-12)


def test_eager_loop_with_momentum_reproduces_the_simulator_trajectory(tmp_path: Path) -> None:
    """One worker (eager reads are then deterministic), momentum 0.5: with x kept in the server
    transport's outgoing payload and gradients staged into the worker's, the losses equal the
    simulator's."""
    config = _config(workers__count="1", workers__stragglers="[]", consistency__read_policy='"eager"',
                     optimizer__momentum="0.5")
    code, _ = _run(config, tmp_path / "run")
    assert code == 0
    real = sspsim.read_run(tmp_path / "run").trace.sort_values(["worker", "clock"])
    sim = sspsim.simulate(config).trace.sort_values(["worker", "clock"])
    assert np.allclose(real.loss.to_numpy(), sim.loss.to_numpy(), rtol=1e-12, atol=1e-12)


def test_encode_into_writes_the_header_and_copies_only_a_foreign_payload() -> None:
    """The reused send buffer: a stale header tail is zeroed, a payload already in place is not
    copied (same memory), another is, and None leaves the payload as it was."""
    buf = np.full(HEADER + 3, 9.0)
    encode_into(buf, ServerHeader(Kind.READ, clock=2), np.arange(3.0))
    assert buf.tolist() == [4.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0]
    buf[HEADER:] = 7.0
    encode_into(buf, ServerHeader(Kind.DONE), None)
    assert buf.tolist() == [5.0] + [0.0] * 7 + [7.0] * 3
    view = buf[HEADER:]
    view[:] = [1.0, 2.0, 3.0]
    encode_into(buf, WorkerHeader(Kind.PUSH, worker=1, clock=3), view)
    assert decode(1, buf).header == WorkerHeader(Kind.PUSH, worker=1, clock=3) and buf[HEADER:].tolist() == [1.0, 2.0, 3.0]
    encode_into(buf, WorkerHeader(Kind.PUSH, worker=1, clock=4), view[::-1])  # overlapping, not the same: copied
    assert buf[HEADER:].tolist() == [3.0, 2.0, 1.0]


def test_worker_that_goes_silent_is_reported_and_the_others_are_stopped(tmp_path: Path) -> None:
    """Worker 1 stops talking at clock 3: after real.timeout the run is written incomplete naming
    it, and the workers held at the gate behind it are told to stop (their threads end, exit 0:
    the failure is the server's to report)."""
    code, workers = _run(_config(real__timeout="0.5"), tmp_path / "run", silent={1: 3})
    assert code == 1
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["status"] == "incomplete"
    assert meta["reason"] == "lost a worker: worker 1 sent nothing for 0.5 s during an iteration (real.timeout)"
    assert workers == {0: 0, 1: "silent", 2: 0}
    committed = meta["summary"]["iterations_committed"]
    assert 2 * 3 <= committed < 3 * 10


def test_worker_that_never_reports_in_is_named(tmp_path: Path) -> None:
    """A worker that never says HELLO: the server gives up after real.timeout and says which."""
    code, workers = _run(_config(real__timeout="0.3"), tmp_path / "run", absent=(2,))
    assert code == 1
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["status"] == "incomplete" and "worker 2 never reported in within 0.3 s" in meta["reason"]
    assert workers == {0: 0, 1: 0}
