"""MDI BSM circuits in Aer against the closed forms and attack theory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qverify.backends import exact_distributions, sample_counts
from qverify.errors import BackendError, ChoiceError, CircuitError, ParameterError
from qverify.physics import mdi
from qverify.protocols.export import canonical_circuits
from qverify.protocols.mdi import BSMNoise, mdi_circuits, mdi_noise_model, mdi_round
from qverify.verify.bsm import run_bsm

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("e_mis", [0.0, 0.005, 0.015, 0.05, 0.2])
def test_circuit_e11_equals_closed_form_exactly(e_mis):
    # Ma–Razavi (A10)/(A11) at p_d = 0: e11 = e_mis; the circuit's misalignment is
    # depolarizing_error(2 e_mis) on Alice's input (DESIGN.md, "The physics").
    res = run_bsm(BSMNoise(e_mis=e_mis), shots=1000, seed=3)
    for basis in ("X", "Z"):
        closed = float(mdi.e11(0.7, 0.4, 0.0, e_mis, basis))
        est = res.e_x if basis == "X" else res.e_z
        assert est.exact == pytest.approx(closed, abs=1e-9)
    # Y11 / (η_a η_b) = 1/2: heralding probability of a lossless single-photon round.
    assert res.success.exact == pytest.approx(0.5, abs=1e-12)


def test_sampled_estimates_cover_the_closed_form():
    hits = 0
    for seed in range(20):
        res = run_bsm(BSMNoise(e_mis=0.03), shots=2000, seed=seed, method="sampled")
        assert res.e_z.method == "sampled" and res.e_z.exact is None
        hits += res.e_z.contains(0.03) + res.e_x.contains(0.03)
    # 40 intervals at 95 %: expect ~38; fewer than 33 would be a >3-sigma miss of the nominal level.
    assert hits >= 33


@pytest.mark.parametrize(
    ("relay", "ez", "ex"),
    [
        # Intercept-resend in a basis drawn uniformly from {Z, X}: 1/4 in each basis.
        ("intercept_resend", 0.25, 0.25),
        # Eve always in Z: the Z basis is untouched, X is randomised.
        ("intercept_resend_z", 0.0, 0.5),
        ("intercept_resend_x", 0.5, 0.0),
        # Charlie measures in Z instead of the Bell basis: no phase information is left.
        ("z_measure", 0.0, 0.5),
        # Alice's photon replaced by a maximally mixed state: bit error 1/2 in every basis.
        ("inject", 0.5, 0.5),
    ],
)
def test_attacked_relays_give_theory_qber(relay, ez, ex):
    res = run_bsm(BSMNoise(), relay=relay, shots=4000, seed=1)
    assert res.e_z.exact == pytest.approx(ez, abs=1e-9)
    assert res.e_x.exact == pytest.approx(ex, abs=1e-9)
    assert res.e_z.contains(ez) or abs(res.e_z.value - ez) < 0.03


def test_partial_injection_is_depolarising():
    # Replacement with probability p = depolarising(p): bit error p/2 per basis.
    res = run_bsm(BSMNoise(), relay="inject", inject_prob=0.3, shots=1000)
    assert res.e_x.exact == pytest.approx(0.15, abs=1e-9)


def test_fidelity_formula_for_depolarising_noise():
    # depolarizing(2e) on one input leaves fidelity 1 - 3e/2 with the heralded Bell state.
    res = run_bsm(BSMNoise(e_mis=0.04), shots=1000)
    assert res.fidelity.exact == pytest.approx(1 - 1.5 * 0.04, abs=1e-9)
    assert res.fidelity.low <= res.fidelity.value <= res.fidelity.high


def test_gate_noise_and_amplitude_damping_raise_errors():
    clean = run_bsm(BSMNoise(), shots=500)
    noisy = run_bsm(BSMNoise(gate_error=0.05, amp_damping=0.1), shots=500)
    assert noisy.e_x.exact > clean.e_x.exact
    assert noisy.fidelity.exact < clean.fidelity.exact


def test_same_seed_same_counts():
    a = run_bsm(BSMNoise(e_mis=0.01), shots=500, seed=7)
    b = run_bsm(BSMNoise(e_mis=0.01), shots=500, seed=7)
    assert a == b


def test_exact_and_sampled_distributions_agree():
    circuits = mdi_circuits("honest")
    nm = mdi_noise_model(BSMNoise(e_mis=0.05))
    probs = exact_distributions(circuits, nm)
    counts = sample_counts(circuits, 20_000, np.random.default_rng(0), nm, method="sampled")
    np.testing.assert_allclose(counts.counts / 20_000, probs, atol=0.02)


def test_backend_errors_are_clear():
    from qiskit import QuantumCircuit

    big = QuantumCircuit(13, 1)
    big.measure(0, 0)
    with pytest.raises(BackendError, match="at most 12"):
        exact_distributions([big])
    mid = QuantumCircuit(1, 1)
    mid.measure(0, 0)
    mid.x(0)
    with pytest.raises(CircuitError, match="measurements at the end"):
        exact_distributions([mid])
    with pytest.raises(BackendError, match="shots"):
        sample_counts(mdi_circuits(), 0, np.random.default_rng(0))


def test_builder_validation():
    with pytest.raises(ChoiceError, match="basis"):
        mdi_round("W", 0, 0)
    with pytest.raises(ChoiceError, match="relay"):
        mdi_round("Z", 0, 0, relay="evil")
    with pytest.raises(ParameterError, match="alice_bit"):
        mdi_round("Z", 2, 0)
    with pytest.raises(ParameterError, match="e_mis"):
        BSMNoise(e_mis=0.7)


def test_exported_circuits_match_builders():
    # Compared as operators and measurement maps, never as text: float formatting and the
    # exporter's layout may differ between machines and Qiskit versions.
    from qiskit import qasm3

    from qverify.protocols.export import same_circuit

    files = canonical_circuits()
    on_disk = {str(p.relative_to(ROOT / "circuits")): p for p in (ROOT / "circuits").rglob("*.qasm")}
    assert set(on_disk) == set(files), "run `qverify export-circuits circuits/` to regenerate circuits/"
    for rel, qc in files.items():
        assert same_circuit(qasm3.loads(on_disk[rel].read_text()), qc), rel


def test_export_onto_checkout_changes_nothing(tmp_path):
    import shutil

    from qverify.protocols.export import export_circuits

    copy = tmp_path / "circuits"
    shutil.copytree(ROOT / "circuits", copy)
    before = {p: p.read_bytes() for p in copy.rglob("*.qasm")}
    res = export_circuits(copy)
    assert res.written == [] and len(res.unchanged) == len(before)
    assert {p: p.read_bytes() for p in copy.rglob("*.qasm")} == before


def test_export_replaces_a_tampered_circuit(tmp_path):
    from qverify.protocols.export import export_circuits

    export_circuits(tmp_path)
    target = tmp_path / "ghz" / "ghz_3.qasm"
    target.write_text(target.read_text().replace("h q[0];", "x q[0];"))
    res = export_circuits(tmp_path)
    assert res.written == [target]


def test_canonical_circuits_are_exact_text():
    # Exact gates only: no float literal with more than a few digits can appear in the QASM.
    import re

    from qverify.protocols.export import to_qasm

    for rel, qc in canonical_circuits().items():
        assert not re.search(r"\d\.\d{5,}", to_qasm(qc)), rel


def test_exported_qasm_round_trips():
    from qiskit import qasm3

    from qverify.protocols.export import to_qasm

    text = to_qasm(canonical_circuits()["mdi/honest/mdi_X01_honest.qasm"])
    qc = qasm3.loads(text)
    probs = exact_distributions([qc])[0]
    ref = exact_distributions([mdi_round("X", 0, 1)])[0]
    np.testing.assert_allclose(probs, ref, atol=1e-12)
