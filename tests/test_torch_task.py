"""Your own model (``[problem] kind = "torch"``): a user module outside the package runs through
simulate and check, from the command line and from Python; bad factories are refused up front."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sspsim
from sspsim.cli import main
from sspsim.config import config_from_dict, load_config
from sspsim.problems import Layer, make_problem
from sspsim.proofs_check import check_path
from sspsim.task import load_factory

torch = pytest.importorskip("torch")

USER_MODULE = '''
import torch
from torch import nn

import sspsim


class Net(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, 3)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.scale * self.head(self.body(x))


def make_task(seed, hidden=8):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(60, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return sspsim.TorchTask(model=Net(hidden), train=(x, y), test=(x[:20], y[:20]))


def not_a_task(seed, **options):
    return {"model": None}


def wrong_input_width(seed, **options):
    return sspsim.TorchTask(model=nn.Linear(5, 3), train=make_task(seed).train)


def raises(seed, **options):
    raise RuntimeError("no data here")
'''

CONFIG = '''
[run]
seed = 3
clocks = 8
[problem]
kind = "torch"
factory = "{factory}"
batch_size = 8
device = "cpu"
[problem.options]
hidden = 8
[optimizer]
lr = 0.1
[consistency]
staleness = 1
[workers]
count = 3
speed = {{ kind = "exponential", mean = 1.0 }}
'''


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one intra-op thread is fastest, and the tests share small machines."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _user_config(folder: Path, factory: str = "tasks:make_task") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tasks.py").write_text(USER_MODULE)
    path = folder / "config.toml"
    path.write_text(CONFIG.format(factory=factory))
    return path


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_user_module_runs_simulate_and_check_from_the_command_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    config = _user_config(tmp_path / "mine")
    out = tmp_path / "run"
    code, _, err = _cli(["simulate", str(config), "--out", str(out)], capsys)
    assert code == 0, err
    meta = json.loads((out / "run.json").read_text())
    problem = meta["config"]["problem"]
    assert problem["kind"] == "torch" and problem["factory"] == "tasks:make_task"
    assert problem["factory_dir"] == str((tmp_path / "mine").resolve()) and problem["options"] == {"hidden": 8}
    assert [layer["name"] for layer in meta["problem"]["layers"]] == ["scale", "body", "head"]
    assert meta["problem"]["device"] == "cpu"
    code, out_text, err = _cli(["check", str(out), "--json"], capsys)
    assert code == 0, err
    verdicts = {v["theorem"]: v["outcome"] for v in json.loads(out_text)}
    assert verdicts["ssp.I5_replay"] == "holds"
    assert verdicts["kumar2015.layerwise_tracking"] == "holds"
    evals = pd.read_csv(out / "evals.csv")
    assert {"objective", "accuracy", "grad_norm_body", "weight_norm_head"} <= set(evals.columns)


def test_user_module_runs_from_python_with_a_factory(tmp_path: Path) -> None:
    """simulate(config, task=factory): the run records where the factory lives, so check rebuilds it."""
    _user_config(tmp_path / "mine")
    factory = load_factory("tasks:make_task", tmp_path / "mine")
    config = config_from_dict({"run": {"seed": 1, "clocks": 6}, "problem": {"batch_size": 8, "device": "cpu"},
                               "workers": {"count": 2}, "consistency": {"staleness": 1}})
    run = sspsim.simulate(config, tmp_path / "run", task=factory)
    assert run.meta["config"]["problem"]["kind"] == "torch"
    assert run.meta["config"]["problem"]["factory"] == "tasks:make_task"
    verdicts = {v.theorem: v for v in check_path(tmp_path / "run")}
    assert not any(v.violated for v in verdicts.values())
    assert verdicts["ssp.I5_replay"].outcome.value == "holds"
    # a TorchTask object works too: built as simulate builds it (torch seeded with the problem seed),
    # it gives the same run
    torch.manual_seed(config.problem_seed)
    again = sspsim.simulate(config, task=factory(config.problem_seed))
    assert np.array_equal(again.trace["loss"].to_numpy(), run.trace["loss"].to_numpy())


def test_runs_are_deterministic(tmp_path: Path) -> None:
    config = load_config(_user_config(tmp_path / "mine"))
    a, b = sspsim.simulate(config), sspsim.simulate(config)
    assert np.isfinite(a.trace["loss"]).all()
    pd.testing.assert_frame_equal(a.trace, b.trace)
    pd.testing.assert_frame_equal(a.evals, b.evals)
    other = sspsim.simulate(config.replace(run=config.run.__class__(seed=4, clocks=8)))
    assert not np.array_equal(other.trace["loss"].to_numpy(), a.trace["loss"].to_numpy())


@pytest.mark.parametrize(("factory", "expect"), [
    ("nowhere:make_task", "module not found"),
    ("tasks:missing", "has no attribute 'missing'"),
    ("tasks:not_a_task", "must return an sspsim.TorchTask, not dict"),
    ("tasks:wrong_input_width", "the model fails on one batch"),
    ("tasks:raises", "RuntimeError: no data here"),
    ("tasks.make_task", "must name a factory as 'module:function'"),
])
def test_bad_factories_get_one_line_and_exit_2(tmp_path: Path, capsys, factory: str, expect: str) -> None:  # type: ignore[no-untyped-def]
    config = _user_config(tmp_path / "mine", factory)
    code, _, err = _cli(["simulate", str(config), "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    assert err.count("\n") == 1 and expect in err and err.startswith("sspsim: error: problem.factory")
    assert not (tmp_path / "run").exists()


def test_replay_catches_a_doctored_loss(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    config = _user_config(tmp_path / "mine")
    out = tmp_path / "run"
    assert _cli(["simulate", str(config), "--out", str(out)], capsys)[0] == 0
    trace = pd.read_csv(out / "trace.csv")
    trace.loc[5, "loss"] *= 1.0 + 1e-9
    trace.to_csv(out / "trace.csv", index=False)
    code, text, _ = _cli(["check", str(out), "--json", "--theorem", "ssp.I5_replay"], capsys)
    assert code == 1
    [verdict] = json.loads(text)
    assert verdict["outcome"] == "violated" and "loss" in verdict["detail"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_replay_refuses_a_cuda_run_without_cuda(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    config = _user_config(tmp_path / "mine")
    out = tmp_path / "run"
    assert _cli(["simulate", str(config), "--out", str(out)], capsys)[0] == 0
    meta = json.loads((out / "run.json").read_text())
    meta["problem"]["device"] = "cuda"
    (out / "run.json").write_text(json.dumps(meta))
    [verdict] = check_path(out, ["ssp.I5_replay"])
    assert "no CUDA device is available here" in verdict.detail


def test_replay_oracle_catches_a_simulator_computing_other_gradients(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The oracle restates the math: an adapter whose gradient is off by 1e-6 is caught by I5."""
    from sspsim.problems.torch_task import TorchTaskProblem

    config = load_config(_user_config(tmp_path / "mine"))
    honest = TorchTaskProblem.loss_grad
    def off(self, x, idx):  # type: ignore[no-untyped-def]
        loss, grad = honest(self, x, idx)
        return loss, grad * (1 + 1e-6)

    monkeypatch.setattr(TorchTaskProblem, "loss_grad", off)
    sspsim.simulate(config, tmp_path / "run")
    monkeypatch.undo()
    [verdict] = check_path(tmp_path / "run", ["ssp.I5_replay"])
    assert verdict.violated


