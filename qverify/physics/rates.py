"""Key rate of a point-to-point link versus distance, with μ optimised per distance.

This is the entry point most users want::

    >>> from qverify.physics import LCQ_2012, link_rate
    >>> r = link_rate(50.0, LCQ_2012, protocol="mdi")
    >>> bool(r.key_rate > 0), 0.0 < float(r.mu) < 1.0
    (True, True)

``distance_km`` may be an array; everything is vectorised (numpy float64, or jax when jax arrays
are passed). MDI-QKD distances are Alice–Bob; Charlie sits at ``params.relay_fraction``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np

from qverify.errors import ChoiceError, ParameterError
from qverify.physics import bb84, detector, mdi, relay
from qverify.physics._validate import check_range
from qverify.physics._xp import binary_entropy, namespace, repeat
from qverify.physics.params import LinkParams

Protocol = Literal["mdi", "bb84"]
Decoys = Literal["infinite", "vacuum+weak"]
Gains_ = mdi.Gains
PROTOCOLS = ("mdi", "bb84")
DECOYS = ("infinite", "vacuum+weak")

MU_MIN = 1e-4
"""Lower end of the μ search (mean photon number)."""
MU_MAX = 2.0
"""Upper end of the μ search (mean photon number)."""
SEARCH_GRID = 48
"""Points of the log-μ grid of :func:`search_mu`."""
SEARCH_STEPS = 10
"""Parabolic-interpolation steps of :func:`search_mu` after its grid."""
ANCHORS = 128
"""Distances searched in full when :func:`optimise_mu` gets more than this many."""
LOCAL_HALF_WIDTH = 0.15
"""Half-width in log μ of each element's bracket around its interpolated guess."""
LOCAL_STEPS = 4
"""Parabolic steps of each element from its interpolated guess."""


class LinkRate(NamedTuple):
    """Result of :func:`link_rate`; arrays shaped like ``distance_km``.

    Attributes:
        key_rate: secret key per pulse (per pulse pair for MDI-QKD), ≥ 0.
        key_rate_bps: ``key_rate × clock_hz`` in bit/s.
        qber: observed QBER of the signal (Z basis for MDI-QKD) at the chosen μ.
        mu: signal mean photon number used (optimised unless fixed in ``params.source``).
        gain: probability per pulse of a detection (MDI: of an announced ψ±).
    """

    key_rate: Any
    key_rate_bps: Any
    qber: Any
    mu: Any
    gain: Any


def _check(protocol: str, decoys: str) -> None:
    if protocol not in PROTOCOLS:
        raise ChoiceError("protocol", protocol, PROTOCOLS)
    if decoys not in DECOYS:
        raise ChoiceError("decoys", decoys, DECOYS)


def _etas(distance_km: Any, params: LinkParams, protocol: str, xp: Any) -> tuple[Any, Any]:
    loss = params.channel.loss_db_per_km
    eta_det = params.detector.eta_det
    if protocol == "bb84":
        eta = eta_det * 10.0 ** (-loss * distance_km / 10.0)
        return eta, eta
    f = params.relay_fraction
    eta_a = eta_det * 10.0 ** (-loss * distance_km * f / 10.0)
    eta_b = eta_det * 10.0 ** (-loss * distance_km * (1 - f) / 10.0)
    return eta_a, eta_b


def _bb84_per_slot(mu: Any, eta: Any, p_dark: Any, e_mis: Any, f_ec: Any, sift: Any, dead_time_slots: int,
                   double_click: str, clip: bool = True) -> tuple[Any, Gains_]:  # fmt: skip
    """Decoy-BB84 rate (infinite decoys) and signal gains with every figure from the exact per-slot
    detector model (:mod:`qverify.physics.detector`) under the given dead time and convention."""
    sf = detector.figures(mu, eta, p_dark, e_mis, int(dead_time_slots), double_click, sift)
    g = Gains_(sf.gain, sf.error_gain)
    return bb84.key_rate_from_yields(mu, sf.y1, sf.e1y1, g, f_ec, sift, clip), g


