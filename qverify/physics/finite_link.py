"""Finite-key rate of one link versus distance, with every decoy setting optimised per distance.

:mod:`qverify.physics.finite` gives the finite-key length at *fixed* settings (intensities, their
probabilities, basis bias). A finite key is very sensitive to them, so :func:`finite_link_rate`
optimises all of them per distance (:mod:`qverify.physics.decoy_opt`: random restarts, a compass
search, cross-seeding along the curve; the rate is the best the optimiser found, a lower bound on
the true optimum). The asymptotic limit (``n_pulses = inf``) runs the same optimiser on the same
formulas without fluctuation terms, so finite and asymptotic rows share one model, basis bias
included (the basis bias goes to 1 asymptotically)::

    >>> import numpy as np
    >>> from qverify.physics import LCQ_2012
    >>> r = finite_link_rate(np.array([0.0, 50.0]), LCQ_2012, "bb84", n_pulses=1e12)
    >>> bool(r.key_rate[0] > r.key_rate[1] > 0)
    True

Conventions (:class:`FiniteKey`): ε_sec and ε_cor separately, or ε_sec = κ·ℓ (Lim et al. 2014);
the block is either the pulses sent N (``block="pulses"``) or the post-processing block of the key
basis n_X (``block="n_x"``, Lim et al.'s convention; MDI-QKD: Z-basis signal pairs). Every result
carries the pulses N a block needs and the ε_sec used.

Gains are the closed forms, double clicks squashed (what the proofs assume), with Lim et al.'s
after-pulses for BB84 when the detector has them. BB84 with dead time: the settings are optimised
on the closed-form gains and the rate is evaluated on the exact detector model driven by the
chosen decoy stream (:mod:`qverify.physics.finite`), a lower bound on the dead-time optimum.
Discarded double clicks, dead time for MDI-QKD, and after-pulsing for MDI-QKD are refused.
Results are cached per (distances, parameters, block, ε), so repeated calls (network blocks,
environments, refusals) cost nothing.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from qverify.errors import ChoiceError, ParameterError
from qverify.physics._validate import check_range
from qverify.physics.decoy_opt import BLOCKS, optimise
from qverify.physics.finite import (
    DEFAULT_EPSILON,
    DecoySettings,
    MDIDecoySettings,
    bb84_finite_rate,
    decoy_estimates,
    mdi_finite_rate,
)
from qverify.physics.params import LinkParams
from qverify.physics.rates import _check, _etas

SIGNAL_MU = (0.15, 0.25, 0.35, 0.5, 0.65, 0.8)
"""Signal mean photon numbers of the fixed grid (:func:`grid_link_rate`, kept as a baseline)."""
DECOY_NU = (0.02, 0.05, 0.1, 0.2)
"""Weak-decoy mean photon numbers of the fixed grid."""
KEY_BASIS_PROB = (0.5, 0.7, 0.85, 0.95)
"""Key-basis probabilities of the fixed grid (each side)."""
INTENSITY_PROBS = ((0.7, 0.2, 0.1), (0.5, 0.3, 0.2), (0.4, 0.4, 0.2))
"""Probabilities of (signal, weak decoy, vacuum) of the fixed grid."""
ESTIMATORS = ("analytic", "lp")
"""MDI-QKD decoy estimations: the vacuum + weak closed form, or linear programmes over the yields."""
BB84_VACUUM_MU = 2e-4
"""Mean photon number of BB84's weakest decoy μ3 (Lim et al. 2014's value, fixed)."""


class FiniteLinkRate(NamedTuple):
    """Result of :func:`finite_link_rate`; arrays shaped like ``distance_km``.

    Attributes:
        key_rate: secret bits per pulse (per pulse pair for MDI-QKD), ``max(ℓ, 0) / N``.
        key_rate_bps: ``key_rate × clock_hz`` in bit/s.
        key_bits: secret bits of one block, ``max(ℓ, 0)`` (``inf`` asymptotically where > 0).
        mu, nu: signal and weak-decoy mean photon numbers chosen (BB84: μ1, μ2).
        key_basis_prob: probability of the key basis chosen (q_X for BB84, q_Z for MDI-QKD).
        p_signal: probability of sending the signal intensity chosen.
        n_pulses: pulses (pairs) sent per block: the block size, or n_X / P(key-basis detection).
        eps_sec: ε_sec of the key (given, or κ·ℓ solved).
        best_length_bits: unclipped ℓ at the optimum (negative: the best block the optimiser
            found has no key; what a refusal reports).
        settings: every optimised setting by name (:class:`qverify.physics.decoy_opt.Optimum`).
    """

    key_rate: Any
    key_rate_bps: Any
    key_bits: Any
    mu: Any
    nu: Any
    key_basis_prob: Any
    p_signal: Any
    n_pulses: Any
    eps_sec: Any
    best_length_bits: Any
    settings: dict[str, Any]


@dataclass(frozen=True)
class FiniteKey:
    """Block size and security parameters of a finite-key rate.

    Attributes:
        block_size: pulses (pulse pairs for MDI-QKD) per block N when ``block="pulses"``, or the
            key-basis post-processing block n_X when ``block="n_x"``; ≥ 1; ``inf`` is the
            asymptotic limit.
        eps: ε_sec, in (0, 1) (ignored when ``kappa`` is set).
        eps_cor: ε_cor, in (0, 1); ``None`` means ε_cor = ε_sec.
        block: ``"pulses"`` or ``"n_x"`` (:data:`qverify.physics.decoy_opt.BLOCKS`).
        kappa: secrecy leakage per key bit; set, ε_sec = κ·ℓ (Lim et al. 2014). In (0, 1).
    """

    block_size: float = 1e12
    eps: float = DEFAULT_EPSILON
    eps_cor: float | None = None
    block: str = "pulses"
    kappa: float | None = None

    def __post_init__(self) -> None:
        check_range("block_size", self.block_size, 1.0, np.inf)
        check_range("epsilon", self.eps, 0.0, 1.0, low_open=True, high_open=True)
        if self.eps_cor is not None:
            check_range("eps_cor", self.eps_cor, 0.0, 1.0, low_open=True, high_open=True)
        if self.block not in BLOCKS:
            raise ChoiceError("block", self.block, BLOCKS)
        if self.kappa is not None:
            check_range("kappa", self.kappa, 0.0, 1.0, low_open=True, high_open=True)

    @property
    def epsilon_cor(self) -> float:
        """ε_cor used (ε_sec when not given)."""
        return self.eps if self.eps_cor is None else self.eps_cor

    def describe(self) -> str:
        """One line naming the block convention and the ε's, for every output."""
        what = "pulses sent N" if self.block == "pulses" else "post-processing block n_X"
        sec = f"ε_sec = κ·ℓ, κ = {self.kappa:g}" if self.kappa is not None else f"ε_sec = {self.eps:g}"
        return f"block {self.block_size:.3g} = {what}; {sec}, ε_cor = {self.epsilon_cor:g}"


