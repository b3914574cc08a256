"""The network's measurement path: verification rounds sampled from the protocol circuits' distributions.

Each epoch every link runs ``verify_rounds`` single-photon test rounds of the protocol it runs in
that slot: the MDI-QKD Bell-state measurement (:func:`qverify.protocols.mdi.mdi_round`) or BB84
prepare-and-measure (:func:`qverify.protocols.bb84_rounds.round_circuit`), bases Z, X, Y in equal
shares, bits uniform. Each circuit has two mixing probabilities:

* ``λ``: the depolarising channel on Alice's photon (Aer ``depolarizing_error(λ, 1)`` on its
  fibre), which flips the Z- and X-basis outcomes with probability λ/2;
* ``p``: the injection probability of a Byzantine relay (MDI-QKD) or endpoint (BB84): the photon
  swapped for a maximally mixed one.

The outcome distribution is linear in each (each is a convex mixture of two channels), hence
bilinear in (λ, p): the four corner distributions (λ, p ∈ {0, 1}), computed once and exactly with
Aer's density-matrix method, mix into the exact distribution of any link:
``P(λ, p) = (1−λ)(1−p) P₀₀ + λ(1−p) P₁₀ + (1−λ)p P₀₁ + λp P₁₁`` — four corners per protocol.
The BSM heralds about half of its rounds; BB84 test rounds are all detected.

Per link and slot, ``p`` is the injecting neighbour's probability (0 if none) and ``λ`` is set so
that the circuit's key-basis error equals the link's signal QBER of the slot (closed form: every
photon number, dark counts, detector and channel state): ``e = λ/2 (1 − p) + p/2``. Test rounds
spread evenly over the epoch, so the epoch's distribution is the mean of the slots' ones (a link
that switches protocol mixes both models in proportion). The closed form is a test-only
cross-check (``tests/network``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from qverify.network.binomial import binomial
from qverify.verify.report import FidelityReport
from qverify.verify.stats import Estimate, clopper_pearson_arrays

if TYPE_CHECKING:
    from qverify.network.model import NetParams

BASIS_NAMES = ("Z", "X", "Y")


CORNERS = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0))
"""The corners (λ, p) of each protocol's test model; MDI-QKD's four come first, then BB84's."""


@cache
def corner_distributions() -> np.ndarray:
    """(8, 3, 3): per corner, per basis Z, X, Y, the probabilities of (error, correct herald, no
    herald) for a uniformly drawn setting of that basis. Corners 0–3: the MDI-QKD BSM rounds at
    (λ, p) in :data:`CORNERS` order; 4–7: the BB84 prepare-and-measure rounds at the same corners.

    Exact (Aer density matrix) on :func:`qverify.protocols.mdi.mdi_circuits` with relay ``inject``
    and on :func:`qverify.protocols.bb84_rounds.all_rounds` with its channel noise.
    """
    from qverify.backends import exact_distributions
    from qverify.protocols import bb84_rounds
    from qverify.protocols.mdi import BASES, BSMNoise, mdi_circuits, mdi_noise_model, round_labels
    from qverify.verify.bsm import _outcome_tables

    labels = round_labels(BASES)
    herald, error = _outcome_tables(labels)
    basis_of = np.array([lab[0] for lab in labels])
    out = np.zeros((8, 3, 3))
    for c, (lam, p) in enumerate(CORNERS):
        probs = exact_distributions(mdi_circuits("inject", BASES, p), mdi_noise_model(BSMNoise(e_mis=lam / 2)))
        for b, name in enumerate(BASIS_NAMES):
            rows = basis_of == name
            err = (probs[rows] * error[rows]).sum(axis=1).mean()
            her = (probs[rows] * herald[rows]).sum(axis=1).mean()
            out[c, b] = (err, her - err, 1.0 - her)
    rounds = bb84_rounds.all_rounds()
    for c, (lam, p) in enumerate(CORNERS):
        probs = exact_distributions([qc for _, _, qc in rounds], bb84_rounds.channel_noise(lam, p))
        for b, name in enumerate(BASIS_NAMES):
            wrong = [probs[i, 1 - bit] for i, (basis, bit, _) in enumerate(rounds) if basis == name]
            err = float(np.mean(wrong))
            out[4 + c, b] = (err, 1.0 - err, 0.0)
    return out


