"""The vectorised per-worker generators are numpy's own, bit for bit (sspsim.worker_rngs)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sspsim.worker_rngs import single_generator, worker_generators
from tests.strategies import budget


@budget(1.0)
@given(seed=st.one_of(st.integers(0, 2**32), st.integers(0, 2**200)), stream=st.integers(0, 2**40),
       workers=st.integers(1, 40))
def test_worker_generators_equal_numpy_seed_sequences(seed: int, stream: int, workers: int) -> None:
    """Every worker's generator draws what SeedSequence(seed, spawn_key=(stream, p)) gives."""
    got = worker_generators(seed, stream, workers)
    assert len(got) == workers
    for p in sorted({0, workers // 2, workers - 1}):
        want = single_generator(seed, stream, p)
        assert np.array_equal(got[p].integers(0, 2**63, 8), want.integers(0, 2**63, 8)), p


def test_worker_generators_edge_cases() -> None:
    """No workers, no generators; a negative seed is refused as numpy refuses it; the streams differ."""
    assert worker_generators(0, 1, 0) == []
    a, b = worker_generators(7, 0, 2), worker_generators(7, 1, 2)
    assert a[0].random() != b[0].random()
    with pytest.raises(ValueError, match="non-negative"):
        worker_generators(-1, 0, 1)