def _link_arrays(d: np.ndarray, params: LinkParams, protocol: str) -> dict[str, Any]:
    eta_a, eta_b = _etas(d, params, protocol, np)
    det, ch = params.detector, params.channel
    link = {"p_dark": det.p_dark, "e_mis": ch.e_mis, "f_ec": params.ec.f_ec}
    if protocol == "bb84":
        return {"eta": eta_a, **link, "p_afterpulse": det.p_afterpulse}
    return {"eta_a": eta_a, "eta_b": eta_b, **link}


def _check_link(params: LinkParams, protocol: str, fk: FiniteKey) -> None:
    det = params.detector
    if det.dead_time_slots and protocol == "mdi":
        raise ParameterError(
            "dead_time_slots", det.dead_time_slots, "0 for MDI-QKD finite-key rates (BB84 takes dead time)"
        )
    if det.p_afterpulse and protocol == "mdi":
        raise ParameterError("p_afterpulse", det.p_afterpulse, "0 for MDI-QKD (after-pulsing is modelled for BB84)")
    if det.double_click != "squash":
        raise ParameterError("double_click", det.double_click, "'squash' for finite-key rates")
    if det.dead_time_slots and (fk.block != "pulses" or fk.kappa is not None):
        raise ParameterError(
            "dead_time_slots", det.dead_time_slots, "0 with block='n_x' or kappa (both solved on the closed-form gains)"
        )


