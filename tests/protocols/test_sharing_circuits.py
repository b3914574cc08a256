"""((3,5)) circuits from stabiliser tableaux: the Clifford completion and the code it encodes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from qiskit.quantum_info import Clifford, Pauli, random_clifford

from qverify.protocols.sharing import (
    LOGICAL_X,
    LOGICAL_Z,
    STABILISERS,
    authorised_sets,
    clifford_from_images,
    codewords,
    decoder_clifford,
    encoder_clifford,
)


def _image(c: Clifford, kind: str, q: int) -> Pauli:
    p = Pauli("I" * c.num_qubits)
    p[q] = Pauli(kind)
    return p.evolve(c, frame="s")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**31 - 1), st.data())
def test_completion_honours_every_given_image(n, seed, data):
    ref = random_clifford(n, seed=seed)
    xq = data.draw(st.sets(st.integers(0, n - 1)))
    zq = data.draw(st.sets(st.integers(0, n - 1)))
    xs = {q: _image(ref, "X", q) for q in xq}
    zs = {q: _image(ref, "Z", q) for q in zq}
    out = clifford_from_images(n, xs, zs)
    for q, p in xs.items():
        assert _image(out, "X", q) == p
    for q, p in zs.items():
        assert _image(out, "Z", q) == p


def test_encoder_maps_onto_the_five_qubit_code():
    enc = encoder_clifford()
    lab = lambda s: Pauli(s[::-1])  # noqa: E731 - character k acts on qubit k
    assert _image(enc, "X", 0) == lab(LOGICAL_X) and _image(enc, "Z", 0) == lab(LOGICAL_Z)
    cw = codewords()
    for s in STABILISERS:
        m = lab(s).to_matrix()
        np.testing.assert_allclose(m @ cw.T, cw.T, atol=1e-12)
    np.testing.assert_allclose(lab(LOGICAL_X).to_matrix() @ cw[0], cw[1], atol=1e-12)
    np.testing.assert_allclose(lab(LOGICAL_Z).to_matrix() @ cw[1], -cw[1], atol=1e-12)


def test_every_decoder_is_clifford_and_small():
    for subset in authorised_sets():
        qc = decoder_clifford(subset).to_circuit()
        assert set(qc.count_ops()) <= {"h", "s", "sdg", "cx", "swap", "x", "y", "z"}
        assert qc.size() < 40
