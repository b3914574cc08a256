"""Secret sharing, signatures, secret-shared verification, QASM loading, exported circuits."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from qverify.errors import CircuitError, ParameterError
from qverify.protocols.shamir import combine, split
from qverify.protocols.sharing import authorised_sets
from qverify.verify.qasm import load_qasm
from qverify.verify.qds import run_qds
from qverify.verify.secret_shared import run as secret_shared
from qverify.verify.sharing import (
    hbb_error_rate,
    reconstruction_fidelity,
    share_state,
    trace_distance,
    verify_qss,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_authorised_set_reconstructs_random_secrets():
    # Cleve–Gottesman–Lo (1999): any 3 of the 5 shares reconstruct the secret exactly.
    rng = np.random.default_rng(5)
    for subset in authorised_sets():
        theta, phi = float(np.arccos(1 - 2 * rng.random())), float(2 * np.pi * rng.random())
        assert reconstruction_fidelity(subset, theta, phi) == pytest.approx(1.0, abs=1e-10)


def test_unauthorised_pairs_learn_nothing():
    for pair in itertools.combinations(range(5), 2):
        a = share_state(pair, 0.0, 0.0)
        b = share_state(pair, np.pi, 0.0)
        c = share_state(pair, np.pi / 2, 1.0)
        assert trace_distance(a, b) <= 1e-10 and trace_distance(a, c) <= 1e-10
        assert np.allclose(a, np.eye(4) / 4, atol=1e-10)  # maximally mixed


def test_reconstruction_degrades_with_noise():
    f = [reconstruction_fidelity((0, 2, 4), 1.1, 0.4, p) for p in (0.0, 0.02, 0.1)]
    assert f[0] == pytest.approx(1.0) and f[0] > f[1] > f[2] > 0.5
    assert verify_qss(secrets=2).accepted and not verify_qss(secrets=2, p_depol=0.05).accepted


def test_hbb_eavesdropper_is_caught_on_a_quarter_of_rounds():
    # Hillery–Bužek–Berthiaume (1999): intercept-resend of one share in X or Y gives 25 % errors.
    assert hbb_error_rate() == pytest.approx(0.0, abs=1e-12)
    assert hbb_error_rate(eavesdropper=True) == pytest.approx(0.25, abs=1e-12)


def test_shamir_threshold():
    rng = np.random.default_rng(1)
    shares = split(987654321, 5, 3, rng)
    for subset in itertools.combinations(shares, 3):
        assert combine(list(subset)) == 987654321
    assert combine(shares[:2]) != 987654321
    with pytest.raises(ParameterError, match="t"):
        split(1, 3, 4, rng)


def test_threshold_signatures_measured():
    r = run_qds(trials=100, seed=3)
    assert r.honest_acceptance.low > 0.95
    assert r.threshold_t_accepts.low > 0.95
    assert r.threshold_t_minus_1_accepts.high < 0.05
    assert r.forgery_success.high < 0.05 and r.repudiation_success.high < 0.05
    # Feldman VSS: the corrupted share among t + 1 is always the one rejected, and the signature is
    # still made from the t valid shares.
    assert r.corrupted_share_detected.value == 1.0
    assert r.threshold_with_corrupted_share_accepts.low > 0.95
    # At the default length (chosen for ε = 1e-4) no intercept-resend fraction forges.
    assert all(e.high < 0.05 for _r, e in r.intercept_forgery_by_fraction)
    with pytest.raises(ParameterError, match="t"):
        run_qds(holders=3, t=4)
    with pytest.raises(ParameterError, match="test_fraction"):
        run_qds(test_fraction=1.0)
    with pytest.raises(ParameterError, match="e_abort"):
        run_qds(e_abort=0.7)


def test_intercept_resend_forger_is_a_real_attack_on_short_keys():
    # The attack is not a strawman: with 400 positions (20 % tested) the forger's best fraction wins
    # a few per cent of the runs (its lower bound is above 0), which 2000 positions remove.
    short = run_qds(trials=200, seed=0, length=400, epsilon=None)  # below what ε = 1e-4 needs: measured only
    assert short.intercept_forgery_success.low > 0
    assert short.intercept_forgery_success.value == max(e.value for _r, e in short.intercept_forgery_by_fraction)
    # Intercepting everything is caught by parameter estimation (≈ 25 % errors) in nearly every run.
    assert dict(short.intercept_forgery_by_fraction)[1.0].high < 0.05


def test_when_t_equals_n_a_corrupted_share_refuses_the_signature():
    r = run_qds(holders=3, t=3, trials=20, seed=1)
    assert r.corrupted_share_detected.value == 1.0
    assert r.threshold_with_corrupted_share_accepts.value == 0.0  # refused, not a wrong key
    assert r.threshold_t_accepts.value == 1.0


def test_secret_sharing_and_commitments_each_stop_their_attack():
    r = secret_shared(n=5, rounds=1500, coalition=2, seed=4)
    assert r.sharing_threshold == 3
    # a source that knows the challenge early passes every round (public, or a coalition at threshold)
    assert r.public.value == 1.0 and r.at.value == 1.0 and r.accepted["public"] and r.accepted["at"]
    # a coalition one short of the threshold learns nothing: the bad source is caught
    assert not r.accepted["below"] and r.below.high < 0.75
    # an adaptive last announcer always passes without commitments, never with them
    assert r.uncommitted.value == 1.0 and r.accepted_uncommitted
    assert not r.accepted_committed and r.committed.contains(r.committed.exact)
    assert r.commitment_failures > 0  # every attempt to open another value was caught by the check


def test_secret_shared_bad_input():
    for kwargs, field in (({"coalition": 0}, "coalition"), ({"coalition": 5}, "coalition"), ({"n": 2}, "n"),
                          ({"cheater": 7}, "cheater"), ({"rounds": 0}, "rounds")):  # fmt: skip
        with pytest.raises(ParameterError, match=field):
            secret_shared(**kwargs)


def test_qasm_loading_errors(tmp_path):
    bad = tmp_path / "x.qasm"
    bad.write_text("not qasm at all;")
    with pytest.raises(CircuitError, match="not OpenQASM"):
        load_qasm(bad)
    bad.write_text("OPENQASM 2.0;\nqreg q[2];\nfoo q[0];")
    with pytest.raises(CircuitError, match="malformed OpenQASM 2"):
        load_qasm(bad)
    ok = tmp_path / "ok.qasm"
    ok.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\nh q[0];\ncx q[0],q[1];\n')
    assert load_qasm(ok).num_qubits == 3


def test_exported_ghz_and_sharing_circuits_load_and_verify():
    from qverify.verify.ghz import verify_ghz

    qc = load_qasm(ROOT / "circuits/ghz/ghz_8.qasm")
    assert verify_ghz(8, rounds=1000, state=qc).accepted
    enc = load_qasm(ROOT / "circuits/sharing/qss35_encode.qasm")
    assert verify_qss(secrets=2, encoder=enc).accepted


def test_fidelity_report_feeds_the_voting_api():
    from qverify.consensus import FidelityWeightedVoting
    from qverify.protocols.mdi import BSMNoise
    from qverify.verify.bsm import run_bsm
    from qverify.verify.report import FidelityReport

    v = FidelityWeightedVoting(["a", "b", "c", "d", "e"], f=1)
    noisy = run_bsm(BSMNoise(e_mis=0.08), shots=500)
    clean = run_bsm(BSMNoise(e_mis=0.005), shots=500)
    v.report(FidelityReport.from_bsm("a", "b", "a", noisy))
    v.report(FidelityReport.from_bsm("a", "b", "b", noisy))
    for x, y in (("c", "d"), ("d", "e"), ("c", "e")):
        v.report(FidelityReport.from_bsm(x, y, x, clean))
        v.report(FidelityReport.from_bsm(x, y, y, clean))
    v.end_epoch()
    s = v.scores
    assert s[0] < s[2] and s[1] < s[3]
