"""Charlie's four threshold detectors in MDI-QKD, per slot and exactly, with per-detector dead time.

The closed forms of :mod:`qverify.physics.mdi` (Ma & Razavi, PRA 86, 062319, 2012) assume detectors
that are always ready. This module computes the same figures — Z-basis gain and error gain of the
signal, the single-photon yield ``Y11`` and error ``e11`` in both bases — when every detector is
blind for ``dead_time_slots`` slots after it clicks, so that an MDI-QKD rate pays for dead time
the way :mod:`qverify.physics.detector` makes a BB84 rate pay for it.

Optics (polarisation encoding, Ma–Razavi Fig. 1). Alice's and Bob's pulses meet on a 50:50 beam
splitter; each output port ``k`` ∈ {1, 2} has a polarising beam splitter and two detectors, so the
detectors are ``1H, 1V, 2H, 2V``. With mean photon numbers ``λ_a = μ η_a`` and ``λ_b = μ η_b`` at
Charlie (η includes the detector efficiency), polarisation vectors ``a``, ``b`` (H = (1, 0),
V = (0, 1), D/A = (1, ±1)/√2) and relative phase φ, detector ``(k, p)`` receives a coherent state
of mean ``m = (λ_a a_p² + λ_b b_p² ± 2√(λ_a λ_b) a_p b_p cos φ)/2`` (+ for port 1). Given φ the four
detectors click independently with ``1 − (1 − p_d) e^{−m}``; phase randomisation averages over
φ (a midpoint rule that is exact to far below double precision, :func:`_detector_means`).

Announcement: a success is exactly two clicks, one H and one V: ψ+ (``1H1V`` or ``2H2V``) or ψ−
(``1H2V`` or ``1V2H``). Z basis: any success means opposite bits (Bob flips). X basis: ψ+ means
equal bits, ψ− opposite. Misalignment flips the announced correlation with probability ``e_mis``,
as in Ma–Razavi's model, independently of the clicks.

Dead time: a detector that clicks is blind for the next ``d`` slots (non-paralysable, per
detector). Detector ``i`` would click in a slot with probability ``p_i`` drawn with the slot's
setting, independently of the past, so each detector's counter is a Markov chain of its own
(stationary live probability ``1/(1 + q_i d)``, ``q_i = E p_i``), but the four are correlated
through the shared setting and phase. The joint chain over the four counters has ``(d + 1)⁴``
states. Its one-slot map is applied per live set (which detectors have counter 0: only they can
click; numpy adds each live set's block of states in place where its click sets send it) or, under
jax, as ``Σ_W P(W) ⊗_i f_i^{W_i}`` over would-click sets W, each detector moving by its own
deterministic map (no scatter); the two are tested against each other and against a dense chain.
The stationary law is found by iterating the map from the product of the exact single-detector
laws until it is stationary to a few machine epsilons (:func:`live_set_law`). A slot's
outcome depends on the past only through its live set, and the slot's own setting is drawn
afresh, so every figure is ``Σ_L π(L) · figure(L)``.

The stream that drives the dead time is taken to be the signal in the key basis (each party
choosing Z with probability ``√sift``; ``sift = 1``, the Lo–Curty–Qi limit, sends Z only), the same
accounting as the BB84 model. As there, dead time enters as a state-dependent efficiency seen
equally by every photon number; attacks that exploit dead time (Weier et al., NJP 13, 073024,
2011) are not covered by it.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import numpy as np

from qverify.errors import ParameterError
from qverify.physics._xp import namespace, repeat

MAX_DEAD_TIME_SLOTS = 10
"""Largest dead time the four-detector chain accepts: (10 + 1)⁴ = 14 641 counter states. One slot of
the chain costs about ``(d + 2)⁴`` multiply-adds per element and it settles in about ``5.5 d`` slots;
at d = 10 a μ-optimised curve of 128 distances takes 22–25 s (``python bench/bench_detector.py``), and
the cost grows about as d⁵ beyond."""
STATIONARY_ULPS = 64
"""The iteration stops when no counter state's probability changes by more than this many machine
epsilons over one slot: 1.4e-14 in float64 (it settles to ~2e-16), 7.6e-6 in float32 (the
network model's precision)."""
MAX_SWEEPS = 1000
"""Blocks of ``d + 1`` slots :func:`live_set_law` may iterate before it reports no convergence."""

PORT_SIGN = (1.0, 1.0, -1.0, -1.0)
"""Sign of the interference term at detectors ``1H, 1V, 2H, 2V`` (ports 1 and 2)."""
POL = (0, 1, 0, 1)
"""Polarisation (0 = H, 1 = V) of detectors ``1H, 1V, 2H, 2V``."""
PSI_PLUS = (0b0011, 0b1100)
"""Click sets announced as ψ+: ``1H1V`` and ``2H2V`` (bit i = detector i)."""
PSI_MINUS = (0b1001, 0b0110)
"""Click sets announced as ψ−: ``1H2V`` and ``1V2H``."""
ALL = 0b1111

_R2 = 1 / np.sqrt(2.0)
_POLARISATION = {"Z": ((1.0, 0.0), (0.0, 1.0)), "X": ((_R2, _R2), (_R2, -_R2))}


class RelayFigures(NamedTuple):
    """Figures of an MDI-QKD link under Charlie's detector model (arrays shaped like the inputs).

    Attributes:
        gain: Z-basis signal gain, successful BSMs per pulse pair (``Q^Z_μμ``, ψ+ and ψ−).
        error_gain: Z-basis signal error gain (``E^Z Q^Z``).
        y11_z, e11y11_z: single-photon yield and error yield in the Z basis.
        y11_x, e11y11_x: the same in the X basis.
        live_fraction: stationary probability that all four detectors are live (1 without dead time).
    """

    gain: Any
    error_gain: Any
    y11_z: Any
    e11y11_z: Any
    y11_x: Any
    e11y11_x: Any
    live_fraction: Any


def check_dead_time(dead_time_slots: int) -> int:
    """``dead_time_slots`` for the relay, or ``ParameterError`` unless in [0, MAX_DEAD_TIME_SLOTS]."""
    if not 0 <= dead_time_slots <= MAX_DEAD_TIME_SLOTS:
        raise ParameterError(
            "dead_time_slots", dead_time_slots,
            f"an integer in [0, {MAX_DEAD_TIME_SLOTS}] for MDI-QKD (Charlie's four detectors: "
            f"a chain of (d + 1)^4 states)",
        )  # fmt: skip
    return int(dead_time_slots)


def _subsets(mask: int) -> list[int]:
    """Every subset of ``mask`` (as bit masks), the empty set first."""
    out, sub = [], mask
    while True:
        out.append(sub)
        if sub == 0:
            return out[::-1]
        sub = (sub - 1) & mask


PHASES = 32
"""Nodes of the midpoint rule over the relative phase φ ∈ [0, π] (the integrands are even in φ)."""


def _detector_means(la: Any, lb: Any, a: tuple[float, float], b: tuple[float, float], xp: Any) -> list[Any]:
    """Mean photon number at each detector for ``PHASES`` values of the relative phase (last axis).

    The integrands below are entire functions of ``cos φ`` whose Fourier coefficients fall like
    ``I_n(β)`` with ``β ≤ λ_a + λ_b``; the midpoint rule with ``PHASES`` nodes on [0, π] integrates
    modes up to ``2·PHASES − 1`` exactly, so its relative error is of order ``I_64(20)/I_0(20) ≈ 8e-33``
    (``scipy.special.iv``) for every input the parameters allow (μ ≤ 10, η ≤ 1). Quadrature of the direct products keeps
    full relative precision where an expansion into Bessel terms would cancel (two-click
    probabilities of 1e-9 at long distance).
    """
    cos = np.cos(np.pi * (np.arange(PHASES) + 0.5) / PHASES)
    la, lb = la[..., None], lb[..., None]
    cross = xp.sqrt(la * lb) * cos
    return [(la * a[POL[i]] ** 2 + lb * b[POL[i]] ** 2) / 2 + PORT_SIGN[i] * cross * a[POL[i]] * b[POL[i]]
            for i in range(4)]  # fmt: skip


def _coherent_law(la: Any, lb: Any, a: tuple[float, float], b: tuple[float, float], p_dark: Any,
                  xp: Any) -> Any:  # fmt: skip
    """Would-click law of the four detectors for coherent light: ``(..., 16)``, index = bit mask W.

    ``P(W)`` is the probability that exactly the detectors of W *would* click if all were live:
    given φ each clicks independently with ``1 − (1 − p_d) e^{−m_i}`` (written with ``expm1``),
    then the midpoint rule of :func:`_detector_means` averages over φ.
    """
    means = _detector_means(la, lb, a, b, xp)
    quiet = [(1 - p_dark) * xp.exp(-m) for m in means]
    click = [-xp.expm1(-m) + p_dark * xp.exp(-m) for m in means]
    rows = []
    for w in range(16):
        prod = 1.0
        for i in range(4):
            prod = prod * (click[i] if w >> i & 1 else quiet[i])
        rows.append(xp.mean(prod, axis=-1))
    return xp.stack(rows, axis=-1)


def _photon_law(eta_a: Any, eta_b: Any, a: tuple[float, float], b: tuple[float, float], p_dark: Any,
                xp: Any) -> Any:  # fmt: skip
    """Would-click law ``(..., 16)`` when Alice and Bob each send one photon.

    Each photon survives with its arm's transmittance. Alice's photon enters detector mode
    ``(k, p)`` with amplitude ``a_p/√2``, Bob's with ``±b_p/√2`` (− at port 2). Two photons end in
    modes ``i ≠ j`` with probability ``|u_i v_j + u_j v_i|²`` and both in ``i`` with ``2|u_i v_i|²``
    (bosonic: Hong–Ou–Mandel bunching for equal polarisations). A detector would click if hit or
    by an independent dark count.
    """
    u = [a[POL[i]] * _R2 for i in range(4)]
    v = [b[POL[i]] * _R2 * PORT_SIGN[i] for i in range(4)]
    hits: dict[int, Any] = {0: (1 - eta_a) * (1 - eta_b)}
    for i in range(4):
        hits[1 << i] = eta_a * (1 - eta_b) * u[i] ** 2 + (1 - eta_a) * eta_b * v[i] ** 2
        hits[1 << i] = hits[1 << i] + eta_a * eta_b * 2 * (u[i] * v[i]) ** 2
        for j in range(i + 1, 4):
            hits[1 << i | 1 << j] = eta_a * eta_b * (u[i] * v[j] + u[j] * v[i]) ** 2
    rows = []
    for w in range(16):
        total = 0.0
        for h in _subsets(w):
            if h in hits:
                dark, quiet = bin(w & ~h).count("1"), 4 - bin(w).count("1")
                total = total + hits[h] * p_dark**dark * (1 - p_dark) ** quiet
        rows.append(total * xp.ones_like(eta_a))
    return xp.stack(rows, axis=-1)


def _restriction() -> np.ndarray:
    """``R[W, L, C] = 1`` when would-click set W gives click set C with live set L (C = W ∩ L)."""
    r = np.zeros((16, 16, 16))
    for w, live in itertools.product(range(16), range(16)):
        r[w, live, w & live] = 1.0
    return r


_RESTRICT = _restriction().reshape(16, 256)


def _by_live(law: Any) -> Any:
    """``(..., L, C)``: probability that exactly the click set C occurs with live set L, from a
    would-click law ``(..., W)`` (``Σ_{W ∩ L = C} P(W)``)."""
    return (law @ _RESTRICT).reshape(*law.shape[:-1], 16, 16)


def _announcement(basis: str, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
    """``(right, wrong)``: 0/1 vectors over click sets C (index = mask) of the successes that
    announce the right and the wrong correlation for bits x, y in ``basis`` (before misalignment)."""
    plus, minus = np.zeros(16), np.zeros(16)
    plus[list(PSI_PLUS)] = 1.0
    minus[list(PSI_MINUS)] = 1.0
    if basis == "Z":
        success = plus + minus
        return (success, 0 * success) if x != y else (0 * success, success)
    return (plus, minus) if x == y else (minus, plus)


def _per_live_set(law: Any, basis: str, x: int, y: int, e_mis: Any) -> tuple[Any, Any]:
    """(success, error) probability for every live set L, ``(..., 16)``, from a would-click law."""
    right, wrong = _announcement(basis, x, y)
    by_live = _by_live(law)
    r, w = by_live @ right, by_live @ wrong
    return r + w, e_mis * r + (1 - e_mis) * w


def _live_set_figures(mu: Any, eta_a: Any, eta_b: Any, p_dark: Any, e_mis: Any, xp: Any) -> list[Any]:
    """[gain, error gain, Y11_Z, e11Y11_Z, Y11_X, e11Y11_X], each ``(..., 16)`` over live sets."""
    la, lb = mu * eta_a, mu * eta_b
    e_mis = xp.asarray(e_mis)[..., None]  # per element, broadcast over live sets
    out = [0.0] * 6
    for basis in ("Z", "X"):
        pols = _POLARISATION[basis]
        k = 2 if basis == "Z" else 4
        for x, y in itertools.product((0, 1), (0, 1)):
            a, b = pols[x], pols[y]
            s1, e1 = _per_live_set(_photon_law(eta_a, eta_b, a, b, p_dark, xp), basis, x, y, e_mis)
            out[k], out[k + 1] = out[k] + s1 / 4, out[k + 1] + e1 / 4
            if basis == "Z":
                s, e = _per_live_set(_coherent_law(la, lb, a, b, p_dark, xp), basis, x, y, e_mis)
                out[0], out[1] = out[0] + s / 4, out[1] + e / 4
    return out


def stream_law(mu: Any, eta_a: Any, eta_b: Any, p_dark: Any, basis_z: Any = 1.0) -> Any:
    """Would-click law ``(..., 16)`` of the stream that drives the dead time (index = bit mask W).

    Signal intensity ``mu`` on both sides, each party in Z with probability ``basis_z`` and in X
    otherwise, uniform bits, averaged over the phase. ``basis_z`` may be traced under jax.
    """
    xp, _ = namespace(mu, eta_a, eta_b, p_dark)
    la, lb = xp.asarray(mu * eta_a) * 1.0, xp.asarray(mu * eta_b) * 1.0
    weight = {"Z": basis_z, "X": 1 - basis_z}
    full = 0.0
    for ba, bb, x, y in itertools.product("ZX", "ZX", (0, 1), (0, 1)):
        w = weight[ba] * weight[bb] / 4
        full = full + w * _coherent_law(la, lb, _POLARISATION[ba][x], _POLARISATION[bb][y], p_dark, xp)
    return full


def transition_law(mu: Any, eta_a: Any, eta_b: Any, p_dark: Any, basis_z: Any = 1.0) -> dict[int, dict[int, Any]]:
    """``r[L][C]``: probability that exactly the detectors C ⊆ L click when those of L are live
    (:func:`stream_law` restricted to L: ``r[L][C] = Σ_{W ∩ L = C} P(W)``)."""
    by_live = _by_live(stream_law(mu, eta_a, eta_b, p_dark, basis_z))
    return {live: {c: by_live[..., live, c] for c in _subsets(live)} for live in range(16)}


def tolerance(dtype: Any) -> float:
    """Largest one-slot change at which :func:`live_set_law` calls the chain stationary."""
    return float(STATIONARY_ULPS * np.finfo(dtype).eps)


def _axis(k: int, start: int, stop: int) -> tuple[Any, ...]:
    return (*(slice(None),) * k, slice(start, stop))


def _push(x: Any, k: int, would_click: bool, d: int, xp: Any) -> Any:
    """Move every state along counter axis ``k`` one slot: a blind detector counts down; a live
    one restarts at ``d`` if it would click, else stays live (a click of a blind one is lost)."""
    if would_click:
        return xp.concatenate([x[_axis(k, 1, d + 1)], x[_axis(k, 0, 1)]], axis=k)
    live = x[_axis(k, 0, 1)] + x[_axis(k, 1, 2)]
    return xp.concatenate([live, x[_axis(k, 2, d + 1)], xp.zeros_like(x[_axis(k, 0, 1)])], axis=k)


def _step_kron(law: Any, pi: Any, d: int, xp: Any) -> Any:
    """One slot of the counter chain (counters on axes 0–3, batch last), for jax.

    With would-click set W drawn from ``law`` each detector moves by its own deterministic map, so
    the slot is ``Σ_W P(W) ⊗_i f_i^{W_i}``: walked depth first, 30 pushes along single axes and no
    scatter (XLA's scatter-adds are slow on CPU); about 46 copies of the tensor per slot.
    """
    acc = [xp.zeros_like(pi)]

    def descend(x: Any, k: int, w: int) -> None:
        if k == 4:
            acc[0] = acc[0] + law[..., w] * x
            return
        descend(_push(x, k, False, d, xp), k + 1, w)
        descend(_push(x, k, True, d, xp), k + 1, w | 1 << k)

    descend(pi, 0, 0)
    return acc[0]


def _block(d: int, live: int, click: int | None) -> tuple[Any, ...]:
    """Slices of the counter tensor: before a slot (``click`` None) the states with live set
    ``live``; after it, where they go when exactly ``click`` ⊆ ``live`` clicks."""
    out: list[Any] = []
    for i in range(4):
        if live >> i & 1:
            out.append(slice(0, 1) if click is None or not click >> i & 1 else slice(d, d + 1))
        else:
            out.append(slice(1, d + 1) if click is None else slice(0, d))
    return (*out, Ellipsis)


def _step_blocks(by_live: Any, pi: Any, d: int) -> Any:
    """The same slot for numpy, in place: each live set's block of states is added, weighted by
    ``r[L][C]``, where each click set C sends it: about ``(d + 2)⁴`` multiply-adds per batch
    element, so each state is touched about once per slot instead of the ~46 copies of
    :func:`_step_kron`; tested against it and a dense chain."""
    new = np.zeros_like(pi)
    for live in range(16):
        block = pi[_block(d, live, None)]
        for c in _subsets(live):
            new[_block(d, live, c)] += by_live[..., live, c] * block
    return new


def _live_mass(pi: Any, d: int) -> list[Any]:
    """``π(L)`` for each live set L from the counter tensor (axis i at 0 ⇔ detector i live)."""
    out = []
    for live in range(16):
        index = tuple(slice(0, 1) if live >> i & 1 else slice(1, d + 1) for i in range(4))
        out.append(pi[index].sum(axis=(0, 1, 2, 3)))
    return out


def live_set_law(mu: Any, eta_a: Any, eta_b: Any, p_dark: Any, dead_time_slots: int,
                 basis_z: Any = 1.0) -> tuple[list[Any], Any]:  # fmt: skip
    """Stationary probability ``π(L)`` of each live set L (list indexed by bit mask) and the
    largest one-slot change left when the iteration stopped (≤ :func:`tolerance` unless it ran
    ``MAX_SWEEPS`` blocks; callers check it).

    Starts from the product of the exact single-detector laws (live ``1/(1 + q d)``, each counter
    value ``q/(1 + q d)``), so every detector's marginal is stationary from the first slot and the
    iteration only settles the correlations. Numpy or jax arrays (jit-able; jax runs a
    ``while_loop``); ``dead_time_slots`` is static.

    >>> pi, change = live_set_law(0.5, 0.05, 0.05, 1e-6, 3)
    >>> round(float(sum(pi)), 12), bool(change <= 1e-14), bool(pi[0b1111] < 1)
    (1.0, True, True)
    """
    xp, _ = namespace(mu, eta_a, eta_b, p_dark)
    d = int(dead_time_slots)
    shape = xp.broadcast_arrays(xp.asarray(mu) * 1.0, xp.asarray(eta_a) * 1.0, xp.asarray(eta_b) * 1.0)[0].shape
    if d == 0:
        ones = xp.ones(shape)
        return [ones if live == ALL else 0.0 * ones for live in range(16)], 0.0 * ones
    law = xp.broadcast_to(stream_law(mu, eta_a, eta_b, p_dark, basis_z), (*shape, 16))
    marginals = []
    for i in range(4):
        q = law[..., [w for w in range(16) if w >> i & 1]].sum(axis=-1)
        marginals.append(xp.stack([1 / (1 + q * d)] + [q / (1 + q * d)] * d))
    pi = marginals[0][:, None, None, None] * marginals[1][None, :, None, None]
    pi = pi * marginals[2][None, None, :, None] * marginals[3][None, None, None, :]

    if xp is np:
        by_live = _by_live(law)

        def step(x: Any) -> Any:
            return _step_blocks(by_live, x, d)
    else:

        def step(x: Any) -> Any:
            return _step_kron(law, x, d, xp)

    def sweep(state: tuple[Any, Any]) -> tuple[Any, Any]:
        p = repeat(xp, 0, d, lambda _i, x: step(x), state[0])
        nxt = step(p)
        return nxt, xp.max(xp.abs(nxt - p))  # over the batch too: one loop for all elements

    if xp.__name__ == "numpy":
        change, sweeps = np.inf, 0
        while change > tolerance(pi.dtype) and sweeps < MAX_SWEEPS:
            pi, change = sweep((pi, 0.0))
            sweeps += 1
    else:
        from jax import lax

        def cond(state: tuple[Any, Any, Any]) -> Any:
            return (state[1] > tolerance(pi.dtype)) & (state[2] < MAX_SWEEPS)

        def body(state: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
            p, c = sweep((state[0], state[1]))
            return p, c, state[2] + 1

        pi, change, _ = lax.while_loop(cond, body, (pi, xp.asarray(np.inf, pi.dtype), 0))
    return _live_mass(pi, d), change


def _figures(mu: Any, eta_a: Any, eta_b: Any, p_dark: Any, e_mis: Any, dead_time_slots: int,
             basis_z: Any) -> tuple[RelayFigures, Any]:  # fmt: skip
    xp, _ = namespace(mu, eta_a, eta_b, p_dark, e_mis)
    mu, eta_a, eta_b = xp.broadcast_arrays(xp.asarray(mu) * 1.0, xp.asarray(eta_a) * 1.0, xp.asarray(eta_b) * 1.0)
    pi, change = live_set_law(mu, eta_a, eta_b, p_dark, dead_time_slots, basis_z)
    if xp is np and np.max(change) > tolerance(np.float64):
        raise ParameterError(
            "dead_time_slots",
            dead_time_slots,
            f"a dead time whose counter chain settles within {MAX_SWEEPS} sweeps (it does not when detectors "
            "click in nearly every slot, which makes the counters almost periodic)",
        )
    per_live = _live_set_figures(mu, eta_a, eta_b, p_dark, e_mis, xp)
    weights = xp.stack(pi, axis=-1)
    g, eg, yz, eyz, yx, eyx = ((f * weights).sum(axis=-1) for f in per_live)
    return RelayFigures(g, eg, yz, eyz, yx, eyx, pi[ALL]), change


def figures(mu: Any, eta_a: Any, eta_b: Any, p_dark: Any, e_mis: Any, dead_time_slots: int = 0,
            basis_z: Any = 1.0) -> RelayFigures:  # fmt: skip
    """:class:`RelayFigures` without input checks, numpy or jax (jit-able for static
    ``dead_time_slots``). This is the one relay model behind the MDI-QKD rates with dead time."""
    return _figures(mu, eta_a, eta_b, p_dark, e_mis, int(dead_time_slots), basis_z)[0]


def relay_figures(mu: Any, eta_a: Any, eta_b: Any, p_dark: float, e_mis: float, dead_time_slots: int = 0,
                  basis_z: float = 1.0) -> RelayFigures:  # fmt: skip
    """Gain, error gain and single-photon figures of an MDI-QKD link at Charlie (see module).

    Args:
        mu: mean photon number each party sends (array-like).
        eta_a: total transmittance Alice–Charlie, detector efficiency included (array-like, broadcast
            with ``mu``).
        eta_b: total transmittance Bob–Charlie, likewise.
        p_dark: dark-count probability per detector per slot, in [0, 1).
        e_mis: probability that misalignment flips the announced correlation, in [0, 0.5].
        dead_time_slots: slots a detector stays blind after a click, integer in [0, MAX_DEAD_TIME_SLOTS].
        basis_z: probability that each party sends in the Z basis (``√sift``), in [0, 1]; it sets
            which light drives the dead time.

    Without dead time these are Ma–Razavi's Eqs. (A9)–(A11), (B1)–(B3):

    >>> from qverify.physics import mdi
    >>> f = relay_figures(0.4, 0.01, 0.02, 1e-6, 0.015)
    >>> bool(abs(f.gain / mdi.gains_z(0.4, 0.4, 0.01, 0.02, 1e-6, 0.015).gain - 1) < 1e-12)
    True
    """
    from qverify.physics._validate import check_range
    from qverify.physics.detector import check_dead_time as check_integer

    check_dead_time(check_integer(dead_time_slots))
    check_range("p_dark", p_dark, 0.0, 1.0, high_open=True)
    check_range("e_mis", e_mis, 0.0, 0.5)
    check_range("basis_z", basis_z, 0.0, 1.0)
    f, _ = _figures(mu, eta_a, eta_b, p_dark, e_mis, int(dead_time_slots), basis_z)
    return RelayFigures(*(v if np.ndim(v) else float(v) for v in f))


def simulate_relay_slots(
    mu: float,
    eta_a: float,
    eta_b: float,
    p_dark: float,
    e_mis: float,
    dead_time_slots: int,
    slots: int,
    rng: np.random.Generator,
    basis_z: float = 1.0,
) -> tuple[int, int, int]:
    """Slow, obviously-correct per-slot simulation: (Z–Z slots, successes in them, errors in them).

    Each slot draws both parties' bases, bits and optical phases, builds the four output fields
    from the beam-splitter and polarising-beam-splitter matrices, draws a Poisson photon number
    per detector and a dark count, gates clicks by per-detector dead-time counters, announces
    ψ± and flips the announced correlation with probability ``e_mis``: the reference that
    :func:`relay_figures` is tested against.
    """
    check_dead_time(dead_time_slots)
    counters = [0, 0, 0, 0]
    pairs = successes = errors = 0
    for _ in range(slots):
        bases = ["Z" if rng.random() < basis_z else "X" for _party in range(2)]
        bits = [int(rng.random() < 0.5) for _party in range(2)]
        fields = [
            np.sqrt(mu * eta) * np.exp(2j * np.pi * rng.random()) * np.array(_POLARISATION[basis][bit])
            for eta, basis, bit in zip((eta_a, eta_b), bases, bits, strict=True)
        ]
        ports = ((fields[0] + fields[1]) / np.sqrt(2), (fields[0] - fields[1]) / np.sqrt(2))
        means = [abs(ports[k][p]) ** 2 for k in (0, 1) for p in (0, 1)]  # 1H, 1V, 2H, 2V
        clicks = 0
        for i in range(4):
            fired = counters[i] == 0 and (rng.poisson(means[i]) > 0 or rng.random() < p_dark)
            clicks |= int(fired) << i
            counters[i] = dead_time_slots if fired else max(counters[i] - 1, 0)
        if bases != ["Z", "Z"]:
            continue
        pairs += 1
        if clicks in PSI_PLUS + PSI_MINUS:
            successes += 1
            wrong = bits[0] == bits[1]  # Z basis: every success announces opposite bits
            errors += int(wrong != (rng.random() < e_mis))
    return pairs, successes, errors
