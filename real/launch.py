"""``sspsim deploy``: run the ranks on this machine and report how the run ended.

One machine: P workers and the server are child processes (:mod:`sspsim.real.ranks`) that meet
through a private FileStore, with Gloo bound to the loopback interface unless ``[real] interface``
names another, so nothing listens beyond loopback.  The resolved config is written to
``DIR/config.json`` first, so every process reads the same one; the processes' output goes to
``DIR/launch.log``.  Multi-node runs use torchrun directly (:func:`torchrun_command` prints the
command for one node; docs/howto/multi-node.md states what its rendezvous exposes).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from sspsim import outdir
from sspsim.budget import check_memory
from sspsim.config import Config, config_from_dict
from sspsim.errors import InputError
from sspsim.rundir import jsonable, write_meta

__all__ = ["deploy", "torchrun_command"]


def torchrun_command(
    config_file: Path, out: Path, *, nproc: int, nnodes: int = 1,
    endpoint: str | None = None, resume: bool = False, baseline: str | None = None, tensorboard: Path | None = None,
) -> list[str]:
    """The torchrun command line of one node (standalone when ``nnodes == 1`` and no endpoint)."""
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    if nnodes == 1 and endpoint is None:
        cmd += ["--standalone", "--nnodes=1"]
    else:  # the c10d rendezvous numbers the nodes itself (torchrun ignores --node-rank with it)
        cmd += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}"]
    cmd += [f"--nproc-per-node={nproc}", "--max-restarts=0", "--monitor-interval=0.2", "-m", "sspsim.real.main",
            "--config", str(config_file), "--out", str(out)]
    if resume:
        cmd.append("--resume")
    if baseline:
        cmd += ["--baseline", baseline]
    if tensorboard is not None:
        cmd += ["--tensorboard", str(tensorboard)]
    return cmd


def loopback_interface() -> str | None:
    """The name of the loopback network interface (``lo`` on Linux), if there is one."""
    import socket

    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:  # pragma: no cover - platforms without if_nameindex
        return None
    return next((n for n in names if n == "lo" or n.startswith("lo")), None)


def environment(config: Config) -> dict[str, str]:
    """The environment of a one-machine run: one OpenMP thread per process, Gloo on
    ``[real] interface``, or on loopback when none is named."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    interface = config.real.interface or loopback_interface()
    if interface:
        env.setdefault("GLOO_SOCKET_IFNAME", interface)
    return env


def deploy(
    config: Config, out: Path, *, resume: bool = False, baseline: str | None = None, force: bool = False,
    tensorboard: Path | None = None,
) -> dict:
    """Run ``config`` for real; return the run.json written (status complete or incomplete).

    ``tensorboard``: a folder for TensorBoard scalars, which the server writes while the run goes
    (:mod:`sspsim.tblog`; the output-folder rules, ``force`` included, apply to it too).
    ``out`` follows :mod:`sspsim.outdir`.  A new run is written in place (so a crash leaves a run
    directory ``--resume`` continues); replacing an sspsim run (``force``) runs into a hidden
    sibling that is swapped in when the run ends.  ``resume`` refuses a complete run.
    """
    if config.consistency.model not in ("ssp", "ksync") and baseline is None:
        raise InputError("consistency.model", config.consistency.model,
                         "the real backend runs ssp and ksync; simulate the other round-based models with sspsim simulate")
    if config.consistency.model == "ksync" and resume:
        raise InputError("--resume", str(out), "a K-sync run cannot be resumed (checkpoints are SSP's)")
    import importlib.util

    if importlib.util.find_spec("torch") is None:  # only the ranks import torch: the launcher starts and exits fast
        raise InputError("deploy", "torch", "the real backend needs torch: pip install 'sspsim[real]'")
    if config.real.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("real.device", "cuda", "no CUDA GPU is visible here; use \"auto\" or \"cpu\"")
    check_memory(config)  # before the folder is touched or a process starts
    if tensorboard is None:
        return _deploy(config, Path(out), resume=resume, baseline=baseline, force=force, tensorboard=None)
    from sspsim import tblog

    with tblog.output_folder(tensorboard, force=force, run_dir=out) as logdir:
        return _deploy(config, Path(out), resume=resume, baseline=baseline, force=force, tensorboard=logdir)


