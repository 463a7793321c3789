"""The real backend on this machine: torchrun, Gloo on loopback, 1 server + 2-3 workers, CPU.

Each deploy starts P + 1 Python processes (about 5 s of start-up on 2 cores), so the runs are
few and shared through module-scoped fixtures.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import sspsim  # noqa: E402
from sspsim.proofs_check import check_path  # noqa: E402
from sspsim.real.launch import deploy, environment, root_cause  # noqa: E402
from sspsim.real.worker import FAULT_ENV  # noqa: E402

CONFIG = """
[run]
clocks = 16
[problem]
kind = "mlp"
hidden = [16]
[optimizer]
lr = 0.1
schedule = "constant"
[consistency]
staleness = 1
[workers]
count = 3
speed = { kind = "exponential", mean = 0.01 }
stragglers = [ { worker = 0, slowdown = 3.0 } ]
[real]
timeout = 20
"""


def _config(**sets: str) -> sspsim.Config:
    import tomllib

    raw = sspsim.config.apply_overrides(tomllib.loads(CONFIG), [f"{k.replace('__', '.')}={v}" for k, v in sets.items()])
    return sspsim.config_from_dict(raw)


def _violations(path: Path) -> list[str]:
    return [str(v) for v in check_path(path) if v.violated]


@pytest.fixture(scope="module")
def slowed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("real") / "ssp"
    meta = deploy(_config(), out)
    assert meta["status"] == "complete", meta
    return out


def test_deploy_with_a_slowed_worker_finishes_obeys_the_gate_and_learns(slowed_run: Path) -> None:
    """3 workers, one 3x slower, s = 1: the run completes, every check accepts it, the objective falls."""
    run = sspsim.read_run(slowed_run)
    assert run.meta["backend"] == "real" and run.complete
    assert len(run.trace) == 3 * 16
    assert run.trace.staleness.max() <= 1
    assert run.evals.objective.iloc[-1] < run.evals.objective.iloc[0]
    assert _violations(slowed_run) == []
    held = {v.theorem for v in check_path(slowed_run) if v.outcome.value == "holds"}
    assert {"ssp.I1_gate", "ssp.I2_read_guarantee", "ssp.I5_replay"} <= held
    ranks = run.meta["hardware"]["ranks"]
    assert len(ranks) == 4 and ranks[0]["device"].startswith("cpu")


def test_slowed_worker_makes_the_others_wait(slowed_run: Path) -> None:
    """The straggler's share of waiting at the gate is the smallest: the others wait for it."""
    trace = sspsim.read_run(slowed_run).trace
    wait = trace.groupby("worker").wait_time.sum()
    assert wait.idxmin() == 0


def test_a_real_runs_trace_csv_replays_its_measured_compute_times(slowed_run: Path, tmp_path: Path) -> None:
    """The `trace` speed model on a real run's trace.csv (long format; its compute_time column: the measured
    iteration, injected delay and the straggler's slowdown included) gives every simulated iteration the
    recorded time, exactly; the replaying config has no slowdowns of its own."""
    raw = _config().to_dict()
    raw["workers"].pop("stragglers", None)
    raw["workers"]["speed"] = {"kind": "trace", "file": str(slowed_run / "trace.csv")}
    replay = sspsim.simulate(sspsim.config_from_dict(raw, base_dir=tmp_path))
    key = ["worker", "clock"]
    measured = sspsim.read_run(slowed_run).trace.sort_values(key).reset_index(drop=True)
    simulated = replay.trace.sort_values(key).reset_index(drop=True)
    assert np.array_equal(simulated[key].to_numpy(), measured[key].to_numpy())
    assert np.array_equal(simulated.compute_time.to_numpy(), measured.compute_time.to_numpy())
    slow = measured[measured.worker == 0].compute_time.mean() / measured[measured.worker != 0].compute_time.mean()
    assert slow > 1.5  # the straggler's measured slowdown is in the replayed times


def test_s0_lazy_reproduces_the_simulator_trajectory(tmp_path: Path) -> None:
    """With s = 0 and lazy reads the real backend's losses equal the simulator's (float tolerance)."""
    config = _config(consistency__staleness="0", consistency__read_policy='"lazy"', workers__count="2")
    meta = deploy(config, tmp_path / "real")
    assert meta["status"] == "complete"
    sim = sspsim.simulate(config).trace.sort_values(["worker", "clock"])
    real = sspsim.read_run(tmp_path / "real").trace.sort_values(["worker", "clock"])
    assert np.allclose(real.loss.to_numpy(), sim.loss.to_numpy(), rtol=1e-12, atol=1e-12)


