"""Mutation tests: broken parameter servers and doctored traces, and the checks that catch them.

reference/theorems.md §1 and §10 ask for checks that *can fail*: "mutated schedulers must trip
them".  Each mutant below is a :class:`~sspsim.server.ParameterServer` subclass passed to
``sspsim.simulate(..., server_class=...)`` (or an honest run directory whose trace.csv was
edited with pandas).  Every test names the check that catches the mutant, and asserts that the
check is ``violated`` on the mutant **and** ``holds`` on its honest twin (same config, the real
``ParameterServer``), so a check that fires on everything cannot pass.

Mutant servers:

* :class:`GateOffByOne` - the gate lets a worker begin iteration c once the slowest committed
  clock is c - 2 - s (one clock too far ahead); lazy reads still claim the cutoff c - 1 - s;
* :class:`NoGate` - no gate at all (ClockTable with s = inf); reads still claim their cutoffs;
* :class:`DropOwnWrites` - reads lack the reader's own most recent update, bookkeeping lies;
* :class:`DropOwnWritesHonest` - the same, and the recorded read count admits it;
* :class:`LaggingApply` - a commit is recorded (clock, commit index, read bookkeeping) but its
  update reaches x only at the next commit, so eager reads lack the newest update they claim;
* :class:`ReadsAhead` - reads claim an update (eager) or a clock (lazy/push) that is committed
  only later: a reported read set reaching into the future.

Doctored traces (honest run, one column edited): an iteration far staler than s, a start
before the gate, a duplicated or missing row, perturbed losses, a visible_clock that
disagrees with read_updates.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sspsim
from sspsim.cli import main
from sspsim.proofs_check import CATALOGUE, check_path
from sspsim.server import ParameterServer, Read
from sspsim.ssp import INF, ClockTable

VIOLATED, HOLDS = "violated", "holds"
I0, I1, I2, I3, I4, I5, I6 = (
    "ssp.I0_well_formed", "ssp.I1_gate", "ssp.I2_read_guarantee", "ssp.I3_read_my_writes",
    "ssp.I4_no_future_reads", "ssp.I5_replay", "ssp.I6_limits",
)
GAMMA, WINDOW = "ho2013.inconsistency_bound", "ho2013.index_window"


# -- mutant servers ----------------------------------------------------------------------------

class _SnapshotFallback(ParameterServer):
    """Serve a lazy/push read from the newest snapshot there is when the claimed cutoff is not
    complete yet (a broken gate lets workers read before it is); the claim stays in the trace."""

    def _compose(self, worker: int, cutoff: int) -> np.ndarray:
        return super()._compose(worker, min(cutoff, max(self._snap)))


class GateOffByOne(_SnapshotFallback):
    """The gate allows ``min_q c_q >= c - 1 - (s + 1)``; lazy cutoffs still use s."""

    def __init__(self, x0, *, workers, staleness, read_policy, step, **kw):  # type: ignore[no-untyped-def]
        super().__init__(x0, workers=workers, staleness=staleness, read_policy=read_policy, step=step, **kw)
        self.table = ClockTable(workers, staleness + 1)


class NoGate(_SnapshotFallback):
    """Every worker proceeds at once (ClockTable with s = inf); lazy cutoffs still use s."""

    def __init__(self, x0, *, workers, staleness, read_policy, step, **kw):  # type: ignore[no-untyped-def]
        super().__init__(x0, workers=workers, staleness=staleness, read_policy=read_policy, step=step, **kw)
        self.table = ClockTable(workers, INF)


class DropOwnWrites(ParameterServer):
    """Reads omit the reader's own most recent committed update; Read bookkeeping is unchanged (a lie)."""

    honest = False

    def __init__(self, x0, *, workers, staleness, read_policy, step, **kw):  # type: ignore[no-untyped-def]
        super().__init__(x0, workers=workers, staleness=staleness, read_policy=read_policy, step=step, **kw)
        self._last_own: list[np.ndarray | None] = [None] * workers

    def commit(self, worker, direction):  # type: ignore[no-untyped-def]
        done = super().commit(worker, direction)
        self._last_own[worker] = done.update
        return done

    def read(self, worker: int, *, copy: bool = True) -> Read:
        read = super().read(worker, copy=copy)
        last = self._last_own[worker]
        if read.params is None or last is None:
            return read
        read = read._replace(params=read.params - last)  # never in place: an eager read may be x itself
        if self.honest:
            read = read._replace(updates=read.updates - 1)
        return read


