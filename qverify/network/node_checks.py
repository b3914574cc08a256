"""Node checks: every epoch each node's entanglement source is verified by GHZ tests with its neighbours.

Protocol (Pappa et al., PRL 108, 260502, 2012; :mod:`qverify.protocols.ghz`): node ``i`` prepares an
``n``-party GHZ state, keeps qubit 0 and sends one qubit to each of its first ``n − 1`` neighbours
(at most :data:`MAX_PARTIES` − 1, in link order; a node with fewer than two neighbours is not
checked). In every round one of those neighbours, drawn uniformly, is the verifier: it hands out the
X/Y challenges, collects the announced outcomes and records pass or fail. Each neighbour reports on
the rounds it verified (``node_rounds`` rounds per node and epoch, split evenly).

The qubit sent over link ``k`` meets that link's depolarising channel ``λ_k`` (the epoch mean of
the λ that :mod:`qverify.network.measure` fits to the link's QBER). The pass probability is
multilinear in the ``λ_k`` and, for both sources below, symmetric in the sent qubits, so with
``T[n, m]`` the exact pass probability of an ``n``-party source whose first ``m`` sent qubits are
fully depolarised,

    ``P = Σ_m e_m(λ) T[n, m]``, ``e_m`` = Σ over m-subsets of Π λ (rest 1 − λ),

exact for every node. ``T`` is computed once from the density matrices Aer gives for the sources of
:func:`qverify.protocols.ghz.shared_state` (``honest`` and ``product_source``). A Byzantine node that
injects (active from the onset slot) sends a product source instead of a GHZ state with its
injection probability.

Each neighbour turns its pass fraction ``P̂`` into a QBER-equivalent: the error ``e = λ/2`` of the
equal per-link depolarising channel under which an honest source passes at that rate,
``e = (1 − (2P̂ − 1)^{1/(n−1)}) / 2`` (0.5 when ``P̂ ≤ 1/2``), so the control plane normalises node
checks by the same abort QBER as links. Byzantine neighbours may lie in their reports: a slanderer
claims 0.5 for an honest node, a liar vouches (0) for a Byzantine one when Byzantine nodes collude.
The fidelity reported beside it is the dishonest-party bound of :mod:`qverify.verify.dishonest`
(any coalition colluding with the source; ``F ≥ ½`` needs ``P ≥ 0.854``, ``F ≥ 0.9`` needs
``P ≥ 0.9707``), named in the report. The QBER-equivalent ``qber`` is a different, weaker figure: it
assumes the source's partners measure as told (an honest-measurement calibration); a source whose
partners collude can pass at ``P* ≈ 0.854`` with ``F = ½`` and map to a QBER-equivalent of 0.024–0.080
for 2–7 partners, below an 11 % abort level. Consumers that must resist colluding partners read the
fidelity bound, not ``qber``.

What the checks assume: test rounds are drawn at random among the source's rounds and the node
cannot tell them apart, as in Pappa et al.; a node that could tell would pass every check and
cheat elsewhere. With more than 2f partners, up to f lying partners cannot move a node's check
loss outside the range of its honest partners' reports (trimmed median, tested); with fewer, a
colluding partner's vouching is bounded by the upper median only.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from qverify.verify.dishonest import DISHONEST_BOUND, dishonest_fidelity_bound
from qverify.verify.report import FidelityReport
from qverify.verify.stats import Estimate, clopper_pearson_arrays

MAX_PARTIES = 8
"""Largest GHZ state of a node check (the node and seven neighbours): exact density matrices of 8 qubits."""

SOURCES = ("honest", "product_source")
BOUND = DISHONEST_BOUND
"""The bound of node reports' ``estimate`` (its ``method``)."""
QBER_ASSUMPTION = (
    "qber: QBER-equivalent of the pass rate assuming every partner measures as told (honest-measurement "
    "calibration; colluding partners can pass at P* = 0.854 with F = 1/2 and a qber of 0.024-0.080)"
)
"""The trust assumption of node reports' ``qber`` (what the control plane's weights read)."""
REPORT_BOUND = f"estimate: {BOUND}; {QBER_ASSUMPTION}"
"""What a node report's ``bound`` field says: the estimate's bound and the qber's assumption."""


def _depolarise(rho: np.ndarray, qubit: int, n: int) -> np.ndarray:
    """``ρ`` with ``qubit`` replaced by I/2 (Qiskit order: qubit 0 least significant)."""
    t = rho.reshape((2,) * (2 * n))
    row, col = n - 1 - qubit, 2 * n - 1 - qubit
    reduced = np.trace(t, axis1=row, axis2=col)
    full = np.multiply.outer(reduced, np.eye(2) / 2)  # new qubit axes at the end: move them back
    order = list(range(2 * n - 2))
    order.insert(row, 2 * n - 2)
    order.insert(col, 2 * n - 1)
    return np.transpose(full, order).reshape(rho.shape)