def test_one_worker_eager_with_momentum_reproduces_the_simulator_trajectory(tmp_path: Path) -> None:
    """Reused Gloo buffers: x kept in the server's outgoing payload (eager reads), gradients in a
    pool of receive buffers, momentum buffers that must not alias them; one worker makes eager
    reads deterministic, so the losses equal the simulator's."""
    config = _config(workers__count="1", workers__stragglers="[]", consistency__read_policy='"eager"',
                     optimizer__momentum="0.5")
    meta = deploy(config, tmp_path / "real")
    assert meta["status"] == "complete", meta
    sim = sspsim.simulate(config).trace.sort_values(["worker", "clock"])
    real = sspsim.read_run(tmp_path / "real").trace.sort_values(["worker", "clock"])
    assert np.allclose(real.loss.to_numpy(), sim.loss.to_numpy(), rtol=1e-12, atol=1e-12)


def test_killed_worker_ends_incomplete_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that dies mid-run: run.json is written incomplete with why, and deploy returns promptly."""
    monkeypatch.setenv(FAULT_ENV, "1:5:die")
    start = time.time()
    meta = deploy(_config(real__checkpoint_every="2"), tmp_path / "run")
    assert time.time() - start < 300  # a guard against a hang only: start-up time depends on the machine's load
    assert meta["status"] == "incomplete"
    # noticed by the launcher, not by the server's real.timeout (20 s), on the run's own clock
    trace = sspsim.read_run(tmp_path / "run").trace
    wall = json.loads((tmp_path / "run" / "run.json").read_text())["summary"]["wall_time"]
    assert wall - trace.commit_time.max() < 20
    assert "worker 1" in meta["reason"] and "exited with code 17" in meta["reason"]
    assert meta["launch_exit_code"] != 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["summary"]["iterations_committed"] < 3 * 16
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    # the partial trace is still a valid SSP trace
    assert [v for v in _violations(tmp_path / "run") if "I0" not in v] == []

    monkeypatch.delenv(FAULT_ENV)
    resumed = deploy(_config(), tmp_path / "run", resume=True)
    assert resumed["status"] == "complete" and resumed["resumed_from"] >= 2
    trace = sspsim.read_run(tmp_path / "run").trace
    assert len(trace) == 3 * 16 and trace.commit_time.is_monotonic_increasing
    assert _violations(tmp_path / "run") == []


def test_hung_worker_is_noticed_within_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that stops talking: the server gives up after real.timeout and says who."""
    monkeypatch.setenv(FAULT_ENV, "2:4:hang")
    start = time.time()
    meta = deploy(_config(real__timeout="3"), tmp_path / "run")
    assert time.time() - start < 300  # a guard against a hang only: start-up time depends on the machine's load
    assert meta["status"] == "incomplete" and "worker 2 sent nothing for 3 s" in meta["reason"]
    # Timed on the run's own clock (seconds since the server started training), so a busy machine's
    # slow start-up does not count: worker 2's read of clock 4 came after its commit of clock 3 and
    # no later than the run's last commit (or at once), and the server gave up 3 s after that read,
    # give or take its polling.
    run = sspsim.read_run(tmp_path / "run")
    wall = json.loads((tmp_path / "run" / "run.json").read_text())["summary"]["wall_time"]
    own = run.trace[run.trace.worker == 2]
    assert own.clock.max() == 3
    assert wall - own.commit_time.max() >= 3.0
    assert wall - max(own.commit_time.max(), run.trace.commit_time.max()) <= 3.0 + 10.0


def test_ddp_baseline_equals_simulated_bsp(tmp_path: Path) -> None:
    """--baseline ddp trains the same problem: its losses equal the simulator's BSP run."""
    config = _config(consistency__staleness="0", workers__count="2")
    meta = deploy(config, tmp_path / "ddp", baseline="ddp")
    assert meta["status"] == "complete" and meta["engine"] == "ddp"
    sim = sspsim.simulate(config).trace.sort_values(["worker", "clock"])
    ddp = sspsim.read_run(tmp_path / "ddp").trace.sort_values(["worker", "clock"])
    assert np.allclose(ddp.loss.to_numpy(), sim.loss.to_numpy(), rtol=1e-12, atol=1e-12)
    assert _violations(tmp_path / "ddp") == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_on_loopback(tmp_path: Path) -> None:
    """torchrun --nnodes 2 --rdzv-backend c10d on 127.0.0.1: 2 + 2 processes make one run."""
    config_file = tmp_path / "c.toml"
    config_file.write_text(CONFIG)
    port = _free_port()
    env = environment(sspsim.Config())
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--rdzv-backend=c10d",
             f"--rdzv-endpoint=127.0.0.1:{port}", "--nproc-per-node=2", "--max-restarts=0",
             "-m", "sspsim.real.main", "--config", str(config_file), "--out", str(tmp_path / "run")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    codes = [p.wait(timeout=120) for p in procs]
    assert codes == [0, 0], [p.stdout.read().decode()[-2000:] for p in procs]  # type: ignore[union-attr]
    run = sspsim.read_run(tmp_path / "run")
    assert run.complete and len(run.meta["hardware"]["ranks"]) == 4
    assert _violations(tmp_path / "run") == []


