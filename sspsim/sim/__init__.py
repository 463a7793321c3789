"""The SimPy simulator: ``simulate(config)`` runs workers as processes around the shared server."""

from sspsim.sim.run import choose_engine, simulate

__all__ = ["choose_engine", "simulate"]
