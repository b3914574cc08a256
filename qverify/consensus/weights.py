"""Scores → safe integer weights, as small composable steps (sanitise, update, project, check).

1. :func:`link_errors` — a link's error is the *worse* of its two endpoints' reports (their
   conservative statistic, the Clopper–Pearson upper bound of each claim, where the report carries
   one), so a liar cannot clean its own links.
2. :func:`node_losses` — a node's loss is the upper median of its link errors after dropping its
   f worst *and* f best links (robust to ≤ f slanderers and to ≤ f colluders vouching for each
   other), normalised by the abort QBER (11 %) and capped at 1.
3. :func:`update_scores` — the paper's multiplicative rule in log form with a decay towards 0,
   ``s_i ← (1 − λ) s_i + ln(1 − α ℓ_i)``, re-centred so the best node has score 0, floored.
4. :func:`project_wheat` / :func:`project_box` — scores → positive integer weights.
5. :func:`check_weights` — the invariant ``W ≥ 3·T_f + 1`` in integers; returns the quorums.

A weight vector is only ever used through :class:`WeightVector`, whose construction enforces 5.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qverify.consensus.committee import tolerated
from qverify.errors import ParameterError, QverifyError

ABORT_QBER = 0.11
"""QBER at which BB84-type protocols abort (Shor–Preskill bound ≈ 11 %); losses are normalised by it."""


class UnsafeWeightsError(QverifyError):
    """A weight vector violates ``W ≥ 3·T_f + 1`` or has a non-positive weight."""


@dataclass(frozen=True)
class Quorum:
    """Quorum sizes of a weight vector (all in weight units, integers).

    Attributes:
        total: ``W``, the sum of all weights.
        t_f: ``T_f``, the largest weight any f nodes hold together.
        quorum: ``Q = W − T_f``; any two quorums overlap in weight ``≥ T_f + 1``.
        weak: ``T_f + 1``; a set this heavy contains a correct node (PBFT's ``f + 1``).
    """

    total: int
    t_f: int
    quorum: int
    weak: int


def check_weights(weights: Sequence[int], f: int) -> Quorum:
    """Check the BFT invariant in integers and return the quorums.

    Raises :class:`UnsafeWeightsError` unless every weight is a positive integer and
    ``W ≥ 3·T_f + 1``. With equal weights this is ``n ≥ 3f + 1`` and ``Q = 2f + 1``.

    >>> check_weights([1, 1, 1, 1], f=1)
    Quorum(total=4, t_f=1, quorum=3, weak=2)
    >>> check_weights([1, 1, 1], f=1)
    Traceback (most recent call last):
    ...
    qverify.consensus.weights.UnsafeWeightsError: weights [1, 1, 1] with f = 1: W = 3 < 3·T_f + 1 = 4
    """
    w = [int(x) for x in weights]
    if any(int(x) != x for x in weights):
        raise UnsafeWeightsError(f"weights {list(weights)} must be integers")
    if f < 0 or f >= len(w):
        raise ParameterError("f", f, f"[0, {len(w) - 1}] for n = {len(w)} nodes")
    bad = [x for x in w if x <= 0]
    if bad:
        raise UnsafeWeightsError(f"weights {w}: every weight must be ≥ 1 (got {bad[0]})")
    total = sum(w)
    t_f = sum(sorted(w, reverse=True)[:f])
    if total < 3 * t_f + 1:
        raise UnsafeWeightsError(f"weights {w} with f = {f}: W = {total} < 3·T_f + 1 = {3 * t_f + 1}")
    return Quorum(total=total, t_f=t_f, quorum=total - t_f, weak=t_f + 1)


@dataclass(frozen=True)
class WeightVector:
    """An epoch's weights, valid by construction.

    Attributes:
        epoch: epoch number (≥ 0).
        weights: positive integer weight per node, in node order.
        f: number of Byzantine nodes tolerated.
    """

    epoch: int
    weights: tuple[int, ...]
    f: int

    def __post_init__(self) -> None:
        check_weights(self.weights, self.f)  # before the conversion: 1.5 must not become 1
        object.__setattr__(self, "weights", tuple(int(x) for x in self.weights))

    @functools.cached_property
    def quorum(self) -> Quorum:
        # Checked once: a replica asks for the quorum on every vote it counts.
        return check_weights(self.weights, self.f)

    def weight_of(self, nodes: Any) -> int:
        """Total weight of a set of node indices (each counted once)."""
        w = self.weights
        return sum(w[i] for i in (nodes if isinstance(nodes, (set, frozenset)) else set(nodes)))

    def min_size(self, threshold: int) -> int:
        """Fewest nodes whose weight can reach ``threshold`` (the heaviest ones); ``n + 1`` if none can.

        A set smaller than this is not a quorum whatever its members, so vote counting can skip the sum.

        >>> WeightVector(0, (2, 2, 1, 1, 1, 1, 1), f=1).min_size(7)  # W = 9, T_f = 2, Q = 7
        5
        """
        if threshold <= 0:
            return 0
        total = 0
        for k, x in enumerate(sorted(self.weights, reverse=True), start=1):
            total += x
            if total >= threshold:
                return k
        return len(self.weights) + 1


def naive_weights(errors: Sequence[float], alpha: float, rounds: int = 1) -> list[float]:
    """The paper's rule ``w_i ← w_i (1 − α |err_i|)`` from ``w_i = 1``, applied ``rounds`` times.

    Provided to show why it is unsafe (see :func:`check_weights`): honest nodes on noisy links decay
    while liars that report no error keep weight 1.

    >>> tuple(round(x, 3) for x in naive_weights([0.6, 0.0], alpha=1.0))
    (0.4, 1.0)
    """
    check_range01("alpha", alpha)
    return [(1 - alpha * abs(e)) ** rounds for e in errors]


def check_range01(field: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise ParameterError(field, value, "[0, 1]")


def link_errors(reports: Mapping[tuple[int, int], Mapping[int, float]]) -> dict[tuple[int, int], float]:
    """Per link ``(i, j)`` (i < j), the worse of the endpoints' reported statistics.

    ``reports[(i, j)]`` maps the reporting endpoint (i or j) to its QBER statistic in [0, 0.5]; a
    missing report counts as the worst value 0.5 (a silent endpoint cannot clean a link). The
    statistic is the one the reports carry: :meth:`~qverify.consensus.voting.FidelityWeightedVoting.report`
    passes a report's conservative ``qber_upper`` where it has one (the one-sided Clopper–Pearson
    upper bound of the claim over the epoch's heralded Z/X test rounds, so fewer rounds give a
    larger error), else its point ``qber``.

    >>> link_errors({(1, 0): {0: 0.02, 1: 0.05}, (1, 2): {1: 0.01}})
    {(0, 1): 0.05, (1, 2): 0.5}
    """
    out: dict[tuple[int, int], float] = {}
    for (i, j), by_node in reports.items():
        a, b = (i, j) if i < j else (j, i)
        for node, q in by_node.items():
            if node not in (a, b):
                raise ParameterError("reporter", node, f"one of the link's endpoints {a}, {b}")
            if not 0 <= q <= 0.5:
                raise ParameterError("qber", q, "[0, 0.5]")
        out[(a, b)] = max(by_node.get(a, 0.5), by_node.get(b, 0.5))
    return out


def node_losses(errors: Mapping[tuple[int, int], float], n: int, f: int, abort_qber: float = ABORT_QBER) -> np.ndarray:
    """Loss in [0, 1] per node: trimmed upper median of its link errors over ``abort_qber``.

    With more than 2f links, the f largest and the f smallest errors are dropped: up to f
    slandering neighbours cannot raise an honest node's loss, and up to f colluders reporting a
    perfect shared link cannot lower a Byzantine node's loss. With 2f links or fewer nothing can be
    trimmed safely; the *upper* median is used, so a colluding partner never buys a better score
    than the node's honest links give (the best link used to be kept here, which let a colluding
    pair reach the top weights). A node with no reported link gets the worst loss 1.

    The arithmetic is :func:`node_losses_array`'s (the network model runs the same function in jax).
    """
    pairs = list(errors)
    link_a = np.array([i for i, _ in pairs], dtype=np.int64)
    link_b = np.array([j for _, j in pairs], dtype=np.int64)
    err = np.array([errors[k] for k in pairs], dtype=float)
    return np.asarray(node_losses_array(err, node_incidence(link_a, link_b, n), f, abort_qber))


def node_incidence(link_a: np.ndarray, link_b: np.ndarray, n: int) -> np.ndarray:
    """(N, max degree) indices of every node's links, padded with −1 (host side, once per topology).

    >>> node_incidence(np.array([0, 0]), np.array([1, 2]), 3).tolist()
    [[0, 1], [0, -1], [1, -1]]
    """
    per_node: list[list[int]] = [[] for _ in range(n)]
    for k, (i, j) in enumerate(zip(np.asarray(link_a).tolist(), np.asarray(link_b).tolist(), strict=True)):
        per_node[i].append(k)
        per_node[j].append(k)
    width = max((len(x) for x in per_node), default=0)
    out = np.full((n, max(width, 1)), -1, dtype=np.int64)
    for i, ks in enumerate(per_node):
        out[i, : len(ks)] = ks
    return out


def node_losses_array(link_err: Any, incidence: Any, f: int, abort_qber: Any = ABORT_QBER, xp: Any = np) -> Any:
    """:func:`node_losses` on arrays: ``link_err`` (E,) per-link errors, ``incidence`` from
    :func:`node_incidence`; ``xp`` is ``numpy`` or ``jax.numpy`` (jit-able, ``f`` static)."""
    has = incidence >= 0
    padded = xp.concatenate([link_err, xp.full(1, xp.inf, dtype=link_err.dtype)])  # padding reads +inf
    return trimmed_losses(padded[xp.where(has, incidence, link_err.shape[0])], f, abort_qber, xp)


def trimmed_losses(values: Any, f: int, abort_qber: Any = ABORT_QBER, xp: Any = np) -> Any:
    """(N,) loss per row of ``values`` (N, W): the errors reported about a node, ``+inf`` padding.

    Of a row's d errors in ascending order, the kept ones are ``[f, d − f)`` when d > 2f, else all;
    the loss is the kept list's upper median ``ordered[f + (d − 2f) // 2]`` (resp. ``ordered[d // 2]``)
    over ``abort_qber``, capped at 1; 1 for an empty row.

    >>> trimmed_losses(np.array([[0.011, 0.5, 0.022], [0.055, np.inf, np.inf]]), f=1).round(3).tolist()
    [0.2, 0.5]
    """
    deg = xp.isfinite(values).sum(axis=1)
    idx = xp.where(deg > 2 * f, f + (deg - 2 * f) // 2, deg // 2)
    idx = xp.clip(idx, 0, values.shape[1] - 1)
    # The value of rank idx: exactly one element per row has it (ties ranked by position).
    med = xp.where(ranks(values, xp) == idx[:, None], values, 0.0).sum(axis=1)
    return xp.where(deg > 0, xp.minimum(1.0, med / abort_qber), 1.0)


def check_losses(claims: Any, f: int, abort_qber: Any = ABORT_QBER, xp: Any = np) -> Any:
    """(N,) node-check loss per node from its partners' reports ``claims`` (N, W), ``+inf`` where no
    report: :func:`trimmed_losses` of the reports clipped to [0, 0.5], and 0 for a node nobody checked
    (no check says nothing against it)."""
    has = xp.isfinite(claims)
    losses = trimmed_losses(xp.where(has, xp.clip(claims, 0.0, 0.5), xp.inf), f, abort_qber, xp)
    return xp.where(has.any(axis=1), losses, 0.0)


def update_scores(
    scores: np.ndarray, losses: np.ndarray, alpha: float, floor: float = -5.0, decay: float = 0.0
) -> np.ndarray:
    """Log-form multiplicative update ``s ← (1 − λ) s + ln(1 − α ℓ)``, re-centred to max 0, floored.

    ``α`` in [0, 1) keeps the logarithm finite; ``floor`` < 0 bounds how far a node can sink, so
    scores (and weights) never reach 0. ``decay`` λ in [0, 1) forgets old epochs: after a transient
    fade, an honest node's score gap to the others shrinks by ``(1 − λ)`` per clean epoch (half-life
    ``ln 2 / −ln(1 − λ)`` epochs, ≈ 6.6 at λ = 0.1); with λ = 0 the paper's rule never forgets.
    """
    if not 0 <= alpha < 1:
        raise ParameterError("alpha", alpha, "[0, 1)")
    if not 0 <= decay < 1:
        raise ParameterError("decay", decay, "[0, 1)")
    return np.asarray(score_step(np.asarray(scores, dtype=float), np.asarray(losses, dtype=float), alpha, floor, decay))


def score_step(scores: Any, losses: Any, alpha: Any, floor: Any, decay: Any, xp: Any = np) -> Any:
    """:func:`update_scores` without the argument checks, on ``numpy`` or ``jax.numpy`` arrays."""
    s = (1 - decay) * scores + xp.log1p(-alpha * xp.clip(losses, 0.0, 1.0))
    return xp.maximum(s - s.max(), floor)


def with_hysteresis(scores: Any, old_weights: Any, margin: Any, xp: Any = np) -> Any:
    """Scores plus ``margin`` × the node's place in the current weights (0 lightest … 1 heaviest).

    Current heavy nodes keep this bonus, so measurement noise cannot flip the order every epoch.
    """
    w = old_weights
    span = w.max() - w.min()
    return scores + xp.where(span > 0, margin * (w - w.min()) / xp.where(span > 0, span, 1), 0.0)


def project_wheat(scores: np.ndarray, f: int) -> list[int]:
    """WHEAT/AWARE weights: with ``n = 3f + 1 + Δ``, the 2f best get ``f + Δ``, the rest ``f``.

    Sitjà et al. (WHEAT, SRDS 2015) / Berger et al. (AWARE, SRDS 2019): ``Vmax = 1 + Δ/f``,
    ``Vmin = 1``, scaled by f to integers. Ties are broken by node index.

    >>> project_wheat(np.array([-1.0, 0.0, -2.0, 0.0, -0.5]), f=1)
    [1, 2, 1, 2, 1]
    """
    n = len(scores)
    if n - 3 * f - 1 < 0:
        raise ParameterError("f", f, f"[0, {tolerated(n)}] for n = {n} nodes (n ≥ 3f + 1)")
    return [int(x) for x in wheat_array(np.asarray(scores, dtype=float), f)]


def wheat_array(scores: Any, f: int, xp: Any = np) -> Any:
    """:func:`project_wheat` on a ``numpy`` or ``jax.numpy`` array (``f`` static, ``n ≥ 3f + 1``)."""
    n = scores.shape[0]
    if f == 0:
        return xp.ones(n, dtype=xp.int32)
    rank = ranks(-scores, xp)  # ties: lower index first
    return xp.where(rank < 2 * f, n - 2 * f - 1, f).astype(xp.int32)


PAIRWISE_MAX = 64
"""Up to this many values per row, :func:`ranks` counts pairwise comparisons; above, it sorts."""


def ranks(values: Any, xp: Any = np) -> Any:
    """Ascending rank of every element along the last axis, ties broken by position (stable).

    ``rank_i = #{j: v_j < v_i} + #{j < i: v_j = v_i}``, a permutation of ``0 … W − 1`` per row (for
    values without NaN; ``+inf`` padding ranks last). Counted pairwise for rows of at most
    :data:`PAIRWISE_MAX` values — on the small rows of the weight rule (a node's links, a committee)
    the W² comparisons cost less than a sort under ``jit``/``vmap`` — and by a stable double argsort
    above; both give the same ranks.

    >>> ranks(np.array([[0.3, 0.1, 0.3, np.inf]])).tolist()
    [[1, 0, 2, 3]]
    """
    width = values.shape[-1]
    if width > PAIRWISE_MAX:
        return xp.argsort(xp.argsort(values, axis=-1, stable=True), axis=-1, stable=True)
    pos = xp.arange(width)
    lower = values[..., None, :] < values[..., :, None]
    tied_before = (values[..., None, :] == values[..., :, None]) & (pos[None, :] < pos[:, None])
    return (lower | tied_before).sum(axis=-1)


def box_ratio_limit(n: int, f: int) -> float:
    """The bound ``(n − f)/(2f)`` that ``Vmax/Vmin`` must stay below in box mode."""
    return math.inf if f == 0 else (n - f) / (2 * f)


def project_box(scores: np.ndarray, f: int, vmin: int = 10, vmax: int | None = None) -> list[int]:
    """Weights in ``[vmin, vmax]`` linear in the score; ``vmax/vmin < (n − f)/(2f)``.

    With every weight in the box, ``T_f ≤ f·vmax`` and ``W ≥ (n − f)·vmin + T_f``, so
    ``W ≥ 3 T_f + 1`` holds when ``(n − f)·vmin > 2 f·vmax``. The default ``vmax`` is the largest
    integer that keeps the strict inequality.
    """
    n = len(scores)
    limit = box_ratio_limit(n, f)
    if vmin < 1:
        raise ParameterError("vmin", vmin, "[1, inf)")
    if vmax is None:
        vmax = vmin if math.isinf(limit) else max(vmin, math.ceil(limit * vmin) - 1)
    if vmax < vmin or (not math.isinf(limit) and vmax / vmin >= limit):
        raise ParameterError("vmax/vmin", vmax / vmin, f"[1, {limit:g}) for n = {n}, f = {f}")
    s = np.asarray(scores, dtype=float)
    lo, hi = float(s.min()), float(s.max())
    frac = np.zeros(n) if hi == lo else (s - lo) / (hi - lo)
    return [int(vmin + round(x * (vmax - vmin))) for x in frac]
