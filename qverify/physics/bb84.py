"""Decoy-state BB84 with weak coherent pulses (GLLP; Ma, Qi, Zhao, Lo, PRA 72, 012326, 2005).

``eta`` is the total transmittance (fibre × Bob's detection efficiency). GLLP's background yield is
that of Bob's two detectors, ``Y0 = 2 p_dark`` (Ma et al. Table I quote Y0 directly). Arrays in, arrays
out; numpy → float64, jax → jit-able.
"""

from __future__ import annotations

from typing import Any

from qverify.physics._xp import binary_entropy, namespace
from qverify.physics.detector import check_convention
from qverify.physics.mdi import Gains


def background_yield(p_dark: Any) -> Any:
    """GLLP background yield ``Y0 = 2 p_dark`` of two detectors (probability per pulse)."""
    return 2 * p_dark


def gains(mu: Any, eta: Any, p_dark: Any, e_mis: Any) -> Gains:
    """Signal gain and error gain (double clicks squashed to a random bit).

    ``Q_μ = Σ_n Y_n P_n = Y0 + (1 − Y0)(1 − e^{−ημ})`` and
    ``E_μ Q_μ = Σ_n e_n Y_n P_n = (Y0/2) e^{−ημ} + e_mis (1 − e^{−ημ})``, i.e. the Poisson sums of
    :func:`y1`/:func:`e1`'s n-photon model. Ma et al. Eq. (8)–(9) drop the ``Y0·(1 − e^{−ημ})``
    cross terms; keeping them makes the decoy bounds provably valid (finite ≤ infinite decoys) and
    changes rates by a relative O(Y0).
    """
    xp, _ = namespace(mu, eta, p_dark, e_mis)
    y0 = background_yield(p_dark)
    signal = -xp.expm1(-eta * mu)
    return Gains(y0 + (1 - y0) * signal, y0 / 2 * (1 - signal) + e_mis * signal)


def gains_per_slot(mu: Any, eta: Any, p_dark: Any, e_mis: Any, double_click: str = "squash") -> Gains:
    """Exact per-slot gain and error gain of two threshold detectors, for either double-click rule.

    With ``p_r = 1 − e^{−μη(1−e)}(1 − p_d)`` (the right detector clicks) and
    ``p_w = 1 − e^{−μηe}(1 − p_d)`` (the wrong one), ``"discard"`` gives gain
    ``p_r(1−p_w) + p_w(1−p_r)`` and error gain ``p_w(1−p_r)``; ``"squash"`` assigns double
    clicks a random bit: gain ``1 − (1−p_r)(1−p_w)``, error gain ``p_w(1−p_r) + p_r p_w / 2``.
    """
    check_convention(double_click)
    xp, _ = namespace(mu, eta, p_dark, e_mis)
    p_r = 1 - xp.exp(-mu * eta * (1 - e_mis)) * (1 - p_dark)
    p_w = 1 - xp.exp(-mu * eta * e_mis) * (1 - p_dark)
    single_wrong = p_w * (1 - p_r)
    single_right = p_r * (1 - p_w)
    if double_click == "discard":
        return Gains(single_right + single_wrong, single_wrong)
    both = p_r * p_w
    return Gains(single_right + single_wrong + both, single_wrong + both / 2)


def y1(eta: Any, p_dark: Any) -> Any:
    """Single-photon yield ``Y1 = Y0 + η − Y0 η`` (Ma et al. PRA 72, 012326, Eq. (7))."""
    y0 = background_yield(p_dark)
    return y0 + eta - y0 * eta


def e1(eta: Any, p_dark: Any, e_mis: Any) -> Any:
    """Single-photon QBER ``e1 = (Y0 (1 − η)/2 + e_mis η)/Y1``.

    A background click counts (error 1/2) only when the photon was not detected, which makes
    ``e1 Y1`` consistent with ``Y1 = 1 − (1 − Y0)(1 − η)``; Ma et al. Eq. (7) write ``Y0/2``.
    """
    y0 = background_yield(p_dark)
    return (y0 * (1 - eta) / 2 + e_mis * eta) / y1(eta, p_dark)