def _mdi_per_slot(mu: Any, eta_a: Any, eta_b: Any, p_dark: Any, e_mis: Any, f_ec: Any, sift: Any,
                  dead_time_slots: int, clip: bool = True) -> tuple[Any, Gains_]:  # fmt: skip
    """Lo–Curty–Qi rate (infinite decoys, PRL 108, 130503, Eq. (1)) and Z-basis signal gains with every
    figure from Charlie's exact per-slot detector model (:mod:`qverify.physics.relay`) under the
    given dead time: ``sift · [μ² e^{−2μ} Y11^Z (1 − h(e11^X)) − f Q^Z h(E^Z)]``."""
    xp, _ = namespace(mu, eta_a, eta_b)
    rf = relay.figures(mu, eta_a, eta_b, p_dark, e_mis, int(dead_time_slots), xp.sqrt(sift))
    g = Gains_(rf.gain, rf.error_gain)
    ex = mdi._safe_div(rf.e11y11_x, rf.y11_x, xp, 0.5)
    ez = mdi._safe_div(rf.error_gain, rf.gain, xp, 0.5)
    q11 = mu * mu * xp.exp(-2 * mu) * rf.y11_z
    rate = q11 * (1 - binary_entropy(ex, xp)) - f_ec * rf.gain * binary_entropy(ez, xp)
    return sift * (xp.maximum(rate, 0.0) if clip else rate), g


def rate_function(
    distance_km: Any, params: LinkParams, protocol: str = "mdi", decoys: str = "infinite"
) -> Callable[..., tuple[Any, Gains_]]:
    """Return ``fn(mu, clip=True) -> (key_rate_per_pulse, signal Gains)`` at fixed distances.

    With ``clip=False`` the rate may be negative; the optimiser maximises that smooth function so
    it still finds the best μ where the positive window is narrow (near the cutoff).
    """
    _check(protocol, decoys)
    xp, _ = namespace(distance_km)
    eta_a, eta_b = _etas(distance_km, params, protocol, xp)
    p_dark = params.detector.p_dark
    e_mis = params.channel.e_mis
    f_ec = params.ec.f_ec
    sift = params.source.sift_for(protocol)
    nu = params.source.nu
    dead = params.detector.dead_time_slots

    convention = params.detector.double_click
    exact_slots = (protocol == "bb84" and convention == "discard") or dead > 0
    if protocol == "mdi" and dead > 0:
        relay.check_dead_time(dead)
    if exact_slots and decoys != "infinite":
        raise ParameterError("decoys", decoys, "'infinite' with dead time or discarded double clicks")
    p_ap = params.detector.p_afterpulse
    if p_ap > 0 and protocol == "mdi":
        raise ParameterError("p_afterpulse", p_ap, "0 for MDI-QKD (after-pulsing is modelled for BB84)")
    if p_ap > 0 and decoys != "infinite":
        raise ParameterError("decoys", decoys, "'infinite' with after-pulsing (finite keys: qverify.physics.finite)")

    def fn(mu: Any, clip: bool = True) -> tuple[Any, Gains_]:
        if protocol == "mdi" and exact_slots:
            r, g = _mdi_per_slot(mu, eta_a, eta_b, p_dark, e_mis, f_ec, sift, dead, clip)
        elif protocol == "mdi":
            g = mdi.gains_z(mu, mu, eta_a, eta_b, p_dark, e_mis)
            if decoys == "infinite":
                r = mdi.key_rate_infinite(mu, eta_a, eta_b, p_dark, e_mis, f_ec, sift, clip)
            else:
                r = mdi.key_rate_vacuum_weak(mu, nu, eta_a, eta_b, p_dark, e_mis, f_ec, sift, clip)
        elif exact_slots:
            r, g = _bb84_per_slot(mu, eta_a, p_dark, e_mis, f_ec, sift, dead, convention, clip)
        else:
            g = bb84.gains(mu, eta_a, p_dark, e_mis)
            if p_ap > 0:
                # Lim et al. 2014 after-pulses: every n-photon yield Y_n(1 + p_ap), error yield
                # e_n Y_n + p_ap Y_n / 2, so the single-photon figures move the same way.
                y_1 = bb84.y1(eta_a, p_dark)
                g = Gains_(g.gain * (1 + p_ap), g.error_gain + p_ap * g.gain / 2)
                e1y1 = bb84.e1(eta_a, p_dark, e_mis) * y_1 + p_ap * y_1 / 2
                r = bb84.key_rate_from_yields(mu, y_1 * (1 + p_ap), e1y1, g, f_ec, sift, clip)
            elif decoys == "infinite":
                r = bb84.key_rate_infinite(mu, eta_a, p_dark, e_mis, f_ec, sift, clip)
            else:
                r = bb84.key_rate_vacuum_weak(mu, nu, eta_a, p_dark, e_mis, f_ec, sift, clip)
        return r, g

    return fn


