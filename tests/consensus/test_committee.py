"""Committees for large control planes: the capture probability against an exact combinatorial
oracle, the draw, and the network's control plane running through a committee above 64 nodes."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.consensus.committee import capture_probability, sortition, tolerated
from qverify.consensus.control import MAX_PBFT_NODES, make_policy
from qverify.errors import ParameterError
from qverify.network.adversary import Adversary
from qverify.network.sim import SimConfig, simulate
from qverify.network.topology import resolve


@given(n=st.integers(4, 120), data=st.data())
@settings(max_examples=60, deadline=None)
def test_capture_probability_is_the_hypergeometric_tail(n, data):
    # Oracle: P(X > f_c) = Σ_{k > f_c} C(b, k) C(n − b, c − k) / C(n, c), counted with integers.
    byz = data.draw(st.integers(0, n))
    size = data.draw(st.integers(1, n))
    tail = sum(comb(byz, k) * comb(n - byz, size - k) for k in range(tolerated(size) + 1, size + 1))
    assert capture_probability(n, byz, size) == pytest.approx(tail / comb(n, size), rel=1e-9, abs=1e-15)


def test_sortition_draws_distinct_members_per_beacon():
    a = sortition(1000, 64, (3, 1))
    assert len(a) == 64 and len(set(a.tolist())) == 64 and np.all(np.diff(a) > 0)
    assert np.array_equal(a, sortition(1000, 64, (3, 1))) and not np.array_equal(a, sortition(1000, 64, (4, 2)))
    with pytest.raises(ParameterError, match="size"):
        sortition(10, 11, 0)
    with pytest.raises(ParameterError, match="byzantine"):
        capture_probability(10, 11, 5)


@pytest.mark.parametrize(("fraction", "forks"), [(0.2, False), (0.5, True)])
def test_control_plane_above_64_nodes_runs_in_a_committee(fraction, forks):
    # 72 nodes: every instance runs weighted PBFT in a 64-member committee (no instance is skipped).
    # With 14 Byzantine nodes a committee holds at most 14 ≤ 21 tolerated: safe; with 36 it holds at
    # least 28 > 21, beyond the committee's fault model, and the checker must see forks.
    g = resolve("grid:9x8")
    pol = make_policy("abft")
    simulate(g, SimConfig(adversary=Adversary(fraction=fraction)), 40, 0, pol)
    x = pol.extras
    assert g.number_of_nodes() > MAX_PBFT_NODES and x["control_committee_size"] == 64
    assert x["control_instances"] == 3 and x["control_committee_tolerates"] == 21
    assert x["control_committee_capture_true"] == (1.0 if forks else 0.0)
    assert (x["control_violations"] > 0) == forks
    if not forks:
        assert x["control_committed"] == 3
