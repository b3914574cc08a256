"""GHZ states and the X/Y verification test of Pappa, Chailloux, Wehner, Diamanti, Kerenidis
(PRL 108, 260502, 2012), with dishonest strategies.

Test: each party ``i`` gets ``θ_i ∈ {0, 1}`` with ``Σθ_i`` even, measures X (θ = 0) or Y (θ = 1)
and announces ``y_i``; the test passes when ``⊕ y_i = (Σθ_i / 2) mod 2``. The GHZ state
``(|0…0⟩ + |1…1⟩)/√2`` passes with probability 1.
"""

from __future__ import annotations

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

from qverify.errors import ChoiceError, ParameterError

STRATEGIES: tuple[str, ...] = ("honest", "wrong_basis", "swap_qubit", "product_source")
"""``honest``; ``wrong_basis``: one party always measures X; ``swap_qubit``: one party replaces its
qubit by its own |+⟩; ``product_source``: the source sends |+⟩^n instead of a GHZ state."""

MIN_PARTIES, MAX_PARTIES = 3, 10


def check_parties(n: int) -> None:
    if not MIN_PARTIES <= n <= 64:
        raise ParameterError("parties", n, f"[{MIN_PARTIES}, 64]")


def ghz_state(n: int) -> QuantumCircuit:
    """n-qubit GHZ preparation: H on qubit 0, CX chain; an ``id`` per qubit marks the source output."""
    check_parties(n)
    qc = QuantumCircuit(QuantumRegister(n, "q"), name=f"ghz_{n}")
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    for i in range(n):
        qc.id(i)  # distribution channel: noise attaches here
    return qc


def shared_state(n: int, strategy: str = "honest", dishonest: int = 0) -> QuantumCircuit:
    """The state the parties hold before measuring, under ``strategy`` (no measurements)."""
    if strategy not in STRATEGIES:
        raise ChoiceError("strategy", strategy, STRATEGIES)
    if not 0 <= dishonest < n:
        raise ParameterError("dishonest party", dishonest, f"[0, {n - 1}]")
    if strategy == "product_source":
        qc = QuantumCircuit(QuantumRegister(n, "q"), name=f"product_{n}")
        qc.h(range(n))
        for i in range(n):
            qc.id(i)
        return qc
    qc = ghz_state(n)
    if strategy == "swap_qubit":
        qc.reset(dishonest)
        qc.h(dishonest)
    return qc


def measured_y(thetas: np.ndarray, strategy: str, dishonest: int = 0) -> np.ndarray:
    """Whether each party actually measures Y (else X) for challenges ``thetas`` (shape (..., n))."""
    y = np.asarray(thetas).astype(bool)  # a copy
    if strategy == "wrong_basis":
        y[..., dishonest] = False  # the dishonest party always measures X
    return y


def measured_bases(thetas: list[int] | tuple[int, ...], strategy: str, dishonest: int = 0) -> list[str]:
    """Basis ('X' or 'Y') each party actually measures for the challenge ``thetas``."""
    return ["Y" if y else "X" for y in measured_y(np.array(thetas), strategy, dishonest)]


def test_circuit(
    n: int, thetas: list[int] | tuple[int, ...], strategy: str = "honest", dishonest: int = 0,
    state: QuantumCircuit | None = None,
) -> QuantumCircuit:  # fmt: skip
    """State preparation plus the X/Y measurements of one challenge (clbit i = party i's outcome)."""
    if len(thetas) != n or sum(thetas) % 2:
        raise ParameterError("thetas", list(thetas), f"{n} bits with an even sum")
    prep = state.remove_final_measurements(inplace=False) if state is not None else shared_state(n, strategy, dishonest)
    qc = prep.copy(name=f"ghz{n}_test_{''.join(map(str, thetas))}")
    creg = ClassicalRegister(n, "y")
    qc.add_register(creg)
    for i, basis in enumerate(measured_bases(thetas, strategy, dishonest)):
        if basis == "Y":
            qc.sdg(i)
        qc.h(i)
        qc.measure(i, creg[i])
    return qc
