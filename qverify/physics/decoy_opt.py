"""Optimised decoy settings: every free parameter of a finite-key (or asymptotic) decoy protocol.

A finite key is very sensitive to the decoy settings (intensities, their probabilities, basis
bias), and the optimum moves with the distance and the block size: Lim et al. (PRA 89, 022307,
2014) optimise q_X, p_μ1, p_μ2, μ1 and μ2 numerically per distance, with μ3 fixed. This module does
the same for decoy BB84 (:func:`optimise_bb84`) and decoy MDI-QKD (:func:`optimise_mdi`), vectorised
over the link (one optimum per element of ``eta``), in numpy float64:

1. **Random restarts.** ``n_random`` settings drawn uniformly in an unconstrained coordinate box
   (logits of the probabilities, log of the signal intensity, logit of the decoy's share of it;
   every point of the box is a valid setting), all evaluated at every distance at once; the best
   ``n_starts`` per distance seed
2. **a compass (pattern) search** in the same coordinates, all starts and distances in one array:
   each round tries ± one step along each coordinate, moves to the best improvement, grows the
   step by 1.5 on a move and halves it otherwise, until ``rounds`` rounds have run;
3. **cross-seeding** along a curve: each distance's optimum is tried at every other distance and
   the best re-polished (:func:`compass_search`).

The objective is the key length per pulse ℓ/N where ℓ > 0 and, below every positive value, the
*unclipped* ℓ per key-basis detection elsewhere, so a search where no setting gives key still
climbs towards the best (negative) one instead of settling on settings that detect nothing, and a
refusal can report the best block length found. The result is the best
setting the search found: a lower bound on the true optimum, with no cap on any parameter beyond
the box (``q`` in [4.5e-5, 1 − 8.3e-7], every intensity probability ≥ ~3e-7 of the largest one, μ in
the ``MU_*`` ranges). ``bench/bench_rates.py`` compares it with the fixed grid it replaced and
with SciPy's differential evolution.

ε_sec = κ·ℓ (Lim et al.'s choice, κ the secrecy leakage per key bit) is solved by iterating from
below: ε_0 = κ, ε_{i+1} = κ·ℓ(ε_i); the lengths rise, so the key of length ℓ(ε_i) is ε_i-secret
with ε_i ≤ κ·ℓ(ε_i) (``KAPPA_ITERATIONS`` iterations).

The block size is either the pulses sent, N, or the post-processing block n_X of the key basis
(Lim et al.'s convention; for MDI-QKD the Z-basis signal pairs n_Z^{μμ}). With n_X fixed the pulses
needed, ``N = n_X / P(key-basis detection per pulse)``, depend on the settings and the rate is
``ℓ / N``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from qverify.physics.finite import decoy_estimates, mdi_decoy_estimates

BLOCKS = ("pulses", "n_x")
"""Block-size conventions: pulses sent N, or the post-processing (key-basis) block n_X."""
KAPPA_ITERATIONS = 4
"""Fixed-point iterations of ε_sec = κ·ℓ."""
BB84_MU1 = (1e-2, 2.0)
"""Range of BB84's signal intensity μ1 searched (log-uniform coordinate)."""
MDI_MU = (1e-2, 1.5)
"""Range of MDI-QKD's signal intensity μ searched (log-uniform coordinate)."""
DECOY_GAP_MIN = 1e-3
"""Smallest gap μ2 − μ3 of BB84's two weakest intensities searched (the bounds divide by it)."""
MDI_NU_MIN = 3e-3
"""Smallest MDI-QKD weak decoy ν searched. The decoy bound takes second differences of gains that
:func:`qverify.physics.mdi.gains_x` computes as sums of O(1) terms (rounding ~1e-16 absolute); for
ν ≲ 1e-3 that rounding is no longer small against ν² Y11, and an optimiser harvests it: found by
testing the asymptotic optimum against the infinite-decoy rate, which it exceeded by 2.6x near
the reach at ν ≈ 1e-3 (tested: with this floor it stays below)."""
CROSS_SEED_MAX = 512
"""Largest 1-D link on which every element's optimum is tried at every other (quadratic cost)."""
_Q_LOGIT = (-10.0, 14.0)
_P_LOGIT = (-15.0, 15.0)