def _parabolic_steps(f: Callable[[Any], Any], a: Any, b: Any, c: Any, fa: Any, fb: Any, fc: Any, iters: int,
                     xp: Any) -> Any:  # fmt: skip
    """``iters`` steps of safeguarded successive parabolic interpolation on ``a < b < c``.

    Each step costs one evaluation; a golden-section step into the larger half replaces the
    parabola's vertex when it falls outside the bracket or too close to its ends or to ``b``.
    ``b`` stays the best point seen, so the result is never worse than the start.
    """
    golden = 0.5 * (3.0 - np.sqrt(5.0))

    def step(_i: Any, carry: tuple[Any, ...]) -> tuple[Any, ...]:
        a, b, c, fa, fb, fc = carry
        ba, bc = b - a, b - c
        num = ba * ba * (fb - fc) - bc * bc * (fb - fa)
        den = ba * (fb - fc) - bc * (fb - fa)
        ok_den = xp.abs(den) > 1e-300
        u = b - 0.5 * num / xp.where(ok_den, den, 1.0)
        tol = 1e-3 * (c - a)
        usable = ok_den & (u > a + tol) & (u < c - tol) & (xp.abs(u - b) > tol)
        u = xp.where(usable, u, xp.where(c - b > b - a, b + golden * (c - b), b - golden * (b - a)))
        fu = f(u)
        up, right = fu >= fb, u > b
        # u replaces b when better (b moves to the bracket end on its side), else u becomes an end.
        new_a, new_c = up & right, up & ~right
        a, fa = xp.where(new_a, b, xp.where(~up & ~right, u, a)), xp.where(new_a, fb, xp.where(~up & ~right, fu, fa))
        c, fc = xp.where(new_c, b, xp.where(~up & right, u, c)), xp.where(new_c, fb, xp.where(~up & right, fu, fc))
        return a, xp.where(up, u, b), c, fa, xp.where(up, fu, fb), fc

    return repeat(xp, 0, iters, step, (a, b, c, fa, fb, fc))[1]


def _in_log_mu(fn: Callable[..., tuple[Any, Any]], xp: Any) -> Callable[[Any], Any]:
    """The unclipped rate as a function of log μ (what the searches maximise)."""

    def f(log_mu: Any) -> Any:
        return fn(xp.exp(log_mu), clip=False)[0]

    return f