class DropOwnWritesHonest(DropOwnWrites):
    """As DropOwnWrites, and the recorded ``read_updates`` count is one short, admitting it.

    Under lazy/push that count is ``(P - 1) cutoff + own``, so the trace alone shows the missing
    own update; under eager the count is a commit-order prefix and can only name the latest commit.
    """

    honest = True


class LaggingApply(ParameterServer):
    """commit() records the commit but applies its update to x only at the next commit.

    Eager reads then lack the newest update although the bookkeeping (read_updates, commit
    order, times) says it is in: the read sets are truthful about *when*, wrong about *what*.
    (Lazy/push reads are composed from snapshots, not x, so only eager runs show it.)
    """

    def __init__(self, x0, *, workers, staleness, read_policy, step, **kw):  # type: ignore[no-untyped-def]
        super().__init__(x0, workers=workers, staleness=staleness, read_policy=read_policy, step=step, **kw)
        self._late: np.ndarray | None = None

    def commit(self, worker, direction):  # type: ignore[no-untyped-def]
        done = super().commit(worker, direction)
        if done.update is not None:
            assert self.x is not None
            self.x -= done.update
            if self._late is not None:
                self.x += self._late
            self._late = done.update
        return done


class ReadsAhead(ParameterServer):
    """Reads report an update committed only later as already in them.

    eager: ``read_updates`` counts the next commit too; lazy/push: the cutoff (visible_clock)
    claims one more clock than the snapshot served, where that clock is below the reader's own.
    """

    def read(self, worker: int, *, copy: bool = True) -> Read:
        read = super().read(worker, copy=copy)
        if self.policy == "eager":
            return read._replace(updates=read.updates + 1, prefix=read.prefix + 1)
        c, k = read.iteration, read.cutoff + 1
        if self.workers > 1 and k <= c - 1:
            return read._replace(visible_clock=k, staleness=c - 1 - k, cutoff=k, updates=read.updates + self.workers - 1)
        return read


# -- helpers ---------------------------------------------------------------------------------

def config(policy: str = "eager", s: int | str = 1, P: int = 4, kind: str = "logistic", *, audit: bool = False,
           clocks: int = 12, seed: int = 3) -> sspsim.Config:
    """A small run whose worker 0 is 4x slower, so the gate binds and drift shows."""
    problem = {"kind": kind, "dim": 5, "samples": 400, "batch_size": 4}
    if kind == "mlp":
        problem = {"kind": "mlp", "hidden": [8], "samples": 200, "batch_size": 4}
    raw = {
        "run": {"clocks": clocks, "seed": seed, "audit": audit},
        "problem": problem,
        "consistency": {"staleness": s, "read_policy": policy},
        "workers": {"count": P, "speed": {"kind": "exponential", "mean": 1.0},
                    "stragglers": [{"worker": 0, "slowdown": 4.0}] if P > 1 else []},
    }
    return sspsim.config_from_dict(raw)


def simulate(out: Path, cfg: sspsim.Config, server: type[ParameterServer] = ParameterServer) -> Path:
    run = sspsim.simulate(cfg, out, server_class=server)
    assert run.path is not None
    return run.path


def outcomes(path: Path) -> dict[str, str]:
    """theorem name -> outcome of every catalogue check on the run directory."""
    return {v.theorem: v.outcome.value for v in check_path(path)}


