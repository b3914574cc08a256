"""Benchmark: the exact dead-time detector model, measured side by side in one run (2 cores, CPU).

Prints, per dead time d (slots), the time per link setting of
  * qverify's reduced chain (``qverify.physics.detector.alive_fractions``: a d × d solve), numpy
    float64 batched over settings, and jit-compiled float32 (the network's path);
  * the naive way: the full chain over both detectors' counters, (d + 1)² states built state by
    state and solved densely (what the module did before the reduction);
and the largest difference between the two (they must agree to ~1e-12).

Run: python bench/bench_detector.py [--n 2000]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from qverify.physics.detector import alive_fractions

E_MIS, P_DARK, P_MATCH = 0.015, 3e-6, 0.5


def full_chain(mu_eta: float, d: int) -> tuple[float, float, float]:
    """P(both live), P(one), P(none) from the (d + 1)²-state counter chain, solved densely."""
    states = [(a, b) for a in range(d + 1) for b in range(d + 1)]
    index = {s: k for k, s in enumerate(states)}
    trans = np.zeros((len(states), len(states)))
    settings = [
        (P_MATCH / 2, (mu_eta * (1 - E_MIS), mu_eta * E_MIS)),
        (P_MATCH / 2, (mu_eta * E_MIS, mu_eta * (1 - E_MIS))),
        (1 - P_MATCH, (mu_eta / 2, mu_eta / 2)),
    ]
    for k, counters in enumerate(states):
        for weight, means in settings:
            p_click = [1 - np.exp(-m) * (1 - P_DARK) for m in means]
            for pattern in itertools.product((False, True), repeat=2):
                prob, nxt = weight, []
                for c, clicked, pc in zip(counters, pattern, p_click, strict=True):
                    if c > 0:
                        prob *= 0.0 if clicked else 1.0
                        nxt.append(c - 1)
                    else:
                        prob *= pc if clicked else 1 - pc
                        nxt.append(d if clicked else 0)
                trans[k, index[tuple(nxt)]] += prob
    a = trans.T - np.eye(len(states))
    a[-1, :] = 1.0
    pi = np.linalg.solve(a, np.eye(len(states))[-1])
    live = np.array([(s[0] == 0) + (s[1] == 0) for s in states])
    return pi[live == 2].sum(), pi[live == 1].sum(), pi[live == 0].sum()


def timed(fn, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="link settings per batch (reduced chain)")
    args = ap.parse_args()
    import jax
    import jax.numpy as jnp

    mu_eta = np.geomspace(1e-6, 0.5, args.n)
    x32 = jnp.asarray(mu_eta, jnp.float32)
    print(f"{'d':>4} {'reduced np (µs)':>16} {'reduced jit f32 (µs)':>21} {'full chain (µs)':>16} "
          f"{'full/reduced':>13} {'max |diff|':>11}")  # fmt: skip
    for d in (1, 3, 10, 30):
        t_np = timed(lambda d=d: alive_fractions(mu_eta, E_MIS, P_DARK, d, P_MATCH)) / args.n
        fn = jax.jit(lambda x, d=d: alive_fractions(x, E_MIS, P_DARK, d, P_MATCH))
        jax.block_until_ready(fn(x32))
        t_jit = timed(lambda fn=fn: jax.block_until_ready(fn(x32))) / args.n
        sample = mu_eta[:: max(1, args.n // (40 if d < 30 else 5))]
        t0 = time.perf_counter()
        full = np.array([full_chain(float(m), d) for m in sample])
        t_full = (time.perf_counter() - t0) / len(sample)
        reduced = np.stack(alive_fractions(sample, E_MIS, P_DARK, d, P_MATCH), axis=1)
        diff = float(np.abs(full - reduced).max())
        print(
            f"{d:>4} {t_np * 1e6:>16.2f} {t_jit * 1e6:>21.2f} {t_full * 1e6:>16.0f} {t_full / t_np:>13.0f} {diff:>11.1e}"
        )


if __name__ == "__main__":
    main()
