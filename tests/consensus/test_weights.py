"""Weights: the BFT invariant, quorum intersection, the naive rule's counterexample."""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from qverify.consensus.weights import (
    PAIRWISE_MAX,
    UnsafeWeightsError,
    WeightVector,
    box_ratio_limit,
    check_weights,
    link_errors,
    naive_weights,
    node_losses,
    project_box,
    project_wheat,
    ranks,
    update_scores,
)
from qverify.errors import ParameterError


@given(st.lists(st.integers(1, 20), min_size=1, max_size=12), st.integers(0, 4))
def test_every_accepted_vector_has_intersecting_quorums(weights, f):
    assume(f < len(weights))
    try:
        q = check_weights(weights, f)
    except UnsafeWeightsError:
        return
    # Any two quorums overlap in more than T_f (so in a correct node); correct nodes form a quorum.
    assert 2 * q.quorum - q.total > q.t_f
    assert q.total - q.t_f >= q.quorum


def _quorums(weights: list[int], threshold: int) -> list[frozenset[int]]:
    n = len(weights)
    out = []
    for mask in range(1, 2**n):
        members = frozenset(i for i in range(n) if mask >> i & 1)
        if sum(weights[i] for i in members) >= threshold:
            out.append(members)
    return out


@pytest.mark.parametrize("n", range(4, 10))
def test_exhaustive_quorum_intersection_small_n(n):
    rng = np.random.default_rng(n)
    f = (n - 1) // 3
    tried = 0
    vectors = [project_wheat(rng.normal(size=n), f), project_box(rng.normal(size=n), f), [1] * n]
    for w in vectors:
        q = check_weights(w, f)
        quorums = _quorums(w, q.quorum)
        minimal = [a for a in quorums if not any(b < a for b in quorums)]
        for a, b in itertools.combinations_with_replacement(minimal, 2):
            common = a & b
            # The intersection outweighs every set of f nodes: it holds a correct node.
            assert sum(w[i] for i in common) > q.t_f
            assert len(common) >= f + 1
        # Liveness: the n − f lightest-case correct nodes still form a quorum, whoever is faulty.
        for faulty in itertools.combinations(range(n), f):
            correct = set(range(n)) - set(faulty)
            assert sum(w[i] for i in correct) >= q.quorum
        tried += 1
    assert tried == 3


def test_naive_rule_counterexample_n7_f2():
    # DESIGN.md "ABFT": five honest nodes on noisy links decay to 0.4, two liars keep weight 1.
    w = naive_weights([0.6] * 5 + [0.0] * 2, alpha=1.0)
    assert w == pytest.approx([0.4] * 5 + [1.0] * 2)
    total, t_f = sum(w), 2.0
    # Two "quorums" of weight W - T_f = 2 can be {liars} ∪ {3 honest} and {liars} ∪ {2 other honest}:
    q1, q2 = {0, 1, 2, 5, 6}, {3, 4, 5, 6}
    assert sum(w[i] for i in q1) >= total - t_f and sum(w[i] for i in q2) >= total - t_f
    assert q1 & q2 == {5, 6}  # they meet only in Byzantine nodes: a fork is possible
    # The library refuses such a vector (scaled to integers: 2 per honest node, 5 per liar).
    with pytest.raises(UnsafeWeightsError):
        check_weights([2] * 5 + [5] * 2, f=2)


def test_wheat_shape_and_box_ratio():
    n, f = 9, 2
    w = project_wheat(np.arange(n, dtype=float), f)
    assert sorted(w) == [f] * (n - 2 * f) + [f + n - 3 * f - 1] * (2 * f)
    assert w[-1] == w[-2] == f + 2  # best two scores are the heaviest
    b = project_box(np.arange(n, dtype=float), f)
    assert max(b) / min(b) < box_ratio_limit(n, f)
    check_weights(b, f)
    with pytest.raises(ParameterError, match="vmax/vmin"):
        project_box(np.arange(n, dtype=float), f, vmin=10, vmax=20)


def test_equal_weights_need_n_above_3f():
    check_weights([1] * 7, 2)
    with pytest.raises(UnsafeWeightsError):
        check_weights([1] * 6, 2)
    with pytest.raises(UnsafeWeightsError, match="≥ 1"):
        check_weights([1, 1, 0, 1, 1], 1)
    with pytest.raises(ParameterError, match="f"):
        WeightVector(0, (1, 1, 1, 1), f=4)


def test_link_error_is_worse_endpoint_and_missing_is_worst():
    errs = link_errors({(0, 1): {0: 0.0, 1: 0.05}, (1, 2): {1: 0.02}})
    assert errs[(0, 1)] == 0.05  # a liar cannot clean its own link
    assert errs[(1, 2)] == 0.5


