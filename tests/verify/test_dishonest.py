"""The dishonest-party GHZ fidelity bound (qverify.verify.dishonest): soundness against the full
n-qubit model, the issue-32 counterexamples, the certificate, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.errors import ParameterError, SolverError
from qverify.network.node_checks import qber_equivalent
from qverify.verify import dishonest as D
from qverify.verify.ghz import dishonest_bound_estimate, honest_bound_estimate, verify_ghz
from qverify.verify.report import FidelityReport
from qverify.verify.stats import Estimate

# P* = 1/2 + 1/(2√2): derived in qverify.verify.dishonest; equals the XY threshold of Han et al.,
# npj Quantum Inf. (2021), Table 1 (γ* = 1/2 + 1/(2√2) ≈ 0.854).
P_STAR_HAN = 0.5 + 1 / (2 * math.sqrt(2))


def _product_cheat(n: int, k: int) -> np.ndarray:
    """Issue 32, counterexample (a): honest qubits (|0…0⟩ + e^{iπ/4}|1…1⟩)/√2, dishonest ones |0…0⟩."""
    v = np.zeros(2**n, dtype=complex)
    v[0] = 1 / math.sqrt(2)
    v[sum(1 << q for q in range(n - k))] = np.exp(1j * math.pi / 4) / math.sqrt(2)
    return np.outer(v, v.conj())


def test_envelope_closed_form_and_threshold():
    assert D.P_STAR == pytest.approx(P_STAR_HAN, abs=1e-12)
    assert D.dishonest_fidelity_bound(D.P_STAR, 4, 2) == pytest.approx(0.5 - D.CERTIFIED_MARGIN, abs=1e-12)
    assert D.dishonest_fidelity_bound(1.0, 5, 3) == pytest.approx(1 - D.CERTIFIED_MARGIN, abs=1e-12)
    assert D.dishonest_fidelity_bound(0.5, 5, 2) == 0.0
    assert D.dishonest_fidelity_bound(0.5, 5, 4) == 0.25  # one honest qubit: F ≥ 1/4
    p90 = D.certifying_pass_rate(0.9)
    assert 0.9707 < p90 < 0.9708
    assert D.dishonest_fidelity_bound(p90, 3, 1) >= 0.9 - 1e-12
    assert D.dishonest_fidelity_bound(p90 - 1e-4, 3, 1) < 0.9
    ps = np.linspace(0, 1, 201)
    f = D.dishonest_fidelity_bound(ps, 5, 2)
    assert np.all(np.diff(f) >= 0) and np.all(f <= np.maximum(0, 2 * ps - 1) + 1e-12)  # never above the honest bound


@pytest.mark.parametrize("n", [3, 4, 5])
def test_counterexample_a_product_cheater(n):
    """Passes at P* with F = 1/2 for every coalition size; 2P − 1 = 0.707 overstates it, the new bound does not."""
    for k in range(1, n if n < 5 else 4):  # n = 5, k = 4 (a 32-dim SDP): python -m qverify.verify.dishonest --seesaw
        rho = _product_cheat(n, k)
        dis = tuple(range(n - k, n))
        p, _ = D.optimal_strategy(rho, n, dis)
        f = D.fidelity_up_to_coalition(rho, n, dis)
        assert p == pytest.approx(P_STAR_HAN, abs=1e-9)
        assert f == pytest.approx(0.5, abs=1e-6)
        assert 2 * p - 1 == pytest.approx(0.7071, abs=1e-4) and 2 * p - 1 > f + 0.2
        assert D.dishonest_fidelity_bound(p, n, k) <= f
        # measured honestly the same state passes only 1/2: the coalition's adaptive answers matter
        assert D.pass_probability(rho, n, dis, D.honest_strategy(n, dis)) == pytest.approx(0.5, abs=1e-9)
    # as a Byzantine node's source with 2..7 partners: QBER-equivalent 0.024–0.080 (issue 32), below 11 %
    q = [float(qber_equivalent(P_STAR_HAN, m)) for m in range(2, 8)]
    assert q[0] == pytest.approx(0.080, abs=1e-3) and q[-1] == pytest.approx(0.024, abs=1e-3) and max(q) < 0.11


def test_counterexample_b_rank_two_state_accepted_by_honest_bound_only():
    """Issue 32 (b): 3 qubits, one dishonest; P = 0.951 at F = 0.896 (the two-qubit SDP's minimiser at
    φ = 1.309 rad, embedded); with 10⁶ rounds 2P − 1 accepts at 0.9, the dishonest bound rejects."""
    f2, rho2 = D.min_fidelity_two_qubit(0.951, 1.309)
    rho = D.logical_to_n_qubit(rho2, 3, (2,))
    p, strat = D.optimal_strategy(rho, 3, (2,))
    f = D.fidelity_up_to_coalition(rho, 3, (2,))
    assert (
        p == pytest.approx(0.951, abs=5e-4) and f == pytest.approx(0.896, abs=5e-4) and f2 == pytest.approx(f, abs=1e-6)
    )
    assert np.sum(np.linalg.eigvalsh(rho) > 1e-6) == 2  # rank 2
    # the coalition answers with two different (non-commuting) qubit observables, one per challenge bit
    b0, b1 = strat[(0,)], strat[(1,)]
    assert np.linalg.norm(b0 @ b1 - b1 @ b0) > 0.1
    rng = np.random.default_rng(7)
    rounds = 10**6
    passes = int(rng.binomial(rounds, p))
    est = Estimate.binomial(passes, rounds, 0.99, "exact")
    assert honest_bound_estimate(est).low >= 0.9  # old verdict: accepted at F ≥ 0.901
    assert dishonest_bound_estimate(est, 3, 1).low < 0.9 - 0.05  # new verdict: rejected
    assert dishonest_bound_estimate(est, 3, 1).low <= f


def test_flagged_state_needs_operations_not_unitaries():
    """With k ≥ 2 the coalition reads a flag qubit: P = 1 at F = 1 up to an operation, but the state has
    rank 2, so no unitary on D brings it above F = 1/2 — the bound is on F up to operations."""
    rho = D.flagged_ghz_state(4, (2, 3))
    p, _ = D.optimal_strategy(rho, 4, (2, 3))
    assert p == pytest.approx(1.0, abs=1e-9)
    assert D.fidelity_up_to_coalition(rho, 4, (2, 3)) == pytest.approx(1.0, abs=1e-6)
    assert np.linalg.eigvalsh(rho).max() == pytest.approx(0.5, abs=1e-12)  # unitary fidelity ≤ λ_max


def _random_state(rng, n, rank):
    g = rng.normal(size=(2**n, rank)) + 1j * rng.normal(size=(2**n, rank))
    rho = g @ g.conj().T
    return rho / np.trace(rho).real


@settings(max_examples=12, deadline=None)
@given(
    n=st.integers(3, 5), seed=st.integers(0, 2**31 - 1), rank=st.integers(1, 3), mix=st.floats(0.0, 1.0),
    data=st.data(),
)  # fmt: skip
def test_bound_never_above_a_state_and_its_optimal_coalition(n, seed, rank, mix, data):
    """Random states (mixed towards GHZ so high pass rates occur), random coalitions: the coalition's exact
    optimal pass rate P and the certified F (dual SDP) satisfy bound(P) ≤ F."""
    rng = np.random.default_rng(seed)
    k = data.draw(st.integers(1, n - 1))
    dis = tuple(sorted(rng.choice(n, size=k, replace=False).tolist()))
    g = D.ghz_vector(n)
    rho = mix * np.outer(g, g.conj()) + (1 - mix) * _random_state(rng, n, rank)
    p, _ = D.optimal_strategy(rho, n, dis)
    f = D.fidelity_up_to_coalition(rho, n, dis)
    assert D.dishonest_fidelity_bound(p, n, k) <= f + 1e-7


@pytest.mark.parametrize(("n", "dis"), [(3, (2,)), (3, (0, 2)), (4, (1,)), (4, (0, 3))])
def test_seesaw_in_full_model_never_beats_the_bound(n, dis):
    """See-saw (coalition's exact best answers ↔ n-qubit SDP over states) at several trade-off weights
    never goes below the bound (every n = 3..5 and coalition size: python -m qverify.verify.dishonest --seesaw)."""
    for w in (1.5, 3.0, 4.0):
        p, f = D.seesaw(n, dis, w, iterations=4, seed=n)
        assert D.dishonest_fidelity_bound(p, n, len(dis)) <= f + 1e-7


def test_two_qubit_sdp_points_lie_on_or_above_the_envelope():
    """Recompute a few points of the worst case with the SDP (grid over the coalition's angle)."""
    for p in (0.9, 0.951, 0.99):
        phis = [
            x for x in np.linspace(0.0, math.pi, 9) if 0.5 + np.linalg.eigvalsh(D.logical_correlator(x)).max() / 4 > p
        ]
        best = min(D.min_fidelity_two_qubit(p, phi)[0] for phi in phis)
        assert best >= D.envelope(p) - D.CERTIFIED_MARGIN
    # single blocks sit well above the envelope between its vertices: mixing is what attains it
    assert D.min_fidelity_two_qubit(0.951, 1.309)[0] > D.envelope(0.951) + 0.05


def test_certificate_near_the_tight_points():
    """The cells around the envelope's tight points (φ = 0: product cheat; φ = π/2: GHZ) certify
    F ≥ envelope − margin (the full range: ``python -m qverify.verify.dishonest``)."""
    for lo, hi in ((0.0, 0.01), (math.pi / 2 - 0.005, math.pi / 2 + 0.005), (1.0, 1.2)):
        cert = D.certify(lo=lo, hi=hi, start_cells=1)
        assert cert.proven


def test_report_and_result_name_their_bound():
    r = verify_ghz(4, rounds=3000, seed=3)
    assert r.bound == D.DISHONEST_BOUND and r.params["trust"] == "dishonest"
    assert r.honest_fidelity_bound is not None and r.dishonest_fidelity_bound is not None
    assert (
        r.fidelity_bound == r.dishonest_fidelity_bound and r.dishonest_fidelity_bound.low <= r.honest_fidelity_bound.low
    )
    rep = FidelityReport.from_ghz("n1", r)
    assert rep.bound == D.DISHONEST_BOUND and rep.estimate == r.dishonest_fidelity_bound
    h = verify_ghz(4, rounds=3000, seed=3, trust="honest")
    assert h.bound == D.HONEST_BOUND and FidelityReport.from_ghz("n1", h).bound == D.HONEST_BOUND
    assert "honest-party" in h.fidelity_bound.interval


def test_bad_input():
    with pytest.raises(ParameterError, match=r"coalition = 0 is outside the allowed range \[1, 3\]"):
        D.dishonest_fidelity_bound(0.9, 4, 0)
    with pytest.raises(ParameterError, match="coalition = 4"):
        D.dishonest_fidelity_bound(0.9, 4, 4)
    with pytest.raises(ParameterError, match=r"pass probability = 1\.2"):
        D.dishonest_fidelity_bound(1.2, 4, 1)
    with pytest.raises(ParameterError, match="coalition"):
        verify_ghz(4, rounds=10, coalition=4)
    with pytest.raises(SolverError, match=r"^solver CLARABEL returned status infeasible"):
        D.min_fidelity_two_qubit(1.0, 0.0)  # φ = 0: the coalition cannot reach P = 1
    from qverify.errors import ChoiceError

    with pytest.raises(ChoiceError, match="solver"):
        D.min_fidelity_two_qubit(0.9, 1.0, solver="MOSEK")
    with pytest.raises(ChoiceError, match="trust"):
        verify_ghz(4, rounds=10, trust="maybe")
