"""Finite-key decoy BB84 (Lim et al. 2014) and decoy MDI-QKD (after Curty et al. 2014).

MDI-QKD: :func:`mdi_finite_rate`, :func:`mdi_decoy_estimates`. BB84, Lim, Curty, Walenta, Xu,
Zbinden, PRA 89, 022307 (2014):

The asymptotic rates of :mod:`qverify.physics.bb84` assume infinitely many pulses. With ``N``
pulses, the decoy estimates carry statistical fluctuations; Lim et al. bound them with Hoeffding's
inequality and give the secret key length (their Eq. (1)):

    ℓ = s_{X,0} + s_{X,1} (1 − h(φ_X)) − λ_EC − 6 log2(21/ε_sec) − log2(2/ε_cor)

from *expected* detection counts here (no sampling): Alice sends intensity k ∈ {μ1, μ2, μ3} with
probability p_k and basis X (key) with probability q_X; Bob measures X with probability q_X; the
X-basis counts of intensity k are ``n_{X,k} = N p_k q_X² Q_k`` (``Q_k`` the gain of
:func:`qverify.physics.bb84.gains`), their errors ``m_{X,k} = N p_k q_X² E_k Q_k``, and the Z-basis
counts carry (1 − q_X)². With

* ``n^±_{X,k} = e^k / p_k · (n_{X,k} ± sqrt(n_X/2 · ln(21/ε_sec)))`` (Hoeffding brackets, Eq. (2)),
* ``τ_n = Σ_k e^{−k} k^n p_k / n!``,
* ``s_{X,0} ≥ τ_0 (μ2 n^−_{X,μ3} − μ3 n^+_{X,μ2}) / (μ2 − μ3)`` (Eq. (2)),
* ``s_{X,1} ≥ τ_1 μ1 [n^−_{X,μ2} − n^+_{X,μ3} − (μ2² − μ3²)/μ1² (n^+_{X,μ1} − s_{X,0}/τ_0)] /
  (μ1(μ2 − μ3) − μ2² + μ3²)`` (Eq. (3)),
* ``v_{Z,1} ≤ τ_1 (m^+_{Z,μ2} − m^−_{Z,μ3}) / (μ2 − μ3)`` (Eq. (4)),
* ``φ_X ≤ v_{Z,1}/s_{Z,1} + γ(ε_sec, v_{Z,1}/s_{Z,1}, s_{Z,1}, s_{X,1})`` with
  ``γ(a, b, c, d) = sqrt((c + d)(1 − b) b / (c d ln 2) · log2((c + d)/(c d (1 − b) b) · 21²/a²))``
  (Eq. (5)),
* ``λ_EC = f_EC n_X h(E_X)``.

After-pulsing (Lim et al. 2014, detector model of their Sec. IV): with after-pulse probability
``p_ap`` the detection probability of intensity k becomes ``R_k = D_k (1 + p_ap)`` and its error
probability gains ``p_ap D_k / 2``, ``D_k = 1 − (1 − 2 p_dc) e^{−η k}`` being the gain without
after-pulses (:func:`afterpulse_gains`). Lim et al. print the misalignment term with the channel
transmittance alone; the system transmittance η (channel × Bob) is used here, as in every other
rate of qverify (with η_ch the misalignment error would exceed the detection probability).

The rate per pulse is ``max(ℓ, 0) / N``. As ``N → ∞`` the fluctuation terms vanish and, with
μ3 = 0, the bounds on ``s_1`` and ``v_1`` become exactly the vacuum + weak decoy bounds of Ma et al.
(PRA 72, 012326, Eq. (34)–(37)) that :func:`qverify.physics.bb84.key_rate_vacuum_weak` uses (tested).
Gains are the GLLP closed forms (double clicks squashed). With ``dead_time_slots > 0`` (BB84 only)
they come from the exact per-slot detector model instead (:func:`qverify.physics.detector.stream_figures`):
the dead time is driven by the whole decoy stream — every intensity with its probability, matched
bases with probability ``q_X² + (1 − q_X)²`` — and each intensity's gain is averaged over that
stationary law. The decoy bounds stay valid because the detectors' state does not depend on the
intensity of the slot being detected (dead time acts as a state-dependent efficiency seen equally
by every photon number; attacks that exploit dead time are not covered).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qverify.errors import ParameterError
from qverify.physics._validate import check_range
from qverify.physics._xp import binary_entropy
from qverify.physics.bb84 import Gains, gains
from qverify.physics.detector import check_dead_time, stream_figures

DEFAULT_EPSILON = 1e-10
"""Default ε_sec (and ε_cor) of a finite-key rate."""


@dataclass(frozen=True)
class DecoySettings:
    """Intensities and probabilities of a three-intensity decoy BB84 run (Lim et al. 2014).

    Attributes:
        mu: (μ1, μ2, μ3) mean photon numbers, μ1 > μ2 + μ3 and μ2 > μ3 ≥ 0.
        p: probabilities of sending each intensity (positive, summing to 1).
        q_x: probability of the key basis X, for Alice and for Bob, in (0, 1).
        eps_sec, eps_cor: secrecy and correctness parameters, in (0, 1).
    """

    mu: tuple[float, float, float] = (0.5, 0.1, 0.0002)
    p: tuple[float, float, float] = (0.7, 0.2, 0.1)
    q_x: float = 0.9
    eps_sec: float = DEFAULT_EPSILON
    eps_cor: float = DEFAULT_EPSILON

    def __post_init__(self) -> None:
        m1, m2, m3 = self.mu
        check_range("mu3", m3, 0.0, np.inf)
        check_range("mu2", m2, m3, np.inf, low_open=True)
        check_range("mu1", m1, m2 + m3, np.inf, low_open=True)
        check_range("q_x", self.q_x, 0.0, 1.0, low_open=True, high_open=True)
        _check_probabilities_and_eps(self.p, self.eps_sec, self.eps_cor)


def _check_probabilities_and_eps(p: tuple[float, ...], eps_sec: float, eps_cor: float) -> None:
    """Intensity probabilities positive and summing to 1; ε_sec and ε_cor in (0, 1)."""
    for i, pk in enumerate(p):
        check_range(f"p[{i}]", pk, 0.0, 1.0, low_open=True)
    if not np.isclose(sum(p), 1.0, rtol=0, atol=1e-9):
        raise ParameterError("p", p, "probabilities summing to 1")
    check_range("eps_sec", eps_sec, 0.0, 1.0, low_open=True, high_open=True)
    check_range("eps_cor", eps_cor, 0.0, 1.0, low_open=True, high_open=True)


def _gamma(a: float, b: Any, c: Any, d: Any) -> Any:
    """Lim et al. Eq. (5): the random-sampling correction of the phase error rate."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = (c + d) / (c * d * (1 - b) * b) * 21.0**2 / a**2
        val = (c + d) * (1 - b) * b / (c * d * np.log(2)) * np.log2(inner)
    return np.sqrt(np.maximum(val, 0.0))


