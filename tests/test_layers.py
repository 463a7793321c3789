"""The package's layers (DESIGN §Layout), enforced on every import statement in the source.

    core (sspsim minus cli/testing)  <-  sspsim.sim, sspsim.real, sspsim.proofs_check  <-  sspsim.reports
                                     <-  sspsim.cli, sspsim.testing

A module may import from its own layer's package and from layers below it, never from a layer
above, and the three backends/oracles of layer 1 never import each other.  ``proofs_check``
judges what the engines did, so from the core it takes only the data formats and the inputs of a
run (config, errors, run directories, traces, the problems, the speed models and the sample choice), never the rules
it checks (the controller, the server, the schedule, the optimizer): it restates those.

Imports inside functions count as much as those at the top.  The package facade
``sspsim/__init__.py`` is the one exception: it re-exports the public API of every layer, lazily.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sspsim"

# Level of each package that is not the core; the core is level 0.
LEVELS = {
    "sspsim.sim": 1,
    "sspsim.real": 1,
    "sspsim.proofs_check": 1,
    "sspsim.reports": 2,
    "sspsim.cli": 3,
    "sspsim.testing": 3,
    "sspsim.notebook": 3,  # the DataFrame API the facade re-exports: sweeps, checks, comparisons
}
FACADE = "sspsim"
# What proofs_check may take from the core: data formats and the inputs of a run.
ORACLE_INPUTS = {
    "sspsim",  # only names the facade re-exports from those modules (checked below)
    "sspsim.config",
    "sspsim.errors",
    "sspsim.rundir",
    "sspsim.outdir",  # the marker that says a folder is an sspsim run or sweep
    "sspsim.budget",  # the memory a run needs: checked before the oracle rebuilds a problem
    "sspsim.trace",
    "sspsim.problems",
    "sspsim.sampling",
    "sspsim.speeds",  # the distribution of compute times is a premise of the runtime laws
    "sspsim.task",  # a user's torch task: its factory and data format (the replay rebuilds it)
}
ORACLE_FACADE_NAMES = {"Config", "ConfigError", "InputError", "SSPSimError", "load_config", "config_from_dict", "read_run", "Run"}


def _module_name(path: Path, package: Path) -> str:
    rel = path.relative_to(package).with_suffix("")
    parts = ["sspsim", *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(package: Path = PACKAGE) -> list[tuple[str, Path]]:
    # sspsim/real, sspsim/proofs_check and sspsim/reports are links to the top-level folders.
    files = sorted(Path(d, f) for d, _, names in os.walk(package, followlinks=True) for f in names if f.endswith(".py"))
    return [(_module_name(p, package), p) for p in files]


def layer_of(module: str) -> tuple[str, int]:
    """The layer package a module belongs to and its level (the core: ``("sspsim", 0)``)."""
    if module == "sspsim.__main__":  # ``python -m sspsim`` is the command line
        return "sspsim.cli", LEVELS["sspsim.cli"]
    for package, level in LEVELS.items():
        if module == package or module.startswith(package + "."):
            return package, level
    return "sspsim", 0


def imports_of(path: Path, module: str) -> list[tuple[str, tuple[str, ...], int]]:
    """(imported sspsim module, names imported from it, line) for every import statement."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, (), node.lineno) for a in node.names if a.name.split(".")[0] == "sspsim"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] == "sspsim":
                found.append((target, tuple(a.name for a in node.names), node.lineno))
    return found


def violations(package: Path = PACKAGE) -> list[str]:
    out = []
    for module, path in _sources(package):
        if module == FACADE:
            continue
        mine, level = layer_of(module)
        for target, names, line in imports_of(path, module):
            theirs, their_level = layer_of(target)
            where = f"{path.relative_to(package.parent)}:{line}: {module} imports {target}"
            if their_level > level:
                out.append(f"{where} (layer {their_level} above layer {level})")
            elif their_level == level and theirs != mine:
                out.append(f"{where} (sibling layer {theirs})")
            elif mine == "sspsim.proofs_check" and their_level == 0:
                if target not in ORACLE_INPUTS:
                    out.append(f"{where} (the oracle imports a rule it should restate)")
                elif target == FACADE:
                    bad = {n for n in names if n not in ORACLE_FACADE_NAMES and f"sspsim.{n}" not in ORACLE_INPUTS}
                    if bad:
                        out.append(f"{where} names {sorted(bad)} (not a data format)")
    return out


def test_no_import_goes_up_a_layer() -> None:
    assert violations() == []


def test_every_layer_package_exists() -> None:
    names = {m for m, _ in _sources()}
    assert set(LEVELS) <= names | {"sspsim.testing"}
    assert len(names) > 40


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("sspsim.config", "from sspsim.sim.run import simulate\n", "layer 1 above layer 0"),
        ("sspsim.sim.run", "import sspsim.reports.build\n", "layer 2 above layer 1"),
        ("sspsim.real.server", "from sspsim.sim import engine\n", "sibling layer sspsim.sim"),
        ("sspsim.proofs_check.ho2013", "from sspsim.ssp import guaranteed_clock\n", "restate"),
        ("sspsim.proofs_check.ho2013", "from sspsim import ClockTable\n", "not a data format"),
        ("sspsim.reports.build", "def f():\n    from sspsim.cli import main\n", "layer 3 above layer 2"),
    ],
)
def test_the_rule_catches_an_arrow_back_up(tmp_path: Path, module: str, source: str, expected: str) -> None:
    """A doctored module with an upward import is reported (the contract can fail)."""
    fake = tmp_path / "sspsim" / Path(*module.split(".")[1:]).with_suffix(".py")
    fake.parent.mkdir(parents=True)
    fake.write_text(source)
    found = violations(tmp_path / "sspsim")
    assert len(found) == 1 and expected in found[0]
