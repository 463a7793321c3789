"""``sspsim calibrate``: measure this machine with a short real run, write a simulator config.

Three short deploys (about 20 s in all):

1. **profile**: the config itself, shortened to ``--clocks`` clocks, injected delays on, so the
   workers contend for the CPU as they will in the real run.  From its trace (see
   :func:`profile_costs`): what each iteration took beyond its injected delay (the real
   computation plus the sleep's overshoot, which grows with the load), what the first
   iteration took beyond that (start-up: the first request, first-call overheads), the pull
   (``start_time - read_time``), the push (``commit_time - start_time - compute_time``), and the
   server's time to apply a push and to send a read.
2. **two message sizes** (problem ``none``, 10x and 100x the model, no injected delay): the pull
   at three sizes gives ``latency + bytes / bandwidth`` by least squares.  These two run first,
   so that the profile meets a machine as warm as the real run will.

The calibrated config is the original with ``[workers] compute`` (the measured computation,
resampled: the simulator adds it to the injected draw before the slowdown factors, as the real
worker does), ``[workers] warmup`` (the first iteration's extra time), ``[network]`` latency and
bandwidth (anchored so that a pull of the model costs the pull measured in the profile),
message size, ``receive_time`` (the mean push minus the mean pull: the server's receiving
thread handing the push to its main loop), ``apply_time`` (the server's mean time to apply a
push) and ``serve_time`` (its mean time to send one read: the real server sends the reads a
push lets through one after another, and the simulator queues them the same way), and a
``[calibration]`` table with what was measured and how well parametric models fit
(Kolmogorov-Smirnov).  Round-based models (``consistency.model`` other than ``ssp``) keep the
server's whole busy time per push in ``apply_time``: their simulator has no read queue.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats

import sspsim
from sspsim.config import INF, Config, config_from_dict
from sspsim.errors import InputError
from sspsim.outdir import FILE_MARK, check_file
from sspsim.problems import make_problem
from sspsim.real.launch import deploy
from sspsim.tomlwrite import dumps

__all__ = ["ProfileCosts", "calibrate", "fit_compute", "fit_network", "profile_costs", "replay_config"]

WIRE_HEADER = 8  # float64 header fields in every message (real.transport.HEADER)


def fit_compute(samples: np.ndarray) -> dict[str, Any]:
    """Goodness of fit of parametric models for the compute times (KS statistic and p-value)."""
    samples = np.asarray(samples, dtype=float)
    out: dict[str, Any] = {"mean": float(samples.mean()), "sd": float(samples.std()), "n": int(samples.size),
                           "p50": float(np.median(samples)), "p99": float(np.quantile(samples, 0.99))}
    if samples.size >= 8 and samples.min() > 0:
        shape, _, scale = scipy.stats.lognorm.fit(samples, floc=0)
        ks = scipy.stats.kstest(samples, "lognorm", args=(shape, 0, scale))
        out["lognormal"] = {"mean": float(scale * np.exp(shape**2 / 2)), "sigma": float(shape),
                            "ks": float(ks.statistic), "p_value": float(ks.pvalue)}
        loc = float(samples.min())
        ks = scipy.stats.kstest(samples, "expon", args=(loc, samples.mean() - loc))
        out["shifted_exponential"] = {"shift": loc, "mean": float(samples.mean() - loc),
                                      "ks": float(ks.statistic), "p_value": float(ks.pvalue)}
    return out


def fit_network(sizes: list[int], pulls: list[float]) -> tuple[float, float]:
    """``pull(bytes) = latency + bytes / bandwidth`` by least squares over the sizes.

    When the pulls do not grow with size (loopback noise), bandwidth is inf and the latency is
    the pull measured at the model's own size, the first one.
    """
    x, y = np.asarray(sizes, dtype=float), np.asarray(pulls, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0:
        return float(y[0]), float("inf")
    slope, intercept = np.polyfit(x, y, 1)
    if slope <= 0:
        return float(y[0]), float("inf")
    return float(max(intercept, 0.0)), float(1.0 / slope)


@dataclasses.dataclass(frozen=True)
class ProfileCosts:
    """What a profile run's trace says each part of an iteration costs (seconds)."""

    compute: np.ndarray  # per iteration after the first: (duration / factor) - injected draw
    warmup: float  # the first iteration's extra time, mean over workers
    pull: float  # mean start_time - read_time, iterations after the first
    push: float  # mean commit_time - start_time - compute_time, iterations after the first


