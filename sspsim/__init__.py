"""sspsim: Stale Synchronous Parallel SGD, simulated with real math, checked against its theorems.

>>> import sspsim
>>> config = sspsim.load_config  # doctest: +SKIP
"""

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
from sspsim.problems import make_problem
from sspsim.rundir import Run, read_run
from sspsim.sim import simulate
from sspsim.ssp import INF, ClockTable, Proceed, Wait

__version__ = "0.1.0"

__all__ = [
    "INF",
    "ClockTable",
    "Config",
    "ConfigError",
    "ConsistencyConfig",
    "InputError",
    "NetworkConfig",
    "OptimizerConfig",
    "Proceed",
    "ProblemConfig",
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
]
