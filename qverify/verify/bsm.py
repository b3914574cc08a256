"""MDI-QKD Bell-state measurement: from circuit counts to error rates and fidelity with intervals.

A *run* executes the 12 rounds of :func:`qverify.protocols.mdi.round_labels` (Z, X, Y bases × bits)
with the same number of shots each and reports, among the heralded ψ± events:

* ``e_z``, ``e_x``, ``e_y``: single-photon error rates (e11 at the circuit level) per basis;
* ``psi_minus_fraction``: fraction of heralds announced as ψ−;
* ``fidelity``: fidelity of the heralded two-photon state with the announced Bell state,
  ``F = 1 − (e_x + e_y + e_z)/2``. This is exact for any state: the projector on ψ± is
  ``(I ± XX ± YY − ZZ)/4`` and each correlator is ``1 − 2 e`` of its basis (source replacement
  turns the prepare-and-measure rounds into measurements of the heralded state).
* ``success``: the probability that a round heralds ψ± (1/2 for an honest lossless relay = Y11).

Intervals are Clopper–Pearson; the fidelity interval combines the three basis intervals at
confidence ``1 − (1 − c)/3`` each (Bonferroni), so it holds at level ``c``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from qverify.backends import Counts, sample_counts
from qverify.errors import ChoiceError
from qverify.protocols.mdi import BASES, RELAYS, BSMNoise, mdi_circuits, mdi_noise_model, round_labels
from qverify.verify.stats import Estimate

RUN_RELAYS: tuple[str, ...] = ("intercept_resend", *RELAYS)
"""Relays :func:`run_bsm` accepts: ``"intercept_resend"`` intercepts every photon of Alice in a
basis drawn uniformly from {Z, X} (an equal mixture of the two fixed-basis circuits); theory gives
e_z = e_x = 1/4 with an otherwise noiseless link."""


@dataclass(frozen=True)
class BSMResult:
    """Result of :func:`run_bsm`; every field an :class:`Estimate` except the provenance."""

    e_z: Estimate
    e_x: Estimate
    e_y: Estimate
    psi_minus_fraction: Estimate
    success: Estimate
    fidelity: Estimate
    relay: str
    params: dict[str, Any]

    @property
    def qber(self) -> float:
        """Mean of the Z and X error rates (the BB84 bases)."""
        return 0.5 * (self.e_z.value + self.e_x.value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _outcome_tables(labels: list[tuple[str, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per circuit, masks over the 4 outcomes (index = clbit0 + 2 clbit1): herald, error."""
    herald = np.zeros((len(labels), 4), dtype=bool)
    error = np.zeros((len(labels), 4), dtype=bool)
    for i, (basis, a, b) in enumerate(labels):
        for outcome in range(4):
            psi_minus, heralded = outcome & 1, (outcome >> 1) & 1
            if not heralded:
                continue
            herald[i, outcome] = True
            if basis == "Z":
                error[i, outcome] = a == b
            else:  # X, Y: ψ+ ⇔ equal bits
                error[i, outcome] = (a == b) == bool(psi_minus)
    return herald, error


def analyse_bsm(counts: Counts, labels: list[tuple[str, int, int]], confidence: float = 0.95) -> dict[str, Estimate]:
    """Error rates, ψ− fraction, herald probability and fidelity from the 12 rounds' counts."""
    herald, error = _outcome_tables(labels)
    basis_of = np.array([lab[0] for lab in labels])
    probs = counts.probabilities
    out: dict[str, Estimate] = {}
    per_basis_conf = 1 - (1 - confidence) / 3
    fid_parts: list[Estimate] = []
    for basis in BASES:
        rows = basis_of == basis
        n_herald = int((counts.counts[rows] * herald[rows]).sum())
        n_err = int((counts.counts[rows] * error[rows]).sum())
        exact = None
        if probs is not None:
            exact = float((probs[rows] * error[rows]).sum() / (probs[rows] * herald[rows]).sum())
        out[f"e_{basis.lower()}"] = Estimate.binomial(n_err, n_herald, confidence, counts.method, exact)
        fid_parts.append(Estimate.binomial(n_err, n_herald, per_basis_conf, counts.method, exact))
    n_total = int(counts.counts.sum())
    heralds = counts.counts * herald
    n_herald = int(heralds.sum())
    n_minus = int(heralds[:, [1, 3]].sum())
    ex_minus = ex_success = None
    if probs is not None:
        ex_success = float((probs * herald).sum() / len(labels))
        ex_minus = float((probs * herald)[:, [1, 3]].sum() / (probs * herald).sum())
    out["psi_minus_fraction"] = Estimate.binomial(n_minus, n_herald, confidence, counts.method, ex_minus)
    out["success"] = Estimate.binomial(n_herald, n_total, confidence, counts.method, ex_success)
    value = 1 - sum(p.value for p in fid_parts) / 2
    exact_f = None if probs is None else 1 - sum(p.exact or 0.0 for p in fid_parts) / 2
    out["fidelity"] = Estimate(
        value=value,
        low=max(0.0, 1 - sum(p.high for p in fid_parts) / 2),
        high=min(1.0, 1 - sum(p.low for p in fid_parts) / 2),
        confidence=confidence,
        trials=min(p.trials for p in fid_parts),
        method=counts.method,
        interval="bonferroni",
        exact=exact_f,
    )
    return out


def run_bsm(
    noise: BSMNoise | None = None,
    relay: str = "honest",
    shots: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
    inject_prob: float = 1.0,
    method: str = "auto",
) -> BSMResult:
    """Simulate ``shots`` rounds of each of the 12 settings and analyse them.

    >>> r = run_bsm(BSMNoise(e_mis=0.02), shots=20_000, seed=1)
    >>> round(r.e_z.exact, 12), r.e_z.contains(0.02)
    (0.02, True)
    """
    noise = noise or BSMNoise()
    if relay not in RUN_RELAYS:
        raise ChoiceError("relay", relay, RUN_RELAYS)
    parts = ["intercept_resend_z", "intercept_resend_x"] if relay == "intercept_resend" else [relay]
    labels = round_labels(BASES) * len(parts)
    circuits = [qc for part in parts for qc in mdi_circuits(part, BASES, inject_prob)]
    counts = sample_counts(circuits, shots, np.random.default_rng(seed), mdi_noise_model(noise), method)
    est = analyse_bsm(counts, labels, confidence)
    params = {**asdict(noise), "relay": relay, "shots": shots, "seed": seed, "confidence": confidence}
    if relay == "inject":
        params["inject_prob"] = inject_prob
    return BSMResult(relay=relay, params=params, **est)