def profile_costs(run: sspsim.Run) -> ProfileCosts:
    """Split the profile run's iterations into computation, start-up, pull and push.

    A real iteration c of worker p lasts ``k * (base + real) + overshoot`` (:mod:`sspsim.real.worker`:
    ``k`` the slowdown factor, ``base`` the injected draw, ``overshoot`` the sleep's lateness);
    the simulator draws ``k * (base + compute)``.  So ``compute = duration / k - base``: the real
    computation and the overshoot, both of which grow with the CPU load.  The first iteration
    also waits for the worker's first request and pays first-call overheads (its first pull and
    push take milliseconds more); ``warmup`` is its ``read_time`` plus its extra compute, pull
    and push beyond the means of the later iterations, averaged over workers, and the pull and
    push are those means.
    """
    from sspsim.speeds import base_times, slowdown_factors

    config = run.config
    w, C = config.workers, config.run.clocks
    trace = run.trace
    p, c = trace["worker"].to_numpy(), trace["clock"].to_numpy() - 1
    if config.real.inject_delays:
        base = base_times(w.speed, workers=w.count, clocks=C, seed=config.run.seed)[p, c]
        k = slowdown_factors(workers=w.count, clocks=C, seed=config.run.seed, stragglers=w.stragglers,
                             transient=w.transient)[p, c]
    else:
        base, k = np.zeros(len(p)), np.ones(len(p))
    own = np.maximum(trace["compute_time"].to_numpy() / k - base, 0.0)
    first = c == 0
    rest = ~first if (~first).any() else np.ones_like(first)

    def typical(x: np.ndarray) -> float:
        return float(x[rest].mean())

    pull = (trace["start_time"] - trace["read_time"]).to_numpy()
    push = (trace["commit_time"] - trace["start_time"] - trace["compute_time"]).to_numpy()
    extra = (trace["read_time"].to_numpy()[first] + k[first] * (own[first] - typical(own))
             + (pull[first] - typical(pull)) + (push[first] - typical(push)))
    return ProfileCosts(compute=own[rest], warmup=float(max(extra.mean(), 0.0)) if extra.size else 0.0,
                        pull=typical(pull), push=typical(push))


def replay_config(calibrated: Config, run: sspsim.Run) -> Config:
    """``calibrated`` with ``run``'s own iterations replayed: a check of the simulator's mechanics
    (gate, waits, message and server costs) that the machine's load cannot disturb.

    Iteration c of worker p takes what it took in ``run`` from its read to the server's receipt
    of its push (``commit_time - read_time``: pull, injected delay, real computation, push), as
    the ``trace`` speed model with a free network; the server's ``apply_time`` and ``serve_time`` stay.
    Stragglers, transient slowdowns, ``compute`` and ``warmup`` are already in those times.
    """
    from sspsim.speeds import TraceTimes

    trace = run.trace
    P, C = run.config.workers.count, run.config.run.clocks
    times = np.zeros((P, C))
    times[trace["worker"].to_numpy(), trace["clock"].to_numpy() - 1] = (trace["commit_time"] - trace["read_time"]).to_numpy()
    workers = dataclasses.replace(calibrated.workers, speed=TraceTimes(file=Path(run.path or ".") / "trace.csv", times=times),
                                  stragglers=(), transient=None, compute=None, warmup=0.0)
    network = dataclasses.replace(calibrated.network, latency=0.0, bandwidth=INF, receive_time=0.0)
    return calibrated.replace(workers=workers, network=network, run=dataclasses.replace(calibrated.run, clocks=C))


def _profile(config: Config, out: Path, force: bool) -> sspsim.Run:
    meta = deploy(config, out, force=force)
    if meta.get("status") != "complete":
        raise InputError("calibrate", str(out), f"the profile run did not complete: {meta.get('reason')}")
    return sspsim.read_run(out)


