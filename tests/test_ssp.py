"""The pure SSP controller (sspsim.ssp): gate, clock table, hold/release queue."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from sspsim.errors import ProtocolError
from sspsim.ssp import (
    INF,
    ClockTable,
    Proceed,
    Wait,
    guaranteed_clock,
    may_begin,
    read_count,
    read_cutoff,
    read_visible,
    staleness_of,
    visible_clock,
)

STALENESS = st.one_of(st.integers(0, 4), st.just(INF))


class ClockTableMachine(RuleBasedStateMachine):
    """Drives a ClockTable with random admit/begin/commit/hold and checks it against a brute-force model."""

    @initialize(workers=st.integers(1, 6), staleness=STALENESS)
    def setup(self, workers: int, staleness: float) -> None:
        self.P = workers
        self.s = staleness
        self.table = ClockTable(workers, staleness)
        self.clocks = [0] * workers  # model: committed clocks
        self.running = [False] * workers
        self.held: list[int] = []  # model: held workers, in hold order
        self.admitted: set[int] = set()  # model: let through by admit_or_hold() or released, not begun yet

    # -- the model's view of the gate ----------------------------------------------------
    def gate_open(self, w: int) -> bool:
        """Brute force: worker w may begin clock(w)+1 iff min_q c_q >= clock(w) - s."""
        return min(self.clocks) >= (self.clocks[w] + 1) - 1 - self.s

    # -- rules -----------------------------------------------------------------------------
    @rule(w=st.integers(0, 15))
    def admit(self, w: int) -> None:
        w %= self.P
        decision = self.table.admit(w)
        if self.gate_open(w):
            assert decision == Proceed()
        else:
            assert decision == Wait(min_clock=self.clocks[w] - self.s)

    @rule(w=st.integers(0, 15))
    def begin(self, w: int) -> None:
        w %= self.P
        if self.running[w] or not self.gate_open(w):
            with pytest.raises(ProtocolError):
                self.table.begin(w)
            return
        assert w not in self.held  # a held worker never has an open gate (see invariant)
        c = self.clocks[w] + 1
        self.table.begin(w)
        # no worker begins iteration c while the slowest committed clock is below c - 1 - s
        assert min(self.clocks) >= c - 1 - self.s
        self.running[w] = True
        self.admitted.discard(w)

    @rule(w=st.integers(0, 15))
    def admit_or_hold(self, w: int) -> None:
        w %= self.P
        assume(w not in self.held)  # a held worker waits for its release, it does not ask again
        if self.running[w] or w in self.admitted:
            with pytest.raises(ProtocolError):
                self.table.admit_or_hold(w)
            return
        if self.gate_open(w):
            assert self.table.admit_or_hold(w) is True
            self.admitted.add(w)
        else:
            assert self.table.admit_or_hold(w) is False
            self.held.append(w)

    @rule(w=st.integers(0, 15))
    def enter(self, w: int) -> None:
        w %= self.P
        assume(w not in self.held)
        if self.running[w] or w in self.admitted:
            with pytest.raises(ProtocolError):
                self.table.enter(w)
            return
        if self.gate_open(w):
            assert self.table.enter(w) is True
            self.running[w] = True
        else:
            assert self.table.enter(w) is False
            self.held.append(w)

    @rule(w=st.integers(0, 15))
    def commit(self, w: int) -> None:
        w %= self.P
        if not self.running[w]:
            with pytest.raises(ProtocolError):
                self.table.commit(w)
            return
        released = self.table.commit(w)
        self.running[w] = False
        self.clocks[w] += 1
        expected = tuple(q for q in self.held if self.gate_open(q))
        assert released == expected
        self.held = [q for q in self.held if q not in expected]
        self.admitted.update(expected)

    @precondition(lambda self: any(not r for r in self.running))
    @rule(w=st.integers(0, 15))
    def hold(self, w: int) -> None:
        w %= self.P
        assume(not self.running[w] and w not in self.held)
        if self.gate_open(w):
            with pytest.raises(ProtocolError):
                self.table.hold(w)
            return
        self.table.hold(w)
        self.held.append(w)

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def clocks_match_model(self) -> None:
        assert self.table.clocks() == tuple(self.clocks)
        assert all(self.table.clock(w) == self.clocks[w] for w in range(self.P))
        assert all(self.table.running(w) == self.running[w] for w in range(self.P))

    @invariant()
    def min_and_max_by_brute_force(self) -> None:
        assert self.table.min_clock == min(self.table.clocks())

    @invariant()
    def committed_spread_at_most_s_plus_one(self) -> None:
        assert max(self.clocks) - min(self.clocks) <= self.s + 1

    @invariant()
    def held_workers_have_closed_gates(self) -> None:
        # released exactly when the gate opens: nobody is still held with an open gate
        assert all(not self.gate_open(q) for q in self.held)

    @invariant()
    def slowest_worker_may_always_proceed(self) -> None:
        slowest = self.clocks.index(min(self.clocks))
        assert self.table.admit(slowest) == Proceed()


TestClockTableMachine = ClockTableMachine.TestCase


def test_bsp_lockstep() -> None:
    """With s = 0 every worker waits at each clock until all workers committed the previous one."""
    P = 3
    table = ClockTable(P, 0)
    for c in range(1, 6):
        for w in range(P):
            assert table.admit(w) == Proceed()
            table.begin(w)
        for w in (2, 0):  # two of three commit: they must wait for the third
            assert table.commit(w) == ()
            assert table.admit(w) == Wait(min_clock=c)
            table.hold(w)
        assert table.commit(1) == (2, 0)  # released in hold order
        assert table.clocks() == (c, c, c) and table.min_clock == c


def test_asp_never_waits() -> None:
    """With s = inf, admit never returns Wait even when one worker is far ahead."""
    table = ClockTable(3, INF)
    for _ in range(500):
        assert table.admit(0) == Proceed()
        table.begin(0)
        table.commit(0)
    assert table.clocks() == (500, 0, 0)
    assert all(table.admit(w) == Proceed() for w in range(3))
    assert table.min_clock == 0


def test_gate_blocks_exactly_s_plus_one_ahead() -> None:
    """A lone fast worker may begin iterations 1..s+1 and is gated at s+2."""
    s = 2
    table = ClockTable(2, s)
    for _ in range(s + 1):
        table.begin(0)
        table.commit(0)
    assert table.admit(0) == Wait(min_clock=1)
    with pytest.raises(ProtocolError, match="beyond staleness"):
        table.begin(0)


def test_max_clock_tracks_fastest_worker() -> None:
    """max_clock equals max(clocks()) after a commit that leaves other workers behind."""
    table = ClockTable(2, INF)
    table.begin(0)
    table.commit(0)
    assert table.clocks() == (1, 0)
    assert table.max_clock == 1


def test_protocol_errors() -> None:
    """Begin-when-gated, begin-twice, commit-without-begin and hold-when-open raise ProtocolError."""
    table = ClockTable(2, 0)
    with pytest.raises(ProtocolError, match="without a running iteration"):
        table.commit(0)
    table.begin(0)
    with pytest.raises(ProtocolError, match="before committing"):
        table.begin(0)
    table.commit(0)
    with pytest.raises(ProtocolError, match="beyond staleness"):
        table.begin(0)  # gated: worker 1 has not committed clock 1
    with pytest.raises(ProtocolError, match="gate is open"):
        table.hold(1)
    with pytest.raises(ProtocolError):
        ClockTable(0, 1)
    with pytest.raises(ProtocolError):
        ClockTable(2, -1)


@given(c=st.integers(1, 10**6), m=st.integers(0, 10**6), s=STALENESS)
def test_may_begin_is_the_gate_rule(c: int, m: int, s: float) -> None:
    """may_begin(c, min, s) holds exactly when (c - 1) - min <= s."""
    assert may_begin(c, m, s) == ((c - 1) - m <= s)
    assert guaranteed_clock(c, s) == c - 1 - s


@given(prefixes=st.lists(st.integers(0, 100), min_size=1, max_size=20), c=st.integers(1, 200))
def test_visible_clock_and_staleness(prefixes: list[int], c: int) -> None:
    """visible_clock is the min prefix and staleness_of is (c - 1) - visible."""
    v = visible_clock(prefixes)
    assert v == min(prefixes)
    assert staleness_of(c, v) == c - 1 - v
    assert math.isinf(guaranteed_clock(c, INF))


@st.composite
def _reads(draw):  # type: ignore[no-untyped-def]
    """A reader's iteration c, the other workers' committed clocks (each >= c - 1 - s, as the gate
    ensures), the staleness bound and the read policy."""
    s = draw(STALENESS)
    policy = draw(st.sampled_from(["lazy", "push", "eager"] if s != INF else ["push", "eager"]))
    c = draw(st.integers(1, 30))
    low = max(0, c - 1 - s) if s != INF else 0
    others = draw(st.lists(st.integers(int(low), int(low) + 8), min_size=0, max_size=5))
    return c, others, s, policy


@given(read=_reads())
def test_read_rule_matches_the_read_set_it_describes(read) -> None:  # type: ignore[no-untyped-def]
    """Build the read set the rule describes -- every update of clocks <= cutoff of every worker plus
    the reader's own 1..c-1 -- and count it: its visible clock and size are read_visible and
    read_count, the cutoff never breaks the guarantee, and lazy serves exactly the guarantee."""
    c, others, s, policy = read
    min_clock = min([c - 1, *others])
    cutoff = read_cutoff(policy, c, s, min_clock)
    assert isinstance(cutoff, int) and 0 <= cutoff <= min_clock
    assert cutoff >= guaranteed_clock(c, s)  # the read guarantee: every update of clocks <= c - 1 - s
    if policy == "lazy":
        assert cutoff == max(0, c - 1 - s)
    else:
        assert cutoff == min_clock
    workers = 1 + len(others)
    read_set = {(0, k) for k in range(1, c)} | {(q, k) for q in range(1, workers) for k in range(1, cutoff + 1)}
    prefixes = [max((k for q2, k in read_set if q2 == q), default=0) for q in range(workers)]
    assert read_visible(cutoff, c, workers) == visible_clock(prefixes)
    assert read_count(cutoff, c, workers) == len(read_set)
    assert staleness_of(c, read_visible(cutoff, c, workers)) <= s


@given(
    clocks=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 40)), min_size=1, max_size=12),
    s=st.integers(0, 5),
    policy=st.sampled_from(["lazy", "push", "eager"]),
    workers=st.integers(1, 4),
)
def test_read_rule_on_arrays_is_the_rule_element_wise(clocks, s, policy, workers) -> None:  # type: ignore[no-untyped-def]
    """The batch schedule's arrays get the same values as the server's ints, as int64 arrays."""
    c = np.array([it for it, _ in clocks])
    m = np.array([mc for _, mc in clocks])
    cutoff = read_cutoff(policy, c, s, m)
    assert cutoff.dtype == np.int64
    assert cutoff.tolist() == [read_cutoff(policy, int(a), s, int(b)) for a, b in zip(c, m)]
    assert read_visible(cutoff, c, workers).tolist() == [read_visible(k, int(a), workers) for k, a in zip(cutoff.tolist(), c)]
    assert read_count(cutoff, c, workers).tolist() == [read_count(k, int(a), workers) for k, a in zip(cutoff.tolist(), c)]