def finite_link_rate(
    distance_km: Any,
    params: LinkParams,
    protocol: str = "mdi",
    n_pulses: float = 1e12,
    eps: float = DEFAULT_EPSILON,
    *,
    eps_cor: float | None = None,
    block: str = "pulses",
    kappa: float | None = None,
    seed: int = 0,
    estimator: str = "analytic",
) -> FiniteLinkRate:
    """Finite-key rate with every decoy setting optimised per distance (numpy float64).

    Args:
        distance_km: Alice–Bob fibre length(s) in km (≥ 0).
        params: link parameters (loss, detector with after-pulsing, misalignment, f_EC, clock).
            Discarded double clicks are refused (the bounds assume squashing); dead time and
            after-pulsing for MDI-QKD too.
        protocol: ``"bb84"`` (Lim et al. 2014) or ``"mdi"`` (after Curty et al. 2014).
        n_pulses: block size, ≥ 1: pulses (pairs) sent N, or n_X with ``block="n_x"``; ``inf``
            for the asymptotic limit with optimised settings.
        eps: ε_sec, in (0, 1); ``eps_cor`` ε_cor (default ε_sec); ``kappa`` sets ε_sec = κ·ℓ.
        block: ``"pulses"`` or ``"n_x"`` (:class:`FiniteKey`).
        seed: seed of the optimiser's random restarts.
        estimator: MDI-QKD decoy estimation, ``"analytic"`` (vacuum + weak closed form) or
            ``"lp"`` (linear programmes over the yields, :mod:`qverify.physics.mdi_lp`, evaluated
            at the settings optimised with the analytical estimator; block ``"pulses"``, no κ).
    """
    _check(protocol, "infinite")
    fk = FiniteKey(float(n_pulses), float(eps), eps_cor, block, kappa)
    _check_link(params, protocol, fk)
    if estimator not in ESTIMATORS:
        raise ChoiceError("estimator", estimator, ESTIMATORS)
    if estimator == "lp" and (protocol != "mdi" or fk.block != "pulses" or fk.kappa is not None):
        raise ParameterError("estimator", estimator, "'analytic' except for MDI-QKD with block='pulses' and no kappa")
    d = np.asarray(distance_km, dtype=float)
    check_range("distance_km", d, 0.0, np.inf)
    r = _cached(tuple(d.ravel().tolist()), d.shape, params, protocol, fk, int(seed))
    if estimator == "lp" and np.isfinite(fk.block_size):
        r = _lp_cached(tuple(d.ravel().tolist()), d.shape, params, fk, int(seed))
    return r


