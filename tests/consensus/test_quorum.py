"""Quorum tests of a weight schedule: the fast path (size bound, cached per-epoch figures) against the
definition (weight ≥ Q = W − T_f under every vector in force for the sequence number)."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from qverify.consensus.quorum import Schedule
from qverify.consensus.weights import UnsafeWeightsError, WeightVector


def _vectors(draw: st.DrawFn, n: int, f: int, epochs: int) -> tuple[WeightVector, ...] | None:
    out = []
    for e in range(epochs):
        w = draw(st.lists(st.integers(1, 9), min_size=n, max_size=n))
        try:
            out.append(WeightVector(e, tuple(w), f))
        except UnsafeWeightsError:
            return None
    return tuple(out)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[Schedule, list[set[int]]] | None:
    n = draw(st.integers(4, 9))
    f = draw(st.integers(0, (n - 1) // 3))
    vectors = _vectors(draw, n, f, draw(st.integers(1, 4)))
    if vectors is None:
        return None
    # Sometimes the first vector replaces an earlier one (a weight change decided by consensus).
    previous, vectors = (vectors[0], vectors[1:]) if len(vectors) > 1 and draw(st.booleans()) else (None, vectors)
    interval = draw(st.integers(1, 4))
    schedule = Schedule(
        vectors,
        epoch_len=interval * draw(st.integers(1, 3)),
        checkpoint_interval=interval,
        window=40,
        previous=previous,
    )
    sets = draw(st.lists(st.sets(st.integers(0, n - 1)), min_size=1, max_size=8))
    return schedule, sets


@settings(max_examples=300, deadline=None)
@given(_cases(), st.integers(0, 30))
def test_is_quorum_matches_definition(case, seq):
    assume(case is not None)
    schedule, sets = case
    for nodes in sets:
        # Asked twice: the second answer comes from the cached per-epoch figures.
        for _ in range(2):
            expected = all(v.weight_of(nodes) >= v.quorum.quorum for v in schedule.vectors_for(seq))
            assert schedule.is_quorum(nodes, seq) == expected
        # The size bound vote counting checks before building a voter set: no smaller set is a quorum.
        if len(nodes) < schedule.min_quorum_size(seq):
            assert not expected
        if schedule.previous is not None and 1 <= seq <= schedule.checkpoint_interval:
            # Until the first stable checkpoint a quorum must be one under the replaced vector too.
            q_old = schedule.previous.quorum.quorum
            if schedule.is_quorum(nodes, seq):
                assert schedule.previous.weight_of(nodes) >= q_old


@given(st.lists(st.integers(1, 9), min_size=1, max_size=10), st.integers(0, 100))
def test_min_size_is_the_fewest_nodes_reaching_a_threshold(weights, threshold):
    try:
        v = WeightVector(0, tuple(weights), 0)
    except UnsafeWeightsError:
        return
    k = v.min_size(threshold)
    top = sorted(weights, reverse=True)
    # No k − 1 nodes reach it (the heaviest k − 1 do not), and the heaviest k do (unless none can).
    if k == 0:
        assert threshold <= 0  # the empty set already reaches it
        return
    assert sum(top[: k - 1]) < threshold
    if k <= len(weights):
        assert sum(top[:k]) >= threshold
    else:
        assert sum(weights) < threshold


def test_bad_schedules_and_runs_name_the_field():
    import numpy as np
    import pytest

    from qverify.consensus.pbft import Behaviour, NetConfig, Simulation
    from qverify.errors import ParameterError

    with pytest.raises(ParameterError, match="f = \\[1, 2\\]"):  # epochs that disagree on f
        Schedule((WeightVector(0, (1,) * 7, f=1), WeightVector(1, (1,) * 7, f=2)))
    with pytest.raises(UnsafeWeightsError, match="integers"):  # 1.5 is not silently truncated to 1
        WeightVector(0, (1.5, 1, 1, 1), f=1)
    with pytest.raises(ParameterError, match="byzantine = 10"):
        Simulation(
            Schedule((WeightVector(0, (1,) * 4, f=1),)), {10: Behaviour()}, NetConfig(), np.random.default_rng(0)
        )