def test_layers_are_the_top_level_modules(tmp_path: Path) -> None:
    config = load_config(_user_config(tmp_path / "mine"))
    problem = make_problem(config.problem, config.problem_seed)
    assert [(layer.name, layer.span) for layer in problem.layers] == [
        ("scale", slice(0, 1)), ("body", slice(1, 1 + 4 * 8 + 8)), ("head", slice(41, 41 + 8 * 3 + 3))]
    assert problem.n_params == 68 and problem.initial_params().shape == (68,)
    with pytest.raises(TypeError, match="span"):
        _ = problem.layers[1].weight
    assert Layer(name="dense", n_in=2, n_out=3, offset=4).span == slice(4, 13)


def test_gradient_is_autograd_of_the_loss(tmp_path: Path) -> None:
    """loss_grad against central differences of the loss, in float64."""
    config = load_config(_user_config(tmp_path / "mine"))
    problem = make_problem(config.problem, config.problem_seed)
    x = problem.initial_params()
    idx = np.arange(10)
    _, g = problem.loss_grad(x, idx)
    model = problem.model
    rng = np.random.default_rng(0)
    v = rng.standard_normal(x.size)
    h = 1e-2
    def f(y: np.ndarray) -> float:  # float32 model: a large step and a loose tolerance
        return problem.loss_grad(y, idx)[0]

    assert (f(x + h * v) - f(x - h * v)) / (2 * h) == pytest.approx(float(g @ v), rel=2e-2, abs=1e-4)
    assert model.training is False
    objective, grad = problem.evaluate(x)
    assert grad.shape == x.shape
    assert objective == pytest.approx(problem.objective(x), rel=1e-6)
    assert 0.0 <= problem.accuracy(x) <= 1.0