def search_mu(fn: Callable[..., tuple[Any, Any]], shape_like: Any, mu_min: Any = MU_MIN, grid: int = SEARCH_GRID,
              iters: int = SEARCH_STEPS) -> tuple[Any, Any]:  # fmt: skip
    """Maximise ``fn(mu, clip=False)[0]`` over μ ∈ [mu_min, MU_MAX] for every element, in log μ.

    A log grid of ``grid`` points, walked one point at a time (memory stays that of one
    evaluation), brackets the maximum; :func:`_parabolic_steps` narrows it. Returns
    ``(log μ, interior)`` where ``interior`` says the grid showed an interior local maximum.
    Works for numpy and jax (``grid + iters`` evaluations).
    """
    xp, _ = namespace(shape_like)
    shape_like = xp.asarray(shape_like, dtype=float)
    lo0 = xp.log(xp.asarray(mu_min, dtype=float)) + 0.0 * shape_like
    step = (np.log(MU_MAX) - lo0) / (grid - 1)
    f = _in_log_mu(fn, xp)

    # The unclipped rate can have two maxima in μ: a spurious one at μ → 0 (dark counts alone,
    # always negative) and the physical interior one. Near the cutoff the μ → 0 end can score
    # higher on the grid, so the bracket is the best *interior* local maximum when there is one.
    f0, f1 = f(lo0), f(lo0 + step)

    def walk(i: Any, carry: tuple[Any, ...]) -> tuple[Any, ...]:
        f_prev2, f_prev1, inner_f, inner_i, fa, fb, fc = carry
        f_cur = f(lo0 + i * step)
        peak = (f_prev1 >= f_prev2) & (f_prev1 >= f_cur) & (f_prev1 > inner_f)
        fa, fb, fc = (xp.where(peak, v, w) for v, w in zip((f_prev2, f_prev1, f_cur), (fa, fb, fc), strict=True))
        return f_prev1, f_cur, xp.where(peak, f_prev1, inner_f), xp.where(peak, i - 1.0, inner_i), fa, fb, fc

    start = (f0, f1, xp.full(shape_like.shape, -np.inf), xp.zeros(shape_like.shape), f1, f0, f1)
    f_prev2, f_prev1, inner_f, inner_i, fa, fb, fc = repeat(xp, 2, grid, walk, start)
    interior = inner_f > -np.inf
    # No interior peak: the rate is monotone on the grid; bracket the better end with its neighbour.
    top = f_prev1 > f0
    ends = xp.where(top, grid - 1.0, 0.0)
    b_i = xp.where(interior, inner_i, ends)
    a = lo0 + xp.where(interior, inner_i - 1, xp.where(top, grid - 2.0, 0.0)) * step
    c = lo0 + xp.where(interior, inner_i + 1, xp.where(top, grid - 1.0, 1.0)) * step
    b = lo0 + b_i * step
    fa = xp.where(interior, fa, xp.where(top, f_prev2, f0))
    fc = xp.where(interior, fc, xp.where(top, f_prev1, f1))
    fb = xp.where(interior, fb, xp.where(top, f_prev1, f0))
    return _parabolic_steps(f, a, b, c, fa, fb, fc, iters, xp), interior


def optimise_mu(fn: Callable[..., tuple[Any, Any]], make_fn: Callable[[Any], Callable[..., tuple[Any, Any]]],
                distance_km: Any, mu_min: Any = MU_MIN) -> Any:  # fmt: skip
    """Optimal μ at every distance: ``fn`` is the rate function at ``distance_km``, ``make_fn(d)``
    builds it at other distances (the anchors).

    Up to :data:`ANCHORS` distances are searched one by one (:func:`search_mu`). For more, the
    optimum is a smooth function of distance, so :func:`search_mu` runs on :data:`ANCHORS`
    distances spanning the input, log μ is interpolated linearly between them (anchors past the
    cutoff without an interior maximum take the last anchor's that has one), and every element
    refines its own guess with :data:`LOCAL_STEPS` parabolic steps in ±:data:`LOCAL_HALF_WIDTH`
    (log μ) around it: ``3 + LOCAL_STEPS`` evaluations per element instead of
    ``SEARCH_GRID + SEARCH_STEPS``.
    """
    xp, _ = namespace(distance_km)
    d = xp.asarray(distance_km, dtype=float)
    if d.size <= ANCHORS:
        return xp.exp(search_mu(fn, d, mu_min)[0])
    anchors = xp.linspace(xp.min(d), xp.max(d), ANCHORS)
    log_a, interior = search_mu(make_fn(anchors), anchors, mu_min)
    idx = xp.maximum.accumulate(xp.where(interior, xp.arange(ANCHORS), -1))
    idx = xp.where(idx < 0, xp.argmax(interior), idx)
    guess = xp.interp(d, anchors, log_a[idx])
    f = _in_log_mu(fn, xp)
    lo_end, hi_end = xp.log(xp.asarray(mu_min, dtype=float)), np.log(MU_MAX)
    b = xp.clip(guess, lo_end + LOCAL_HALF_WIDTH, hi_end - LOCAL_HALF_WIDTH)
    a, c = b - LOCAL_HALF_WIDTH, b + LOCAL_HALF_WIDTH
    return xp.exp(_parabolic_steps(f, a, b, c, f(a), f(b), f(c), LOCAL_STEPS, xp))


