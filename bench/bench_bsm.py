"""Benchmark: BSM outcome counts for 32 noisy circuits × 1e5 shots, and key-rate throughput.

Prints, measured side by side in one run:
  * qverify's default (Aer density matrix once per circuit + one multinomial draw) and qverify's
    Stim path (``method="stim"``: the circuits and the Aer noise model translated by
    ``qverify.backends.stim_circuit``) vs naive Aer (noisy circuit, method="statevector", one
    trajectory per shot; run with fewer shots and scaled linearly to 1e5, as stated in the output)
    vs Stim direct (the same circuits written out by hand below).

Key-rate throughput is in bench/bench_rates.py.

Run: python bench/bench_bsm.py [--naive-shots 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import stim
from qiskit import QuantumCircuit
from qiskit_aer import AerSimulator

from qverify.backends import sample_counts
from qverify.protocols.mdi import BASES, BSMNoise, mdi_circuits, mdi_noise_model

SHOTS = 100_000
NOISE = BSMNoise(e_mis=0.015, gate_error=0.01)
RELAYS = ("honest", "intercept_resend_z", "intercept_resend_x", "z_measure")


def circuits() -> list[QuantumCircuit]:
    """32 Clifford circuits: 4 relay behaviours × Z/X bases × 4 bit settings."""
    return [qc for relay in RELAYS for qc in mdi_circuits(relay, BASES[:2])]


def to_stim(qc: QuantumCircuit, noise: BSMNoise) -> stim.Circuit:
    """Same circuit and Pauli noise in Stim (qiskit depolarizing(p) = stim DEPOLARIZE1(3p/4))."""
    out = stim.Circuit()
    measured: list[tuple[int, int]] = []
    for inst in qc.data:
        name = inst.operation.name
        q = [qc.find_bit(b).index for b in inst.qubits]
        if name == "id":
            if q[0] == 0 and noise.e_mis:
                out.append("DEPOLARIZE1", q, 0.75 * 2 * noise.e_mis)
        elif name in ("h", "x", "s"):
            out.append(name.upper(), q)
            if name == "h" and q == [0] and noise.gate_error:
                out.append("DEPOLARIZE1", q, 0.75 * noise.gate_error)
        elif name == "cx":
            out.append("CX", q)
            if q == [0, 1] and noise.gate_error:
                out.append("DEPOLARIZE2", q, 15 / 16 * noise.gate_error)
        elif name == "measure":
            measured.append((qc.find_bit(inst.clbits[0]).index, q[0]))
        else:
            raise ValueError(f"no Stim translation for {name}")
    for _clbit, qubit in sorted(measured):
        out.append("M", [qubit])
    return out


def stim_counts(circs: list[stim.Circuit], shots: int, seed: int) -> np.ndarray:
    res = np.zeros((len(circs), 4), dtype=np.int64)
    for i, c in enumerate(circs):
        bits = c.compile_sampler(seed=seed + i).sample(shots, bit_packed=False)
        idx = bits[:, 0].astype(np.int64) + 2 * bits[:, 1].astype(np.int64)
        res[i] = np.bincount(idx, minlength=4)
    return res


def naive_counts(circs: list[QuantumCircuit], shots: int, noise_model) -> np.ndarray:
    sim = AerSimulator(method="statevector", noise_model=noise_model, seed_simulator=1)
    result = sim.run(circs, shots=shots).result()
    res = np.zeros((len(circs), 4), dtype=np.int64)
    for i in range(len(circs)):
        for key, v in result.get_counts(i).items():
            res[i, int(key, 2)] = v
    return res


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_counts(naive_shots: int) -> None:
    circs = circuits()
    nm = mdi_noise_model(NOISE)
    stim_circs = [to_stim(qc, NOISE) for qc in circs]
    rng = np.random.default_rng(0)

    ours = sample_counts(circs, SHOTS, rng, nm)
    ref = stim_counts(stim_circs, SHOTS, 0)
    # Same physics: per-circuit outcome frequencies agree within sampling noise.
    assert np.max(np.abs(ours.counts - ref) / SHOTS) < 0.01, "qverify and Stim disagree"

    via_stim = sample_counts(circs, SHOTS, rng, nm, method="stim")
    assert np.max(np.abs(via_stim.counts - ref) / SHOTS) < 0.01, "qverify's Stim path and Stim disagree"

    t_ours = best_of(lambda: sample_counts(circs, SHOTS, rng, nm))
    t_ours_stim = best_of(lambda: sample_counts(circs, SHOTS, rng, nm, method="stim"))
    t_stim = best_of(lambda: stim_counts(stim_circs, SHOTS, 1))
    t_naive_part = best_of(lambda: naive_counts(circs, naive_shots, nm), repeat=1)
    t_naive = t_naive_part * SHOTS / naive_shots
    print(f"BSM counts, {len(circs)} noisy circuits x {SHOTS:.0e} shots (2 cores, CPU)")
    print(f"  qverify (density matrix + multinomial) : {t_ours * 1e3:9.1f} ms")
    print(f"  qverify method='stim' (translated)     : {t_ours_stim * 1e3:9.1f} ms")
    print(f"  Stim (compiled sampler)                : {t_stim * 1e3:9.1f} ms")
    print(
        f"  naive Aer statevector, per shot        : {t_naive:9.1f} s "
        f"(ran {naive_shots} shots in {t_naive_part:.2f} s, scaled linearly x{SHOTS // naive_shots})"
    )
    print(f"  ratio naive Aer / qverify : {t_naive / t_ours:10.0f}x  (target >= 1000x)")
    print(f"  ratio Stim / qverify      : {t_stim / t_ours:10.1f}x  (target >= 2x)")
    print(f"  ratio qverify stim path / Stim direct : {t_ours_stim / t_stim:6.2f}x  (translation overhead)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--naive-shots", type=int, default=2000, help="shots actually run by naive Aer")
    args = parser.parse_args()
    bench_counts(args.naive_shots)
