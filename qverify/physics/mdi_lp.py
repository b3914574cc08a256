"""Decoy estimation of finite-key MDI-QKD as a linear programme over the photon-number yields.

:func:`qverify.physics.finite.mdi_decoy_estimates` bounds the single-photon-pair yield with the
analytical vacuum + weak formula (Xu et al. 2013), which drops the higher photon-number terms.
Curty et al. (Nat. Commun. 5, 3732, 2014) solve the decoy equations instead; this module does it
as linear programmes (``scipy.optimize.linprog``, HiGHS) over the yields ``Y_nm`` (Alice sent n
photons, Bob m; n, m ≤ ``photons``) of each basis:

* ``Y11^{Z,L} = min Y11`` subject to, for every joint setting (a, b) the analytical bound uses, the
  same Chernoff end of the observed gain the analytical bound uses (lower or upper,
  :func:`qverify.physics.finite.chernoff_interval` at ε_sec/K, K =
  :data:`qverify.physics.finite.MDI_ESTIMATES`):
  ``Σ_{n,m ≤ M} P_a(n) P_b(m) Y_nm ≤ Q^U_ab`` or ``≥ Q^L_ab − T_ab``, with ``P_a(n)`` Poisson,
  ``T_ab`` the probability of more than M photons on either side (those yields lie in [0, 1]),
  and ``0 ≤ Y_nm ≤ 1``;
* ``Y11^{X,L}`` the same on X gains; ``E11^{X,U} = max E11`` on the X error gains the analytical
  ``H(ν)`` uses, ``0 ≤ E_nm ≤ 1``; ``e11^X = E11^{X,U} / Y11^{X,L}``;
* then the same phase error, leak and ε costs as the analytical estimator.

Same gains, same failure events and ε shares as the analytical estimator. The analytical bound
follows from the same constraints by dropping non-negative higher-order terms, so, up to the
tail beyond M photons (below 1e-11 for μ ≤ 1.5 and M = 14), it is one feasible point of
each programme's dual and the LP bounds are not looser (tested on random settings). The
programmes are solved per link element (a few ms each), so the settings are optimised with the
analytical estimator and the LP then re-evaluates the key at those settings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linprog
from scipy.stats import poisson

from qverify.errors import ParameterError
from qverify.physics._xp import binary_entropy
from qverify.physics.finite import MDI_ESTIMATES, MDIDecoySettings, _gamma, _y11_coefficients, chernoff_interval

PHOTONS = 14
"""Largest photon number per side kept as an LP variable (the rest bounded by the tail)."""


_HIGHS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
"""HiGHS tolerances: the decoy bounds are differences of gains with coefficients up to ~1/ν²."""


def _probs(intensity: float, photons: int) -> np.ndarray:
    if intensity == 0:
        out = np.zeros(photons + 1)
        out[0] = 1.0
        return out
    return np.asarray(poisson.pmf(np.arange(photons + 1), intensity), dtype=float)


def _bound(rows: list[tuple[np.ndarray, float, bool]], objective: np.ndarray, maximise: bool) -> float:
    """Optimum of ``objective · y`` over ``0 ≤ y ≤ 1`` and rows ``(a, b, upper)``: ``a·y ≤ b`` or ``≥ b``."""
    a_ub = np.array([a if upper else -a for a, _b, upper in rows])
    b_ub = np.array([b if upper else -b for _a, b, upper in rows])
    scale = np.maximum(np.abs(b_ub), 1e-12)  # rows of order 1: HiGHS's tolerances are absolute
    a_ub, b_ub = a_ub / scale[:, None], b_ub / scale
    res = linprog(-objective if maximise else objective, A_ub=a_ub, b_ub=b_ub, bounds=(0.0, 1.0), method="highs",
                  options=_HIGHS)  # fmt: skip
    if res.status == 2:  # infeasible: the observed gains contradict every yield table
        return 0.0 if not maximise else 1.0
    if not res.success:
        raise ParameterError("linprog", res.message, "a solved decoy programme")
    return float(-res.fun if maximise else res.fun)


def mdi_lp_estimates(n_pairs: float, eta_a: float, eta_b: float, p_dark: float, e_mis: float, f_ec: float,
                     s: MDIDecoySettings, photons: int = PHOTONS) -> dict[str, float]:  # fmt: skip
    """Every bound of the finite-key MDI-QKD length for one link, decoy yields from the LPs (module docstring).

    Same keys as :func:`qverify.physics.finite.mdi_decoy_estimates`. Scalars in, floats out.
    """
    from qverify.physics.mdi import gains_x, gains_z

    intensity = {"mu": s.mu, "nu": s.nu, "0": 0.0}
    prob = dict(zip(("mu", "nu", "0"), s.p, strict=True))
    q_x = 1 - s.q_z
    eps = s.eps_sec / MDI_ESTIMATES
    pn = {k: _probs(v, photons) for k, v in intensity.items()}
    coef = _y11_coefficients(s.mu, s.nu)
    h_sign = {("nu", "nu"): 1.0, ("nu", "0"): -1.0, ("0", "nu"): -1.0, ("0", "0"): 1.0}
    target = np.zeros((photons + 1) ** 2)
    target[(photons + 1) + 1] = 1.0  # Y_11

    def observed(gain_fn: Any, q: float) -> tuple[dict[Any, float], dict[Any, float], dict[Any, float]]:
        n, m, w = {}, {}, {}
        for a in intensity:
            for b in intensity:
                g = gain_fn(intensity[a], intensity[b], eta_a, eta_b, p_dark, e_mis)
                w[a, b] = n_pairs * prob[a] * prob[b] * q * q
                n[a, b], m[a, b] = w[a, b] * float(g.gain), w[a, b] * float(g.error_gain)
        return n, m, w

    def rows(counts: dict[Any, float], w: dict[Any, float], signs: dict[Any, float], upper_if_positive: bool
             ) -> list[tuple[np.ndarray, float, bool]]:  # fmt: skip
        out = []
        for k, c in signs.items():
            lo, hi = chernoff_interval(counts[k], eps)
            upper = (c > 0) == upper_if_positive
            a = np.outer(pn[k[0]], pn[k[1]]).ravel()
            tail = max(1.0 - a.sum(), 0.0)
            out.append((a, float(hi) / w[k], True) if upper else (a, float(lo) / w[k] - tail, False))
        return out

    n_z, m_z, w_z = observed(gains_z, s.q_z)
    n_x, m_x, w_x = observed(gains_x, q_x)
    # Y11 ≥ Σ c_ab Q_ab takes the lower end where c > 0 (analytical estimator, same events).
    y11_z = _bound(rows(n_z, w_z, coef, upper_if_positive=False), target, maximise=False)
    y11_x = _bound(rows(n_x, w_x, coef, upper_if_positive=False), target, maximise=False)
    e11_up = _bound(rows(m_x, w_x, h_sign, upper_if_positive=True), target, maximise=True)
    e11_x = min(e11_up / y11_x, 0.5) if y11_x > 0 else 0.5
    e11_x = max(e11_x, 1e-300)
    s11_z = n_pairs * prob["mu"] ** 2 * s.q_z**2 * s.mu**2 * np.exp(-2 * s.mu) * y11_z
    s11_x = n_pairs * prob["nu"] ** 2 * q_x**2 * s.nu**2 * np.exp(-2 * s.nu) * y11_x
    phi = e11_x + float(_gamma(s.eps_sec * 21 / MDI_ESTIMATES, e11_x, s11_z, s11_x))
    phi = min(phi, 0.5) if s11_z > 0 and s11_x > 0 else 0.5
    key_n, key_m = n_z["mu", "mu"], m_z["mu", "mu"]
    e_z = key_m / key_n if key_n > 0 else 0.0
    leak = f_ec * key_n * float(binary_entropy(np.clip(e_z, 0.0, 0.5), np))
    length = s11_z * (1 - float(binary_entropy(phi, np))) - leak
    length -= 6 * np.log2(MDI_ESTIMATES / s.eps_sec) + np.log2(2 / s.eps_cor)
    return {"n_z": key_n, "y11_z": y11_z, "y11_x": y11_x, "e11_x": e11_x, "s11_z": s11_z, "s11_x": s11_x,
            "phi": phi, "leak": leak, "length": float(length)}  # fmt: skip
