"""Finite-key rate of one link versus distance, with the decoy settings chosen per distance.

:mod:`qverify.physics.finite` gives the finite-key length at *fixed* settings (intensities, their
probabilities, basis bias). A finite key is very sensitive to them, so this module searches a
stated grid of settings per distance and keeps the best (a grid search, not a continuous
optimum: the rate shown is a lower bound on what optimised settings give)::

    >>> import numpy as np
    >>> from qverify.physics import LCQ_2012
    >>> r = finite_link_rate(np.array([0.0, 50.0]), LCQ_2012, "bb84", n_pulses=1e12)
    >>> bool(r.key_rate[0] > r.key_rate[1] > 0)
    True

Gains are the closed forms, double clicks squashed (what the proofs assume); BB84 with dead time
takes them from the exact detector model driven by each candidate's decoy stream
(:mod:`qverify.physics.finite`). Discarded double clicks, and dead time for MDI-QKD, are refused.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from qverify.errors import ParameterError
from qverify.physics._validate import check_range
from qverify.physics.finite import (
    DEFAULT_EPSILON,
    DecoySettings,
    MDIDecoySettings,
    bb84_finite_rate,
    mdi_finite_rate,
)
from qverify.physics.params import LinkParams
from qverify.physics.rates import _check, _etas

SIGNAL_MU = (0.15, 0.25, 0.35, 0.5, 0.65, 0.8)
"""Signal mean photon numbers searched."""
DECOY_NU = (0.02, 0.05, 0.1, 0.2)
"""Weak-decoy mean photon numbers searched (kept below the signal)."""
KEY_BASIS_PROB = (0.5, 0.7, 0.85, 0.95)
"""Key-basis probabilities searched (each side)."""
INTENSITY_PROBS = ((0.7, 0.2, 0.1), (0.5, 0.3, 0.2), (0.4, 0.4, 0.2))
"""Probabilities of (signal, weak decoy, vacuum) searched."""
BB84_VACUUM_MU = 2e-4
"""Mean photon number of BB84's 'vacuum' decoy μ3 (Lim et al.'s example value)."""


class FiniteLinkRate(NamedTuple):
    """Result of :func:`finite_link_rate`; arrays shaped like ``distance_km``.

    Attributes:
        key_rate: secret bits per pulse (per pulse pair for MDI-QKD) after a block of ``n_pulses``.
        key_rate_bps: ``key_rate × clock_hz`` in bit/s.
        key_bits: secret bits of one block, ``key_rate × n_pulses``.
        mu, nu: signal and weak-decoy mean photon numbers chosen.
        key_basis_prob: probability of the key basis chosen (q_X for BB84, q_Z for MDI-QKD).
        p_signal: probability of sending the signal intensity chosen.
    """

    key_rate: Any
    key_rate_bps: Any
    key_bits: Any
    mu: Any
    nu: Any
    key_basis_prob: Any
    p_signal: Any


@dataclass(frozen=True)
class FiniteKey:
    """Block size and security parameter of a finite-key rate.

    Attributes:
        n_pulses: pulses (pulse pairs for MDI-QKD) per block, ≥ 1; ``inf`` is the asymptotic limit.
        eps: ε_sec = ε_cor of the key, in (0, 1).
    """

    n_pulses: float = 1e12
    eps: float = DEFAULT_EPSILON

    def __post_init__(self) -> None:
        check_range("block_size", self.n_pulses, 1.0, np.inf)
        check_range("epsilon", self.eps, 0.0, 1.0, low_open=True, high_open=True)


def _candidates(protocol: str, eps: float, nu: float | None) -> list[Any]:
    nus = DECOY_NU if nu is None else (nu,)
    out: list[Any] = []
    for mu, v, q, p in itertools.product(SIGNAL_MU, nus, KEY_BASIS_PROB, INTENSITY_PROBS):
        if protocol == "bb84" and mu > v + BB84_VACUUM_MU:
            out.append(DecoySettings((mu, v, BB84_VACUUM_MU), p, q, eps, eps))
        elif protocol == "mdi" and mu > v:
            out.append(MDIDecoySettings(mu, v, p, q, eps, eps))
    return out


def finite_link_rate(
    distance_km: Any,
    params: LinkParams,
    protocol: str = "mdi",
    n_pulses: float = 1e12,
    eps: float = DEFAULT_EPSILON,
    nu: float | None = None,
) -> FiniteLinkRate:
    """Best finite-key rate over the settings grid at each distance (numpy float64).

    Args:
        distance_km: Alice–Bob fibre length(s) in km (≥ 0).
        params: link parameters (loss, detector, misalignment, f_EC, clock). Discarded double
            clicks are refused (the bounds assume squashing), dead time for MDI-QKD too.
        protocol: ``"bb84"`` (Lim et al. 2014) or ``"mdi"`` (after Curty et al. 2014).
        n_pulses: block size N, pulses (pulse pairs) per block, ≥ 1.
        eps: ε_sec = ε_cor, in (0, 1).
        nu: fix the weak decoy instead of searching :data:`DECOY_NU`.
    """
    _check(protocol, "infinite")
    fk = FiniteKey(float(n_pulses), float(eps))
    dead = params.detector.dead_time_slots
    if dead and protocol == "mdi":
        raise ParameterError("dead_time_slots", dead, "0 for MDI-QKD finite-key rates (BB84 takes dead time)")
    if params.detector.double_click != "squash":
        raise ParameterError("double_click", params.detector.double_click, "'squash' for finite-key rates")
    if nu is not None:
        check_range("nu", nu, 0.0, max(SIGNAL_MU), low_open=True, high_open=True)
    d = np.asarray(distance_km, dtype=float)
    check_range("distance_km", d, 0.0, np.inf)
    eta_a, eta_b = _etas(d, params, protocol, np)
    det, ch = params.detector, params.channel
    best = np.full(d.shape, -1.0)
    chosen = [np.zeros(d.shape) for _ in range(4)]
    for s in _candidates(protocol, fk.eps, nu):
        if protocol == "bb84":
            r = bb84_finite_rate(fk.n_pulses, eta_a, det.p_dark, ch.e_mis, params.ec.f_ec, s, dead)
            desc = (s.mu[0], s.mu[1], s.q_x, s.p[0])
        else:
            r = mdi_finite_rate(fk.n_pulses, eta_a, eta_b, det.p_dark, ch.e_mis, params.ec.f_ec, s)
            desc = (s.mu, s.nu, s.q_z, s.p[0])
        better = r > best
        best = np.where(better, r, best)
        chosen = [np.where(better, v, c) for v, c in zip(desc, chosen, strict=True)]
    rate = np.maximum(best, 0.0)
    bits = rate * fk.n_pulses if np.isfinite(fk.n_pulses) else np.full(d.shape, np.inf)
    return FiniteLinkRate(rate, rate * params.source.clock_hz, bits, *chosen)


def min_block_size(
    params: LinkParams, protocol: str = "mdi", eps: float = DEFAULT_EPSILON, distance_km: float = 0.0
) -> float:
    """Smallest block size (to 2 % relative) with any key at ``distance_km``; ``inf`` if none.

    >>> from qverify.physics import GYS_2004
    >>> 1e5 < min_block_size(GYS_2004, "bb84") < 1e9
    True
    """
    _check(protocol, "infinite")

    def has_key(n: float) -> bool:
        return bool(finite_link_rate(np.array(distance_km), params, protocol, n, eps).key_rate > 0)

    lo, hi = 0.0, 20.0  # log10 N
    if not has_key(10**hi):
        return float("inf")
    while hi - lo > 0.01:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if has_key(10**mid) else (mid, hi)
    return float(10**hi)
