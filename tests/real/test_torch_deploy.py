"""A user's own torch module, written outside the package, through the whole workflow:
simulate -> check -> deploy -> compare -> report, from the command line and from Python.
Also the staging buffers a worker moves parameters and gradients through (on CPU tensors, and
on CUDA when a GPU is present), and the worker's torch adapter against the simulator's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import sspsim  # noqa: E402
from sspsim.cli import main  # noqa: E402
from sspsim.comparison import compare_runs  # noqa: E402
from sspsim.proofs_check import check_path  # noqa: E402
from sspsim.real.launch import deploy  # noqa: E402
from sspsim.real.models import TaskOnDevice, torch_problem  # noqa: E402
from sspsim.real.staging import Staging  # noqa: E402
from sspsim.reports.build import build_report  # noqa: E402

TASK = '''
import torch
from torch import nn
import sspsim


class Tiny(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=3, padding=1)
        self.head = nn.Linear(2 * 4 * 4, width)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1))


def make_task(seed, width=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(96, 1, 4, 4, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long() + (x[:, 0, 0, 0] > 1).long()
    return sspsim.TorchTask(model=Tiny(width), train=(x, y), test=(x[:32], y[:32]))
'''

CONFIG = """
[run]
clocks = 20
eval_every = 5
target = 0.9
[problem]
kind = "torch"
factory = "mytasks:make_task"
batch_size = 16
device = "cpu"
[problem.options]
width = 3
[optimizer]
lr = 0.2
schedule = "constant"
[consistency]
staleness = 2
[workers]
count = 2
speed = { kind = "exponential", mean = 0.01 }
[real]
device = "cpu"
timeout = 30
"""

TIMING = ("mean iteration time (s)", "fraction of time waiting at the gate", "time to the target objective (s)",
          "throughput (iterations/s)")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def user_config(tmp_path: Path) -> Path:
    """A task module and its config in a folder of their own, away from the package and the cwd."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "mytasks.py").write_text(TASK)
    (folder / "config.toml").write_text(CONFIG)
    return folder / "config.toml"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``sspsim ARGS`` through the console script's entry point, in this process (a subprocess
    per command would spend most of the test importing torch); ``deploy`` still runs torchrun."""
    code = main(list(args))
    return code, capsys.readouterr().out


def _objective_falls(run: sspsim.Run) -> None:
    objective = run.evals["objective"].to_numpy()
    assert objective[-1] < objective[0], objective


def test_user_module_through_the_cli(user_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # the module is found next to the config, not on the cwd or sys.path
    sim, real, html = tmp_path / "sim", tmp_path / "real", tmp_path / "report.html"
    for args in (("simulate", str(user_config), "--out", str(sim)), ("check", str(sim)),
                 ("deploy", str(user_config), "--out", str(real)), ("check", str(real))):
        code, out = _cli(capsys, *args)
        assert code == 0, (args, out[-3000:], (real / "launch.log").read_text()[-3000:] if (real / "launch.log").exists() else "")
    for path in (sim, real):
        _objective_falls(sspsim.read_run(path))
    assert sspsim.read_run(real).meta["backend"] == "real"
    code, out = _cli(capsys, "compare", str(sim), str(real))
    assert code == 0
    for metric in TIMING:
        row = next(line for line in out.splitlines() if metric in line)
        assert row.count(" - ") == 0, row  # predicted, measured and error all present
    code, _ = _cli(capsys, "report", str(sim), str(real), "-o", str(html))
    assert code == 0
    assert html.stat().st_size > 0


def test_user_module_from_python_and_ddp_trains_it(user_config: Path, tmp_path: Path) -> None:
    config = sspsim.load_config(user_config)
    sim = sspsim.simulate(config, tmp_path / "sim")
    assert not [c for c in check_path(tmp_path / "sim") if c.violated]
    meta = deploy(config, tmp_path / "ddp", baseline="ddp")
    assert meta["status"] == "complete", meta.get("reason")
    ddp = sspsim.read_run(tmp_path / "ddp")
    _objective_falls(sim)
    _objective_falls(ddp)
    assert ddp.meta["engine"] == "ddp"
    comparison = compare_runs(tmp_path / "sim", tmp_path / "ddp")
    timed = [m for m in comparison.metrics if m.timing]
    assert len(timed) == len(TIMING)
    assert all(m.measured is not None and m.predicted is not None for m in timed), timed
    out = build_report([tmp_path / "sim", tmp_path / "ddp"], tmp_path / "report.html")
    assert out.stat().st_size > 0


# -- the worker's pieces, in process ---------------------------------------------------------


def _problem(user_config: Path):  # type: ignore[no-untyped-def]
    config = sspsim.load_config(user_config)
    return config, sspsim.make_problem(config.problem, config.problem_seed)


def test_worker_adapter_is_the_simulators_gradient(user_config: Path) -> None:
    _, problem = _problem(user_config)
    model = torch_problem(problem, torch.device("cpu"), torch.float64)
    assert isinstance(model, TaskOnDevice)
    assert model.dtype == torch.float32  # the model's own dtype, not [real] dtype
    x = problem.initial_params() + 0.01
    indices = np.arange(7, 23)
    loss, grad = model.loss_grad(torch.as_tensor(x, dtype=torch.float32), indices)
    want_loss, want_grad = problem.loss_grad(x, indices)
    assert loss == pytest.approx(want_loss, rel=1e-6)
    np.testing.assert_allclose(grad.double().numpy(), want_grad, rtol=1e-5, atol=1e-7)
    # the DDP forward differentiates to the same gradient
    flat = torch.as_tensor(x, dtype=torch.float32).requires_grad_()
    model.loss(flat, indices).backward()
    np.testing.assert_allclose(flat.grad.double().numpy(), want_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("through_host", [False, True])  # True: the GPU's path, with unpinned buffers
def test_staging_on_cpu_round_trips_and_reuses_its_buffers(through_host: bool) -> None:
    staging = Staging(5, torch.device("cpu"), torch.float32, through_host=through_host)
    assert not staging.pinned and staging.host_in.numel() == (5 if through_host else 0)
    params = np.array([1.0, -2.0, 0.5, 3.25, 1e-3])
    x = staging.to_device(params)
    assert x.dtype == torch.float32 and x.device.type == "cpu"
    np.testing.assert_allclose(x.numpy(), params, rtol=1e-7)
    address = x.data_ptr()
    params[0] = 99.0  # the staged copy does not alias the received message
    assert x[0].item() == 1.0
    out = staging.to_host(x * 2)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [2.0, -4.0, 1.0, 6.5, 2e-3], rtol=1e-7)
    again = staging.to_device(np.arange(5.0))
    assert again.data_ptr() == address  # one device buffer for every message
    assert staging.to_host(again).ctypes.data == out.ctypes.data  # one host buffer too
    np.testing.assert_array_equal(out, np.arange(5.0))
    with pytest.raises(ValueError, match="expected 5 parameters"):
        staging.to_device(np.zeros(4))
    with pytest.raises(ValueError, match="expected 5 gradient"):
        staging.to_host(torch.zeros(6))


def test_staging_writes_gradients_into_the_given_host_buffer() -> None:
    """``host_out`` (the transport's outgoing payload): to_host fills it and returns it, so the push copies nothing."""
    wire = np.zeros(8 + 3)
    outgoing = wire[8:]
    staging = Staging(3, torch.device("cpu"), torch.float32, host_out=outgoing)
    got = staging.to_host(torch.tensor([1.5, -2.0, 0.25]))
    assert got is outgoing and wire.tolist() == [0.0] * 8 + [1.5, -2.0, 0.25]
    with pytest.raises(ValueError, match="host_out must be float64"):
        Staging(3, torch.device("cpu"), torch.float32, host_out=np.zeros(4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_staging_on_cuda_is_pinned_and_exact() -> None:
    staging = Staging(1000, torch.device("cuda:0"), torch.float64)
    assert staging.pinned and staging.host_in.is_pinned() and staging.host_out.is_pinned()
    params = np.random.default_rng(0).standard_normal(1000)
    x = staging.to_device(params)
    assert x.device.type == "cuda"
    np.testing.assert_array_equal(staging.to_host(x * 3), params * 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_worker_adapter_on_cuda_matches_cpu(user_config: Path) -> None:
    _, problem = _problem(user_config)
    on_gpu = torch_problem(problem, torch.device("cuda:0"), torch.float64)
    x = problem.initial_params()
    indices = np.arange(16)
    loss, grad = on_gpu.loss_grad(torch.as_tensor(x, device="cuda:0"), indices)
    want_loss, want_grad = problem.loss_grad(x, indices)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(grad.double().cpu().numpy(), want_grad, rtol=1e-4, atol=1e-6)