def _bounds(n: np.ndarray, total: np.ndarray, mu: tuple[float, ...], p: tuple[float, ...], eps: float,
            finite: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(n⁻_k, n⁺_k) for counts ``n`` (3, ...) whose sum is ``total``; (τ0, τ1)."""
    delta = np.sqrt(total / 2 * np.log(21 / eps)) if finite else 0.0
    scale = np.stack(np.broadcast_arrays(*(np.exp(m) / pk for m, pk in zip(mu, p, strict=True))))
    scale = scale.reshape((3,) + (1,) * (n.ndim - scale.ndim) + scale.shape[1:])
    return (
        scale * (n - delta),
        scale * (n + delta),
        *(sum(np.exp(-m) * m**j * pk for m, pk in zip(mu, p, strict=True)) for j in (0, 1)),
    )


def afterpulse_gains(g: Gains, p_afterpulse: Any) -> Gains:
    """Gain and error gain with after-pulses (Lim et al. PRA 89, 022307 (2014), Sec. IV).

    ``R_k = D_k (1 + p_ap)`` and error gain ``+ p_ap D_k / 2`` (an after-pulse is a random bit).

    >>> g = afterpulse_gains(Gains(0.01, 0.001), 0.04)
    >>> round(g.gain, 6), round(g.error_gain, 6)
    (0.0104, 0.0012)
    """
    return Gains(g.gain * (1 + p_afterpulse), g.error_gain + p_afterpulse * g.gain / 2)


def decoy_estimates(n_pulses: Any, eta: Any, p_dark: Any, e_mis: Any, f_ec: Any, s: DecoySettings,
                    finite: bool = True, dead_time_slots: int = 0, p_afterpulse: Any = 0.0) -> dict[str, Any]:  # fmt: skip
    """Every intermediate bound of the module docstring, for ``n_pulses`` pulses (expected counts).

    Keys: ``n_x`` (X-basis detections), ``s_x0``, ``s_x1``, ``s_z1`` (vacuum and single-photon
    events), ``v_z1`` (single-photon errors in Z), ``phi`` (phase error bound), ``leak`` (λ_EC) and
    ``length`` (ℓ, before clipping at 0). ``finite=False`` drops every fluctuation and ε term (the
    asymptotic limit, counts per pulse when ``n_pulses = 1``). ``dead_time_slots`` (per detector,
    double clicks squashed) takes the gains from the exact detector model (module docstring);
    ``p_afterpulse`` adds Lim et al.'s after-pulses (:func:`afterpulse_gains`; not with dead time).
    The fields of ``s`` may be arrays that broadcast with the link's (one setting per element);
    the optimiser of :mod:`qverify.physics.decoy_opt` evaluates whole populations that way.
    """
    m1, m2, m3 = s.mu
    qx2, qz2 = s.q_x**2, (1 - s.q_x) ** 2
    if dead_time_slots:
        stream = stream_figures(s.mu, s.p, eta, p_dark, e_mis, dead_time_slots, "squash", qx2 + qz2)
        g = [Gains(f.gain, f.error_gain) for f in stream]
    else:
        g = [gains(m, eta, p_dark, e_mis) for m in s.mu]
    if np.any(np.asarray(p_afterpulse) > 0):
        if dead_time_slots:
            raise ParameterError(
                "p_afterpulse", p_afterpulse, "0 with dead time (after-pulses are not in the dead-time chain)"
            )
        g = [afterpulse_gains(gk, p_afterpulse) for gk in g]
    n_x = np.stack([n_pulses * pk * qx2 * gk.gain for pk, gk in zip(s.p, g, strict=True)])
    m_x = np.stack([n_pulses * pk * qx2 * gk.error_gain for pk, gk in zip(s.p, g, strict=True)])
    n_z = np.stack([n_pulses * pk * qz2 * gk.gain for pk, gk in zip(s.p, g, strict=True)])
    m_z = np.stack([n_pulses * pk * qz2 * gk.error_gain for pk, gk in zip(s.p, g, strict=True)])

    def singles(n: np.ndarray) -> tuple[Any, Any]:
        lo, hi, t0, t1 = _bounds(n, n.sum(axis=0), s.mu, s.p, s.eps_sec, finite)
        s0 = np.maximum(t0 * (m2 * lo[2] - m3 * hi[1]) / (m2 - m3), 0.0)
        s1 = t1 * m1 * (lo[1] - hi[2] - (m2**2 - m3**2) / m1**2 * (hi[0] - s0 / t0))
        return s0, np.maximum(s1 / (m1 * (m2 - m3) - m2**2 + m3**2), 0.0)

    s_x0, s_x1 = singles(n_x)
    _s_z0, s_z1 = singles(n_z)
    lo_m, hi_m, _t0, t1 = _bounds(m_z, m_z.sum(axis=0), s.mu, s.p, s.eps_sec, finite)
    v_z1 = np.maximum(t1 * (hi_m[1] - lo_m[2]) / (m2 - m3), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(s_z1 > 0, v_z1 / np.where(s_z1 > 0, s_z1, 1.0), 0.5)
    ratio = np.clip(ratio, 1e-300, 0.5)
    phi = ratio + (_gamma(s.eps_sec, ratio, s_z1, s_x1) if finite else 0.0)
    phi = np.where((s_z1 > 0) & (s_x1 > 0), np.minimum(phi, 0.5), 0.5)
    total_x = n_x.sum(axis=0)
    e_x = m_x.sum(axis=0) / np.where(total_x > 0, total_x, 1.0)
    leak = f_ec * total_x * binary_entropy(e_x, np)
    length = s_x0 + s_x1 * (1 - binary_entropy(phi, np)) - leak
    if finite:
        length = length - 6 * np.log2(21 / s.eps_sec) - np.log2(2 / s.eps_cor)
    return {"n_x": total_x, "s_x0": s_x0, "s_x1": s_x1, "s_z1": s_z1, "v_z1": v_z1, "phi": phi, "leak": leak,
            "length": length, "detect_x": n_x.sum(axis=0) / n_pulses}  # fmt: skip


def bb84_finite_rate(
    n_pulses: Any,
    eta: Any,
    p_dark: Any,
    e_mis: Any,
    f_ec: Any = 1.16,
    settings: DecoySettings | None = None,
    dead_time_slots: int = 0,
    p_afterpulse: float = 0.0,
) -> Any:
    """Secret bits per pulse of decoy BB84 after ``n_pulses`` pulses (Lim et al. 2014, module docstring).

    Args:
        n_pulses: pulses Alice sends in the block (N ≥ 1); ``np.inf`` gives the asymptotic limit.
        eta: total transmittance (fibre × Bob's efficiency), in [0, 1].
        p_dark: dark count probability per detector per pulse.
        e_mis: misalignment error probability.
        f_ec: error-correction inefficiency (≥ 1).
        settings: intensities, probabilities, basis bias and ε (default :class:`DecoySettings`).
        dead_time_slots: per-detector dead time in slots (integer in [0, 200]; module docstring).
        p_afterpulse: after-pulse probability per detection, in [0, 1) (Lim et al.'s model).

    Returns:
        ``max(ℓ, 0) / N`` in bits per pulse (float64 numpy, shaped like the broadcast inputs).
    """
    s = settings or DecoySettings()
    n = np.asarray(n_pulses, dtype=float)
    check_range("n_pulses", n, 1.0, np.inf)
    check_range("eta", eta, 0.0, 1.0)
    check_range("p_dark", p_dark, 0.0, 0.5)
    check_range("e_mis", e_mis, 0.0, 0.5)
    check_range("f_ec", f_ec, 1.0, np.inf)
    check_range("p_afterpulse", p_afterpulse, 0.0, 1.0, high_open=True)
    dead = check_dead_time(dead_time_slots)
    eta, p_dark, e_mis = (np.asarray(x, dtype=float) for x in (eta, p_dark, e_mis))
    return _per_pulse(
        n, lambda m, fin: decoy_estimates(m, eta, p_dark, e_mis, f_ec, s, fin, dead, p_afterpulse)["length"]
    )


def _per_pulse(n: np.ndarray, length: Any) -> Any:
    """``max(ℓ, 0) / N``, and the asymptotic ``length(1, False)`` where ``N`` is infinite.

    ``length(n, finite)`` is the key length of a block; each limit is computed only where some
    block size asks for it.
    """
    inf = np.isinf(n)
    rate: Any = 0.0
    if not inf.all():
        finite_n = np.where(inf, 1.0, n)
        rate = np.maximum(length(finite_n, True), 0.0) / finite_n
    if inf.any():
        rate = np.where(inf, np.maximum(length(1.0, False), 0.0), rate)
    return rate


# ---------------------------------------------------------------------------------------------
# Finite-key decoy MDI-QKD
# ---------------------------------------------------------------------------------------------

MDI_ESTIMATES = 22
"""Failure events in the MDI parameter estimation (7 Z gains, 7 X gains, 7 X error gains, 1 sampling)."""


@dataclass(frozen=True)
class MDIDecoySettings:
    """Intensities and probabilities of a vacuum + weak decoy MDI-QKD run with a finite key.

    Alice and Bob each pick intensity μ, ν or vacuum with probabilities ``p`` and basis Z (key)
    with probability ``q_z``, independently. Key comes from Z-basis pulses where both sent μ, as
    in Curty et al., Nat. Commun. 5, 3732 (2014).

    Attributes:
        mu: signal mean photon number μ (> ν).
        nu: weak-decoy mean photon number ν, in (0, μ).
        p: probabilities of (μ, ν, vacuum), positive, summing to 1.
        q_z: probability of the Z basis on each side, in (0, 1).
        eps_sec, eps_cor: secrecy and correctness parameters, in (0, 1).
    """

    mu: float = 0.4
    nu: float = 0.1
    p: tuple[float, float, float] = (0.6, 0.25, 0.15)
    q_z: float = 0.85
    eps_sec: float = DEFAULT_EPSILON
    eps_cor: float = DEFAULT_EPSILON

    def __post_init__(self) -> None:
        check_range("nu", self.nu, 0.0, np.inf, low_open=True)
        check_range("mu", self.mu, self.nu, np.inf, low_open=True)
        check_range("q_z", self.q_z, 0.0, 1.0, low_open=True, high_open=True)
        _check_probabilities_and_eps(self.p, self.eps_sec, self.eps_cor)


def chernoff_interval(count: Any, eps: float) -> tuple[Any, Any]:
    """Interval on the expectation E of a sum of independent Bernoulli trials observed as ``count``.

    Multiplicative Chernoff bounds, each side failing with probability at most ``eps``:
    ``P(X ≥ (1 + δ)E) ≤ exp(−δ²E/(2 + δ))`` gives the lower end
    ``E_L = [2n + L − sqrt(8nL + L²)]/2`` and ``P(X ≤ (1 − δ)E) ≤ exp(−δ²E/2)`` the upper end
    ``E_U = ([sqrt(2L) + sqrt(2L + 4n)]/2)²``, with ``L = ln(1/eps)`` and ``n = count``.

    >>> lo, hi = chernoff_interval(1e6, 1e-10)
    >>> bool(lo < 1e6 < hi), round(float((hi - lo) / 1e6), 4)
    (True, 0.0136)
    """
    n = np.asarray(count, dtype=float)
    big_l = np.log(1 / eps)
    lo = np.maximum((2 * n + big_l - np.sqrt(8 * n * big_l + big_l**2)) / 2, 0.0)
    lo = np.where(n > big_l, lo, 0.0)
    hi = ((np.sqrt(2 * big_l) + np.sqrt(2 * big_l + 4 * n)) / 2) ** 2
    return lo, hi


def _y11_coefficients(mu: float, nu: float) -> dict[tuple[str, str], float]:
    """Coefficients ``c_ab`` of ``Y11 ≥ Σ c_ab Q_ab`` (:func:`qverify.physics.mdi.y11_lower_vacuum_weak`).

    ``[μ³G(ν) − ν³G(μ)] / (μ²ν²(μ − ν))`` with ``G(a) = Q_aa e^{2a} − (Q_a0 + Q_0a) e^a + Q_00``.
    """
    d = mu**2 * nu**2 * (mu - nu)
    return {
        ("nu", "nu"): mu**3 * np.exp(2 * nu) / d,
        ("nu", "0"): -(mu**3) * np.exp(nu) / d,
        ("0", "nu"): -(mu**3) * np.exp(nu) / d,
        ("mu", "mu"): -(nu**3) * np.exp(2 * mu) / d,
        ("mu", "0"): nu**3 * np.exp(mu) / d,
        ("0", "mu"): nu**3 * np.exp(mu) / d,
        ("0", "0"): (mu**3 - nu**3) / d,
    }


def mdi_decoy_estimates(n_pairs: Any, eta_a: Any, eta_b: Any, p_dark: Any, e_mis: Any, f_ec: Any,
                        s: MDIDecoySettings, finite: bool = True) -> dict[str, Any]:  # fmt: skip
    """Every bound of the finite-key MDI-QKD rate for ``n_pairs`` pulse pairs (expected counts).

    With ``n^B_ab = N p_a p_b q_B² Q^B_ab`` the detections of basis B when Alice sent a and Bob b
    (gains of :func:`qverify.physics.mdi.gains_z` / :func:`~qverify.physics.mdi.gains_x`), every
    gain in a linear decoy bound takes the end of its Chernoff interval
    (:func:`chernoff_interval` at ε_sec/K, K = :data:`MDI_ESTIMATES`; Curty et al. 2014 bound the
    decoy fluctuations with the Chernoff bound too) that is worst for the bound, divided by
    ``N p_a p_b q_B²``:

    * ``Y11^{Z,L}`` and ``Y11^{X,L}``: :func:`_y11_coefficients` on Z and X gains;
    * ``e11^{X,U} = H(ν) / (ν² Y11^{X,L})``, ``H(ν) = m_νν e^{2ν} − (m_ν0 + m_0ν) e^ν + m_00`` on
      X error counts (upper values);
    * ``s11^Z = N p_μ² q_z² μ² e^{−2μ} Y11^{Z,L}`` single-photon pairs in the key,
      ``s11^X = N p_ν² q_x² ν² e^{−2ν} Y11^{X,L}`` those the phase error is sampled from, and
      the phase error ``φ = e11^{X,U} + γ(ε_sec/K·21, e11^{X,U}, s11^Z, s11^X)`` (random sampling,
      Lim et al. Eq. (5), as Curty et al. 2014 use it);
    * ``ℓ = s11^Z (1 − h(φ)) − f n_Z^{μμ} h(E_Z^{μμ}) − 6 log2(K/ε_sec) − log2(2/ε_cor)``.

    ``finite=False`` drops every fluctuation and ε term (counts per pulse pair when
    ``n_pairs = 1``); then ``ℓ = p_μ² q_z² ·`` :func:`qverify.physics.mdi.key_rate_vacuum_weak`
    (tested).
    """
    from qverify.physics.mdi import gains_x, gains_z

    intensity = {"mu": s.mu, "nu": s.nu, "0": 0.0}
    prob = dict(zip(("mu", "nu", "0"), s.p, strict=True))
    q_x = 1 - s.q_z
    coef = _y11_coefficients(s.mu, s.nu)
    settings_ab = [(a, b) for a in intensity for b in intensity]

    def weight(ab: tuple[str, str], q: float) -> Any:
        return n_pairs * prob[ab[0]] * prob[ab[1]] * q * q

    def counts(gain_fn: Any, q: float) -> tuple[dict[Any, Any], dict[Any, Any]]:
        n, m = {}, {}
        for a, b in settings_ab:
            g = gain_fn(intensity[a], intensity[b], eta_a, eta_b, p_dark, e_mis)
            n[a, b], m[a, b] = weight((a, b), q) * g.gain, weight((a, b), q) * g.error_gain
        return n, m

    def linear(c: dict[Any, float], n: dict[Any, Any], q: float, upper: bool) -> Any:
        total = 0.0
        for k, ck in c.items():
            lo, hi = chernoff_interval(n[k], s.eps_sec / MDI_ESTIMATES) if finite else (n[k], n[k])
            total = total + ck * (hi if bool(np.all(np.asarray(ck) > 0)) == upper else lo) / weight(k, q)
        return total

    n_z, m_z = counts(gains_z, s.q_z)
    n_x, m_x = counts(gains_x, q_x)
    y11_z = np.maximum(linear(coef, n_z, s.q_z, upper=False), 0.0)
    y11_x = np.maximum(linear(coef, n_x, q_x, upper=False), 0.0)
    h_coef = {("nu", "nu"): np.exp(2 * s.nu), ("nu", "0"): -np.exp(s.nu), ("0", "nu"): -np.exp(s.nu), ("0", "0"): 1.0}
    h_nu = np.maximum(linear(h_coef, m_x, q_x, upper=True), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        e11_x = np.where(y11_x > 0, h_nu / (s.nu**2 * np.where(y11_x > 0, y11_x, 1.0)), 0.5)
    e11_x = np.clip(e11_x, 1e-300, 0.5)
    s11_z = n_pairs * prob["mu"] ** 2 * s.q_z**2 * s.mu**2 * np.exp(-2 * s.mu) * y11_z
    s11_x = n_pairs * prob["nu"] ** 2 * q_x**2 * s.nu**2 * np.exp(-2 * s.nu) * y11_x
    # γ's constant 21 is Lim et al.'s count of estimation events; the ε share is ours (K events).
    phi = e11_x + (_gamma(s.eps_sec * 21 / MDI_ESTIMATES, e11_x, s11_z, s11_x) if finite else 0.0)
    phi = np.where((s11_z > 0) & (s11_x > 0), np.minimum(phi, 0.5), 0.5)
    key_n, key_m = n_z["mu", "mu"], m_z["mu", "mu"]
    e_z = key_m / np.where(key_n > 0, key_n, 1.0)
    leak = f_ec * key_n * binary_entropy(np.clip(e_z, 0.0, 0.5), np)
    length = s11_z * (1 - binary_entropy(phi, np)) - leak
    if finite:
        length = length - 6 * np.log2(MDI_ESTIMATES / s.eps_sec) - np.log2(2 / s.eps_cor)
    return {"n_z": key_n, "y11_z": y11_z, "y11_x": y11_x, "e11_x": e11_x, "s11_z": s11_z, "s11_x": s11_x,
            "phi": phi, "leak": leak, "length": length, "detect_z": key_n / n_pairs}  # fmt: skip


def mdi_finite_rate(
    n_pairs: Any,
    eta_a: Any,
    eta_b: Any,
    p_dark: Any,
    e_mis: Any,
    f_ec: Any = 1.16,
    settings: MDIDecoySettings | None = None,
) -> Any:
    """Secret bits per pulse pair of decoy MDI-QKD after ``n_pairs`` pulse pairs.

    The protocol and ε accounting follow Curty et al., Nat. Commun. 5, 3732 (2014): key from
    Z-basis signal pairs, phase error from X-basis decoys with a random-sampling correction,
    Hoeffding bounds on every count. The decoy estimate is the analytical vacuum + weak bound
    of :func:`qverify.physics.mdi.y11_lower_vacuum_weak` (Xu et al. 2013); the linear programme
    over the yields is :func:`qverify.physics.mdi_lp.mdi_lp_estimates` (never looser, tested).

    Args:
        n_pairs: pulse pairs sent in the block (N ≥ 1); ``np.inf`` gives the asymptotic limit.
        eta_a: total transmittance Alice→Charlie, in [0, 1].
        eta_b: total transmittance Bob→Charlie, in [0, 1].
        p_dark: dark count probability per detector per pulse.
        e_mis: misalignment error probability.
        f_ec: error-correction inefficiency (≥ 1).
        settings: intensities, probabilities, basis bias and ε (default :class:`MDIDecoySettings`).

    Returns:
        ``max(ℓ, 0) / N`` in bits per pulse pair (float64 numpy, shaped like the broadcast inputs).
    """
    s = settings or MDIDecoySettings()
    n = np.asarray(n_pairs, dtype=float)
    check_range("n_pairs", n, 1.0, np.inf)
    check_range("eta_a", eta_a, 0.0, 1.0)
    check_range("eta_b", eta_b, 0.0, 1.0)
    check_range("p_dark", p_dark, 0.0, 0.5)
    check_range("e_mis", e_mis, 0.0, 0.5)
    check_range("f_ec", f_ec, 1.0, np.inf)
    eta_a, eta_b, p_dark, e_mis = (np.asarray(x, dtype=float) for x in (eta_a, eta_b, p_dark, e_mis))
    return _per_pulse(n, lambda m, fin: mdi_decoy_estimates(m, eta_a, eta_b, p_dark, e_mis, f_ec, s, fin)["length"])
