"""The one place that runs simulators: Qiskit Aer and Stim.

Small circuits (≤ :data:`MAX_EXACT_QUBITS` qubits, terminal measurements only) get their exact
outcome distribution from Aer's density-matrix method; counts for any number of shots are then one
multinomial draw per circuit (exact beats any sampler there, and is faster than Stim on the BSM's
2–5-qubit circuits: ``python bench/bench_bsm.py``). Larger circuits that are Clifford with Pauli
noise run on Stim (exact samples of the noisy circuit, Gidney, Quantum 5, 497, 2021); the rest on
Aer's own sampling methods. ``method="stim"`` asks for Stim at any size. ``device="auto"`` picks
the GPU when ``qiskit-aer-gpu`` sees one and falls back to the CPU silently.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np
from qiskit import QuantumCircuit

from qverify.errors import BackendError, ChoiceError, CircuitError

MAX_EXACT_QUBITS = 12
log = logging.getLogger(__name__)

CLIFFORD_GATES = frozenset({"h", "s", "sdg", "x", "y", "z", "cx", "cy", "cz", "swap", "id", "sx", "sxdg", "measure",
                            "barrier"})  # fmt: skip
"""Gates Aer's stabilizer method simulates without a state vector."""


def memory_bytes() -> int:
    """Physical memory of this machine in bytes (8 GiB if it cannot be read)."""
    import os

    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 8 * 2**30


