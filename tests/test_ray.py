"""Sweeps and plans on Ray (``--executor ray``) equal the local process pool's, file for file.

One local Ray instance with two CPUs serves the whole module (it takes ~25 s to start on a
loaded machine); the tests that need Ray are skipped when it is not installed.
"""

from __future__ import annotations

import json
import operator
import sys
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import pytest

from sspsim.cli import main
from sspsim.errors import InputError
from sspsim.sim.executors import LocalExecutor, RayExecutor, check_address, make_executor
from sspsim.sim.sweep import expand_grid, run_sweep

needs_ray = pytest.mark.skipif(find_spec("ray") is None, reason="ray is not installed (pip install 'sspsim[ray]')")

BASE = {
    "run": {"clocks": 12, "target": 2.0},
    "problem": {"kind": "mlp", "hidden": [4], "samples": 120},
    "optimizer": {"lr": 0.1, "schedule": "constant"},
    "workers": {"count": 3, "speed": {"kind": "exponential", "mean": 1.0},
                "transient": {"probability": 0.2, "factor": 4.0, "duration": 1}},
}
GRID = ["consistency.staleness=0,2,inf", "run.seed=0,1"]

CONFIG_TOML = """\
[run]
clocks = 12
target = 2.0
[problem]
kind = "mlp"
hidden = [4]
samples = 120
[optimizer]
lr = 0.1
schedule = "constant"
[workers]
count = 3
speed = { kind = "exponential", mean = 1.0 }
"""


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray instance with two CPUs, started the way ``--executor ray`` starts one; shut down after."""
    import ray

    assert not ray.is_initialized()
    assert RayExecutor(num_cpus=2)._connect(ray) is True  # the executor's own ray.init
    assert ray.cluster_resources().get("CPU") == 2
    yield
    ray.shutdown()


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path; run.json without its wall time (the one measured figure)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name == "run.json":
                meta = json.loads(data)
                assert meta["summary"].pop("wall_time") > 0
                data = json.dumps(meta, sort_keys=True).encode()
            files[path.relative_to(folder).as_posix()] = data
    return files


@needs_ray
def test_sweep_on_ray_equals_the_process_pool(tmp_path: Path, local_ray: None) -> None:
    """Same sweep.json (rows in grid order), same run directories: run.json (summary included) and trace.csv."""
    points = expand_grid(BASE, tmp_path, GRID)
    pool_rows = run_sweep(points, tmp_path / "pool", executor=LocalExecutor(2))
    ray_rows = run_sweep(points, tmp_path / "ray", executor=RayExecutor())
    assert ray_rows == pool_rows
    assert [r["name"] for r in ray_rows] == [p.name for p in points]
    pool, ray = _tree(tmp_path / "pool"), _tree(tmp_path / "ray")
    assert sorted(ray) == sorted(pool)
    assert {f"{p.name}/trace.csv" for p in points} <= set(pool)
    for name in pool:
        assert ray[name] == pool[name], name
    summaries = {json.loads(pool[f"{p.name}/run.json"])["summary"]["time_per_clock"] for p in points}
    assert len(summaries) > 1  # the points differ, so equal trees are not equal by accident
    assert not list((tmp_path / "ray").glob(".*.partial-*"))  # no staging folders left behind


@needs_ray
def test_plan_cli_on_ray_equals_the_local_plan(tmp_path: Path, local_ray: None) -> None:
    """``sspsim plan --executor ray`` writes the plan.json and sweep the local pool writes."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG_TOML)
    common = ["plan", str(cfg), "--staleness", "0,inf", "--seeds", "2", "-q"]
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    local, ray = _tree(tmp_path / "local"), _tree(tmp_path / "ray")
    assert "plan.json" in local and "sweep.json" in local
    assert ray == local


@needs_ray
def test_a_failed_ray_task_raises_its_own_error(tmp_path: Path, local_ray: None) -> None:
    """The task's exception, not Ray's wrapper, so an InputError still prints as one line."""
    with pytest.raises(TypeError) as caught:
        list(RayExecutor().map_unordered(operator.truediv, [1, 2], tmp_path))  # 1 / Path: TypeError
    assert type(caught.value) is TypeError
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("address", "rule"), [
    ("127.0.0.1:1", "no Ray cluster answers there"),  # nothing listens on port 1
    ("not an address", "must be HOST:PORT"),
    ("10.0.0.1:99999", "must be HOST:PORT"),
])
def test_a_bad_cluster_address_is_refused_at_once(address: str, rule: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """One line and exit 2 before anything runs, not Ray's minutes of retries."""
    with pytest.raises(InputError, match=rule):
        check_address(address, timeout=2.0)
    if find_spec("ray") is None:
        return
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG_TOML)
    code = main(["plan", str(cfg), "--out", str(tmp_path / "p"), "--executor", "ray", "--address", address, "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("sspsim: error: --address") and rule in err and err.count("\n") == 1, err
    assert not (tmp_path / "p").exists()


def test_missing_ray_is_one_line_naming_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Without Ray, ``--executor ray`` exits 2 before running anything: install sspsim[ray]."""
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(InputError, match=r"sspsim\[ray\]"):
        make_executor("ray")
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG_TOML)
    code = main(["sweep", str(cfg), "--grid", "consistency.staleness=0,1", "--out", str(tmp_path / "s"), "--executor", "ray"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        "sspsim: error: --executor = 'ray': needs Ray, which is not installed: pip install 'sspsim[ray]'"]
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(("argv", "field"), [
    (["--address", "10.0.0.1:6379"], "--address"),  # a cluster address without --executor ray
    (["--jobs", "0"], "--jobs"),
    (["--executor", "ray", "--jobs", "0"], "--jobs"),
])
def test_executor_options_are_checked(argv: list[str], field: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG_TOML)
    for command in (["sweep", str(cfg), "--grid", "consistency.staleness=0,1"], ["plan", str(cfg)]):
        code = main([*command, "--out", str(tmp_path / "s"), *argv, "-q"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith(f"sspsim: error: {field}") and err.count("\n") == 1, err
        assert not (tmp_path / "s").exists()


def test_local_executor_yields_every_result_and_stops_early() -> None:
    """In-process (jobs = 1) map: completion order is item order; closing early stops the rest."""
    seen: list[int] = []

    def task(item: int, folder: Path) -> int:
        seen.append(item)
        return item * 10

    assert list(LocalExecutor(1).map_unordered(task, [1, 2, 3], Path("."))) == [10, 20, 30]
    results = LocalExecutor(1).map_unordered(task, [4, 5, 6], Path("."))
    assert next(results) == 40
    results.close()
    assert seen == [1, 2, 3, 4]