def calibrate(config: Config, cal_file: Path, *, workdir: Path, clocks: int = 40, force: bool = False) -> dict[str, Any]:
    """Profile this machine and write the calibrated simulator config to ``cal_file``.

    ``cal_file`` and the profile runs follow :mod:`sspsim.outdir`: replacing ones sspsim wrote
    needs ``force``; other files are never overwritten without it.
    """
    check_file(cal_file, force=force)
    short = dataclasses.replace(config.run, clocks=min(clocks, config.run.clocks))  # evaluations as in the run: snapshots cost time
    started = time.time()
    # The two message sizes first: the profile, last, then meets a machine as warm as the real run
    # will (the first deploy after a while pays seconds of cold first calls, which would be read as
    # every worker's warm-up).
    n_params = make_problem(config.problem, config.problem_seed).n_params
    sizes, size_pulls = [8 * (n_params + WIRE_HEADER)], []
    for scale in (10, 100):
        dim = min(n_params * scale, 2_000_000)
        timing = config.replace(
            run=dataclasses.replace(short, clocks=min(20, short.clocks), target=None, eval_every=None),
            problem=dataclasses.replace(config.problem, kind="none", dim=dim),
            consistency=dataclasses.replace(config.consistency, staleness=sspsim.INF, read_policy="eager"),
            real=dataclasses.replace(config.real, inject_delays=False),
        )
        t = _profile(timing, workdir / f"size-{dim}", force).trace
        size_pulls.append(float((t.start_time - t.read_time).mean()))
        sizes.append(8 * (dim + WIRE_HEADER))
    profile = _profile(config.replace(run=short), workdir / "profile", force)
    costs = profile_costs(profile)
    compute = costs.compute
    pulls = [costs.pull, *size_pulls]
    latency, bandwidth = fit_network(sizes, pulls)
    if bandwidth != INF:  # the fit gives the slope; the model's own pull, measured under the run's load, the level
        latency = max(costs.pull - sizes[0] / bandwidth, 0.0)
    receive = max(costs.push - costs.pull, 0.0)
    server = profile.meta.get("server", {})
    busy = float(server.get("busy_per_push") or 0.0)
    if config.consistency.model == "ssp":
        apply, serve = float(server.get("apply_per_push") or 0.0), float(server.get("send_per_read") or 0.0)
    else:
        apply, serve = busy, 0.0
    # the first reads go out one after another, as the simulator now sends them: not warm-up
    warmup = max(costs.warmup - serve * (config.workers.count - 1) / 2, 0.0)
    fits = fit_compute(compute)
    raw = config.to_dict()
    raw["workers"]["compute"] = {"kind": "empirical", "samples": [float(v) for v in np.round(compute, 9)]}
    raw["workers"]["warmup"] = warmup
    raw["network"].update({"latency": latency, "bandwidth": bandwidth, "message_bytes": sizes[0], "apply_time": apply,
                           "serve_time": serve, "receive_time": receive})
    raw["calibration"] = {
        "host": socket.gethostname(),
        "profile_clocks": short.clocks,
        "workers": config.workers.count,
        "compute": json.loads(json.dumps(fits)),
        "pull_seconds": pulls,
        "push_seconds": costs.push,
        "receive_time": receive,
        "warmup": warmup,
        "message_bytes": sizes,
        "latency": latency,
        "bandwidth": bandwidth,
        "server_busy_per_push": busy,
        "server_apply_per_push": apply,
        "server_send_per_read": serve,
        "startup_time": float(profile.meta.get("startup_time") or 0.0),
        "seconds": time.time() - started,
    }
    config_from_dict(raw, base_dir=cal_file.parent)  # what we write must load
    cal_file.parent.mkdir(parents=True, exist_ok=True)
    header = (f"{FILE_MARK} calibrate. Calibrated on {socket.gethostname()}: the config of the real run, plus the measured\n"
              "computation ([workers] compute), network and server costs. Simulate it to predict that run.")
    cal_file.write_text(dumps(raw, header=header))
    return raw["calibration"]