class _Settings(NamedTuple):
    """Array-valued stand-in for :class:`qverify.physics.finite.DecoySettings` (one per element)."""

    mu: tuple[Any, Any, Any]
    p: tuple[Any, Any, Any]
    q_x: Any
    eps_sec: Any
    eps_cor: Any


class _MDISettings(NamedTuple):
    """Array-valued stand-in for :class:`qverify.physics.finite.MDIDecoySettings`."""

    mu: Any
    nu: Any
    p: tuple[Any, Any, Any]
    q_z: Any
    eps_sec: Any
    eps_cor: Any


class Optimum(NamedTuple):
    """Best settings found per distance (arrays shaped like the link).

    Attributes:
        rate: unclipped key length per pulse (pulse pair) ℓ/N at the optimum; negative where no
            setting the search found gives key.
        length_bits: ℓ of one block (unclipped); for the asymptotic limit the rate again.
        n_pulses: pulses (pairs) sent per block (given, or n_X / detection probability).
        eps_sec: ε_sec used (given, or κ·ℓ solved).
        settings: name → array: ``mu1, mu2, mu3, p1, p2, p3, q_x`` (BB84) or
            ``mu, nu, p_mu, p_nu, p_0, q_z`` (MDI-QKD).
    """

    rate: Any
    length_bits: Any
    n_pulses: Any
    eps_sec: Any
    settings: dict[str, Any]


def _sigmoid(x: Any) -> Any:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softmax3(a: Any, b: Any) -> tuple[Any, Any, Any]:
    top = np.maximum(np.maximum(a, b), 0.0)
    ea, eb, ec = np.exp(a - top), np.exp(b - top), np.exp(-top)
    tot = ea + eb + ec
    return ea / tot, eb / tot, ec / tot