@functools.lru_cache(maxsize=64)
def _lp_cached(d_flat: tuple[float, ...], shape: tuple[int, ...], params: LinkParams, fk: FiniteKey,
               seed: int) -> FiniteLinkRate:  # fmt: skip
    """The analytical optimum re-evaluated with the LP decoy estimation (MDI-QKD)."""
    from qverify.physics.mdi_lp import mdi_lp_estimates

    base = _cached(d_flat, shape, params, "mdi", fk, seed)
    d = np.asarray(d_flat, dtype=float).reshape(shape)
    eta_a, eta_b = (np.broadcast_to(e, shape) for e in _etas(d, params, "mdi", np))
    st = base.settings
    length = np.empty(shape)
    for i in np.ndindex(shape):
        s = MDIDecoySettings(float(st["mu"][i]), float(st["nu"][i]),
                             _normalised(st["p_mu"][i], st["p_nu"][i], st["p_0"][i]), float(st["q_z"][i]),
                             fk.eps, fk.epsilon_cor)  # fmt: skip
        det = params.detector
        length[i] = mdi_lp_estimates(fk.block_size, float(eta_a[i]), float(eta_b[i]), det.p_dark,
                                     params.channel.e_mis, params.ec.f_ec, s)["length"]  # fmt: skip
    rate = np.maximum(length, 0.0) / fk.block_size
    return base._replace(key_rate=rate, key_rate_bps=rate * params.source.clock_hz, key_bits=np.maximum(length, 0.0),
                         best_length_bits=length)  # fmt: skip


@functools.lru_cache(maxsize=256)
def _cached(d_flat: tuple[float, ...], shape: tuple[int, ...], params: LinkParams, protocol: str, fk: FiniteKey,
            seed: int) -> FiniteLinkRate:  # fmt: skip
    d = np.asarray(d_flat, dtype=float).reshape(shape)
    link = _link_arrays(d, params, protocol)
    dead = params.detector.dead_time_slots
    opt = optimise(protocol, link, fk.block_size, fk.block, fk.eps, fk.epsilon_cor, fk.kappa, BB84_VACUUM_MU, seed)
    length = np.asarray(opt.length_bits, dtype=float)
    n = opt.n_pulses
    st = opt.settings
    if dead and np.isfinite(fk.block_size):
        length = np.array([_dead_time_length(i, link, st, fk, dead) for i in np.ndindex(shape)]).reshape(shape)
    if np.isfinite(fk.block_size):
        rate = np.maximum(length, 0.0) / n
        bits = np.maximum(length, 0.0)
    else:
        rate = np.maximum(length, 0.0)
        if dead:  # asymptotic rate on the exact detector model at the optimised settings
            rate = np.array([max(_dead_time_length(i, link, st, fk, dead), 0.0) for i in np.ndindex(shape)])
            rate = rate.reshape(shape)
        bits = np.where(rate > 0, np.inf, 0.0)
    if protocol == "bb84":
        desc = (st["mu1"], st["mu2"], st["q_x"], st["p1"])
    else:
        desc = (st["mu"], st["nu"], st["q_z"], st["p_mu"])
    out = FiniteLinkRate(rate, rate * params.source.clock_hz, bits, *desc, n, opt.eps_sec, length, st)
    for v in (*out[:-1], *st.values()):
        if isinstance(v, np.ndarray):
            v.setflags(write=False)
    return out


def _dead_time_length(i: tuple[int, ...], link: dict[str, Any], st: dict[str, Any], fk: FiniteKey, dead: int) -> float:
    """ℓ (or the asymptotic rate) of BB84 at element ``i`` on the exact dead-time detector model."""
    s = DecoySettings(
        (float(st["mu1"][i]), float(st["mu2"][i]), float(st["mu3"][i])),
        _normalised(st["p1"][i], st["p2"][i], st["p3"][i]),
        float(st["q_x"][i]),
        fk.eps,
        fk.epsilon_cor,
    )
    eta = float(np.broadcast_to(link["eta"], st["mu1"].shape)[i])
    finite = bool(np.isfinite(fk.block_size))
    n = fk.block_size if finite else 1.0
    return float(decoy_estimates(n, eta, link["p_dark"], link["e_mis"], link["f_ec"], s, finite, dead)["length"])


def _normalised(*p: Any) -> tuple[float, float, float]:
    arr = np.maximum(np.asarray(p, dtype=float), 1e-300)
    arr = arr / arr.sum()
    return float(arr[0]), float(arr[1]), float(arr[2])


