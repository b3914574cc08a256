"""Independent brute-force check of the MDI-QKD closed forms.

The relay is modelled explicitly: a 50:50 beam splitter, a polarising beam splitter at each output
and four threshold detectors (cH, cV, dH, dV) with dark counts; a successful BSM is exactly one H
and one V click. Weak coherent pulses: for a fixed relative phase the four output modes are
independent coherent states, so each detector clicks independently; the phase randomisation is
integrated numerically (trapezoid rule, exponentially accurate for a smooth periodic integrand).
Single photons: Fock-state amplitudes through the beam splitter (Hong–Ou–Mandel included), loss
before the relay. Misalignment flips the announced parity with probability e_mis, which is the
model behind Ma–Razavi's (B3), (B5), (A10), (A11).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pytest

from qverify.physics import mdi

S2 = math.sqrt(2.0)
POL = {"Z": [(1.0, 0.0), (0.0, 1.0)], "X": [(1 / S2, 1 / S2), (1 / S2, -1 / S2)]}
# detector order: cH, cV, dH, dV; psi- = (cH, dV) or (cV, dH); psi+ = (cH, cV) or (dH, dV)
PSI_MINUS = [(1, 0, 0, 1), (0, 1, 1, 0)]
PSI_PLUS = [(1, 1, 0, 0), (0, 0, 1, 1)]


def _pattern_probs(click: list[float]) -> tuple[float, float]:
    def p(pattern: tuple[int, ...]) -> float:
        return math.prod(c if k else 1 - c for c, k in zip(click, pattern, strict=True))

    return sum(p(x) for x in PSI_MINUS), sum(p(x) for x in PSI_PLUS)


def _is_error(basis: str, a: int, b: int, minus: bool) -> bool:
    if basis == "Z":
        return a == b
    return (a == b) == minus


def brute_wcp(mu_a, mu_b, eta_a, eta_b, pd, e_mis, basis, n_phase=512):
    amp_a, amp_b = math.sqrt(eta_a * mu_a), math.sqrt(eta_b * mu_b)
    phis = 2 * np.pi * np.arange(n_phase) / n_phase
    gain = err = 0.0
    for a, b in itertools.product((0, 1), repeat=2):
        ua, ub = POL[basis][a], POL[basis][b]
        acc_m = acc_p = 0.0
        for phi in phis:
            e = np.exp(1j * phi)
            means = [
                abs(amp_a * ua[0] + e * amp_b * ub[0]) ** 2 / 2,
                abs(amp_a * ua[1] + e * amp_b * ub[1]) ** 2 / 2,
                abs(amp_a * ua[0] - e * amp_b * ub[0]) ** 2 / 2,
                abs(amp_a * ua[1] - e * amp_b * ub[1]) ** 2 / 2,
            ]
            m, p = _pattern_probs([1 - (1 - pd) * math.exp(-x) for x in means])
            acc_m += m / n_phase
            acc_p += p / n_phase
        gain += (acc_m + acc_p) / 4
        wrong = acc_m * _is_error(basis, a, b, True) + acc_p * _is_error(basis, a, b, False)
        right = acc_m + acc_p - wrong
        err += (e_mis * right + (1 - e_mis) * wrong) / 4
    return gain, err


def _fock_after_bs(photons: list[tuple[str, tuple[float, float]]]) -> dict[tuple[int, ...], float]:
    """Occupation probabilities of (cH, cV, dH, dV) for single photons from 'a' and/or 'b'."""
    amp: dict[tuple[int, ...], complex] = defaultdict(complex)
    modes = []
    for side, (h, v) in photons:
        s = 1 if side == "a" else -1
        modes.append({0: h / S2, 1: v / S2, 2: s * h / S2, 3: s * v / S2})
    for combo in itertools.product(*[m.items() for m in modes]):
        occ = [0, 0, 0, 0]
        coef = 1.0 + 0j
        for mode, c in combo:
            occ[mode] += 1
            coef *= c
        amp[tuple(occ)] += coef
    return {o: abs(c) ** 2 * math.prod(math.factorial(k) for k in o) for o, c in amp.items()}


def brute_single(eta_a, eta_b, pd, e_mis, basis):
    gain = err = 0.0
    for a, b in itertools.product((0, 1), repeat=2):
        ua, ub = POL[basis][a], POL[basis][b]
        cases = [
            (eta_a * eta_b, [("a", ua), ("b", ub)]),
            (eta_a * (1 - eta_b), [("a", ua)]),
            ((1 - eta_a) * eta_b, [("b", ub)]),
            ((1 - eta_a) * (1 - eta_b), []),
        ]
        for w, photons in cases:
            dist = _fock_after_bs(photons) if photons else {(0, 0, 0, 0): 1.0}
            for occ, p in dist.items():
                m, pl = _pattern_probs([1.0 if k else pd for k in occ])
                wrong = m * _is_error(basis, a, b, True) + pl * _is_error(basis, a, b, False)
                gain += w * p * (m + pl) / 4
                err += w * p * (e_mis * (m + pl - wrong) + (1 - e_mis) * wrong) / 4
    return gain, err


CASES = [
    (0.5, 0.5, 0.1, 0.05, 1e-3, 0.015),
    (0.3, 0.7, 0.8, 0.6, 1e-2, 0.03),
    (0.5, 0.5, 1e-3, 1e-3, 3e-6, 0.015),
    (0.05, 0.6, 0.3, 0.02, 1e-4, 0.0),
    (1.2, 0.0, 0.4, 0.4, 1e-3, 0.1),
]


@pytest.mark.parametrize(("mu_a", "mu_b", "eta_a", "eta_b", "pd", "e_mis"), CASES)
@pytest.mark.parametrize("basis", ["Z", "X"])
def test_wcp_gains_match_click_model(mu_a, mu_b, eta_a, eta_b, pd, e_mis, basis):
    fn = mdi.gains_z if basis == "Z" else mdi.gains_x
    g = fn(mu_a, mu_b, eta_a, eta_b, pd, e_mis)
    bg, be = brute_wcp(mu_a, mu_b, eta_a, eta_b, pd, e_mis, basis)
    assert float(g.gain) == pytest.approx(bg, rel=1e-9)
    assert float(g.error_gain) == pytest.approx(be, rel=1e-9)


@pytest.mark.parametrize(
    ("eta_a", "eta_b", "pd", "e_mis"),
    [(0.1, 0.05, 1e-3, 0.015), (0.8, 0.6, 1e-2, 0.03), (0.3, 0.3, 0.0, 0.02), (1.0, 1.0, 0.2, 0.0)],
)
@pytest.mark.parametrize("basis", ["Z", "X"])
def test_single_photon_yield_and_error_match_fock_model(eta_a, eta_b, pd, e_mis, basis):
    bg, be = brute_single(eta_a, eta_b, pd, e_mis, basis)
    assert float(mdi.y11(eta_a, eta_b, pd)) == pytest.approx(bg, rel=1e-9)
    assert float(mdi.e11(eta_a, eta_b, pd, e_mis, basis) * mdi.y11(eta_a, eta_b, pd)) == pytest.approx(be, rel=1e-9)
