"""Output folders are sacred (issue 9): the reproducers of the issue, and the rules of sspsim.outdir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import sspsim
from sspsim import outdir
from sspsim.cli import main
from tests.conftest import as_from_a_terminal

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
[run]
seed = 1
clocks = 6
[problem]
kind = "least_squares"
dim = 4
samples = 50
batch_size = 4
[workers]
count = 3
speed = { kind = "exponential", mean = 1.0 }
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    return path


def _config(seed: int = 1) -> sspsim.Config:
    return sspsim.config_from_dict({"run": {"clocks": 4, "seed": seed}, "problem": {"kind": "none"}, "workers": {"count": 2}})


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _python(code: str, *args: str, **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], check=False, capture_output=True, text=True,
                          timeout=120, env=env, **kw)


# -- simulate --out ------------------------------------------------------------------------


def test_simulate_never_deletes_a_users_folder_holding_run_json(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's reproducer: a folder with a run.json sspsim did not write is refused, with or without --force."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "run.json").write_text('{"config":{}}\n')
    (proj / "thesis.tex").write_text("t\n")
    before = _snapshot(proj)
    for extra in ([], ["--force"]):
        code, err = _cli(["simulate", str(config_file), "--out", str(proj), "-q", *extra], capsys)
        assert code == 2 and err.count("\n") == 1 and "not created by sspsim" in err, err
        assert _snapshot(proj) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "proj"]  # no partial folder left either


def test_replacing_an_sspsim_run_needs_force(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["simulate", str(config_file), "--out", str(out), "-q"]) == 0
    assert outdir.read_marker(out) == {"format": outdir.FORMAT, "kind": "run"}
    before = _snapshot(out)
    code, err = _cli(["simulate", str(config_file), "--out", str(out), "-q", "--seed", "5"], capsys)
    assert code == 2 and "add --force" in err and err.count("\n") == 1
    assert _snapshot(out) == before
    assert main(["simulate", str(config_file), "--out", str(out), "-q", "--seed", "5", "--force"]) == 0
    assert sspsim.read_run(out).meta["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "run"]  # the old one is gone, no leftovers


_CRASH = """
    import os, sys
    import sspsim
    from sspsim import outdir
    real_rename, real_rmtree, calls = os.rename, outdir.shutil.rmtree, []

    def rename(a, b):  # the process is killed after the first N renames of the commit
        if len(calls) == int(sys.argv[2]):
            os._exit(9)
        calls.append((a, b))
        real_rename(a, b)

    def rmtree(path, **kw):
        if len(calls) == int(sys.argv[2]):
            os._exit(9)
        real_rmtree(path, **kw)

    outdir.os.rename, outdir.shutil.rmtree = rename, rmtree
    cfg = sspsim.config_from_dict({"run": {"clocks": 4, "seed": 7}, "problem": {"kind": "none"}, "workers": {"count": 2}})
    sspsim.simulate(cfg, sys.argv[1], force=True)