def grid_link_rate(
    distance_km: Any, params: LinkParams, protocol: str = "mdi", n_pulses: float = 1e12, eps: float = DEFAULT_EPSILON
) -> np.ndarray:
    """Best rate over the fixed 276-setting grid qverify searched before the optimiser (baseline).

    Kept for ``bench/bench_rates.py`` and the tests that show the optimiser never does worse.
    Closed-form gains, no dead time, after-pulsing from ``params``; ε_sec = ε_cor = ``eps``.
    """
    d = np.asarray(distance_km, dtype=float)
    eta_a, eta_b = _etas(d, params, protocol, np)
    det, ch = params.detector, params.channel
    best = np.zeros(d.shape)
    for mu, v, q, p in itertools.product(SIGNAL_MU, DECOY_NU, KEY_BASIS_PROB, INTENSITY_PROBS):
        if protocol == "bb84" and mu > v + BB84_VACUUM_MU:
            s = DecoySettings((mu, v, BB84_VACUUM_MU), p, q, eps, eps)
            r = bb84_finite_rate(n_pulses, eta_a, det.p_dark, ch.e_mis, params.ec.f_ec, s, 0, det.p_afterpulse)
        elif protocol == "mdi" and mu > v:
            r = mdi_finite_rate(n_pulses, eta_a, eta_b, det.p_dark, ch.e_mis, params.ec.f_ec,
                                MDIDecoySettings(mu, v, p, q, eps, eps))  # fmt: skip
        else:
            continue
        best = np.maximum(best, r)
    return best


def min_block_size(
    params: LinkParams,
    protocol: str = "mdi",
    eps: float = DEFAULT_EPSILON,
    distance_km: float = 0.0,
    *,
    eps_cor: float | None = None,
    block: str = "pulses",
    kappa: float | None = None,
) -> float:
    """Smallest block size (to 2 % relative) with any key at ``distance_km``; ``inf`` if none.

    "Any key" means at any settings the optimiser found (:func:`finite_link_rate`).

    >>> from qverify.physics import GYS_2004
    >>> 1e5 < min_block_size(GYS_2004, "bb84") < 1e9
    True
    """
    _check(protocol, "infinite")

    def has_key(n: float) -> bool:
        r = finite_link_rate(np.array(distance_km), params, protocol, n, eps, eps_cor=eps_cor, block=block, kappa=kappa)
        return bool(r.key_rate > 0)

    lo, hi = 0.0, 20.0  # log10 of the block size
    if not has_key(10**hi):
        return float("inf")
    while hi - lo > 0.01:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if has_key(10**mid) else (mid, hi)
    return float(10**hi)


def finite_reach_km(
    params: LinkParams,
    protocol: str = "mdi",
    n_pulses: float = 1e12,
    eps: float = DEFAULT_EPSILON,
    *,
    eps_cor: float | None = None,
    block: str = "pulses",
    kappa: float | None = None,
    estimator: str = "analytic",
    tol_km: float = 0.25,
    max_km: float = 400.0,
) -> float:
    """Longest fibre (km, to ``tol_km``) with key at any settings the optimiser found; 0 if none at 0 km.

    Bisection on the distance between a length with key and one without (key vanishes once, at
    the reach, for these monotone channel models).

    >>> from qverify.physics import LCQ_2012
    >>> 80 < finite_reach_km(LCQ_2012, "mdi", 1e12) < 110
    True
    """

    def has_key(km: float) -> bool:
        r = finite_link_rate(np.array([km]), params, protocol, n_pulses, eps, eps_cor=eps_cor, block=block,
                             kappa=kappa, estimator=estimator)  # fmt: skip
        return bool(r.key_rate[0] > 0)

    if not has_key(0.0):
        return 0.0
    lo, hi = 0.0, max_km
    if has_key(hi):
        return float("inf")
    while hi - lo > tol_km:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if has_key(mid) else (lo, mid)
    return float(lo)