def _box(mu_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([_Q_LOGIT[0], _P_LOGIT[0], _P_LOGIT[0], np.log(mu_range[0]), -9.0])
    hi = np.array([_Q_LOGIT[1], _P_LOGIT[1], _P_LOGIT[1], np.log(mu_range[1]), 9.0])
    return lo, hi


START_BOX = (np.array([-3.0, -4.0, -4.0, np.log(0.02), -4.0]), np.array([6.0, 4.0, 4.0, np.log(1.0), 3.0]))
"""Where the random restarts are drawn (q ∈ [0.05, 0.998], p's within e^±8 of each other,
μ ∈ [0.02, 1], decoy share of μ ∈ [0.02, 0.95]); the search then moves in the whole box."""


def _compass(objective: Callable[[np.ndarray], np.ndarray], z: np.ndarray, f: np.ndarray, step: float,
             lo: np.ndarray, hi: np.ndarray, rounds: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Compass search from every start ``z`` (``(k,) + shape + (dim,)``, values ``f``) at once.

    Even rounds step along the coordinate axes, odd rounds along a random orthonormal basis
    (drawn from ``rng``, shared by every start), which follows ridges the axes cannot.
    """
    dim, shape, k = lo.size, z.shape[1:-1], z.shape[0]
    steps = np.full((k, *shape), step)
    scale = (hi - lo) / np.min(hi - lo)
    for r in range(rounds):
        basis = np.eye(dim) if r % 2 == 0 else np.linalg.qr(rng.normal(size=(dim, dim)))[0]
        eye = (np.concatenate([basis, -basis]) * scale).reshape((2 * dim,) + (1,) * (1 + len(shape)) + (dim,))
        trial = np.clip(z[None] + steps[None, ..., None] * eye, lo, hi)
        ft = objective(trial.reshape((-1, *shape, dim))).reshape((2 * dim, k, *shape))
        ft = np.where(np.isfinite(ft), ft, -np.inf)
        best = np.argmax(ft, axis=0)
        fb = np.take_along_axis(ft, best[None], axis=0)[0]
        moved = fb > f
        z = np.where(moved[..., None], np.take_along_axis(trial, best[None, ..., None], axis=0)[0], z)
        f = np.where(moved, fb, f)
        steps = np.where(moved, steps * 1.5, steps * 0.5)
    return z, f


def compass_search(objective: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray,
                   shape: tuple[int, ...], rng: np.random.Generator, n_random: int = 384, n_starts: int = 6,
                   rounds: int = 70, start_box: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Maximise ``objective`` over the box [lo, hi] independently at every index of ``shape``.

    The random starts are drawn from ``start_box`` (default: the whole box).

    ``objective(z)`` takes coordinates ``z`` of shape ``(P,) + shape + (dim,)`` and returns values
    shaped ``(P,) + shape``. Returns ``(z_best, f_best)`` shaped ``shape + (dim,)`` and ``shape``.
    Random restarts, then a compass search (module docstring); for a 1-D link of at most
    ``CROSS_SEED_MAX`` elements, every element's optimum is then tried at every other element
    and the best re-polished (the optimum moves smoothly with distance, so a neighbour's optimum
    rescues a start that fell into a poor basin).
    """
    dim = lo.size
    full = (n_random, *shape, dim)
    lo0, hi0 = (lo, hi) if start_box is None else start_box
    z0 = np.broadcast_to(rng.uniform(lo0, hi0, (n_random,) + (1,) * len(shape) + (dim,)), full)
    f0 = objective(z0)
    f0 = np.where(np.isfinite(f0), f0, -np.inf)
    k = min(n_starts, n_random)
    idx = np.argsort(-f0, axis=0)[:k]  # (k,) + shape
    z = np.take_along_axis(z0, idx[..., None], axis=0)
    f = np.take_along_axis(f0, idx, axis=0)
    z, f = _compass(objective, z, f, 0.5, lo, hi, rounds, rng)
    top = np.argmax(f, axis=0)
    zb, fb = np.take_along_axis(z, top[None, ..., None], axis=0)[0], np.take_along_axis(f, top[None], axis=0)[0]
    if len(shape) == 1 and 1 < shape[0] <= CROSS_SEED_MAX:
        zc = np.broadcast_to(zb[:, None, :], (shape[0], *shape, dim))
        fc = np.where(np.isfinite(fc := objective(zc)), fc, -np.inf)
        pick = np.argmax(fc, axis=0)
        zs = np.take_along_axis(zc, pick[None, :, None], axis=0)
        fs = np.take_along_axis(fc, pick[None], axis=0)
        zs, fs = _compass(objective, zs, fs, 0.1, lo, hi, rounds // 2, rng)
        better = fs[0] > fb
        zb, fb = np.where(better[:, None], zs[0], zb), np.where(better, fs[0], fb)
    return zb, fb


def _with_kappa(estimate: Callable[[Any], dict[str, Any]], eps_sec: float,
                kappa: float | None) -> tuple[dict[str, Any], Any]:  # fmt: skip
    """(estimates, ε_sec): at the given ε_sec, or with ε_sec = κ·ℓ solved from below (module docstring)."""
    if kappa is None:
        return estimate(eps_sec), eps_sec
    eps: Any = kappa
    est = estimate(eps)
    for _ in range(KAPPA_ITERATIONS - 1):
        eps = np.clip(kappa * np.maximum(est["length"], 1.0), kappa, 0.5)
        est = estimate(eps)
    return est, eps


def bb84_settings(z: np.ndarray, mu3: float) -> _Settings:
    """Decode BB84 coordinates ``z[..., 5]`` into settings (ε filled in later)."""
    q = _sigmoid(z[..., 0])
    p1, p2, p3 = _softmax3(z[..., 1], z[..., 2])
    m1 = np.exp(z[..., 3])
    m2 = mu3 + DECOY_GAP_MIN + _sigmoid(z[..., 4]) * (m1 - 2 * mu3 - DECOY_GAP_MIN)
    return _Settings((m1, m2, np.full_like(m1, mu3)), (p1, p2, p3), q, None, None)


def mdi_settings(z: np.ndarray) -> _MDISettings:
    """Decode MDI-QKD coordinates ``z[..., 5]`` into settings (ε filled in later)."""
    q = _sigmoid(z[..., 0])
    p1, p2, p3 = _softmax3(z[..., 1], z[..., 2])
    mu = np.exp(z[..., 3])
    return _MDISettings(mu, MDI_NU_MIN + (mu - MDI_NU_MIN) * _sigmoid(z[..., 4]), (p1, p2, p3), q, None, None)


def _evaluate(z: np.ndarray, protocol: str, link: dict[str, Any], block_size: float, block: str, eps_sec: float,
              eps_cor: float, kappa: float | None, mu3: float) -> tuple[Any, Any, Any, Any, Any, Any]:  # fmt: skip
    """(rate, ℓ, N, ε_sec, settings, key-basis detections) at coordinates ``z`` (unclipped ℓ)."""
    asymptotic = not np.isfinite(block_size)
    s: Any = bb84_settings(z, mu3) if protocol == "bb84" else mdi_settings(z)

    def estimates(n: Any, eps: Any, finite: bool) -> dict[str, Any]:
        si = s._replace(eps_sec=eps, eps_cor=eps_cor)
        if protocol == "bb84":
            return decoy_estimates(n, link["eta"], link["p_dark"], link["e_mis"], link["f_ec"], si, finite, 0,
                                   link["p_afterpulse"])  # fmt: skip
        return mdi_decoy_estimates(n, link["eta_a"], link["eta_b"], link["p_dark"], link["e_mis"], link["f_ec"], si,
                                   finite)  # fmt: skip

    key = "n_x" if protocol == "bb84" else "n_z"
    if asymptotic:
        est = estimates(1.0, 1.0, False)
        return est["length"], est["length"], np.inf, eps_sec, s, est[key]
    if block == "n_x":
        detect = estimates(1.0, 1.0, False)["detect_x" if protocol == "bb84" else "detect_z"]
        n = block_size / np.maximum(detect, 1e-300)
    else:
        n = block_size
    est, eps = _with_kappa(lambda e: estimates(n, e, True), eps_sec, kappa)
    return est["length"] / n, est["length"], n, eps, s, est[key]


def optimise(protocol: str, link: dict[str, Any], block_size: float, block: str = "pulses",
             eps_sec: float = 1e-10, eps_cor: float = 1e-10, kappa: float | None = None, mu3: float = 2e-4,
             seed: int = 0, n_random: int = 384, n_starts: int = 6, rounds: int = 70) -> Optimum:  # fmt: skip
    """Best decoy settings per element of the link arrays (module docstring).

    Args:
        protocol: ``"bb84"`` (Lim et al. 2014, key from X) or ``"mdi"`` (key from Z signal pairs).
        link: arrays (broadcasting together) ``eta`` (BB84 system transmittance) or ``eta_a``,
            ``eta_b`` (MDI), and ``p_dark``, ``e_mis``, ``f_ec``, ``p_afterpulse`` (BB84).
        block_size: N (``block="pulses"``) or n_X (``block="n_x"``); ``inf`` for the asymptotic
            limit (no ε terms).
        eps_sec, eps_cor: secrecy and correctness; ``kappa`` replaces ε_sec by κ·ℓ.
        mu3: BB84's weakest intensity (fixed, as in Lim et al.: 2e-4).
        seed: seed of the random restarts (``numpy.random.default_rng``).
    """
    shape = np.broadcast(*(np.asarray(v) for v in link.values())).shape
    lo, hi = _box(BB84_MU1 if protocol == "bb84" else MDI_MU)

    def objective(z: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            rate, length, _n, _e, _s, n_key = _evaluate(z, protocol, link, block_size, block, eps_sec, eps_cor,
                                                        kappa, mu3)  # fmt: skip
            # Any key beats no key; without key, climb ℓ per key-basis detection (not ℓ or ℓ/N,
            # which settings that detect nothing would flatten to the fixed ε cost).
            worse = 1e-30 * length / np.maximum(n_key, 1e-300) - 1e-300
        return np.asarray(np.where(length > 0, rate, worse))

    z, _f = compass_search(objective, lo, hi, shape, np.random.default_rng(seed), n_random, n_starts, rounds,
                           START_BOX)  # fmt: skip
    with np.errstate(all="ignore"):
        rate, length, n, eps, s, _k = _evaluate(z, protocol, link, block_size, block, eps_sec, eps_cor, kappa, mu3)
    if protocol == "bb84":
        names = dict(zip(("mu1", "mu2", "mu3"), s.mu, strict=True)) | dict(zip(("p1", "p2", "p3"), s.p, strict=True))
        settings = names | {"q_x": s.q_x}
    else:
        settings = {"mu": s.mu, "nu": s.nu, "p_mu": s.p[0], "p_nu": s.p[1], "p_0": s.p[2], "q_z": s.q_z}
    full = {k: np.broadcast_to(v, shape).copy() for k, v in settings.items()}
    return Optimum(rate, length, np.broadcast_to(n, shape).copy(), np.broadcast_to(eps, shape).copy(), full)
