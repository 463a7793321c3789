"""Public API surface and import hygiene (DESIGN: the core imports neither torch nor seaborn)."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import subprocess
import sys
import types
from pathlib import Path

import pytest

import sspsim
import sspsim.ssp


def _public_names(module: types.ModuleType) -> set[str]:
    """Public non-module names, including those the module loads lazily (listed in dir())."""
    names = set(vars(module)) | set(dir(module))
    return {n for n in names if not n.startswith("_") and not isinstance(getattr(module, n), types.ModuleType)}


def test_all_matches_public_namespace() -> None:
    """sspsim.__all__ lists each public non-module name of the package exactly once, and each exists."""
    assert len(sspsim.__all__) == len(set(sspsim.__all__))
    assert sspsim.__all__ == sorted(sspsim.__all__)
    assert all(hasattr(sspsim, name) for name in sspsim.__all__)
    assert set(sspsim.__all__) == _public_names(sspsim)
    assert sspsim.__version__ == importlib.metadata.version("sspsim")


@pytest.mark.parametrize("module", ["sspsim.ssp", "sspsim.speeds", "sspsim.server", "sspsim.schedule", "sspsim.trace",
                                    "sspsim.config", "sspsim.rundir", "sspsim.sampling", "sspsim.optimizer"])
def test_module_all_names_exist(module: str) -> None:
    """Every name in a core module's __all__ exists in that module."""
    mod = __import__(module, fromlist=["__all__"])
    assert mod.__all__ and all(hasattr(mod, n) for n in mod.__all__)


def _imports_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return set(proc.stdout.split())


def test_import_sspsim_is_light() -> None:
    """`import sspsim` imports neither torch, seaborn nor matplotlib."""
    loaded = _imports_after("import sspsim")
    assert "sspsim" in loaded
    assert not loaded & {"torch", "seaborn", "matplotlib"}


def test_import_controller_does_not_import_simpy() -> None:
    """`import sspsim.ssp` (the pure controller) does not import simpy."""
    loaded = _imports_after("import sspsim.ssp")
    assert "simpy" not in loaded


def test_controller_source_is_pure() -> None:
    """sspsim/ssp.py itself imports only the standard library and sspsim.errors (no SimPy, torch, numpy, clocks)."""
    tree = ast.parse(Path(inspect.getfile(sspsim.ssp)).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= {"__future__", "math", "collections.abc", "dataclasses", "typing", "sspsim.errors"}, imported


def test_exceptions_hierarchy() -> None:
    """ConfigError is an InputError, both are SSPSimError and ValueError; ProtocolError is a RuntimeError."""
    assert issubclass(sspsim.ConfigError, sspsim.InputError)
    assert issubclass(sspsim.InputError, sspsim.SSPSimError) and issubclass(sspsim.InputError, ValueError)
    assert issubclass(sspsim.ProtocolError, sspsim.SSPSimError) and issubclass(sspsim.ProtocolError, RuntimeError)
    err = sspsim.InputError("a.b", 3, "must be < 2")
    assert str(err) == "a.b = 3: must be < 2" and (err.field, err.value, err.rule) == ("a.b", 3, "must be < 2")


def test_a_users_own_real_and_reports_folders_do_not_shadow_ours(tmp_path: Path) -> None:
    """The backend and the reports are sspsim.real and sspsim.reports: a user's folders named real/
    and reports/ in the working directory (the issue's failing deploy) change nothing."""
    for name in ("real", "reports", "proofs_check"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise SystemExit('the user\\'s own package was imported')\n")
        (tmp_path / name / "main.py").write_text("raise SystemExit(99)\n")
    code = ("import sspsim.real.main, sspsim.reports, sspsim.proofs_check, sys;"
            "print(sspsim.real.main.__name__, sspsim.reports.__file__)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("sspsim.real.main ") and str(tmp_path) not in proc.stdout
    helped = subprocess.run([sys.executable, "-m", "sspsim.real.main", "--help"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)
    assert helped.returncode == 0 and "sspsim.real.main" in helped.stdout
