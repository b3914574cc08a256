"""Benchmark: verifying a 10-qubit GHZ state from 1e5 rounds of the X/Y test.

Prints, measured side by side in one run:
  * qverify: Aer density matrix once, exact pass probability per challenge, one binomial draw per
    distinct challenge;
  * naive Aer: every round a noisy measurement circuit of its challenge, one shot per round, run
    with method="statevector" (fewer rounds, scaled linearly, as the output says);
  * Stim: the same Clifford circuits with the same Pauli noise, one compiled sampler per distinct
    challenge, shots = rounds of that challenge.
Targets: >= 100x faster than naive Aer and not slower than Stim.

Run: python bench/bench_verify.py [--naive-rounds 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import stim
from qiskit_aer import AerSimulator

from qverify.protocols.ghz import test_circuit
from qverify.protocols.noise import depolarising_channel
from qverify.verify.ghz import verify_ghz

N, ROUNDS, P = 10, 100_000, 0.02


def challenges(rounds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    free = rng.integers(0, 2, size=(rounds, N - 1))
    drawn = np.concatenate([free, free.sum(axis=1, keepdims=True) % 2], axis=1)
    codes, counts = np.unique(drawn @ (1 << np.arange(N)), return_counts=True)
    return codes, counts


def stim_circuit(theta: list[int]) -> stim.Circuit:
    c = stim.Circuit()
    c.append("H", [0])
    for i in range(N - 1):
        c.append("CX", [i, i + 1])
    c.append("DEPOLARIZE1", list(range(N)), 0.75 * P)  # qiskit depolarizing(p) = stim DEPOLARIZE1(3p/4)
    for i, t in enumerate(theta):
        if t:
            c.append("S_DAG", [i])
        c.append("H", [i])
    c.append("M", list(range(N)))
    return c


def run_stim(seed: int) -> float:
    codes, counts = challenges(ROUNDS, seed)
    passes = 0
    for code, cnt in zip(codes, counts, strict=True):
        theta = [int(code) >> i & 1 for i in range(N)]
        bits = stim_circuit(theta).compile_sampler(seed=int(code)).sample(int(cnt))
        passes += int(((bits.sum(axis=1) % 2) == (sum(theta) // 2) % 2).sum())
    return passes / ROUNDS


def run_naive(rounds: int, seed: int) -> float:
    codes, counts = challenges(rounds, seed)
    sim = AerSimulator(method="statevector", noise_model=depolarising_channel(P))
    circuits, shots = [], []
    for code, cnt in zip(codes, counts, strict=True):
        theta = [int(code) >> i & 1 for i in range(N)]
        circuits.append(test_circuit(N, theta))
        shots.append(int(cnt))
    passes = 0
    for i, (qc, s) in enumerate(zip(circuits, shots, strict=True)):  # one shot per round of this challenge
        theta = [int(ch) for ch in qc.name.split("_")[-1]]
        res = sim.run(qc, shots=s, seed_simulator=seed * 100_003 + i).result().get_counts()
        target = (sum(theta) // 2) % 2
        passes += sum(v for k, v in res.items() if k.count("1") % 2 == target)
    return passes / rounds


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--naive-rounds", type=int, default=2000)
    args = parser.parse_args()
    t_ours, r = best_of(lambda: verify_ghz(N, p_depol=P, rounds=ROUNDS, seed=0))
    t_stim, p_stim = best_of(lambda: run_stim(0))
    t_naive_part, p_naive = best_of(lambda: run_naive(args.naive_rounds, 0), repeat=1)
    t_naive = t_naive_part * ROUNDS / args.naive_rounds
    p_ours = r.pass_probability.value  # type: ignore[attr-defined]
    print(f"GHZ-{N} verification, {ROUNDS:.0e} rounds, depolarising p = {P} (2 cores, CPU)")
    print(f"  qverify (density matrix + binomial draws): {t_ours:8.3f} s   pass rate {p_ours:.4f}")
    print(f"  Stim (compiled sampler per challenge)    : {t_stim:8.3f} s   pass rate {p_stim:.4f}")
    print(f"  naive Aer statevector, one shot per round: {t_naive:8.1f} s   pass rate {p_naive:.4f} "
          f"(ran {args.naive_rounds} rounds in {t_naive_part:.2f} s, scaled x{ROUNDS / args.naive_rounds:.0f})")  # fmt: skip
    print(f"  ratio naive Aer / qverify: {t_naive / t_ours:9.0f}x  (target >= 100x)")
    print(f"  ratio Stim / qverify     : {t_stim / t_ours:9.2f}x  (target >= 1x)")


if __name__ == "__main__":
    main()