def _deploy(config: Config, out: Path, *, resume: bool, baseline: str | None, force: bool, tensorboard: Path | None) -> dict:
    """:func:`deploy` once the input is checked: claim ``out``, run, swap a replaced run in."""
    out = Path(out)
    stage = None
    if resume:
        status = _status(out)
        if status is None:
            raise InputError("--resume", str(out), "is not a run directory")
        if status == "complete":
            raise InputError("--resume", str(out), "is a complete run; there is nothing to resume")
        target = out
    else:
        if not force and _status(out) not in (None, "complete") and outdir.read_marker(out) is not None:
            raise InputError("--out", str(out), "holds an unfinished sspsim run: continue it with --resume, "
                             "or add --force to replace it")
        if outdir.check_folder(out, force=force) is None:
            out.mkdir(parents=True, exist_ok=True)
            outdir.clean_stale(out.parent)
            target = out
        else:
            stage = target = outdir.staging(out)
    try:
        with outdir.lock(target):
            if not resume and stage is None:
                if outdir.read_marker(out) is not None:
                    raise InputError("--out", str(out), "another sspsim process wrote a run there meanwhile; nothing written")
                outdir.check_folder(out, force=False)  # files appeared meanwhile: refuse them
            if not resume:
                outdir.write_marker(target, "run")
            meta = _launch(config, target, resume=resume, baseline=baseline, tensorboard=tensorboard)
    except BaseException:
        if stage is not None:
            outdir.discard(stage)
        raise
    if stage is not None:
        outdir.commit(stage, out, force=True)
    return meta


def _status(out: Path) -> str | None:
    """The status in ``out/run.json`` ("complete", "incomplete", "running"); None if there is none."""
    try:
        meta = json.loads((Path(out) / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return str(meta.get("status", "complete")) if isinstance(meta, dict) else None


def _launch(config: Config, out: Path, *, resume: bool, baseline: str | None, tensorboard: Path | None = None) -> dict:
    """Run the ranks into ``out`` (which exists and is ours); return its run.json.

    Raises KeyboardInterrupt (exit 130) on Ctrl-C, after marking run.json "interrupted"."""
    from sspsim.real.ranks import Interrupted, run_ranks

    config_file = out / "config.json"
    config_file.write_text(json.dumps(jsonable(config.to_dict()), indent=2) + "\n")
    nproc = config.workers.count + (0 if baseline else 1)
    argv = ["--config", str(config_file), "--out", str(out)] + (["--resume"] if resume else []) + \
        (["--baseline", baseline] if baseline else []) + (["--tensorboard", str(tensorboard)] if tensorboard else [])
    launched = time.time()
    log = out / "launch.log"
    with open(log, "ab") as fh:
        fh.write((" ".join([sys.executable, "-m", "sspsim.real.main", *argv]) + f"  (x{nproc})\n").encode())
    try:
        outcome = run_ranks(argv, world=nproc, env=environment(config), log=log, timeout=config.real.timeout,
                            baseline=bool(baseline))
    except Interrupted:
        _mark(out, "interrupted", "interrupted (SIGINT)")
        raise KeyboardInterrupt(f"interrupted; {out} is marked interrupted: continue it with "
                                f"sspsim deploy --resume {out}") from None
    code = outcome.code
    meta_file = out / "run.json"
    if not meta_file.is_file():
        raise InputError("deploy", str(out), f"the run wrote no run.json ({outcome.cause or f'exit code {code}'}; see {log})")
    meta = json.loads(meta_file.read_text())
    if meta.get("status") == "running":  # every process was killed before rank 0 could finish
        meta["status"] = "incomplete"
        meta["reason"] = "the processes ended without finishing (see launch.log)"
    if meta.get("status") != "complete" and outcome.cause and outcome.cause not in meta.get("reason", ""):
        meta["reason"] = f"{meta.get('reason', 'failed')}; {outcome.cause}"
    if "started_at" in meta and not resume:
        meta["startup_time"] = meta["started_at"] - launched  # processes, imports, rendezvous, data
    write_meta(out, meta)
    meta["launch_exit_code"] = code
    return meta


def _mark(out: Path, status: str, reason: str) -> None:
    """Set run.json's status (a run that never wrote one stays without)."""
    if not (out / "run.json").is_file():
        return
    meta = json.loads((out / "run.json").read_text())
    if meta.get("status") != "complete":
        meta["status"] = status
        meta["reason"] = f"{reason}; {meta['reason']}" if meta.get("reason") else reason
        write_meta(out, meta)


def root_cause(log: str) -> str | None:
    """torchrun's "Root Cause (first observed failure)" as one line, e.g. "rank 2 exited with code 17".

    >>> root_cause("Root Cause (first observed failure):\\n[0]:\\n  rank      : 2 (local_rank: 2)\\n  exitcode  : 17 (pid: 1)")
    'rank 2 (worker 1) exited with code 17'
    """
    import re

    at = log.rfind("Root Cause")
    if at < 0:
        return None
    rank = re.search(r"rank\s*:\s*(\d+)", log[at:])
    code = re.search(r"exitcode\s*:\s*(-?\d+)", log[at:])
    if not rank or not code:
        return None
    r = int(rank.group(1))
    who = "the server" if r == 0 else f"worker {r - 1}"
    return f"rank {r} ({who}) exited with code {code.group(1)}"


def resume_config(out: Path) -> Config:
    """The config a resumed run continues with (the one saved beside its checkpoint)."""
    path = Path(out) / "config.json"
    if not path.is_file():
        raise InputError("--resume", str(out), "has no config.json")
    return config_from_dict(json.loads(path.read_text()), base_dir=out)
