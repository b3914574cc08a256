"""Finite-key decoy BB84: Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014).

The asymptotic rates of :mod:`qverify.physics.bb84` assume infinitely many pulses. With ``N``
pulses, the decoy estimates carry statistical fluctuations; Lim et al. bound them with Hoeffding's
inequality and give the secret key length (their Eq. (1)):

    ℓ = s_{X,0} + s_{X,1} (1 − h(φ_X)) − λ_EC − 6 log2(21/ε_sec) − log2(2/ε_cor)

from *expected* detection counts here (no sampling): Alice sends intensity k ∈ {μ1, μ2, μ3} with
probability p_k and basis X (key) with probability q_X; Bob measures X with probability q_X; the
X-basis counts of intensity k are ``n_{X,k} = N p_k q_X² Q_k`` (``Q_k`` the gain of
:func:`qverify.physics.bb84.gains`), their errors ``m_{X,k} = N p_k q_X² E_k Q_k``, and the Z-basis
counts carry (1 − q_X)². With

* ``n^±_{X,k} = e^k / p_k · (n_{X,k} ± sqrt(n_X/2 · ln(21/ε_sec)))`` (Hoeffding, Eq. (2)),
* ``τ_n = Σ_k e^{−k} k^n p_k / n!``,
* ``s_{X,0} ≥ τ_0 (μ2 n^−_{X,μ3} − μ3 n^+_{X,μ2}) / (μ2 − μ3)`` (Eq. (3)),
* ``s_{X,1} ≥ τ_1 μ1 [n^−_{X,μ2} − n^+_{X,μ3} − (μ2² − μ3²)/μ1² (n^+_{X,μ1} − s_{X,0}/τ_0)] /
  (μ1(μ2 − μ3) − μ2² + μ3²)`` (Eq. (4)),
* ``v_{Z,1} ≤ τ_1 (m^+_{Z,μ2} − m^−_{Z,μ3}) / (μ2 − μ3)`` (Eq. (5)),
* ``φ_X ≤ v_{Z,1}/s_{Z,1} + γ(ε_sec, v_{Z,1}/s_{Z,1}, s_{Z,1}, s_{X,1})`` with
  ``γ(a, b, c, d) = sqrt((c + d)(1 − b) b / (c d ln 2) · log2((c + d)/(c d (1 − b) b) · 21²/a²))``
  (Eq. (6)),
* ``λ_EC = f_EC n_X h(E_X)``.

The rate per pulse is ``max(ℓ, 0) / N``. As ``N → ∞`` the fluctuation terms vanish and, with
μ3 = 0, the bounds on ``s_1`` and ``v_1`` become exactly the vacuum + weak decoy bounds of Ma et al.
(PRA 72, 012326, Eq. (34)–(37)) that :func:`qverify.physics.bb84.key_rate_vacuum_weak` uses (tested).
Gains are the GLLP closed forms (double clicks squashed, no dead time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qverify.errors import ParameterError
from qverify.physics._validate import check_range
from qverify.physics._xp import binary_entropy
from qverify.physics.bb84 import gains

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
        for i, pk in enumerate(self.p):
            check_range(f"p[{i}]", pk, 0.0, 1.0, low_open=True)
        if not np.isclose(sum(self.p), 1.0, rtol=0, atol=1e-9):
            raise ParameterError("p", self.p, "probabilities summing to 1")
        check_range("q_x", self.q_x, 0.0, 1.0, low_open=True, high_open=True)
        check_range("eps_sec", self.eps_sec, 0.0, 1.0, low_open=True, high_open=True)
        check_range("eps_cor", self.eps_cor, 0.0, 1.0, low_open=True, high_open=True)


def _gamma(a: float, b: Any, c: Any, d: Any) -> Any:
    """Lim et al. Eq. (6): the random-sampling correction of the phase error rate."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = (c + d) / (c * d * (1 - b) * b) * 21.0**2 / a**2
        val = (c + d) * (1 - b) * b / (c * d * np.log(2)) * np.log2(inner)
    return np.sqrt(np.maximum(val, 0.0))


def _bounds(n: np.ndarray, total: np.ndarray, mu: tuple[float, ...], p: tuple[float, ...], eps: float,
            finite: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(n⁻_k, n⁺_k) for counts ``n`` (3, ...) whose sum is ``total``; (τ0, τ1)."""
    delta = np.sqrt(total / 2 * np.log(21 / eps)) if finite else 0.0
    scale = np.array([np.exp(m) / pk for m, pk in zip(mu, p, strict=True)]).reshape((3,) + (1,) * (n.ndim - 1))
    return (
        scale * (n - delta),
        scale * (n + delta),
        *(sum(np.exp(-m) * m**j * pk for m, pk in zip(mu, p, strict=True)) for j in (0, 1)),
    )


def decoy_estimates(n_pulses: Any, eta: Any, p_dark: Any, e_mis: Any, f_ec: Any, s: DecoySettings,
                    finite: bool = True) -> dict[str, Any]:  # fmt: skip
    """Every intermediate bound of the module docstring, for ``n_pulses`` pulses (expected counts).

    Keys: ``n_x`` (X-basis detections), ``s_x0``, ``s_x1``, ``s_z1`` (vacuum and single-photon
    events), ``v_z1`` (single-photon errors in Z), ``phi`` (phase error bound), ``leak`` (λ_EC) and
    ``length`` (ℓ, before clipping at 0). ``finite=False`` drops every fluctuation and ε term (the
    asymptotic limit, counts per pulse when ``n_pulses = 1``).
    """
    m1, m2, m3 = s.mu
    g = [gains(m, eta, p_dark, e_mis) for m in s.mu]
    qx2, qz2 = s.q_x**2, (1 - s.q_x) ** 2
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
            "length": length}  # fmt: skip


def bb84_finite_rate(
    n_pulses: Any,
    eta: Any,
    p_dark: Any,
    e_mis: Any,
    f_ec: Any = 1.16,
    settings: DecoySettings | None = None,
) -> Any:
    """Secret bits per pulse of decoy BB84 after ``n_pulses`` pulses (Lim et al. 2014, module docstring).

    Args:
        n_pulses: pulses Alice sends in the block (N ≥ 1); ``np.inf`` gives the asymptotic limit.
        eta: total transmittance (fibre × Bob's efficiency), in [0, 1].
        p_dark: dark count probability per detector per pulse.
        e_mis: misalignment error probability.
        f_ec: error-correction inefficiency (≥ 1).
        settings: intensities, probabilities, basis bias and ε (default :class:`DecoySettings`).

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
    eta, p_dark, e_mis = (np.asarray(x, dtype=float) for x in (eta, p_dark, e_mis))
    inf = np.isinf(n)
    rate: Any = 0.0
    if not inf.all():  # each limit is computed only where some block size asks for it
        finite_n = np.where(inf, 1.0, n)
        length = decoy_estimates(finite_n, eta, p_dark, e_mis, f_ec, s, finite=True)["length"]
        rate = np.maximum(length, 0.0) / finite_n
    if inf.any():
        asym = decoy_estimates(1.0, eta, p_dark, e_mis, f_ec, s, finite=False)["length"]
        rate = np.where(inf, np.maximum(asym, 0.0), rate)
    return rate
