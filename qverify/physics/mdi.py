"""Decoy-state MDI-QKD with a linear-optics Bell-state measurement announcing only ψ±.

Closed forms from Ma & Razavi, PRA 86, 062319 (2012), App. A/B (also Xu, Curty, Qi, Lo, NJP 15,
113007 (2013), App. B). All gains count *both* announced Bell states ψ+ and ψ− (a successful BSM is
exactly one click in an H detector and one in a V detector). Misalignment ``e_mis`` flips the
announced parity with probability ``e_mis``; dark counts ``p_dark`` are per detector per pulse.

Every function accepts scalars or broadcastable arrays (numpy → float64 numpy; jax arrays → jax,
``jit``-able). ``eta_a``/``eta_b`` are the total transmittances (fibre × detector efficiency).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from qverify.physics._xp import binary_entropy, namespace


class Gains(NamedTuple):
    """Gain (successful-BSM probability per pulse pair) and error gain (gain × QBER)."""

    gain: Any
    error_gain: Any


def y11(eta_a: Any, eta_b: Any, p_dark: Any) -> Any:
    """Single-photon yield Y11 (both bases), Ma–Razavi Eq. (A9) / Xu et al. Eq. (B7).

    >>> float(y11(1.0, 1.0, 0.0))
    0.5
    """
    xp, _ = namespace(eta_a, eta_b, p_dark)
    eta_a, eta_b, p_dark = xp.asarray(eta_a), xp.asarray(eta_b), xp.asarray(p_dark)
    return (1 - p_dark) ** 2 * (
        eta_a * eta_b / 2
        + (2 * eta_a + 2 * eta_b - 3 * eta_a * eta_b) * p_dark
        + 4 * (1 - eta_a) * (1 - eta_b) * p_dark**2
    )


def e11(eta_a: Any, eta_b: Any, p_dark: Any, e_mis: Any, basis: str = "X") -> Any:
    """Single-photon QBER e11 in the ``"X"`` (diagonal) or ``"Z"`` (rectilinear) basis.

    Ma–Razavi Eq. (A10)–(A11): ``e11·Y11 = Y11/2 − (1/2 − e_mis)(1 − p_d)² η_a η_b / 2`` in X, with
    an extra factor ``(1 − 2 p_d)`` in Z. With ``p_dark = 0`` both equal ``e_mis``.

    >>> round(float(e11(0.3, 0.2, 0.0, 0.015)), 12)
    0.015
    """
    xp, _ = namespace(eta_a, eta_b, p_dark, e_mis)
    y = y11(eta_a, eta_b, p_dark)
    coherent = (1 - p_dark) ** 2 * eta_a * eta_b / 2
    if basis == "Z":
        coherent = coherent * (1 - 2 * p_dark)
    elif basis != "X":
        from qverify.errors import ChoiceError

        raise ChoiceError("basis", basis, ("X", "Z"))
    err = y / 2 - (0.5 - e_mis) * coherent
    return xp.where(y > 0, err / xp.where(y > 0, y, 1.0), 0.5)


def gains_z(mu_a: Any, mu_b: Any, eta_a: Any, eta_b: Any, p_dark: Any, e_mis: Any) -> Gains:
    """Z-basis (rectilinear) gain and error gain for WCP intensities ``mu_a``, ``mu_b``.

    Ma–Razavi Eq. (B1)–(B3): ``Q = Q_C + Q_E``, ``E·Q = e_mis Q_C + (1 − e_mis) Q_E``.
    """
    xp, i0e = namespace(mu_a, mu_b, eta_a, eta_b, p_dark, e_mis)
    la = eta_a * mu_a
    lb = eta_b * mu_b
    half = (la + lb) / 2
    two_x = xp.sqrt(la * lb)
    keep = 1 - p_dark
    q_c = 2 * keep**2 * xp.exp(-half) * (1 - keep * xp.exp(-la / 2)) * (1 - keep * xp.exp(-lb / 2))
    # I0(2x) e^{-μ'/2} evaluated as i0e(2x) e^{2x - μ'/2}: 2x ≤ μ'/2 (AM–GM), so no overflow.
    q_e = 2 * p_dark * keep**2 * (i0e(two_x) * xp.exp(two_x - half) - keep * xp.exp(-2 * half))
    return Gains(q_c + q_e, e_mis * q_c + (1 - e_mis) * q_e)


def gains_x(mu_a: Any, mu_b: Any, eta_a: Any, eta_b: Any, p_dark: Any, e_mis: Any) -> Gains:
    """X-basis (diagonal) gain and error gain, Ma–Razavi Eq. (B4)–(B5).

    ``Q = 2y²[1 + 2y² − 4y I0(x) + I0(2x)]``, ``E·Q = Q/2 − 2(1/2 − e_mis) y² [I0(2x) − 1]`` with
    ``x = √(η_a μ_a η_b μ_b)/2`` and ``y = (1 − p_d) e^{−(η_a μ_a + η_b μ_b)/4}``.
    """
    xp, i0e = namespace(mu_a, mu_b, eta_a, eta_b, p_dark, e_mis)
    la = eta_a * mu_a
    lb = eta_b * mu_b
    quarter = (la + lb) / 4
    x = xp.sqrt(la * lb) / 2
    keep = 1 - p_dark
    y = keep * xp.exp(-quarter)
    y2 = y * y
    # y I0(x) and y² I0(2x) written with scaled Bessel functions; x ≤ quarter and 2x ≤ 2·quarter.
    y_i0x = keep * i0e(x) * xp.exp(x - quarter)
    y2_i02x = keep**2 * i0e(2 * x) * xp.exp(2 * x - 2 * quarter)
    gain = 2 * (y2 + 2 * y2 * y2 - 4 * y2 * y_i0x + y2_i02x)
    interference = 2 * (y2_i02x - y2)
    return Gains(gain, gain / 2 - (0.5 - e_mis) * interference)


def _safe_div(num: Any, den: Any, xp: Any, fallback: float) -> Any:
    ok = den > 0
    return xp.where(ok, num / xp.where(ok, den, 1.0), fallback)


def key_rate_infinite(
    mu: Any,
    eta_a: Any,
    eta_b: Any,
    p_dark: Any,
    e_mis: Any,
    f_ec: Any,
    sift_factor: Any = 1.0,
    clip: bool = True,
) -> Any:
    """Lo–Curty–Qi key rate per pulse pair with infinitely many decoys, PRL 108, 130503, Eq. (1).

    ``R = sift · [Q11^Z (1 − h(e11^X)) − f Q^Z h(E^Z)]`` with ``Q11 = μ² e^{−2μ} Y11``; both Alice
    and Bob send intensity ``mu``. Never negative.
    """
    xp, _ = namespace(mu, eta_a, eta_b, p_dark, e_mis, f_ec)
    q11 = mu * mu * xp.exp(-2 * mu) * y11(eta_a, eta_b, p_dark)
    ex = e11(eta_a, eta_b, p_dark, e_mis, "X")
    gz = gains_z(mu, mu, eta_a, eta_b, p_dark, e_mis)
    ez = _safe_div(gz.error_gain, gz.gain, xp, 0.5)
    rate = q11 * (1 - binary_entropy(ex, xp)) - f_ec * gz.gain * binary_entropy(ez, xp)
    return sift_factor * (xp.maximum(rate, 0.0) if clip else rate)


def _decoy_combination(gain_fn: Any, intensity: Any, args: tuple[Any, ...], xp: Any) -> tuple[Any, Any]:
    """``G(a) = Σ_{n,m≥1} a^{n+m}/(n!m!) Y_nm`` (and the same for error gains) from four settings.

    ``G(a) = Q_aa e^{2a} − Q_a0 e^{a} − Q_0a e^{a} + Q_00`` removes every term in which one side
    sent vacuum.
    """
    zero = xp.zeros_like(intensity)
    q_aa = gain_fn(intensity, intensity, *args)
    q_a0 = gain_fn(intensity, zero, *args)
    q_0a = gain_fn(zero, intensity, *args)
    q_00 = gain_fn(zero, zero, *args)
    e1 = xp.exp(intensity)
    g = q_aa.gain * e1 * e1 - (q_a0.gain + q_0a.gain) * e1 + q_00.gain
    ge = q_aa.error_gain * e1 * e1 - (q_a0.error_gain + q_0a.error_gain) * e1 + q_00.error_gain
    return g, ge


def y11_lower_vacuum_weak(gain_fn: Any, mu: Any, nu: Any, *args: Any) -> Any:
    """Lower bound on Y11 from signal ``mu``, weak decoy ``nu`` and vacuum on both sides.

    In the spirit of Xu et al., NJP 15, 113007 (2013), Sec. 3: with ``G`` as in
    :func:`_decoy_combination`, the combination ``μ³G(ν) − ν³G(μ)`` cancels the ``n+m = 3``
    terms and every higher term enters with a negative coefficient, so
    ``Y11 ≥ [μ³G(ν) − ν³G(μ)] / (μ²ν²(μ − ν))``. Tends to the true Y11 as ``ν → 0``.
    """
    xp, _ = namespace(mu, nu, *args)
    g_nu, _ = _decoy_combination(gain_fn, nu, args, xp)
    g_mu, _ = _decoy_combination(gain_fn, mu, args, xp)
    bound = (mu**3 * g_nu - nu**3 * g_mu) / (mu**2 * nu**2 * (mu - nu))
    return xp.maximum(bound, 0.0)


def key_rate_vacuum_weak(
    mu: Any,
    nu: Any,
    eta_a: Any,
    eta_b: Any,
    p_dark: Any,
    e_mis: Any,
    f_ec: Any,
    sift_factor: Any = 1.0,
    clip: bool = True,
) -> Any:
    """Key rate per pulse pair with vacuum + weak decoys (intensities {0, ν, μ} on each side).

    ``Y11^Z`` is bounded from Z-basis gains, ``e11^X ≤ H(ν)/(ν² Y11^{X,L})`` from X-basis error
    gains, where ``H(ν)`` is the error-gain analogue of ``G(ν)`` (all terms non-negative).
    Never larger than :func:`key_rate_infinite` at the same ``mu``.
    """
    xp, _ = namespace(mu, nu, eta_a, eta_b, p_dark, e_mis, f_ec)
    args = (eta_a, eta_b, p_dark, e_mis)
    y11z = y11_lower_vacuum_weak(gains_z, mu, nu, *args)
    y11x = y11_lower_vacuum_weak(gains_x, mu, nu, *args)
    _, h_nu = _decoy_combination(gains_x, nu, args, xp)
    e11x = _safe_div(h_nu, nu * nu * y11x, xp, 0.5)
    e11x = xp.clip(e11x, 0.0, 0.5)
    gz = gains_z(mu, mu, *args)
    ez = _safe_div(gz.error_gain, gz.gain, xp, 0.5)
    q11 = mu * mu * xp.exp(-2 * mu) * y11z
    rate = q11 * (1 - binary_entropy(e11x, xp)) - f_ec * gz.gain * binary_entropy(ez, xp)
    return sift_factor * (xp.maximum(rate, 0.0) if clip else rate)