def corner_weights(qber: jax.Array, inject_prob: jax.Array, use_mdi: jax.Array | None = None) -> jax.Array:
    """(E, 8) weights of the corners for links of true QBER ``qber`` under injection ``p``, running
    MDI-QKD (corners 0–3) where ``use_mdi`` (default: everywhere) and BB84 (4–7) elsewhere.

    Both test models flip a key bit with ``e = λ/2 (1 − p) + p/2``; λ is solved from it.
    """
    p = jnp.clip(inject_prob, 0.0, 1.0)
    e0 = jnp.clip((qber - p / 2) / jnp.maximum(1.0 - p, 1e-12), 0.0, 0.5)
    lam = jnp.where(p < 1.0, 2.0 * e0, 0.0)
    w = jnp.stack([(lam if cl else 1 - lam) * (p if cp else 1 - p) for cl, cp in CORNERS], axis=-1)
    mdi = jnp.ones(w.shape[:-1], bool) if use_mdi is None else jnp.asarray(use_mdi, bool)
    return jnp.concatenate([jnp.where(mdi[..., None], w, 0.0), jnp.where(mdi[..., None], 0.0, w)], axis=-1)


def depolarising(mix: jax.Array) -> jax.Array:
    """(E,) the epoch-mean λ of each link from its accumulated corner weights (E, 8): the weight of
    the corners with λ = 1 (1, 3, 5, 7 in :data:`CORNERS` order, both protocols), over all."""
    lam = mix[:, 1] + mix[:, 3] + mix[:, 5] + mix[:, 7]
    return lam / jnp.maximum(mix.sum(axis=1), 1e-30)


def distribution(mix: jax.Array, corners: jax.Array) -> jax.Array:
    """(E, 3, 3) outcome probabilities per link and basis from accumulated corner weights."""
    w = mix / jnp.maximum(mix.sum(axis=-1, keepdims=True), 1e-30)
    return jnp.einsum("ec,cbk->ebk", w, corners)