def test_the_builtin_mlp_through_the_torch_path_matches_numpy(tmp_path: Path) -> None:
    """The bundled digits MLP written as a user's torch task gives the numpy problem's losses and gradients."""
    cfg = config_from_dict({"run": {"clocks": 5}, "problem": {"kind": "mlp", "samples": 200, "batch_size": 8},
                            "workers": {"count": 2}})
    numpy_problem = make_problem(cfg.problem, cfg.problem_seed)

    def as_task(seed: int) -> sspsim.TorchTask:
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10)).double()
        torch.nn.utils.vector_to_parameters(torch.as_tensor(numpy_problem.initial_params()), model.parameters())
        return sspsim.TorchTask(model=model, train=(torch.as_tensor(numpy_problem.X), torch.as_tensor(numpy_problem.y)))

    a = sspsim.simulate(cfg)
    b = sspsim.simulate(cfg, task=as_task)
    np.testing.assert_allclose(b.trace["loss"], a.trace["loss"], rtol=1e-12)
    np.testing.assert_allclose(b.evals["objective"], a.evals["objective"], rtol=1e-12)


def test_torch_config_keys_are_validated(tmp_path: Path) -> None:
    with pytest.raises(sspsim.ConfigError, match=r"problem\.device"):
        config_from_dict({"problem": {"kind": "torch", "factory": "t:f", "device": "tpu"}})
    with pytest.raises(sspsim.ConfigError, match=r"problem.options .*table"):
        config_from_dict({"problem": {"kind": "torch", "factory": "t:f", "options": 3}})
    cfg = config_from_dict({"problem": {"kind": "torch", "factory": "t:f"}}, base_dir=tmp_path)
    assert cfg.problem.factory_dir == str(tmp_path.resolve())
    with pytest.raises(sspsim.ConfigError, match="needs a factory"):
        make_problem(config_from_dict({"problem": {"kind": "torch"}}).problem, 0)


def test_import_sspsim_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, sspsim; sspsim.TorchTask; sspsim.config_from_dict({'problem': {'kind': 'torch', 'factory': 'a:b'}}); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("example", ["digits_cnn", "sequence"])
def test_bundled_examples_build_and_take_one_step(example: str) -> None:
    """Each example's factory builds a task whose model runs on one batch (the full runs are slow tests)."""
    config = load_config(EXAMPLES / example / "config.toml", ["problem.device=cpu"])
    problem = make_problem(config.problem, config.problem_seed)
    loss, grad = problem.loss_grad(problem.initial_params(), np.arange(config.problem.batch_size))
    assert np.isfinite(loss) and grad.shape == (problem.n_params,) and np.abs(grad).max() > 0
    assert len(problem.layers) == 3 and problem.accuracy is not None


@pytest.mark.slow
@pytest.mark.parametrize("example", ["digits_cnn", "sequence"])
def test_bundled_examples_simulate_and_check(example: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, _, err = _cli(["simulate", str(EXAMPLES / example / "config.toml"), "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    evals = pd.read_csv(tmp_path / "run" / "evals.csv")
    assert evals["objective"].iloc[-1] < 0.6 * evals["objective"].iloc[0]
    code, _, err = _cli(["check", str(tmp_path / "run")], capsys)
    assert code == 0, err
