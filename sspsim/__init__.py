"""sspsim: Stale Synchronous Parallel SGD, simulated with real math.

Everything a user needs is here; heavier pieces (the SimPy engine, problems, run directories)
load on first use, so ``import sspsim.ssp`` (the controller the real backend shares) pulls in
neither SimPy nor pandas.  Type checkers see the lazy names through the ``TYPE_CHECKING``
imports below.

>>> import sspsim
>>> run = sspsim.simulate(sspsim.config_from_dict({"run": {"clocks": 20}, "consistency": {"staleness": 0}}))
>>> run.summary["max_staleness"]
0
"""

import importlib
import importlib.metadata
import typing

from sspsim.bundled import example
from sspsim.config import (
    Config,
    ConsistencyConfig,
    NetworkConfig,
    OptimizerConfig,
    ProblemConfig,
    RunConfig,
    WorkersConfig,
    config_from_dict,
    load_config,
)
from sspsim.errors import ConfigError, InputError, ProtocolError, SSPSimError
from sspsim.ssp import INF, ClockTable, Proceed, Wait

if typing.TYPE_CHECKING:  # pragma: no cover - what __getattr__ loads on first use
    from sspsim.notebook import check, compare, read_sweep, sweep
    from sspsim.problems import make_problem
    from sspsim.rundir import Run, read_run, read_runs
    from sspsim.sim import simulate
    from sspsim.task import TorchTask

try:
    __version__ = importlib.metadata.version("sspsim")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source tree never installed
    __version__ = "0+unknown"

_LAZY = {
    "simulate": "sspsim.sim",
    "make_problem": "sspsim.problems",
    "Run": "sspsim.rundir",
    "read_run": "sspsim.rundir",
    "read_runs": "sspsim.rundir",
    "TorchTask": "sspsim.task",
    "sweep": "sspsim.notebook",
    "read_sweep": "sspsim.notebook",
    "check": "sspsim.notebook",
    "compare": "sspsim.notebook",
}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sspsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ClockTable",
    "Config",
    "ConfigError",
    "ConsistencyConfig",
    "INF",
    "InputError",
    "NetworkConfig",
    "OptimizerConfig",
    "ProblemConfig",
    "Proceed",
    "ProtocolError",
    "Run",
    "RunConfig",
    "SSPSimError",
    "TorchTask",
    "Wait",
    "WorkersConfig",
    "check",
    "compare",
    "config_from_dict",
    "example",
    "load_config",
    "make_problem",
    "read_run",
    "read_runs",
    "read_sweep",
    "simulate",
    "sweep",
]