@cache
def corner_table() -> np.ndarray:
    """(2, MAX_PARTIES + 1, MAX_PARTIES) pass probabilities ``T[source, n, m]`` (0 where undefined).

    Source 0 honest GHZ, 1 product source; ``n`` parties (3 … MAX_PARTIES), ``m`` of the ``n − 1``
    sent qubits fully depolarised; averaged over the 2^(n−1) even challenges. Exact (Aer density matrix).
    """
    from qverify.backends import exact_density_matrix
    from qverify.protocols.ghz import measured_bases, shared_state
    from qverify.verify.ghz import even_thetas, pauli_flip_expectation

    out = np.zeros((len(SOURCES), MAX_PARTIES + 1, MAX_PARTIES))
    for s, source in enumerate(SOURCES):
        for n in range(3, MAX_PARTIES + 1):
            rho = exact_density_matrix(shared_state(n, source))
            thetas = even_thetas(n)
            for m in range(n):
                signs = np.array([(-1) ** (int(t.sum()) // 2) for t in thetas])
                exps = np.array([pauli_flip_expectation(rho, measured_bases(list(t), "honest")) for t in thetas])
                out[s, n, m] = float(np.mean(0.5 + 0.5 * signs * exps))
                if m < n - 1:
                    rho = _depolarise(rho, m + 1, n)
    return out


def partners(node_links: Any) -> np.ndarray:
    """(N, W) the link (index) to each check partner, −1 padding; host side.

    ``W = min(MAX_PARTIES − 1, largest degree)``: every count drawn costs time, padding included.
    """
    inc = np.asarray(node_links)[:, : MAX_PARTIES - 1]
    n_partners = (inc >= 0).sum(axis=1)
    return np.where(n_partners[:, None] >= 2, inc, -1)


def pass_probability(
    lam: jax.Array, check_links: jax.Array, cheat: jax.Array, table: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """(N,) pass probability of every node's check and (N,) its number of partners.

    ``lam`` (E,) per-link depolarising probability, ``check_links`` from :func:`partners`, ``cheat``
    (N,) probability that a round's source is a product state.
    """
    has = check_links >= 0
    lam_k = jnp.where(has, lam[jnp.where(has, check_links, 0)], 0.0)

    def fold(c: jax.Array, xs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        lk, hk = xs  # (N,), (N,)
        shifted = jnp.concatenate([jnp.zeros_like(c[:, :1]), c[:, :-1]], axis=1)
        new = (1 - lk)[:, None] * c + lk[:, None] * shifted
        return jnp.where(hk[:, None], new, c), None

    c0 = jnp.zeros((lam_k.shape[0], MAX_PARTIES), lam.dtype).at[:, 0].set(1.0)  # c_m: m of the k qubits depolarised
    coeff, _ = jax.lax.scan(fold, c0, (lam_k.T, has.T))
    k = has.sum(axis=1)
    rows = table[:, jnp.clip(k + 1, 0, MAX_PARTIES)]  # (2, N, MAX_PARTIES)
    p_src = jnp.einsum("nm,snm->sn", coeff, rows)
    return (1 - cheat) * p_src[0] + cheat * p_src[1], k


def qber_equivalent(pass_fraction: Any, partners_n: Any, xp: Any = np) -> Any:
    """The per-link error ``λ/2`` under which an honest source with ``partners_n`` sent qubits passes
    at ``pass_fraction``: ``(1 − (2P − 1)^{1/k}) / 2``, 0.5 when ``P ≤ 1/2``.

    >>> round(float(qber_equivalent(0.5 + 0.5 * (1 - 0.04) ** 3, 3)), 12)  # λ = 0.04 on three links
    0.02
    """
    base = xp.clip(2 * pass_fraction - 1, 0.0, 1.0)
    return xp.where(base > 0, (1 - base ** (1.0 / xp.maximum(partners_n, 1))) / 2, 0.5)


def implied_failures(claims: Any, rounds: Any, partners_n: Any, xp: Any = np) -> Any:
    """Failed rounds a partner's claim (QBER-equivalent) implies, out of its ``rounds``: ``rounds −
    rint(rounds × P)`` with ``P = ½ + ½ (1 − 2·claim)^k`` the pass fraction :func:`qber_equivalent`
    inverts (``k = partners_n``); 0 where there is no claim (``inf``). float32 on both sides, so host
    and model read the same count (an honest partner's claim gives back its own count).

    >>> implied_failures(np.array([0.02, 0.5, 0.0, np.inf]), np.array([1000, 1000, 1000, 0]), 3).tolist()
    [58.0, 500.0, 0.0, 0.0]
    """
    has = xp.isfinite(claims)
    c = xp.asarray(xp.clip(xp.where(has, claims, 0.5), 0.0, 0.5), xp.float32)
    n = xp.asarray(rounds, xp.float32)
    k = xp.asarray(xp.maximum(partners_n, 1), xp.float32)
    one, half = xp.float32(1.0), xp.float32(0.5)
    passes = xp.rint(n * (half + half * (one - 2 * c) ** k))
    return xp.where(has, n - passes, 0.0).astype(xp.float32)


def upper_qber(failure_upper: Any, claims: Any, partners_n: Any, xp: Any = np) -> Any:
    """The conservative statistic of node-check claims: the QBER-equivalent of the pass fraction's
    lower confidence bound ``1 − failure_upper`` (an upper confidence bound of the failure rate the
    claim implies, see :func:`claim_upper`), ``inf`` where there is no claim. Fewer rounds give a
    larger statistic; a claim of 0.5 stays 0.5, a claim of 0 becomes the bound of no failure."""
    q = qber_equivalent(1.0 - failure_upper, partners_n, xp)
    return xp.where(xp.isfinite(claims), q, xp.inf)


def claim_upper(claims: Any, rounds: Any, partners_n: Any, confidence: Any = 0.95, xp: Any = np) -> Any:
    """The node-check statistic the weights read, per claim (any shape): :func:`upper_qber` of the
    failures the claim implies (:func:`implied_failures`) out of the partner's ``rounds``, bounded at
    ``confidence`` in closed form (the smaller of Hoeffding's and the relative Chernoff bound,
    :func:`qverify.network.estimation.cp_bracket`'s upper end: a valid bound at level ≥
    ``confidence``, looser than Clopper–Pearson, at 50 failures in 1000 rounds and c = 0.95 0.0706
    against 0.0629, and free of ``betainc``, whose Newton solve per check would make every epoch end
    of the model several times dearer under ``vmap``); ½ where the failures are half the rounds or
    more, ``inf`` where there is no claim. One function for both sides: the model calls it with
    ``xp = jax.numpy`` (float32, in :func:`qverify.network.model.step`), the host with numpy (float64,
    :func:`node_reports`).

    >>> claim_upper(np.array([0.02, 0.02, 0.5]), np.array([4000, 250, 250]), 3).round(4).tolist()
    [0.0237, 0.0384, 0.5]
    """
    from qverify.network.estimation import cp_bracket

    dtype = np.float64 if xp is np else jnp.float32
    claims = xp.asarray(claims, dtype)
    n = xp.broadcast_to(xp.asarray(rounds, dtype), claims.shape)
    fails = implied_failures(claims, n, partners_n, xp).astype(dtype)
    u = xp.where(n > 0, cp_bracket(fails, xp.maximum(n, 1.0), xp.asarray(confidence, dtype), xp)[1], 1.0)
    u = xp.where((2 * fails >= n) & (n > 0), 0.5, u)
    return upper_qber(u, claims, partners_n, xp)


def trials(lam: jax.Array, active: jax.Array, params: Any) -> tuple[jax.Array, jax.Array]:
    """(rounds (N, W), pass probability (N, W)) of one epoch's node checks: the binomial draws
    :func:`claims` turns into reports (W from :func:`partners`)."""
    p = params
    cheat = jnp.where(active & p.node_cheat, p.inject_prob, 0.0)
    prob, k = pass_probability(lam, p.check_links, cheat, p.check_table)
    has = p.check_links >= 0
    rounds = jnp.where(has, jnp.floor(jnp.asarray(p.node_rounds, jnp.float32) / jnp.maximum(k, 1))[:, None], 0.0)
    return rounds, jnp.broadcast_to(jnp.clip(prob, 0.0, 1.0)[:, None], rounds.shape)


def claims(
    passes: jax.Array, rounds: jax.Array, active: jax.Array, byzantine: jax.Array, params: Any
) -> tuple[jax.Array, jax.Array]:
    """(claims (N, W), counts (N, W, 2)) from the drawn ``passes`` of :func:`trials`' ``rounds``.

    ``counts[i, j]`` = (passes, rounds) partner ``j`` verified of node ``i``'s source; ``claims``
    the QBER-equivalent each partner reports (a Byzantine one may lie); ``inf`` where no partner.
    """
    p = params
    has = p.check_links >= 0
    k = has.sum(axis=1)
    frac = jnp.where(rounds > 0, passes / jnp.maximum(rounds, 1.0), 0.0)
    claim = qber_equivalent(frac, k[:, None], jnp)
    link = jnp.where(has, p.check_links, 0)
    me = jnp.arange(has.shape[0])[:, None]
    liar = active[jnp.where(p.link_a[link] == me, p.link_b[link], p.link_a[link])]
    claim = jnp.where(p.slander & liar & ~byzantine[:, None], 0.5, claim)
    claim = jnp.where(p.lie & p.collude & liar & byzantine[:, None], 0.0, claim)
    claim = jnp.where(has & (rounds > 0), claim, jnp.inf)  # a partner that verified no round reports nothing
    counts = jnp.stack([passes, rounds], axis=-1)
    return claim.astype(jnp.float32), counts.astype(jnp.int32)


def median_claim(claims: jax.Array) -> jax.Array:
    """(N,) median of each node's partner claims (N, W) (``inf`` padding), 0 for an unchecked node."""
    has = jnp.isfinite(claims)
    med = jnp.nanmedian(jnp.where(has, claims, jnp.nan), axis=1)
    return jnp.where(has.any(axis=1), med, 0.0).astype(jnp.float32)


def measured_node_qber(counts: np.ndarray) -> np.ndarray:
    """(N,) per node, the median over its partners of the QBER-equivalent their counts (N, W, 2) show;
    NaN for a node nobody checked (host side)."""
    counts = np.asarray(counts, dtype=float)
    rounds = counts[..., 1]
    k = (rounds > 0).sum(axis=1)
    q = np.where(rounds > 0, qber_equivalent(counts[..., 0] / np.maximum(rounds, 1), k[:, None]), np.nan)
    out = np.full(q.shape[0], np.nan)
    rows = k > 0
    out[rows] = np.nanmedian(q[rows], axis=1)
    return out


def node_reports(
    nodes: Sequence[str],
    check_links: np.ndarray,
    link_a: np.ndarray,
    link_b: np.ndarray,
    counts: np.ndarray,
    claims: np.ndarray,
    time_s: float,
    confidence: float = 0.95,
) -> list[FidelityReport]:
    """Every partner's :class:`~qverify.verify.report.FidelityReport` (kind ``"node"``) on every checked node
    (partners without a finite claim, as when node checks are off, report nothing).

    The estimate is the dishonest-party fidelity bound (:data:`BOUND`, any coalition) from the
    partner's *claimed* pass count (a partner whose claim differs from its counts claims the count its report implies) with a
    Clopper–Pearson interval; ``qber`` is the claim, ``qber_upper`` its conservative statistic at
    ``confidence`` (:func:`claim_upper`, what the weights read). The method names the bound.
    """
    counts = np.asarray(counts, dtype=np.int64)
    claims = np.asarray(claims, dtype=float)
    has = (check_links >= 0) & np.isfinite(claims)
    k = np.broadcast_to((check_links >= 0).sum(axis=1)[:, None], claims.shape)
    passes, rounds = counts[..., 0], counts[..., 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        measured = np.where(rounds > 0, qber_equivalent(passes / np.maximum(rounds, 1), k), 0.5)
    claim = np.clip(np.where(has, claims, 0.5), 0.0, 0.5)
    lying = ~np.isclose(claim, measured, atol=1e-6)
    # A partner whose claim differs from its counts claims the pass count its report implies.
    claimed = np.where(lying, np.rint(rounds * (0.5 + 0.5 * (1 - 2 * claim) ** k)), passes).astype(np.int64)
    lo, hi = clopper_pearson_arrays(claimed[has], rounds[has], confidence)
    p_hat = claimed[has] / np.maximum(rounds[has], 1)

    def bound(p: Any) -> np.ndarray:  # smallest over coalition sizes (one dishonest party leaves |H| ≥ 2)
        return np.atleast_1d(np.asarray(dishonest_fidelity_bound(np.clip(np.asarray(p, float), 0.0, 1.0), 3, 1)))

    fid, f_lo, f_hi = bound(p_hat), bound(lo), bound(hi)
    upper = claim_upper(np.where(has, claims, np.inf), rounds, k, confidence)
    out: list[FidelityReport] = []
    for m, (i, j) in enumerate(zip(*np.nonzero(has), strict=True)):
        link = int(check_links[i, j])
        partner = int(link_b[link]) if int(link_a[link]) == i else int(link_a[link])
        est = Estimate(float(fid[m]), float(f_lo[m]), float(f_hi[m]), confidence, int(rounds[i, j]), BOUND)
        out.append(
            FidelityReport(
                nodes[i],
                "node",
                est,
                float(claim[i, j]),
                time_s,
                nodes[partner],
                qber_upper=float(upper[i, j]),
                bound=REPORT_BOUND,
            )
        )
    return out
