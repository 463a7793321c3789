"""sspsim: Stale Synchronous Parallel SGD, simulated with real math.

Everything a user needs is here; heavier pieces (the SimPy engine, problems, run directories)
load on first use, so ``import sspsim.ssp`` (the controller the real backend shares) pulls in
neither SimPy nor pandas.

>>> import sspsim
>>> run = sspsim.simulate(sspsim.config_from_dict({"run": {"clocks": 20}, "consistency": {"staleness": 0}}))
>>> run.summary["max_staleness"]
0
"""

import importlib

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

__version__ = "0.1.0"

_LAZY = {
    "simulate": "sspsim.sim",
    "make_problem": "sspsim.problems",
    "Run": "sspsim.rundir",
    "read_run": "sspsim.rundir",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sspsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = sorted([
    "INF",
    "ClockTable",
    "Config",
    "ConfigError",
    "ConsistencyConfig",
    "InputError",
    "NetworkConfig",
    "OptimizerConfig",
    "ProblemConfig",
    "Proceed",
    "ProtocolError",
    "Run",
    "RunConfig",
    "SSPSimError",
    "Wait",
    "WorkersConfig",
    "config_from_dict",
    "load_config",
    "make_problem",
    "read_run",
    "simulate",
])