def _rate(q1: Any, e_1: Any, g: Gains, f_ec: Any, sift_factor: Any, xp: Any, clip: bool) -> Any:
    ok = g.gain > 0
    e_mu = xp.where(ok, g.error_gain / xp.where(ok, g.gain, 1.0), 0.5)
    rate = q1 * (1 - binary_entropy(e_1, xp)) - f_ec * g.gain * binary_entropy(e_mu, xp)
    return sift_factor * (xp.maximum(rate, 0.0) if clip else rate)


def key_rate_from_yields(
    mu: Any, y_1: Any, e1y1: Any, g: Gains, f_ec: Any, sift_factor: Any = 0.5, clip: bool = True
) -> Any:
    """GLLP rate from a single-photon yield and error yield computed elsewhere (infinite decoys).

    ``R = q{μ e^{−μ} Y1 [1 − h(e1)] − f Q_μ h(E_μ)}``; used with the exact per-slot figures of
    :mod:`qverify.physics.detector`, so that gain, QBER and yields share one detector convention.
    """
    xp, _ = namespace(mu, y_1, e1y1)
    ok = y_1 > 0
    e_1 = xp.where(ok, e1y1 / xp.where(ok, y_1, 1.0), 0.5)
    return _rate(mu * xp.exp(-mu) * y_1, e_1, g, f_ec, sift_factor, xp, clip)


def key_rate_infinite(
    mu: Any, eta: Any, p_dark: Any, e_mis: Any, f_ec: Any, sift_factor: Any = 0.5, clip: bool = True
) -> Any:
    """GLLP key rate per pulse with infinitely many decoys, Ma et al. Eq. (1).

    ``R = q{Q1[1 − h(e1)] − f Q_μ h(E_μ)}`` with ``Q1 = μ e^{−μ} Y1``. Never negative.
    """
    xp, _ = namespace(mu, eta, p_dark, e_mis, f_ec)
    q1 = mu * xp.exp(-mu) * y1(eta, p_dark)
    return _rate(q1, e1(eta, p_dark, e_mis), gains(mu, eta, p_dark, e_mis), f_ec, sift_factor, xp, clip)


def key_rate_vacuum_weak(
    mu: Any, nu: Any, eta: Any, p_dark: Any, e_mis: Any, f_ec: Any, sift_factor: Any = 0.5, clip: bool = True
) -> Any:
    """GLLP key rate with one vacuum and one weak decoy ``nu``, Ma et al. Eq. (34)–(37).

    ``Y1 ≥ μ/(μν − ν²) (Q_ν e^ν − Q_μ e^μ ν²/μ² − (μ² − ν²)/μ² Y0)`` and
    ``e1 ≤ (E_ν Q_ν e^ν − Y0/2)/(Y1^L ν)``.
    """
    xp, _ = namespace(mu, nu, eta, p_dark, e_mis, f_ec)
    y0 = background_yield(p_dark)
    g_mu = gains(mu, eta, p_dark, e_mis)
    g_nu = gains(nu, eta, p_dark, e_mis)
    y1_low = (mu / (mu * nu - nu * nu)) * (
        g_nu.gain * xp.exp(nu) - g_mu.gain * xp.exp(mu) * nu * nu / (mu * mu) - (mu * mu - nu * nu) / (mu * mu) * y0
    )
    y1_low = xp.maximum(y1_low, 0.0)
    ok = y1_low > 0
    e1_up = xp.where(ok, (g_nu.error_gain * xp.exp(nu) - y0 / 2) / (xp.where(ok, y1_low, 1.0) * nu), 0.5)
    e1_up = xp.where(ok, e1_up, 0.5)
    q1 = mu * xp.exp(-mu) * y1_low
    return _rate(q1, xp.clip(e1_up, 0.0, 0.5), g_mu, f_ec, sift_factor, xp, clip)