"""


@pytest.mark.parametrize("renames", [0, 2, 3])  # the first rename, into a taken name, fails
def test_force_replace_survives_a_crash_at_any_step(tmp_path: Path, renames: int) -> None:
    """Killed before the old run is moved aside, between the two renames, or before the old one is removed:
    the folder holds the old run or the new one, complete, once the next write into the parent has cleaned up."""
    out = tmp_path / "run"
    sspsim.simulate(_config(seed=1), out)
    proc = _python(_CRASH, str(out), str(renames))
    assert proc.returncode == 9, proc.stderr
    leftovers = sorted(p.name.split("-")[0] for p in tmp_path.iterdir() if p.name.startswith("."))
    assert leftovers == {0: [".run.partial"], 2: [".run.old", ".run.partial"], 3: [".run.old"]}[renames]
    assert out.exists() == (renames != 2)
    sspsim.simulate(_config(), tmp_path / "other")  # the next run into the same parent cleans up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "run"]
    run = sspsim.read_run(out)
    assert run.complete and run.meta["seed"] == (7 if renames == 3 else 1)
    assert len(run.trace) == 8


def test_kill_9_during_simulate_leaves_a_partial_the_next_run_cleans(tmp_path: Path) -> None:
    code = """
        import os, signal, sys
        import sspsim
        from sspsim import outdir

        def die(folder, kind, **fields):  # SIGKILL while the run is being written
            os.kill(os.getpid(), signal.SIGKILL)

        outdir.write_marker = die
        sspsim.simulate(sspsim.config_from_dict({"run": {"clocks": 4}, "problem": {"kind": "none"}}), sys.argv[1])
    """
    proc = _python(code, str(tmp_path / "run"))
    assert proc.returncode == -signal.SIGKILL
    partial = [p for p in tmp_path.iterdir() if p.name.startswith(".run.partial-")]
    assert len(partial) == 1 and (partial[0] / "trace.csv").is_file()
    assert not (tmp_path / "run").exists()
    (tmp_path / ".run.partial-notes").mkdir()  # not one of sspsim's names (no pid): never touched
    (tmp_path / ".run.partial-1-zz").mkdir()  # not hex: not one of sspsim's names either
    sspsim.simulate(_config(), tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.partial-1-zz", ".run.partial-notes", "run"]


def test_partial_of_a_live_process_is_left_alone(tmp_path: Path) -> None:
    live = tmp_path / f".run.partial-{os.getppid()}-abcd"  # our parent is alive
    live.mkdir()
    outdir.clean_stale(tmp_path)
    assert live.is_dir()


def test_two_processes_committing_the_same_out(tmp_path: Path) -> None:
    """The loser of a race gets one line, exit 2 (or, with --force, both succeed in turn); never a traceback."""
    out = tmp_path / "run"
    first, second = outdir.staging(out), outdir.staging(out)
    outdir.write_marker(first, "run")
    outdir.write_marker(second, "run")
    (second / "mine").write_text("2")
    outdir.commit(first, out, force=False)
    with pytest.raises(sspsim.InputError, match="another sspsim process wrote it meanwhile"):
        outdir.commit(second, out, force=False)
    assert not second.exists() and not (out / "mine").exists()
    third = outdir.staging(out)
    outdir.write_marker(third, "run")
    (third / "mine").write_text("3")
    outdir.commit(third, out, force=True)
    assert (out / "mine").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_two_concurrent_simulate_commands(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "sspsim", "simulate", str(config_file), "--out", str(out), "-q"]
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert sorted(code for code, _ in results) in ([0, 0], [0, 2]), results
    for code, err in results:
        assert "Traceback" not in err
        if code == 2:
            assert err.count("\n") == 1 and "--out" in err
    assert sspsim.read_run(out).complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "run"]


# -- files: report -o, calibrate --out -----------------------------------------------------


def test_files_sspsim_did_not_write_are_not_overwritten(tmp_path: Path) -> None:
    from sspsim.reports.html import page

    mine = tmp_path / "notes.html"
    mine.write_text("<p>mine</p>")
    for force in (False, True):
        with pytest.raises(sspsim.InputError, match="not written by sspsim; choose a new path"):
            outdir.check_file(mine, force=force, option="-o")
    assert mine.read_text() == "<p>mine</p>"
    ours = tmp_path / "report.html"
    ours.write_text(page("t", "s", [], ""))
    with pytest.raises(sspsim.InputError, match="add --force to replace it"):
        outdir.check_file(ours, force=False)
    outdir.check_file(ours, force=True)
    outdir.check_file(tmp_path / "new.html", force=False)
    with pytest.raises(sspsim.InputError, match="is a folder"):
        outdir.check_file(tmp_path, force=True)


def test_report_refuses_a_users_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sspsim.simulate(_config(), tmp_path / "run")
    target = tmp_path / "paper.html"
    target.write_text("<p>my paper</p>")
    code, err = _cli(["report", str(tmp_path / "run"), "-o", str(target)], capsys)
    assert code == 2 and err.count("\n") == 1 and "not written by sspsim" in err
    assert target.read_text() == "<p>my paper</p>"


def test_calibrate_refuses_a_users_toml(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    target = tmp_path / "machine.toml"
    target.write_text("[run]\nseed = 3\n")
    code, err = _cli(["calibrate", str(config_file), "--out", str(target)], capsys)
    assert code == 2 and err.count("\n") == 1 and "not written by sspsim" in err
    assert target.read_text() == "[run]\nseed = 3\n" and not (tmp_path / "machine-profile").exists()


# -- deploy --out, --resume (refusals happen before anything is launched) -------------------


def test_deploy_refuses_a_users_folder_and_an_unfinished_run(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from sspsim.real.launch import deploy

    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "run.json").write_text('{"config":{}}\n')
    (proj / "thesis.tex").write_text("t\n")
    for force in (False, True):
        with pytest.raises(sspsim.InputError, match="not created by sspsim"):
            deploy(_config(), proj, force=force)
    assert sorted(p.name for p in proj.iterdir()) == ["run.json", "thesis.tex"]
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    outdir.write_marker(unfinished, "run")
    (unfinished / "run.json").write_text('{"status": "incomplete", "config": {}}\n')
    (unfinished / "checkpoint.pt").write_bytes(b"state")
    with pytest.raises(sspsim.InputError, match="unfinished sspsim run: continue it with --resume"):
        deploy(_config(), unfinished)
    assert (unfinished / "checkpoint.pt").read_bytes() == b"state"


def test_deploy_resume_refuses_a_complete_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from sspsim.real.launch import deploy

    out = tmp_path / "run"
    sspsim.simulate(_config(), out)
    (out / "config.json").write_text(json.dumps(_config().to_dict()))
    before = _snapshot(out)
    with pytest.raises(sspsim.InputError, match="is a complete run; there is nothing to resume"):
        deploy(_config(), out, resume=True)
    code, err = _cli(["deploy", "--resume", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1 and "complete run" in err
    assert _snapshot(out) == before


# -- sweeps ---------------------------------------------------------------------------------


def _points(tmp_path: Path, n: int = 4) -> list:  # type: ignore[type-arg]
    from sspsim.sim.sweep import expand_grid

    raw = {"run": {"clocks": 3}, "problem": {"kind": "none"}, "workers": {"count": 2}}
    return expand_grid(raw, tmp_path, ["run.seed=" + ",".join(str(i) for i in range(n))])


def _failing_at(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Make the point ``name`` fail; return the list of the points that ran."""
    from sspsim.sim import sweep

    real, ran = sweep._run_point, []

    def run_point(point, out):  # type: ignore[no-untyped-def]
        if point.name == name:
            raise RuntimeError("point failed")
        ran.append(point.name)
        return real(point, out)

    monkeypatch.setattr(sweep, "_run_point", run_point)
    return ran