# Jitted, so that eager calls in a loop compile once per shape (see qverify.network.model.run).
@jax.jit
def measure(
    key: jax.Array,
    mix: jax.Array,
    active: jax.Array,
    byzantine: jax.Array,
    params: NetParams,
    extra: tuple[jax.Array, jax.Array] | None = None,
    rounds: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Sample one epoch's test rounds; returns (reported (E, 2), counts (E, 3, 2), extra counts).

    ``rounds`` (E,): test rounds of each link this epoch (default ``params.verify_rounds``), a third
    per basis Z, X, Y.

    ``counts[..., 0]`` errors, ``counts[..., 1]`` heralds per basis. The QBER estimate is the pooled
    Z and X error fraction; with no herald at all it reads 0.5 (nothing verified).

    ``extra = (trials, probabilities)``: other binomial counts of the epoch (the node checks), drawn
    in the same call as the error counts and returned third (empty without ``extra``). Counts are
    drawn by :func:`qverify.network.binomial.binomial`, whose loops run until every element is
    done, so one call for both costs less than two.
    """
    p = params
    probs = distribution(mix, p.corners)
    total = p.verify_rounds if rounds is None else rounds
    n = jnp.floor(jnp.asarray(total, jnp.float32) / 3.0)[..., None]
    k_err, k_ok = jax.random.split(key)
    p_err = jnp.clip(probs[..., 0], 0.0, 1.0)
    trials, chance = extra if extra is not None else (jnp.zeros(0), jnp.zeros(0))
    both = binomial(
        k_err,
        jnp.concatenate([jnp.broadcast_to(n, p_err.shape).ravel(), trials.ravel()]),
        jnp.concatenate([p_err.ravel(), jnp.clip(chance, 0.0, 1.0).ravel()]),
    )
    err, drawn = both[: p_err.size].reshape(p_err.shape), both[p_err.size :].reshape(trials.shape)
    p_ok = jnp.clip(probs[..., 1] / jnp.maximum(1.0 - p_err, 1e-30), 0.0, 1.0)
    ok = binomial(k_ok, n - err, p_ok)
    counts = jnp.stack([err, err + ok], axis=-1)
    q = measured_qber(counts, jnp)
    a, b = p.link_a, p.link_b
    reps = []
    for me, other in ((a, b), (b, a)):
        r = jnp.where(p.lie & active[me], 0.0, q)
        r = jnp.where(p.slander & active[me] & ~byzantine[other], 0.5, r)
        reps.append(r)
    return jnp.stack(reps, axis=1).astype(jnp.float32), counts.astype(jnp.int32), drawn


def measured_qber(counts: Any, xp: Any = np) -> Any:
    """(…, E) pooled Z and X error fraction of an epoch's counts (…, E, 3, 2); 0.5 where nothing heralded.

    ``xp`` is the array module (numpy on the host, ``jax.numpy`` inside the model).
    """
    errors = counts[..., 0, 0] + counts[..., 1, 0]
    zx = counts[..., 0, 1] + counts[..., 1, 1]
    return xp.where(zx > 0, errors / xp.maximum(zx, 1), 0.5)


def claim_upper(reported: np.ndarray, counts: np.ndarray | None, confidence: float = 0.95) -> np.ndarray:
    """(E, 2) the conservative statistic host decisions use: each endpoint's claim read as errors out
    of the epoch's heralded Z/X test rounds (``rint(claim × rounds)``, as :func:`link_reports` does),
    and the one-sided Clopper–Pearson upper bound of that rate at ``confidence``. Fewer rounds give a
    larger bound, so a decision made on it is more conservative. Where no round was heralded (before
    the first epoch) the claim itself stands. ``claim × rounds`` is taken in float32, the precision
    of the network's reports, so that host and model read the same count. Usable links, routes and
    (through ``FidelityReport.qber_upper``) weights read it; the model computes the same bound in
    float32 (:func:`qverify.network.estimation.claim_bounds`).
    """
    from scipy.stats import beta

    rep = np.clip(np.asarray(reported, dtype=float), 0.0, 1.0)
    if counts is None:
        return rep
    c = np.asarray(counts, dtype=np.int64)
    n = (c[:, 0, 1] + c[:, 1, 1]).astype(float)[:, None]
    # The product in float32, as the network's reports are and as the model takes it
    # (qverify.network.estimation.claim_bounds): a claim times n at a half-integer, such as
    # 0.05 × 90, must round to the same count on both sides (exact integers up to 2^24 rounds).
    k = np.rint(rep.astype(np.float32) * n.astype(np.float32)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        upper = np.where(k < n, beta.ppf(confidence, k + 1, np.maximum(n - k, 1)), 1.0)
    return np.where(n > 0, upper, rep)


def link_reports(
    nodes: Sequence[str],
    link_a: np.ndarray,
    link_b: np.ndarray,
    counts: np.ndarray,
    reported: np.ndarray,
    time_s: float,
    confidence: float = 0.95,
) -> list[FidelityReport]:
    """Both endpoints' :class:`~qverify.verify.report.FidelityReport` for every link (host side).

    ``counts`` (E, 3, 2) are the epoch's public test outcomes (errors, heralds per basis). An endpoint
    whose reported QBER differs from the one the counts give claims error counts consistent with its
    report (errors = report × heralds in every basis); its fidelity and interval follow from them, so
    a lie is a lie about counts, never a free-standing number. Fidelity ``F = 1 − (e_x + e_y + e_z)/2``
    with per-basis Clopper–Pearson at ``1 − (1 − c)/3`` (Bonferroni), as in :mod:`qverify.verify.bsm`.
    ``qber_upper``, what the weights read, is :func:`claim_upper` of the claim at ``confidence``
    (pooled Z/X rounds, one-sided), clipped to [0, 0.5]: the host twin of the model's
    :func:`qverify.network.estimation.claim_bounds`.
    """
    counts = np.asarray(counts, dtype=np.int64)
    reported = np.asarray(reported, dtype=float)
    heralds = counts[..., 1]
    measured = measured_qber(counts)
    upper = np.clip(claim_upper(reported, counts, confidence), 0.0, 0.5)
    per_basis_conf = 1 - (1 - confidence) / 3
    out: list[FidelityReport] = []
    for side in (0, 1):
        claim = reported[:, side]
        honest = np.isclose(claim, measured, atol=1e-6)
        errs = np.where(honest[:, None], counts[..., 0], np.rint(claim[:, None] * heralds)).astype(np.int64)
        lo, hi = clopper_pearson_arrays(errs, heralds, per_basis_conf)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(heralds > 0, errs / np.maximum(heralds, 1), 0.5)
        fid = 1 - rate.sum(axis=1) / 2
        f_lo = np.maximum(0.0, 1 - hi.sum(axis=1) / 2)
        f_hi = np.minimum(1.0, 1 - lo.sum(axis=1) / 2)
        for k in range(len(link_a)):
            a, b = nodes[int(link_a[k])], nodes[int(link_b[k])]
            est = Estimate(
                float(fid[k]), float(f_lo[k]), float(f_hi[k]), confidence, int(heralds[k].min()), "exact", "bonferroni"
            )
            reporter = a if side == 0 else b
            qber = float(np.clip(claim[k], 0.0, 0.5))
            out.append(
                FidelityReport(
                    f"{a}–{b}", "link", est, qber, time_s, reporter, (a, b), qber_upper=float(upper[k, side])
                )
            )
    return out