def link_rate(distance_km: Any, params: LinkParams, protocol: str = "mdi", decoys: str = "infinite") -> LinkRate:
    """Secret-key rate of one link at ``distance_km`` (array-like, km ≥ 0).

    Args:
        distance_km: fibre length Alice–Bob in km.
        params: link parameters; ``params.source.mu = None`` optimises μ per distance.
        protocol: ``"mdi"`` (Lo–Curty–Qi with Ma–Razavi gains) or ``"bb84"`` (decoy BB84, GLLP).
        decoys: ``"infinite"`` or ``"vacuum+weak"`` (weak decoy ``params.source.nu``).
    """
    _check(protocol, decoys)
    xp, _ = namespace(distance_km)
    if xp is np:
        check_range("distance_km", distance_km, 0.0, float("inf"))
        distance_km = np.asarray(distance_km, dtype=float)
    fn = rate_function(distance_km, params, protocol, decoys)
    if params.source.mu is None:
        mu_min = max(MU_MIN, params.source.nu * 1.0001) if decoys == "vacuum+weak" else MU_MIN
        mu = optimise_mu(fn, lambda d: rate_function(d, params, protocol, decoys), distance_km, mu_min)
    else:
        mu = params.source.mu + 0.0 * distance_km
    rate, g = fn(mu)
    ok = g.gain > 0
    qber = xp.where(ok, g.error_gain / xp.where(ok, g.gain, 1.0), 0.5)
    return LinkRate(rate, rate * params.source.clock_hz, qber, mu, g.gain)


def max_distance_km(
    params: LinkParams,
    protocol: str = "mdi",
    decoys: str = "infinite",
    upper_km: float = 2000.0,
    tol_km: float = 1e-3,
) -> float:
    """Largest distance (km) with a positive key rate, by bisection on the optimised rate.

    >>> from qverify.physics import GYS_2004
    >>> 130 < max_distance_km(GYS_2004, "bb84") < 150
    True
    """
    _check(protocol, decoys)
    lo, hi = 0.0, float(upper_km)
    if float(link_rate(np.array(lo), params, protocol, decoys).key_rate) <= 0:
        return 0.0
    if float(link_rate(np.array(hi), params, protocol, decoys).key_rate) > 0:
        return hi
    while hi - lo > tol_km:
        mid = 0.5 * (lo + hi)
        if float(link_rate(np.array(mid), params, protocol, decoys).key_rate) > 0:
            lo = mid
        else:
            hi = mid
    return lo


