"""The parameter server with reused buffers (the real server's): the same parameters, bit for bit,
as with a new array per update, when every gradient arrives in one buffer overwritten each time."""

from __future__ import annotations

import numpy as np
import pytest

from sspsim.optimizer import Momentum, StepSize
from sspsim.server import ParameterServer, add_scaled
from sspsim.ssp import Proceed


def _servers(policy: str, momentum: float) -> tuple[ParameterServer, ParameterServer]:
    def make(in_place: bool) -> ParameterServer:
        return ParameterServer(np.linspace(-1.0, 1.0, 40), workers=3, staleness=2, read_policy=policy,
                               step=StepSize(0.1, "inverse_sqrt"), momentum=momentum, in_place=in_place)

    return make(False), make(True)


@pytest.mark.parametrize("policy", ["eager", "lazy", "push"])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_in_place_updates_and_a_reused_gradient_buffer_give_the_same_parameters(policy: str, momentum: float) -> None:
    fresh, reused = _servers(policy, momentum)
    rng = np.random.default_rng(3)
    wire = np.empty(40)  # the receive buffer: every gradient of the reused server arrives here
    began: set[int] = set()
    for _ in range(60):
        p = int(rng.integers(3))
        if p not in began:
            if not isinstance(fresh.admit(p), Proceed):
                continue
            a, b = fresh.read(p), reused.read(p, copy=False)
            assert a.params is not None and b.params is not None and np.array_equal(a.params, b.params)
            began.add(p)
            continue
        g = rng.standard_normal(40)
        wire[:] = g
        ca, cb = fresh.commit(p, g), reused.commit(p, wire)
        wire[:] = np.nan  # the next message overwrites it: nothing may still refer to it
        assert ca.commit_index == cb.commit_index and ca.step == cb.step
        assert fresh.x is not None and reused.x is not None and np.array_equal(fresh.x, reused.x)
        began.discard(p)
    assert fresh.commits >= 15


def test_momentum_keeps_no_reference_to_the_gradient() -> None:
    """d_1 = g_1 must survive the caller overwriting g_1's buffer (d_2 = g_2 + beta d_1)."""
    m = Momentum(0.5)
    g = np.array([1.0, 2.0])
    m.direction(g)
    g[:] = [10.0, 20.0]
    assert m.direction(g).tolist() == [10.5, 21.0]


@pytest.mark.parametrize("block", [1, 7, 64, 100])
def test_add_scaled_rounds_as_the_plain_expression(block: int) -> None:
    rng = np.random.default_rng(block)
    x, d = rng.standard_normal(100), rng.standard_normal(100)
    a = -float(rng.uniform(0.01, 1.0))
    expected = x + a * d
    add_scaled(x, a, d, np.empty(block))
    assert np.array_equal(x, expected)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_commit_eager_is_read_and_commit_without_the_records(momentum: float) -> None:
    """The simulator's hot path (enter, gradient at x, commit_eager) ends where read + commit end."""
    def make(in_place: bool) -> ParameterServer:
        return ParameterServer(np.linspace(-1.0, 1.0, 40), workers=3, staleness=1, read_policy="eager",
                               step=StepSize(0.1, "inverse_sqrt", staleness_aware=True), momentum=momentum,
                               in_place=in_place)

    plain, lean = make(False), make(True)
    rng = np.random.default_rng(5)
    reads: dict[int, int] = {}
    held: set[int] = set()
    releases = 0
    for _ in range(80):
        p = int(rng.integers(3))
        if p in held:
            continue
        if p not in reads:
            if not lean.table.enter(p):  # held: both tables agree on the gate
                assert not plain.table.admit_or_hold(p)
                held.add(p)
                continue
            assert plain.table.admit_or_hold(p)
            plain.read(p, copy=False)
            reads[p] = lean.commits
            continue
        g = rng.standard_normal(40)
        done = plain.commit(p, g)
        eta, released = lean.commit_eager(p, g, reads.pop(p))
        assert (eta, released) == (done.step, done.released)
        assert lean.x is not None and plain.x is not None and np.array_equal(lean.x, plain.x)
        releases += len(released)
        for q in released:  # released workers begin at once, reading x as it is now
            held.discard(q)
            lean.table.begin(q)
            plain.read(q, copy=False)
            reads[q] = lean.commits
    assert lean.commits == plain.commits >= 20 and releases >= 3
