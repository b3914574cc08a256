"""Feldman VSS (qverify.protocols.vss): valid shares pass, every corrupted share is rejected, and the
secret is rebuilt from any t valid shares (Feldman, FOCS 1987)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.errors import ParameterError
from qverify.protocols.vss import ShareRejected, deal, group, rebuild, valid


@settings(max_examples=25, deadline=None)
@given(
    secret=st.integers(0, 2**255),
    nt=st.sampled_from([(3, 1), (3, 2), (5, 3), (6, 6)]),
    seed=st.integers(0, 2**32 - 1),
    delta=st.integers(1, 2**256),
)
def test_corrupted_shares_are_rejected_and_valid_ones_rebuild(secret, nt, seed, delta):
    grp = group()
    n, t = nt
    secret %= grp.q
    shares, commitments = deal(secret, n, t, np.random.default_rng(seed), grp)
    assert all(valid(s, commitments, grp) for s in shares)
    for subset in itertools.islice(itertools.combinations(shares, t), 10):
        assert rebuild(list(subset), commitments, t, grp) == (secret, ())
    # Any change of y (mod q) fails the check: g has prime order q.
    if delta % grp.q:
        x, y = shares[0]
        bad = (x, (y + delta) % grp.q)
        assert not valid(bad, commitments, grp)
        if t < n:
            assert rebuild([bad, *shares[1:]], commitments, t, grp) == (secret, (x,))
        else:
            with pytest.raises(ShareRejected, match="rejected x = \\[1\\]"):
                rebuild([bad, *shares[1:]], commitments, t, grp)


def test_commitments_bind_the_dealer_to_one_polynomial():
    # Shares of another polynomial (a dealer changing its mind) fail against the published commitments.
    grp = group()
    rng = np.random.default_rng(0)
    _shares, commitments = deal(7, 5, 3, rng, grp)
    other, _ = deal(7, 5, 3, rng, grp)
    assert sum(valid(s, commitments, grp) for s in other) == 0
    assert grp.q.bit_length() == 256 and (grp.p - 1) % grp.q == 0 and pow(grp.g, grp.q, grp.p) == 1


def test_bad_threshold_names_the_field():
    with pytest.raises(ParameterError, match="t"):
        deal(1, 3, 4, np.random.default_rng(0), group())
    with pytest.raises(ParameterError, match="key_size"):
        group(512)


def test_a_replayed_share_does_not_count_twice():
    # A Byzantine holder submits a copy of an honest holder's valid share: it passes Feldman's
    # check but carries no new information (same x); counted twice it would break interpolation.
    grp = group()
    shares, commitments = deal(99, 5, 3, np.random.default_rng(1), grp)
    assert rebuild([shares[0], shares[0], shares[1], shares[2]], commitments, 3, grp)[0] == 99
    with pytest.raises(ShareRejected):
        rebuild([shares[0], shares[0], shares[1]], commitments, 3, grp)
    # a different y under the same x is a corrupted share and is rejected by the check
    x, y = shares[1]
    assert rebuild([shares[0], (x, (y + 5) % grp.q), shares[1], shares[2]], commitments, 3, grp) == (99, (x,))