@settings(max_examples=50)
@given(st.integers(0, 2), st.floats(0.02, 0.5))  # link error = worse endpoint, so ≥ honest
def test_trimmed_median_resists_f_slanderers(f, slander):
    n = 8
    honest = 0.02
    # Node 0 has 2f + 1 links; f of them are slandered by their other endpoint.
    errors = {(0, k): (slander if k <= f else honest) for k in range(1, 2 * f + 2)}
    loss = node_losses(errors, n, f)
    assert loss[0] == pytest.approx(honest / 0.11)


@given(
    st.lists(st.floats(0.0, 1.0), min_size=2, max_size=10),
    st.floats(0.0, 0.99),
)
def test_scores_recentred_floored_finite(losses, alpha):
    s = update_scores(np.zeros(len(losses)), np.array(losses), alpha, floor=-5.0)
    assert s.max() == 0.0 and s.min() >= -5.0 and np.all(np.isfinite(s))


def test_bad_alpha():
    with pytest.raises(ParameterError, match="alpha"):
        update_scores(np.zeros(3), np.zeros(3), 1.0)


def _ring(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) if i < (i + 1) % n else ((i + 1) % n, i) for i in range(n)]


@pytest.mark.parametrize("f", [1, 2])
def test_colluding_pair_gains_nothing_on_a_ring(f):
    # Issue: two adjacent Byzantine nodes both report QBER 0 on their shared link and on every link;
    # with ≤ f links a node used to keep its best link, so the pair reached the top weights.
    n, q = 7, 0.02
    byz = {5, 6}
    reports = {}
    for i, j in _ring(n):
        reports[(i, j)] = {i: 0.0 if i in byz else q, j: 0.0 if j in byz else q}
    loss = node_losses(link_errors(reports), n, f)
    honest = [k for k in range(n) if k not in byz]
    assert min(loss[b] for b in byz) >= max(loss[h] for h in honest) - 1e-12


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 2), st.integers(0, 10_000), st.floats(0.005, 0.08))
def test_liars_never_beat_honest_nodes_with_enough_honest_witnesses(f, seed, q):
    # Random meshes: f Byzantine nodes report 0 on every link, honest nodes report the true q. A
    # Byzantine node with more than 2f links loses its (≤ f − 1) colluder links to the trimming.
    rng = np.random.default_rng(seed)
    n = 3 * f + 1 + int(rng.integers(0, 5))
    edges = {(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.6}
    byz = set(rng.choice(n, size=f, replace=False).tolist())
    reports = {(i, j): {i: 0.0 if i in byz else q, j: 0.0 if j in byz else q} for i, j in edges}
    loss = node_losses(link_errors(reports), n, f)
    degree = {k: sum(k in e for e in edges) for k in range(n)}
    for b in byz:
        if degree[b] > 2 * f:
            assert loss[b] == pytest.approx(q / 0.11)


def test_demoted_honest_node_recovers_after_clean_epochs():
    # Issue: after a transient fade the weight ratio stayed at 0.59 for 110 clean epochs. With decay
    # λ the score gap shrinks by (1 − λ) per clean epoch.
    lam, s = 0.1, np.zeros(4)
    for _ in range(3):  # a fade: node 0 at the abort QBER for three epochs
        s = update_scores(s, np.array([1.0, 0.1, 0.1, 0.1]), 0.5, decay=lam)
    gap0 = s[1] - s[0]
    assert gap0 > 1.0
    clean = 0
    while s[1] - s[0] > 0.01:
        s = update_scores(s, np.full(4, 0.1), 0.5, decay=lam)
        clean += 1
    assert abs(clean - np.log(0.01 / gap0) / np.log(1 - lam)) <= 1  # geometric: ln(gap/gap0) / ln(1 − λ)
    frozen = update_scores(np.array([-2.0, 0, 0, 0]), np.full(4, 0.1), 0.5, decay=0.0)
    assert frozen[1] - frozen[0] == pytest.approx(2.0)  # the paper's rule alone never forgets


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(min_value=1, max_value=4),
    width=st.sampled_from([1, 2, 5, 16, PAIRWISE_MAX, PAIRWISE_MAX + 1, 90]),
    data=st.data(),
)
def test_ranks_are_stable_sort_positions(rows: int, width: int, data: st.DataObject) -> None:
    """Pairwise ranks (small rows) and sorted ranks (wide rows), numpy and jax alike, are the
    positions of a stable ascending sort; coarse values and +inf padding make ties common."""
    values = np.array(
        data.draw(
            st.lists(
                st.sampled_from([0.0, 0.01, 0.05, 0.5, np.inf, -1.0]), min_size=rows * width, max_size=rows * width
            )
        )
    ).reshape(rows, width)
    order = np.argsort(values, axis=1, kind="stable")
    want = np.empty_like(order)
    np.put_along_axis(want, order, np.arange(width)[None, :].repeat(rows, 0), axis=1)
    assert ranks(values).tolist() == want.tolist()
    assert np.asarray(ranks(jnp.asarray(values), jnp)).tolist() == want.tolist()