def doctor(src: Path, dst: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Path:
    """Copy a run directory and rewrite its trace.csv through ``edit``."""
    shutil.copytree(src, dst)
    trace = pd.read_csv(dst / "trace.csv")
    edit(trace.copy()).to_csv(dst / "trace.csv", index=False, lineterminator="\n")
    return dst


def assert_caught(check: str, mutant: Path, honest: Path) -> None:
    """``check`` is violated on the mutant and holds on the honest twin."""
    got, twin = outcomes(mutant), outcomes(honest)
    assert twin[check] == HOLDS, f"honest twin: {check} is {twin[check]}"
    assert got[check] == VIOLATED, f"mutant: {check} is {got[check]}; violated: {[k for k, v in got.items() if v == VIOLATED]}"


# trace edits -------------------------------------------------------------------------------

def far_staler(trace: pd.DataFrame) -> pd.DataFrame:
    """One late iteration reports visible_clock 0: staleness c - 1, far above s."""
    r = trace.index[trace.clock >= 9][0]
    trace.loc[r, "visible_clock"] = 0
    trace.loc[r, "staleness"] = trace.loc[r, "clock"] - 1
    return trace


def start_before_gate(trace: pd.DataFrame) -> pd.DataFrame:
    """An iteration the gate held is moved back to begin at its worker's previous commit."""
    held = trace.index[(trace.wait_time > 0) & (trace.clock >= 2)][0]
    w, c = trace.loc[held, "worker"], trace.loc[held, "clock"]
    prev = trace.loc[(trace.worker == w) & (trace.clock == c - 1), "commit_time"].item()
    cost = trace.loc[held, "start_time"] - trace.loc[held, "read_time"]
    trace.loc[held, ["read_time", "start_time", "wait_time"]] = [prev, prev + cost, 0.0]
    return trace


def duplicate_row(trace: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([trace, trace.iloc[[5]]], ignore_index=True)


def missing_row(trace: pd.DataFrame) -> pd.DataFrame:
    return trace.drop(index=5).reset_index(drop=True)


def perturb_loss(trace: pd.DataFrame) -> pd.DataFrame:
    """One loss off by one part in a million."""
    trace.loc[len(trace) // 2, "loss"] *= 1 + 1e-6
    return trace


def visible_disagrees(trace: pd.DataFrame) -> pd.DataFrame:
    """visible_clock (and staleness with it) one clock fresher than read_updates says."""
    r = trace.index[(trace.staleness > 0) & (trace.clock >= 3)][0]
    trace.loc[r, "visible_clock"] += 1
    trace.loc[r, "staleness"] -= 1
    return trace


def identity(trace: pd.DataFrame) -> pd.DataFrame:
    return trace


# -- mutant servers: the check that catches each ---------------------------------------------

@pytest.mark.parametrize("policy", ["eager", "push"])
@pytest.mark.parametrize("check", [I1, I2, GAMMA, WINDOW])
def test_gate_off_by_one_is_caught_by_gate_read_guarantee_and_ho2013(tmp_path: Path, policy: str, check: str) -> None:
    """GateOffByOne (s = 1): I1 sees a start s + 1 ahead, I2 a read s + 1 stale, and Ho et al.'s
    inconsistency bound and index window see the extra drift."""
    cfg = config(policy, s=1)
    assert_caught(check, simulate(tmp_path / "m", cfg, GateOffByOne), simulate(tmp_path / "h", cfg))


def test_gate_off_by_one_lazy_is_caught_by_gate_and_no_future_reads(tmp_path: Path) -> None:
    """GateOffByOne under lazy reads (timing only): the claimed cutoff c - 1 - s is not complete
    when the read is taken, so I4 (no future reads) fires beside I1."""
    cfg = config("lazy", s=1, kind="none")
    mutant, honest = simulate(tmp_path / "m", cfg, GateOffByOne), simulate(tmp_path / "h", cfg)
    assert_caught(I1, mutant, honest)
    assert_caught(I4, mutant, honest)


@pytest.mark.parametrize("check", [I1, I2, GAMMA, WINDOW])
def test_no_gate_is_caught_by_gate_read_guarantee_and_ho2013(tmp_path: Path, check: str) -> None:
    """NoGate (s = 1, eager): the straggler falls arbitrarily far behind."""
    cfg = config("eager", s=1)
    assert_caught(check, simulate(tmp_path / "m", cfg, NoGate), simulate(tmp_path / "h", cfg))


@pytest.mark.parametrize("server", [GateOffByOne, NoGate, DropOwnWrites, LaggingApply])
def test_bsp_limit_I6_catches_any_extra_staleness(tmp_path: Path, server: type[ParameterServer]) -> None:
    """With s = 0 every mutant that changes what a read holds breaks I6 (s = 0 is minibatch SGD)."""
    cfg = config("eager", s=0)
    assert_caught(I6, simulate(tmp_path / "m", cfg, server), simulate(tmp_path / "h", cfg))


@pytest.mark.parametrize("policy", ["eager", "lazy", "push"])
def test_lying_drop_own_writes_is_caught_by_replay(tmp_path: Path, policy: str) -> None:
    """DropOwnWrites, no audit log: the trace's bookkeeping is intact, only the losses give it
    away, and I5's independent replay reproduces different losses."""
    cfg = config(policy, s=1)
    mutant, honest = simulate(tmp_path / "m", cfg, DropOwnWrites), simulate(tmp_path / "h", cfg)
    assert_caught(I5, mutant, honest)
    assert outcomes(mutant)[I3] == HOLDS  # the trace alone cannot see a lie about what a read held


@pytest.mark.parametrize("check", [I3, I5])
def test_lying_drop_own_writes_is_caught_from_the_audit_log(tmp_path: Path, check: str) -> None:
    """DropOwnWrites with ``audit = true``: I3 finds the own part of the parameters short and
    I5 finds the parameters read differ from x0 + the read set."""
    cfg = config("lazy", s=1, audit=True)
    assert_caught(check, simulate(tmp_path / "m", cfg, DropOwnWrites), simulate(tmp_path / "h", cfg))


@pytest.mark.parametrize("policy", ["lazy", "push"])
def test_honest_drop_own_writes_is_caught_by_read_my_writes_from_the_trace(tmp_path: Path, policy: str) -> None:
    """DropOwnWritesHonest (no audit): read_updates is one short of (P-1) cutoff + (c-1), so I3
    sees the missing own update in trace.csv alone; the replay (I5) agrees."""
    cfg = config(policy, s=1)
    mutant, honest = simulate(tmp_path / "m", cfg, DropOwnWritesHonest), simulate(tmp_path / "h", cfg)
    assert_caught(I3, mutant, honest)
    assert_caught(I5, mutant, honest)


@pytest.mark.parametrize("audit", [False, True], ids=["replay", "audit"])
def test_lagging_apply_is_caught_by_replay_only(tmp_path: Path, audit: bool) -> None:
    """LaggingApply (eager, s = 1): every read set is truthful about what had committed (I1-I4
    hold, the mutant is invisible to the bookkeeping), yet the math differs: I5 catches it, by
    replay without an audit log and by comparing parameters with one."""
    cfg = config("eager", s=1, audit=audit)
    mutant, honest = simulate(tmp_path / "m", cfg, LaggingApply), simulate(tmp_path / "h", cfg)
    assert_caught(I5, mutant, honest)
    got = outcomes(mutant)
    assert [got[c] for c in (I0, I1, I2, I4)] == [HOLDS] * 4


@pytest.mark.parametrize("policy", ["eager", "push"])
def test_reads_ahead_is_caught_by_no_future_reads(tmp_path: Path, policy: str) -> None:
    """ReadsAhead: a read set that holds an update (eager) or clock (push) committed after the
    read was taken trips I4; the math does not match the claim either (I5)."""
    cfg = config(policy, s=1)
    mutant, honest = simulate(tmp_path / "m", cfg, ReadsAhead), simulate(tmp_path / "h", cfg)
    assert_caught(I4, mutant, honest)
    assert_caught(I5, mutant, honest)


def test_cli_exits_1_on_a_mutant_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sspsim check` exits 1 on a NoGate run and 0 on its honest twin."""
    cfg = config("eager", s=1)
    assert main(["check", str(simulate(tmp_path / "h", cfg))]) == 0
    assert main(["check", str(simulate(tmp_path / "m", cfg, NoGate))]) == 1
    capsys.readouterr()


# -- doctored traces --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def honest_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Honest run directories the doctored traces start from (no audit log: edits stay consistent)."""
    base = tmp_path_factory.mktemp("honest")
    runs = {
        "eager": config("eager", s=1),
        "lazy": config("lazy", s=1),
        "push": config("push", s=1),
        "eager_s0": config("eager", s=0),
        "lazy_P1": config("lazy", s=1, P=1),
        "eager_audit": config("eager", s=1, audit=True),
        "lazy_audit": config("lazy", s=1, audit=True),
        "eager_s0_audit": config("eager", s=0, audit=True),
    }
    return {name: simulate(base / name, cfg) for name, cfg in runs.items()}


@pytest.mark.parametrize("run", ["eager", "lazy", "push", "eager_audit"])
def test_rewriting_the_trace_unchanged_keeps_every_check(tmp_path: Path, honest_runs: dict[str, Path], run: str) -> None:
    """Control: reading and rewriting trace.csv with pandas changes no verdict."""
    assert outcomes(doctor(honest_runs[run], tmp_path / "d", identity)) == outcomes(honest_runs[run])


@pytest.mark.parametrize("run", ["eager", "lazy", "push", "lazy_P1"])
def test_far_staler_iteration_is_caught_by_read_guarantee_and_cli_exit_1(
    tmp_path: Path, honest_runs: dict[str, Path], run: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An iteration reported far staler than s (visible_clock 0 at clock >= 9): I2, and
    `sspsim check` exits 1 (0 on the untouched run)."""
    doctored = doctor(honest_runs[run], tmp_path / "d", far_staler)
    assert_caught(I2, doctored, honest_runs[run])
    assert main(["check", str(honest_runs[run])]) == 0
    assert main(["check", str(doctored)]) == 1
    capsys.readouterr()


@pytest.mark.parametrize("run", ["eager", "lazy", "push", "eager_s0"])
def test_start_before_the_gate_is_caught_by_gate(tmp_path: Path, honest_runs: dict[str, Path], run: str) -> None:
    """An iteration the gate held, moved to begin right at its previous commit: I1."""
    doctored = doctor(honest_runs[run], tmp_path / "d", start_before_gate)
    assert_caught(I1, doctored, honest_runs[run])
    assert outcomes(doctored)[I0] == HOLDS  # still in time order: it is the gate that was broken


@pytest.mark.parametrize("edit", [duplicate_row, missing_row], ids=["duplicated", "missing"])
def test_duplicated_or_missing_row_is_caught_by_well_formed(tmp_path: Path, honest_runs: dict[str, Path], edit) -> None:  # type: ignore[no-untyped-def]
    """A duplicated or a missing trace row (eager, no audit): I0."""
    assert_caught(I0, doctor(honest_runs["eager"], tmp_path / "d", edit), honest_runs["eager"])


@pytest.mark.parametrize("run", ["eager", "lazy", "push"])
def test_perturbed_loss_is_caught_by_replay(tmp_path: Path, honest_runs: dict[str, Path], run: str) -> None:
    """One loss off by 1e-6 (relative), no audit log: I5's replay reproduces the true loss."""
    assert_caught(I5, doctor(honest_runs[run], tmp_path / "d", perturb_loss), honest_runs[run])


@pytest.mark.parametrize("run", ["eager_s0", "lazy_P1", "eager_s0_audit"])
def test_perturbed_loss_is_caught_by_limits_at_s0_or_one_worker(tmp_path: Path, honest_runs: dict[str, Path], run: str) -> None:
    """With s = 0 (minibatch SGD) or P = 1 (serial SGD) a perturbed loss breaks I6, audit log or not."""
    assert_caught(I6, doctor(honest_runs[run], tmp_path / "d", perturb_loss), honest_runs[run])


def test_visible_clock_disagreeing_with_read_updates_is_caught_by_read_guarantee(
    tmp_path: Path, honest_runs: dict[str, Path]
) -> None:
    """eager: visible_clock one fresher than the read set the read_updates prefix implies: I2."""
    assert_caught(I2, doctor(honest_runs["eager"], tmp_path / "d", visible_disagrees), honest_runs["eager"])


# Gaps found by this suite, now closed ---------------------------------------------------------

def test_perturbed_loss_with_audit_log_is_caught_by_replay(tmp_path: Path, honest_runs: dict[str, Path]) -> None:
    """One loss off by 1e-6 in an audited run: nothing but I6 (s = 0 / P = 1 only) reads the losses."""
    assert_caught(I5, doctor(honest_runs["eager_audit"], tmp_path / "d", perturb_loss), honest_runs["eager_audit"])


@pytest.mark.parametrize("edit", [duplicate_row, missing_row], ids=["duplicated", "missing"])
def test_duplicated_or_missing_row_with_audit_log_is_caught_by_well_formed(tmp_path: Path, honest_runs: dict[str, Path], edit) -> None:  # type: ignore[no-untyped-def]
    assert_caught(I0, doctor(honest_runs["eager_audit"], tmp_path / "d", edit), honest_runs["eager_audit"])


@pytest.mark.parametrize("run", ["lazy", "push"])
def test_missing_row_lazy_is_caught_by_well_formed(tmp_path: Path, honest_runs: dict[str, Path], run: str) -> None:
    assert_caught(I0, doctor(honest_runs[run], tmp_path / "d", missing_row), honest_runs[run])


# -- coverage: every exact check catches at least one mutant ----------------------------------

SERVER_MUTANTS: list[tuple[str, type[ParameterServer], dict]] = [
    ("GateOffByOne eager s=1", GateOffByOne, {"policy": "eager", "s": 1}),
    ("GateOffByOne push s=1", GateOffByOne, {"policy": "push", "s": 1}),
    ("GateOffByOne lazy s=1 (none)", GateOffByOne, {"policy": "lazy", "s": 1, "kind": "none"}),
    ("GateOffByOne eager s=0", GateOffByOne, {"policy": "eager", "s": 0}),
    ("NoGate eager s=1", NoGate, {"policy": "eager", "s": 1}),
    ("NoGate lazy s=1", NoGate, {"policy": "lazy", "s": 1}),
    ("DropOwnWrites eager s=1", DropOwnWrites, {"policy": "eager", "s": 1}),
    ("DropOwnWrites lazy s=1 audit", DropOwnWrites, {"policy": "lazy", "s": 1, "audit": True}),
    ("DropOwnWritesHonest push s=1", DropOwnWritesHonest, {"policy": "push", "s": 1}),
    ("LaggingApply eager s=1", LaggingApply, {"policy": "eager", "s": 1}),
    ("LaggingApply eager s=0 audit", LaggingApply, {"policy": "eager", "s": 0, "audit": True}),
    ("ReadsAhead eager s=1", ReadsAhead, {"policy": "eager", "s": 1}),
    ("ReadsAhead push s=1", ReadsAhead, {"policy": "push", "s": 1}),
]
TRACE_MUTANTS: list[tuple[str, str, Callable[[pd.DataFrame], pd.DataFrame]]] = [
    ("trace: far staler (eager)", "eager", far_staler),
    ("trace: far staler (lazy)", "lazy", far_staler),
    ("trace: start before gate (eager)", "eager", start_before_gate),
    ("trace: duplicated row (eager)", "eager", duplicate_row),
    ("trace: missing row (eager)", "eager", missing_row),
    ("trace: perturbed loss (eager)", "eager", perturb_loss),
    ("trace: perturbed loss (eager s=0)", "eager_s0", perturb_loss),
    ("trace: visible_clock vs read_updates (eager)", "eager", visible_disagrees),
]


@pytest.fixture(scope="module")
def mutation_table(tmp_path_factory: pytest.TempPathFactory, honest_runs: dict[str, Path]) -> dict[str, set[str]]:
    """mutant -> the catalogue checks it violates (its honest twin violates none)."""
    base = tmp_path_factory.mktemp("mutants")
    table: dict[str, set[str]] = {}
    for i, (name, server, kw) in enumerate(SERVER_MUTANTS):
        cfg = config(**kw)
        twin = outcomes(simulate(base / f"h{i}", cfg))
        assert VIOLATED not in twin.values(), (name, twin)
        table[name] = {k for k, v in outcomes(simulate(base / f"m{i}", cfg, server)).items() if v == VIOLATED}
    for i, (name, run, edit) in enumerate(TRACE_MUTANTS):
        assert VIOLATED not in outcomes(honest_runs[run]).values()
        table[name] = {k for k, v in outcomes(doctor(honest_runs[run], base / f"t{i}", edit)).items() if v == VIOLATED}
    return table


def test_every_mutant_is_caught(mutation_table: dict[str, set[str]]) -> None:
    """No mutant in the table passes every check."""
    missed = [name for name, caught in mutation_table.items() if not caught]
    assert not missed, f"mutants no check catches: {missed}"


def test_every_exact_check_catches_some_mutant(mutation_table: dict[str, set[str]]) -> None:
    """Each protocol invariant (ssp.*) and each exact Ho et al. lemma check (inconsistency bound,
    index window) in the catalogue is violated by at least one mutant: none is vacuous."""
    exact = [t.name for t in CATALOGUE if t.name.startswith(("ssp.", "ho2013.inconsistency", "ho2013.index_window"))]
    assert {I0, I1, I2, I3, I4, I5, I6, GAMMA, WINDOW} <= set(exact)
    caught_by = {check: sorted(m for m, caught in mutation_table.items() if check in caught) for check in exact}
    lines = [f"{m:45s} {', '.join(sorted(c))}" for m, c in mutation_table.items()]
    vacuous = [check for check, mutants in caught_by.items() if not mutants]
    assert not vacuous, "checks no mutant trips: " + ", ".join(vacuous) + "\n" + "\n".join(lines)


# -- zero false alarms ----------------------------------------------------------------------

HONEST_GRID = [
    (policy, s, P, kind)
    for policy in ("eager", "lazy", "push")
    for s in (0, 1, 3, "inf")
    for P in (1, 2, 4)
    for kind in ("logistic", "mlp", "none")
    if not (policy == "lazy" and s == "inf")
]


@pytest.mark.parametrize("policy,s,P,kind", HONEST_GRID, ids=[f"{p}-s{s}-P{n}-{k}" for p, s, n, k in HONEST_GRID])
def test_honest_runs_violate_nothing(tmp_path: Path, policy: str, s: int | str, P: int, kind: str) -> None:
    """The real ParameterServer, across read policies, s in {0, 1, 3, inf}, P in {1, 2, 4} and
    problems logistic / mlp (hidden [8]) / none: no catalogue check is violated.  Runs with math
    alternate the audit log (by P), so both I5 paths, replay and audit, are exercised."""
    audit = kind != "none" and P != 2
    cfg = config(policy, s=s, P=P, kind=kind, audit=audit, clocks=10)
    verdicts = check_path(simulate(tmp_path / "run", cfg))
    assert len(verdicts) == len(CATALOGUE)
    assert not [str(v) for v in verdicts if v.violated]