def fibre_link_rates(
    length_km: Any,
    relay_fraction: Any,
    mu: Any,
    use_mdi: Any,
    loss_db_per_km: Any,
    eta_det: Any,
    p_dark: Any,
    e_mis: Any,
    f_ec: Any,
    sift_mdi: Any,
    sift_bb84: Any,
    clock_hz: Any,
    excess_loss_db: Any = 0.0,
    eta_scale: Any = 1.0,
    clock_scale: Any = 1.0,
    extra_error: Any = 0.0,
    dead_time_slots: int = 0,
    double_click: str = "squash",
) -> tuple[Any, Any, Any]:
    """Key rate (bit/s), signal QBER and gain of many links at once, each MDI-QKD or decoy BB84.

    The one formula behind the network simulator and the DRA environment (numpy or jax arrays).
    ``excess_loss_db`` adds to ``length_km × loss_db_per_km`` and is split between the two arms of
    an MDI link in proportion to ``relay_fraction``; ``eta_scale`` and ``clock_scale`` are drift
    factors of the detector efficiency and the source rate; ``extra_error`` is a bit flip added by a
    misbehaving party, composed with the misalignment as ``e = e_mis + x − 2 e_mis x``. Infinite
    decoys. ``sift_mdi`` and ``sift_bb84`` are the sifting factors of each protocol
    (:meth:`qverify.physics.params.Source.sift_for`).

    ``dead_time_slots`` and ``double_click`` (static) are the detector conventions: BB84 links pay for
    gain, QBER and yields under the exact per-slot model of :mod:`qverify.physics.detector`, MDI-QKD
    links under Charlie's four-detector model of :mod:`qverify.physics.relay`, as in
    :func:`link_rate`. The relay model holds dead times up to ``relay.MAX_DEAD_TIME_SLOTS``; beyond
    that an MDI-QKD link is unavailable: no key, QBER ½ (callers refuse topologies built with MDI
    links; a policy that switches a link to MDI gets nothing from it). The double-click convention
    does not apply to MDI-QKD (a success is exactly one H and one V click).
    """
    xp, _ = namespace(length_km, mu, excess_loss_db)
    e = e_mis + extra_error - 2 * e_mis * extra_error
    loss_db = length_km * loss_db_per_km + excess_loss_db
    eta_d = xp.clip(eta_det * eta_scale, 1e-9, 1.0)
    eta_a = eta_d * 10.0 ** (-loss_db * relay_fraction / 10)
    eta_b = eta_d * 10.0 ** (-loss_db * (1 - relay_fraction) / 10)
    eta = eta_d * 10.0 ** (-loss_db / 10)
    if 0 < dead_time_slots <= relay.MAX_DEAD_TIME_SLOTS:
        r_mdi, g_mdi = _mdi_per_slot(mu, eta_a, eta_b, p_dark, e, f_ec, sift_mdi, dead_time_slots)
    else:
        r_mdi = mdi.key_rate_infinite(mu, eta_a, eta_b, p_dark, e, f_ec, sift_mdi)
        g_mdi = mdi.gains_z(mu, mu, eta_a, eta_b, p_dark, e)
    if dead_time_slots > 0 or double_click != "squash":
        r_bb, g_bb = _bb84_per_slot(mu, eta, p_dark, e, f_ec, sift_bb84, dead_time_slots, double_click)
    else:
        r_bb = bb84.key_rate_infinite(mu, eta, p_dark, e, f_ec, sift_bb84)
        g_bb = bb84.gains(mu, eta, p_dark, e)
    if dead_time_slots > relay.MAX_DEAD_TIME_SLOTS:
        g_mdi = Gains_(0.0 * g_mdi.gain, 0.0 * g_mdi.gain)  # unavailable: no key (QBER reads ½)
        r_mdi = 0.0 * r_mdi
    rate = xp.where(use_mdi, r_mdi, r_bb)
    gain = xp.where(use_mdi, g_mdi.gain, g_bb.gain)
    err = xp.where(use_mdi, g_mdi.error_gain, g_bb.error_gain)
    qber = xp.where(gain > 0, err / xp.where(gain > 0, gain, 1.0), 0.5)
    return rate * clock_hz * clock_scale, qber, gain
