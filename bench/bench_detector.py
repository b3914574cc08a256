"""Benchmark: the exact dead-time detector model, measured side by side in one run (2 cores, CPU).

Prints, per dead time d (slots), the time per link setting of
  * qverify's reduced chain (``qverify.physics.detector.alive_fractions``: a d × d solve), numpy
    float64 batched over settings, and jit-compiled float32 (the network's path);
  * the naive way: the full chain over both detectors' counters, (d + 1)² states built state by
    state and solved densely (what the module did before the reduction);
and the largest difference between the two (they must agree to ~1e-12).

Then the same for Charlie's four detectors in MDI-QKD (``qverify.physics.relay.live_set_law``:
the (d + 1)⁴-state chain iterated in blocks, numpy float64, and jit-compiled float32) against the
naive way (every state listed, the chain built state by state and solved with SciPy's sparse LU),
and the wall time of a μ-optimised MDI-QKD curve of 128 distances per dead time (``link_rate``).

Run: python bench/bench_detector.py [--n 2000] [--relay-n 128]
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
    ap.add_argument("--relay-n", type=int, default=128, help="link settings per batch (relay chain)")
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
    relay(args.relay_n)


def relay_full_chain(law: np.ndarray, d: int) -> np.ndarray:
    """π(live set) from the (d + 1)⁴-state chain of Charlie's counters, built state by state from
    the would-click law and solved with a sparse LU (the normalisation replaces one balance row)."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    states = list(itertools.product(range(d + 1), repeat=4))
    index = {s: k for k, s in enumerate(states)}
    rows, cols, vals = [], [], []
    for k, s in enumerate(states):
        for w in range(16):
            nxt = tuple((d if w >> i & 1 else 0) if s[i] == 0 else s[i] - 1 for i in range(4))
            rows.append(index[nxt])
            cols.append(k)
            vals.append(law[w])
    n = len(states)
    a = (sp.csr_matrix((vals, (rows, cols)), shape=(n, n)) - sp.eye(n)).tolil()
    a[n - 1, :] = np.ones(n)
    pi = spla.spsolve(a.tocsc(), np.eye(n)[-1])
    out = np.zeros(16)
    for s, mass in zip(states, pi, strict=True):
        out[sum(1 << i for i in range(4) if s[i] == 0)] += mass
    return out


def relay(n: int) -> None:
    import jax
    import jax.numpy as jnp

    from qverify.physics import LCQ_2012, link_rate
    from qverify.physics.relay import live_set_law, stream_law

    km = np.linspace(0.0, 250.0, n)
    eta = LCQ_2012.detector.eta_det * 10 ** (-0.2 * km / 20)  # Charlie in the middle
    mu = np.full(n, 0.5)
    print(f"\nCharlie's four detectors (MDI-QKD), {n} link settings per batch, 0–250 km, mu = 0.5")
    print(f"{'d':>4} {'chain np (µs)':>14} {'chain jit f32 (µs)':>19} {'sparse LU (µs)':>15} "
          f"{'LU/np':>7} {'max |diff|':>11} {'128-pt curve (s)':>17}")  # fmt: skip
    for d in (1, 3, 6, 10):
        t_np = timed(lambda d=d: live_set_law(mu, eta, eta, 3e-6, d), repeat=2) / n
        fn = jax.jit(lambda m, e, d=d: jnp.stack(live_set_law(m, e, e, 3e-6, d)[0]))
        m32, e32 = jnp.asarray(mu, jnp.float32), jnp.asarray(eta, jnp.float32)
        jax.block_until_ready(fn(m32, e32))
        t_jit = timed(lambda fn=fn, m=m32, e=e32: jax.block_until_ready(fn(m, e)), repeat=2) / n
        sample = slice(None, None, max(1, n // (8 if d < 10 else 2)))
        law = stream_law(mu[sample], eta[sample], eta[sample], 3e-6)
        t0 = time.perf_counter()
        full = np.array([relay_full_chain(row, d) for row in law])
        t_full = (time.perf_counter() - t0) / len(law)
        ours = np.stack(live_set_law(mu[sample], eta[sample], eta[sample], 3e-6, d)[0], axis=1)
        diff = float(np.abs(full - ours).max())
        curve = LCQ_2012.replace(dead_time_slots=d)
        t_curve = timed(lambda curve=curve: link_rate(np.linspace(0.0, 250.0, 128), curve, "mdi"), repeat=1)
        print(
            f"{d:>4} {t_np * 1e6:>14.1f} {t_jit * 1e6:>19.1f} {t_full * 1e6:>15.0f} {t_full / t_np:>7.0f} "
            f"{diff:>11.1e} {t_curve:>17.1f}"
        )
    t0 = timed(lambda: link_rate(np.linspace(0.0, 250.0, 128), LCQ_2012, "mdi"), repeat=1)
    print(f"   0 (closed form) 128-distance μ-optimised curve: {t0:.2f} s")


if __name__ == "__main__":
    main()