def test_deploy_cli_bad_input_exits_2(tmp_path: Path) -> None:
    """Bad config or a --resume of something that is not a run: one line, exit 2, nothing launched."""
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.replace("staleness = 1", "staleness = -1"))
    for args in (["deploy", str(bad), "--out", str(tmp_path / "x")], ["deploy", "--resume", str(tmp_path)]):
        proc = subprocess.run([sys.executable, "-m", "sspsim", *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("sspsim: error:"), proc.stderr
    assert not (tmp_path / "x").exists()


def test_print_command_for_a_multi_node_run(tmp_path: Path) -> None:
    """--print-command gives a node's torchrun line with the c10d rendezvous (which numbers the nodes)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    proc = subprocess.run(
        [sys.executable, "-m", "sspsim", "deploy", str(cfg), "--out", "runs/x", "--print-command", "--nnodes", "2",
         "--rdzv-endpoint", "10.0.0.1:29500"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    line = proc.stdout.strip()
    assert line.startswith("torchrun ") and "--nnodes=2" in line and "--node-rank" not in line
    assert "--rdzv-endpoint=10.0.0.1:29500" in line and "--nproc-per-node=2" in line and "-m sspsim.real.main" in line


def test_root_cause_names_the_failed_rank() -> None:
    log = "...\nRoot Cause (first observed failure):\n[0]:\n  rank      : 3 (local_rank: 3)\n  exitcode  : -9 (pid: 7)\n"
    assert root_cause(log) == "rank 3 (worker 2) exited with code -9"
    assert root_cause("all good") is None


def test_checkpoints_load_with_weights_only(slowed_run: Path, tmp_path: Path) -> None:
    """A checkpoint is plain tensors: torch.load(weights_only=True) reads it back to the server state."""
    from sspsim.optimizer import StepSize
    from sspsim.real.checkpoint import load_checkpoint, save_checkpoint
    from sspsim.server import ParameterServer

    server = ParameterServer(np.zeros(3), workers=2, staleness=1, read_policy="lazy", step=StepSize(0.1, "constant"), momentum=0.5)
    server.read(0)
    server.commit(0, np.ones(3))
    save_checkpoint(tmp_path, {"server": server.state_dict(), "elapsed": 1.5})
    state = load_checkpoint(tmp_path)
    again = ParameterServer(np.zeros(3), workers=2, staleness=1, read_policy="lazy", step=StepSize(0.1, "constant"), momentum=0.5)
    again.load_state_dict(state["server"])
    assert np.array_equal(again.x, server.x) and again.table.clocks() == (1, 0)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(sspsim.InputError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_workers_share_one_gpu(tmp_path: Path) -> None:
    """With a GPU, workers compute on cuda (shared when there are fewer GPUs than workers)."""
    meta = deploy(_config(real__device='"cuda"'), tmp_path / "gpu")
    assert meta["status"] == "complete"
    devices = [r["device"] for r in meta["hardware"]["ranks"][1:]]
    assert all(d.startswith("cuda") for d in devices)


def _server_pid(out: Path) -> int | None:
    """The pid of rank 0 (the parameter server) of the run writing ``out``."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"sspsim.real.main" in cmd and b"torch.distributed.run" not in cmd and str(out).encode() in cmd and b"RANK=0" in env:
            return int(proc.name)
    return None


@pytest.mark.slow  # two deploys
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the server process through /proc")
def test_crashed_server_leaves_trace_and_evals_up_to_the_last_checkpoint(tmp_path: Path) -> None:
    """kill -9 of the server: the run directory still holds the trace and evaluations written at its last
    checkpoint, and --resume finishes the run."""
    import os
    import signal
    import threading

    out = tmp_path / "run"
    config = _config(run__clocks="60", real__checkpoint_every="4", run__eval_every="4")
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(deploy(config, out)))
    thread.start()
    deadline = time.time() + 120
    pid = None
    while time.time() < deadline and thread.is_alive() and (pid is None or not (out / "evals.csv").is_file()):
        pid = pid or _server_pid(out)
        time.sleep(0.02)
    assert pid is not None and (out / "evals.csv").is_file(), "the run ended before its first checkpoint"
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=120)
    assert result["status"] == "incomplete", result
    trace = sspsim.read_run(out).trace
    evals = sspsim.read_run(out).evals
    assert 0 < len(trace) < 3 * 60 and len(evals) >= 1
    assert [v for v in _violations(out) if "I0" not in v] == []
    with pytest.raises(sspsim.InputError, match="unfinished sspsim run: continue it with --resume"):
        deploy(config, out)
    resumed = deploy(config, out, resume=True)
    assert resumed["status"] == "complete"
    assert len(sspsim.read_run(out).trace) == 3 * 60
    with pytest.raises(sspsim.InputError, match="is a complete run"):
        deploy(config, out, resume=True)
