"""A type checker sees sspsim's public API as a user's code sees it (py.typed, literal __all__).

One mypy run over two user files written outside the package: the one that uses the API as
documented is accepted, and the one that misuses it is rejected at exactly the lines that
misuse it, so the checker really sees the types rather than ``Any``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = '''\
from pathlib import Path

import sspsim

config: sspsim.Config = sspsim.load_config(Path("design.toml"))
run: sspsim.Run = sspsim.simulate(config)
again = sspsim.read_run(run.path) if run.path is not None else run
staleness = again.summary["max_staleness"]
table = sspsim.ClockTable(4, staleness=2)
'''

BAD = '''\
import sspsim

run = sspsim.simulate(3)
config = sspsim.load_config("design.toml")
config.run.clocks = "many"
sspsim.read_run(run, 4)
'''
BAD_LINES = {3, 5, 6}


@pytest.mark.skipif(shutil.which("mypy", path=str(Path(sys.executable).parent)) is None, reason="mypy is not installed")
def test_type_checker_follows_the_public_api(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "bad.py").write_text(BAD)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".cache"),
         "good.py", "bad.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if e.startswith("good.py")], proc.stdout
    assert {int(e.split(":")[1]) for e in errors if e.startswith("bad.py")} == BAD_LINES, proc.stdout
    assert "import-not-found" not in proc.stdout and "import-untyped" not in proc.stdout