def check_sampled_size(circuits: Sequence[QuantumCircuit], memory: int | None = None) -> None:
    """Refuse, before any allocation, circuits whose sampled run cannot fit in half of ``memory``.

    Two things must fit: the outcome table (``2**num_clbits`` counts per circuit) and, unless
    every gate is Clifford (Aer's stabilizer method), a state vector of ``16·2**num_qubits`` bytes.
    """
    budget = (memory_bytes() if memory is None else memory) // 2
    for qc in circuits:
        table = len(circuits) * 8 * 2**qc.num_clbits
        clifford = all(inst.operation.name in CLIFFORD_GATES for inst in qc.data)
        state = 0 if clifford else 16 * 2**qc.num_qubits
        if table + state > budget:
            max_bits = max(0, int(np.log2(max(budget // (8 * len(circuits)), 1))))
            max_qubits = int(np.log2(max(budget // 16, 1)))
            raise BackendError(
                f"circuit {qc.name!r} has {qc.num_qubits} qubits and {qc.num_clbits} measured bits; sampled mode "
                f"here holds at most {max_bits} measured bits per circuit"
                + ("" if clifford else f" and {max_qubits} qubits for non-Clifford circuits")
                + f" (half of this machine's {memory_bytes() / 2**30:.0f} GiB)"
            )


"""Largest circuit (qubits) given an exact density-matrix distribution."""

Method = Literal["auto", "exact", "sampled", "stim"]
METHODS = ("auto", "exact", "sampled", "stim")


@cache
def available_device() -> str:
    """``"GPU"`` if Aer can use one here, else ``"CPU"``."""
    from qiskit_aer import AerSimulator

    return "GPU" if "GPU" in AerSimulator().available_devices() else "CPU"


def _simulator(method: str, noise_model: Any, device: str, seed: int | None = None) -> Any:
    from qiskit_aer import AerSimulator

    dev = available_device() if device == "auto" else device
    if dev not in ("CPU", "GPU"):
        raise ChoiceError("device", device, ("auto", "CPU", "GPU"))
    opts: dict[str, Any] = {"method": method, "device": dev, "noise_model": noise_model}
    if seed is not None:
        opts["seed_simulator"] = seed
    return AerSimulator(**opts)


_TRANSPILE_BASIS = (
    "id",
    "x",
    "y",
    "z",
    "h",
    "s",
    "sdg",
    "rz",
    "ry",
    "rx",
    "sx",
    "u",
    "cx",
    "cz",
    "swap",
    "ccx",
)


def _native(circuits: Sequence[QuantumCircuit], sim: Any) -> list[QuantumCircuit]:
    """Circuits in the simulator's gate set; transpiled (level 0, keeps ``id``) only when needed."""
    from qiskit import transpile

    supported = set(sim.configuration().basis_gates) | {"measure", "barrier", "reset"}
    out = []
    for qc in circuits:
        names = {inst.operation.name for inst in qc.data}
        if names <= supported:
            out.append(qc)
        else:
            out.append(transpile(qc, basis_gates=list(_TRANSPILE_BASIS), optimization_level=0))
    return out


def _run(sim: Any, circuits: list[QuantumCircuit], shots: int) -> Any:
    result = sim.run(circuits, shots=shots).result()
    if not result.success:
        raise BackendError(f"Aer could not run the circuits: {result.status}")
    return result


def _measured_qubits(qc: QuantumCircuit) -> list[int]:
    """Qubit index measured into each clbit, in clbit order; requires terminal measurements."""
    qubit_of: dict[int, int] = {}
    measured_done: set[int] = set()
    for inst in qc.data:
        qubits = [qc.find_bit(q).index for q in inst.qubits]
        if inst.operation.name == "measure":
            clbit = qc.find_bit(inst.clbits[0]).index
            qubit_of[clbit] = qubits[0]
            measured_done.add(qubits[0])
        elif inst.operation.name != "barrier" and measured_done.intersection(qubits):
            raise CircuitError(f"circuit {qc.name!r}: exact mode needs measurements at the end")
    if sorted(qubit_of) != list(range(qc.num_clbits)):
        raise CircuitError(f"circuit {qc.name!r}: every classical bit must be written by one measurement")
    return [qubit_of[c] for c in range(qc.num_clbits)]


def exact_distributions(
    circuits: Sequence[QuantumCircuit], noise_model: Any = None, device: str = "auto"
) -> np.ndarray:
    """Exact outcome probabilities, shape ``(len(circuits), 2**num_clbits)``.

    Index ``k`` of a row is the classical outcome whose bit ``i`` (little-endian, as in Qiskit's
    count keys) is clbit ``i``. All circuits must share ``num_clbits``.
    """
    if not circuits:
        return np.zeros((0, 1))
    widths = {qc.num_clbits for qc in circuits}
    if len(widths) != 1:
        raise CircuitError(f"num_clbits differs between circuits: {sorted(widths)}")
    sim = _simulator("density_matrix", noise_model, device)
    prepared = []
    for qc in _native(circuits, sim):
        if qc.num_qubits > MAX_EXACT_QUBITS:
            raise BackendError(
                f"circuit {qc.name!r} has {qc.num_qubits} qubits; exact mode allows at most "
                f"{MAX_EXACT_QUBITS} (use method='sampled')"
            )
        qubits = _measured_qubits(qc)
        bare = qc.remove_final_measurements(inplace=False)
        bare.save_probabilities(qubits, label="p")
        prepared.append(bare)
    result = _run(sim, prepared, shots=1)
    probs = np.array([np.asarray(result.data(i)["p"], dtype=float) for i in range(len(prepared))])
    probs = np.clip(probs, 0.0, None)
    return probs / probs.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Counts:
    """Outcome counts of several circuits.

    Attributes:
        counts: int array ``(n_circuits, 2**num_clbits)``; index = little-endian outcome.
        shots: shots per circuit.
        method: ``"exact"`` (density matrix + multinomial draw), ``"stim"`` (Stim's sampler) or
            ``"sampled"`` (Aer sampling).
        probabilities: the exact distributions when ``method == "exact"``, else ``None``.
    """

    counts: np.ndarray
    shots: int
    method: str
    probabilities: np.ndarray | None = None


def sample_counts(
    circuits: Sequence[QuantumCircuit],
    shots: int,
    rng: np.random.Generator,
    noise_model: Any = None,
    method: str = "auto",
    device: str = "auto",
) -> Counts:
    """Counts for ``shots`` shots of each circuit, reproducible from ``rng``.

    ``method="auto"`` is exact when every circuit has ≤ :data:`MAX_EXACT_QUBITS` qubits, else Stim
    when every circuit is Clifford and the noise Pauli (:func:`stim_circuit`), else Aer sampling.
    ``"stim"`` refuses circuits or noise Stim cannot run exactly, naming the instruction.
    """
    if method not in METHODS:
        raise ChoiceError("method", method, METHODS)
    if not isinstance(shots, int | np.integer) or shots < 1:
        raise BackendError(f"shots = {shots!r} is outside the allowed range [1, inf) (integer)")
    stim_circuits = None
    if method == "auto":
        if all(qc.num_qubits <= MAX_EXACT_QUBITS for qc in circuits):
            method = "exact"
        else:
            try:
                stim_circuits = _stim_circuits(circuits, noise_model)
                method = "stim"
            except CircuitError:
                method = "sampled"
    if method == "exact":
        probs = exact_distributions(circuits, noise_model, device)
        counts = np.stack([rng.multinomial(int(shots), p) for p in probs]) if len(probs) else probs
        return Counts(counts.astype(np.int64), int(shots), "exact", probs)
    if method == "stim":
        check_sampled_size(circuits)  # the outcome table: 2**num_clbits counts per circuit
        if stim_circuits is None:
            stim_circuits = _stim_circuits(circuits, noise_model)
        return Counts(_stim_counts(circuits, stim_circuits, int(shots), rng), int(shots), "stim", None)
    check_sampled_size(circuits)
    log.debug("sampling %d circuit(s) × %d shots with Aer's automatic method", len(circuits), shots)
    seed = int(rng.integers(0, 2**31 - 1))
    sim = _simulator("automatic", noise_model, device, seed)
    result = _run(sim, _native(circuits, sim), shots=int(shots))
    width = circuits[0].num_clbits
    out = np.zeros((len(circuits), 2**width), dtype=np.int64)
    for i in range(len(circuits)):
        for key, value in result.get_counts(i).items():
            out[i, int(key.replace(" ", ""), 2)] = value
    return Counts(out, int(shots), "sampled", None)


def exact_density_matrix(circuit: QuantumCircuit, noise_model: Any = None, device: str = "auto") -> np.ndarray:
    """Final density matrix of ``circuit`` (measurements removed), as a (2^n, 2^n) array.

    Qubit ordering is Qiskit's (qubit 0 is the least significant index).
    """
    if circuit.num_qubits > MAX_EXACT_QUBITS:
        raise BackendError(
            f"circuit {circuit.name!r} has {circuit.num_qubits} qubits; exact mode allows at most {MAX_EXACT_QUBITS}"
        )
    sim = _simulator("density_matrix", noise_model, device)
    bare = _native([circuit.remove_final_measurements(inplace=False)], sim)[0]
    bare.save_density_matrix(label="rho")
    result = _run(sim, [bare], shots=1)
    return np.asarray(result.data(0)["rho"])


# ---- Stim: Clifford circuits with Pauli noise -------------------------------------------------
_STIM_GATES = {"h": "H", "s": "S", "sdg": "S_DAG", "x": "X", "y": "Y", "z": "Z", "cx": "CX", "cy": "CY",
               "cz": "CZ", "swap": "SWAP", "sx": "SQRT_X", "sxdg": "SQRT_X_DAG", "reset": "R"}  # fmt: skip
STIM_ROUNDS_PER_CIRCUIT = 2_000
"""Rounds laid out one after another in one Stim circuit (bounds its memory: ~5 KB per round at 64 qubits)."""


def is_clifford(circuit: QuantumCircuit) -> bool:
    """Whether every operation of a state-preparation circuit is a Clifford gate, a reset, ``id`` or
    a barrier (what :func:`to_stim` converts)."""
    return all(inst.operation.name in _STIM_GATES or inst.operation.name in ("id", "barrier") for inst in circuit.data)


def to_stim(circuit: QuantumCircuit, p_depol: float = 0.0) -> Any:
    """A Clifford state-preparation circuit as a ``stim.Circuit``; every ``id`` (a channel) becomes
    Aer's ``depolarizing_error(p_depol, 1)``, i.e. ``DEPOLARIZE1(3·p_depol/4)`` (X, Y, Z each p/4).

    Raises ``CircuitError`` for a gate Stim cannot simulate exactly (non-Clifford) or a measurement.
    """
    import stim

    out = stim.Circuit()
    for k, inst in enumerate(circuit.data):
        name = inst.operation.name
        qubits = [circuit.find_bit(q).index for q in inst.qubits]
        if name == "barrier":
            continue
        if name == "id":
            if p_depol:
                out.append("DEPOLARIZE1", qubits, 0.75 * p_depol)
            continue
        if name not in _STIM_GATES:
            raise CircuitError(
                f"circuit {circuit.name!r}: {name!r} at instruction {k} is not a Clifford gate; the stabilizer "
                f"backend runs {', '.join(sorted(_STIM_GATES))} and id"
            )
        out.append(_STIM_GATES[name], qubits)
    return out


def sample_xy_parities(prep: Any, n: int, y_mask: np.ndarray, seed: int) -> np.ndarray:
    """Per round, the parity of n single-qubit outcomes after ``prep`` (a ``stim.Circuit``), each
    qubit measured in X (``y_mask`` False) or Y (True); ``y_mask`` has shape (rounds, n).

    Rounds are laid out one after another in Stim circuits of :data:`STIM_ROUNDS_PER_CIRCUIT`
    rounds (reset between rounds), each written as text, compiled once and sampled once: exact
    samples of the noisy circuit (Gidney, Quantum 5, 497, 2021).
    """
    import stim

    rounds = y_mask.shape[0]
    out = np.empty(rounds, dtype=np.int64)
    rng = np.random.default_rng(seed)
    prep_text = str(prep)
    every = " ".join(map(str, range(n)))
    measure = f"H {every}\nM {every}\nR {every}"
    for start in range(0, rounds, STIM_ROUNDS_PER_CIRCUIT):
        block = y_mask[start : start + STIM_ROUNDS_PER_CIRCUIT]
        parts = []
        for row in block:
            parts.append(prep_text)
            ys = np.flatnonzero(row)
            if len(ys):
                parts.append("S_DAG " + " ".join(map(str, ys.tolist())))
            parts.append(measure)
        circuit = stim.Circuit("\n".join(parts))
        bits = circuit.compile_sampler(seed=int(rng.integers(2**63))).sample(1)[0]
        out[start : start + len(block)] = bits.reshape(len(block), n).sum(axis=1) % 2
    return out


def _pauli_probabilities(error: Any) -> np.ndarray:
    """Probabilities of the Pauli operators of a 1- or 2-qubit Aer error (Qiskit's ``pauli_basis``
    order), or ``CircuitError`` unless the error is a Pauli channel (its χ matrix diagonal)."""
    from qiskit.quantum_info import Chi

    chi = Chi(error).data
    diag = chi.diagonal().real
    if np.abs(chi - np.diag(np.diag(chi))).max() > 1e-12 * max(1.0, abs(diag).max()):
        raise CircuitError(
            "a noise channel is not a Pauli channel (e.g. amplitude damping); Stim runs Pauli noise only"
        )
    return np.clip(diag / diag.sum(), 0.0, 1.0)


def _stim_noise(error: Any, qubits: list[int], seen: dict[int, np.ndarray]) -> tuple[str, list[int], list[float]]:
    """An Aer Pauli error on ``qubits`` as a Stim ``PAULI_CHANNEL_1``/``_2`` instruction (``seen``
    keeps each error object's probabilities: its χ matrix costs milliseconds)."""
    from qiskit.quantum_info import pauli_basis

    if id(error) not in seen:
        seen[id(error)] = _pauli_probabilities(error)
    probs = seen[id(error)]
    n = len(qubits)
    if n == 1:
        return "PAULI_CHANNEL_1", qubits, [float(p) for p in probs[1:]]  # X, Y, Z
    if n != 2:
        raise CircuitError(f"a {n}-qubit noise channel; Stim's Pauli channels act on 1 or 2 qubits")
    # Qiskit label "ab": a on the error's qubit 1, b on its qubit 0; Stim orders the 15 arguments
    # IX, IY, …, ZZ by (target 0, target 1).
    by_label = dict(zip(pauli_basis(2).to_labels(), probs, strict=True))
    args = [float(by_label[second + first]) for first, second in itertools.product("IXYZ", "IXYZ")][1:]
    return "PAULI_CHANNEL_2", qubits, args


def stim_circuit(circuit: QuantumCircuit, noise_model: Any = None, seen: dict[int, np.ndarray] | None = None) -> Any:
    """``circuit`` with its measurements and the Pauli errors of an Aer ``noise_model`` (each
    applied after its gate, as Aer does) as a ``stim.Circuit``; measurement ``k`` of the result
    writes record ``k`` and :func:`_stim_counts` maps records back to classical bits.

    Raises ``CircuitError`` naming the first instruction Stim cannot run exactly: a non-Clifford
    gate, a gate outside the noise model's basis (Aer would transpile it first), a non-Pauli or
    readout error, classical control.
    """
    import stim

    seen = {} if seen is None else seen
    local = getattr(noise_model, "_local_quantum_errors", {}) if noise_model is not None else {}
    default = getattr(noise_model, "_default_quantum_errors", {}) if noise_model is not None else {}
    if noise_model is not None and (
        getattr(noise_model, "_default_readout_error", None) or getattr(noise_model, "_local_readout_errors", {})
    ):
        raise CircuitError("the noise model has readout errors; Stim's path takes gate errors only")
    basis = set(noise_model.basis_gates) | {"measure", "barrier"} if noise_model is not None else None
    out = stim.Circuit()
    for k, inst in enumerate(circuit.data):
        name = inst.operation.name
        qubits = [circuit.find_bit(q).index for q in inst.qubits]
        if name == "barrier":
            continue
        if basis is not None and name not in basis:
            # Aer would first transpile the gate into the noise model's basis and attach that basis's
            # errors; translating it as written would drop or misplace them.
            raise CircuitError(
                f"circuit {circuit.name!r}: {name!r} at instruction {k} is not in the noise model's basis "
                f"{sorted(noise_model.basis_gates)}; Aer would transpile it, so its noise has no exact Stim form here"
            )
        if name == "measure":
            out.append("M", qubits)
        elif name == "id":
            pass
        elif name in _STIM_GATES:
            out.append(_STIM_GATES[name], qubits)
        else:
            raise CircuitError(
                f"circuit {circuit.name!r}: {name!r} at instruction {k} is not a Clifford gate; Stim runs "
                f"{', '.join(sorted(_STIM_GATES))}, id and measure"
            )
        error = local.get(name, {}).get(tuple(qubits)) or default.get(name)
        if error is not None:
            try:
                out.append(*_stim_noise(error, qubits, seen))
            except CircuitError as exc:
                raise CircuitError(
                    f"circuit {circuit.name!r}: the error on {name!r} at instruction {k}: {exc}"
                ) from None
    return out


def _stim_circuits(circuits: Sequence[QuantumCircuit], noise_model: Any) -> list[Any]:
    seen: dict[int, np.ndarray] = {}
    return [stim_circuit(qc, noise_model, seen) for qc in circuits]


def _stim_counts(circuits: Sequence[QuantumCircuit], stim_circuits: Sequence[Any], shots: int,
                 rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Counts ``(n_circuits, 2**num_clbits)`` from Stim's compiled samplers (a later measurement of
    the same classical bit overwrites an earlier one, as in Qiskit)."""
    width = circuits[0].num_clbits
    out = np.zeros((len(circuits), 2**width), dtype=np.int64)
    for i, (qc, sc) in enumerate(zip(circuits, stim_circuits, strict=True)):
        if qc.num_clbits != width:
            raise CircuitError(f"num_clbits differs between circuits: {qc.num_clbits} and {width}")
        clbits = [qc.find_bit(inst.clbits[0]).index for inst in qc.data if inst.operation.name == "measure"]
        records = sc.compile_sampler(seed=int(rng.integers(2**63))).sample(shots, bit_packed=False)
        outcome = np.zeros(shots, dtype=np.int64)
        for k, c in enumerate(clbits):
            outcome = (outcome & ~(1 << c)) | (records[:, k].astype(np.int64) << c)
        out[i] = np.bincount(outcome, minlength=2**width)
    return out