def test_sweep_rerun_keeps_the_old_sweep_until_the_new_one_is_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue: a rerun deleted the old sweep first, and a failing point left one run and no sweep.json."""
    from sspsim.sim.sweep import run_sweep

    points = _points(tmp_path)
    out = tmp_path / "sweep"
    run_sweep(points, out)
    before = _snapshot(out)
    with pytest.raises(sspsim.InputError, match="add --force"):
        run_sweep(points, out)
    _failing_at(monkeypatch, "seed=2")
    with pytest.raises(RuntimeError, match="point failed"):
        run_sweep(points, out, force=True)
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]


def test_interrupted_sweep_is_reported_incomplete_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sspsim.sim.sweep import run_sweep

    points = _points(tmp_path)
    out = tmp_path / "sweep"
    _failing_at(monkeypatch, "seed=2")
    with pytest.raises(RuntimeError, match="point failed"):
        run_sweep(points, out)
    assert not (out / "sweep.json").exists()
    assert [json.loads(line)["name"] for line in (out / "progress.jsonl").read_text().splitlines()] == ["seed=0", "seed=1"]
    code, err = _cli(["check", str(out)], capsys)
    assert code == 2 and "is an incomplete sweep (2 runs finished)" in err and err.count("\n") == 1
    monkeypatch.undo()
    ran = _failing_at(monkeypatch, "no such point")
    rows = run_sweep(points, out)  # the same points again: continue, no --force needed
    assert ran == ["seed=2", "seed=3"]
    assert [r["name"] for r in rows] == [p.name for p in points]
    assert json.loads((out / "sweep.json").read_text())["runs"] == json.loads(json.dumps(rows))
    assert outdir.read_marker(out)["complete"] is True  # type: ignore[index]
    assert main(["check", str(out)]) in (0, 1)
    with pytest.raises(sspsim.InputError, match="add --force"):  # a finished sweep is not resumed
        run_sweep(points, out)


def test_a_different_unfinished_sweep_needs_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sspsim.sim.sweep import run_sweep

    out = tmp_path / "sweep"
    _failing_at(monkeypatch, "seed=1")
    with pytest.raises(RuntimeError):
        run_sweep(_points(tmp_path), out)
    monkeypatch.undo()
    with pytest.raises(sspsim.InputError, match="add --force"):
        run_sweep(_points(tmp_path, 3), out)
    assert len(run_sweep(_points(tmp_path, 3), out, force=True)) == 3


@pytest.mark.slow  # two sweeps' process start-ups: about 10 s alone, 30 s on a loaded machine
def test_ctrl_c_stops_a_sweep_quietly_and_the_rerun_finishes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.replace("clocks = 6", "clocks = 800"))
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "sspsim", "sweep", str(config), "--grid", "run.seed=" + ",".join(map(str, range(6))),
           "--out", str(out), "--jobs", "2", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=as_from_a_terminal)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        progress = out / "progress.jsonl"
        if progress.is_file() and progress.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "runs are done in" in err and "run the same command again to continue" in err
    assert not (out / "sweep.json").exists()
    code, check_err = _cli(["check", str(out)], capsys)
    assert code == 2 and "incomplete sweep" in check_err
    assert not [p for p in out.iterdir() if p.name.startswith(".") and "partial" in p.name]
    assert main([*cmd[3:-3], "--jobs", "1", "-q"]) == 0  # the same sweep again (--jobs is not part of it): it finishes
    assert len(json.loads((out / "sweep.json").read_text())["runs"]) == 6


def _fake_launch(monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> list[Path]:
    """Replace torchrun by writing a complete run.json (or failing); return the folders it ran in."""
    from sspsim.real import launch

    ran: list[Path] = []

    def run(config, out, *, resume, baseline, tensorboard=None):  # type: ignore[no-untyped-def]
        ran.append(out)
        (out / "run.json").write_text(json.dumps({"status": "complete", "config": {}, "seed": config.run.seed}))
        if fail:
            raise KeyboardInterrupt
        return {"status": "complete"}

    monkeypatch.setattr(launch, "_launch", run)
    return ran


def test_deploy_writes_a_new_run_in_place_and_replaces_one_with_force_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from sspsim.real.launch import deploy

    out = tmp_path / "run"
    ran = _fake_launch(monkeypatch)
    deploy(_config(seed=1), out)
    assert ran == [out] and outdir.read_marker(out) == {"format": outdir.FORMAT, "kind": "run"}
    with pytest.raises(sspsim.InputError, match="add --force"):
        deploy(_config(seed=2), out)
    before = _snapshot(out)
    _fake_launch(monkeypatch, fail=True)  # interrupted while replacing: the old run stays
    with pytest.raises(KeyboardInterrupt):
        deploy(_config(seed=2), out, force=True)
    assert _snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    ran = _fake_launch(monkeypatch)
    deploy(_config(seed=2), out, force=True)
    assert ran[0].name.startswith(".run.partial-")  # the new run is written beside the old one
    assert json.loads((out / "run.json").read_text())["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_folder_written_in_place_is_locked(tmp_path: Path) -> None:
    with outdir.lock(tmp_path), pytest.raises(sspsim.InputError, match="another sspsim process is writing it now"):
        with outdir.lock(tmp_path):
            pass  # pragma: no cover
    with outdir.lock(tmp_path):  # released
        pass
