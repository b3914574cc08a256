"""The QKD network as one pure-JAX model: parameters and state are pytrees, ``step`` is pure.

Everything that happens on the network in one slot of ``slot_s`` seconds lives in :func:`step`;
``qverify simulate``, the DRA environment (:mod:`qverify.dra.env`) and ``qverify reproduce`` all
run it, under ``jit`` and ``vmap`` (seeds and scenarios are stacked along a vmapped axis).

One slot:

1. **Fluctuations.** Excess fibre loss follows an Ornstein–Uhlenbeck process in dB plus fades
   (random onsets, fixed depth and duration); detector efficiency and source rate drift as log-OU
   processes.
2. **Links.** Key rate and signal QBER of every link from :func:`qverify.physics.rates.fibre_link_rates`
   under the slot's conditions and the decision's μ and protocol; a Byzantine endpoint (active from
   ``onset_slot``) that injects raises its links' QBER by the flip probability measured on the
   ``inject`` relay circuit. Test rounds cost key: the epoch's ``verify_rounds`` are drawn from
   the link's detected rounds (detections = gain × pulses, spread evenly over the epoch's slots),
   so a slot keeps ``1 − (verify_rounds / epoch_slots) / detections`` of its key (none when the
   tests need every detection); a decision's ``test_scale`` multiplies the rounds (the DRA agent
   picks it per link from ``test_levels``). A link distils nothing in an epoch after its endpoints' parameter
   estimation aborted it (step 4); pools fill at rate × slot up to ``pool_cap_bits`` (the excess is
   *discarded*). The true QBER decides nothing: a link whose true QBER exceeds ``qber_threshold``
   and that its estimation let through is a *missed abort*, one aborted below it a *false abort*
   (``SlotOut.aborted`` against ``SlotOut.qber``, simulator-only). The **oracle abort rule**
   (``oracle_aborts``, ``SimConfig(abort_rule="oracle")``) is the exception, kept to measure what
   realism costs: there a link aborts in exactly the slots whose true QBER exceeds the threshold, as
   if its endpoints knew the truth (no false or missed abort, no lying end). With
   finite-key blocks (``block_pulses``) a link's key reaches its pool only when its block closes,
   reduced by the block's finite-key cost (:func:`_blocks`); the block size is a decision.
3. **Relay.** Demands draw ``demand_bits`` from every link of their path(s): ``single`` (one path,
   hop-by-hop XOR), ``xor`` (key split over node-disjoint paths, all needed) or ``shamir``
   (``shamir_k`` of the disjoint paths). Byzantine relays that drop or corrupt destroy what passes
   through them (the bits were consumed from the pools). A delivered key is *exposed* when the
   adversary could reconstruct it: on a single path any Byzantine or untrusted relay; with XOR a
   learner on every path (colluding) or on the only path; with Shamir learners on ≥ k paths
   (colluding) or on one path when k = 1.
4. **Verification (the measurement path).** Each link runs ``verify_rounds`` single-photon test
   rounds per epoch of ``epoch_slots`` slots, spread evenly over the epoch, of the protocol it runs
   in each slot (the MDI-QKD Bell-state measurement or BB84 prepare-and-measure). Their outcome
   counts are sampled from the exact outcome distributions of the protocol circuits
   (see :mod:`qverify.network.measure`): each distribution is bilinear in the circuit's two mixing
   probabilities (the fibre's depolarising channel and a Byzantine node's injection probability),
   so four exact corner distributions per protocol, computed once with Aer, mix into the exact
   distribution of every link and slot; counts are drawn exactly by
   :func:`qverify.network.binomial.binomial`, at most the epoch's detections. Each endpoint reports the estimated
   QBER; a Byzantine endpoint that lies reports 0, one that slanders reports 0.5 for links to
   honest neighbours. **Aborts** come from the same counts: an honest endpoint aborts the link for
   the next epoch when the one-sided Clopper–Pearson upper bound (confidence ``pe_confidence``) of
   the pooled Z/X error rate exceeds ``qber_threshold`` (:func:`qverify.network.estimation.pe_aborts`);
   a Byzantine endpoint that lies never aborts, one that slanders aborts its links to honest
   neighbours; an abort by either end stops the link. The decision applies to the epoch that
   follows (a deployed link would hold the epoch's key until its estimation; here a QBER change
   within an epoch is caught one epoch late and counted as missed aborts meanwhile). Without
   verification (``verify=False``) nothing is estimated and no link aborts. At the same epoch end every node's source is checked by GHZ tests with up to
   seven neighbours (:mod:`qverify.network.node_checks`): pass counts sampled from the GHZ circuits'
   exact pass probabilities under the epoch's per-link noise, one QBER-equivalent report per partner.
5. **Weights.** At the same epoch end the control plane's weight rule folds the reports into node
   scores and WHEAT weights. It reads the conservative statistic of each link report, not its point
   value: the one-sided Clopper–Pearson upper bound (``pe_confidence``) of the endpoint's claim read
   as errors out of the epoch's heralded Z/X test rounds
   (:func:`qverify.network.estimation.claim_bounds`; a liar's claim of 0 becomes the bound of 0
   errors out of those rounds), so fewer test rounds make the weights more conservative; node-check
   reports likewise, by the QBER-equivalent of the lower bound of the pass fraction they imply
   (:func:`qverify.network.node_checks.claim_upper`). :func:`weight_rule` is the arithmetic of
   :meth:`qverify.consensus.voting.FidelityWeightedVoting.end_epoch`, from the same functions of
   :mod:`qverify.consensus.weights` (the host reads the same bound, ``FidelityReport.qber_upper``),
   so an agent trains on the weights the control plane would commit; under a host control plane
   (``qverify simulate`` with ABFT) the weights its PBFT instances adopted replace them at every
   epoch boundary.

Key conservation holds slot by slot (tested): generated = Δpool + consumed + discarded, and every
delivered bit was consumed on each link of its path.

What the control plane and the agent may see is :func:`observe`: only what a network could
measure (the settings chosen, the epoch's public test counts and the reports and aborts made of
them, pools, weights, node-check reports, a noisy loss monitor, backlog). The truth — the true
QBER, the Byzantine set, the drift and excess-loss states, the exact loss and the noise-free key
rate — lives in the state for the simulator and the reward only (``NetState`` marks each field).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qverify.consensus.weights import (
    ABORT_QBER,
    check_losses,
    node_losses_array,
    score_step,
    wheat_array,
    with_hysteresis,
)
from qverify.errors import ParameterError
from qverify.network import node_checks
from qverify.network.estimation import claim_bounds, pe_aborts, zx_counts
from qverify.network.measure import corner_weights, depolarising, measure
from qverify.physics.rates import fibre_link_rates

MONITOR_SEED = 0x6D6F6E
"""Folded into a slot's key for the loss monitor's noise (the other draws keep their streams)."""

RELAY_MODES: tuple[str, ...] = ("single", "xor", "shamir")
SERVED_TOLERANCE = 1e-6
"""A demand is served when the delivered fraction of its request is ≥ 1 − this (float32 arithmetic)."""


@struct.dataclass
class NetParams:
    """One network instance, its physics, its adversary and its measurement path (a pytree).

    Arrays: ``E`` links, ``N`` nodes, ``D`` demands, ``P`` candidate paths, ``L``/``M`` padded path
    lengths in links/inner nodes, ``K`` μ levels. Lengths in km, losses in dB, rates in bit/s,
    durations in slots unless the name says seconds.
    """

    length_km: jax.Array  # (E,)
    relay_fraction: jax.Array  # (E,)
    is_mdi: jax.Array  # (E,) protocol as built
    link_a: jax.Array  # (E,) endpoint node index
    link_b: jax.Array  # (E,)
    path_links: jax.Array  # (D, P, L) link indices, -1 padding
    path_inner: jax.Array  # (D, P, M) intermediate nodes, -1 padding
    path_valid: jax.Array  # (D, P)
    trusted: jax.Array  # (N,) may relay keys without learning them being a breach
    byzantine: jax.Array  # (N,) bool, the true set (simulator only)
    mu_levels: jax.Array  # (K,) μ choices of the allocator
    nominal_mu: jax.Array  # (E,) rate-optimal μ at nominal loss
    corners: jax.Array  # (8, 3, 3) verification corner distributions (MDI-QKD, BB84), see qverify.network.measure
    loss_db_per_km: Any = 0.2
    eta_det: Any = 0.145
    p_dark: Any = 3e-6
    e_mis: Any = 0.015
    f_ec: Any = 1.16
    sift_mdi: Any = 1.0
    sift_bb84: Any = 0.5
    clock_hz: Any = 1e9
    inject_prob: Any = 0.3  # mixing probability of the inject circuit (0 when nobody injects)
    inject_error: Any = 0.15  # bit flip it causes, measured on that circuit
    drop_keys: Any = True
    lie: Any = True
    slander: Any = False
    collude: Any = True
    onset_slot: Any = 0
    demand_bits: Any = 2000.0
    pool_cap_bits: Any = 1e7
    slot_s: Any = 1.0
    qber_threshold: Any = 0.11
    violation_cost: Any = 1.0
    loss_sigma_db: Any = 1.0
    loss_theta: Any = 0.05
    fade_rate: Any = 2e-3
    fade_db: Any = 10.0
    fade_slots: Any = 30
    eta_sigma: Any = 0.05
    source_sigma: Any = 0.05
    drift_theta: Any = 0.01
    verify_rounds: Any = 10_000  # test rounds per epoch, drawn from detected rounds (they are not key)
    pe_confidence: Any = 0.95  # one-sided confidence of the parameter-estimation upper bound (aborts)
    monitor_sigma_db: Any = 0.5  # sd of the loss monitor's Gaussian reading error per slot, dB
    oracle_aborts: Any = False  # bool; True: links abort on the slot's true QBER (an oracle, see step)
    random_byzantine: Any = 0
    node_links: Any = None  # (N, W) int: every node's links, −1 padding (qverify.consensus.weights.node_incidence)
    check_links: Any = None  # (N, W) int: link to each node-check partner, −1 padding (W ≤ MAX_PARTIES − 1)
    check_table: Any = None  # (2, MAX_PARTIES + 1, MAX_PARTIES) node-check corner pass probabilities
    node_rounds: Any = 0  # GHZ node-check rounds per node and epoch
    node_cheat: Any = False  # injecting Byzantine nodes send product states in node checks
    weight_alpha: Any = 0.5  # the weight rule's damping α, decay, score floor and hysteresis margin
    weight_decay: Any = 0.1
    weight_floor: Any = -5.0
    weight_hysteresis: Any = 0.05
    block_pulses: Any = None  # (B,) pulses (MDI: pulse pairs) per finite-key block; None: asymptotic key
    block_keep: Any = None  # (E, 2, B) key a block keeps, as a fraction of the asymptotic key (MDI, BB84)
    test_levels: Any = None  # (T,) test-round multipliers of verify_rounds an agent chooses from; None: 1× only
    relay: str = struct.field(pytree_node=False, default="single")
    shamir_k: int = struct.field(pytree_node=False, default=2)
    max_steps: int = struct.field(pytree_node=False, default=100)
    epoch_slots: int = struct.field(pytree_node=False, default=10)
    verify: bool = struct.field(pytree_node=False, default=True)  # False: no verification rounds (reports stay 0)
    # Detector conventions (qverify.physics.detector for BB84, qverify.physics.relay for MDI-QKD).
    dead_time_slots: int = struct.field(pytree_node=False, default=0)
    double_click: str = struct.field(pytree_node=False, default="squash")
    weight_f: int = struct.field(pytree_node=False, default=0)  # Byzantine nodes the weights tolerate
    # "measured": observe() shows measurables only; "oracle": the truth too (ORACLE_LINK_FIELDS, ...).
    observation: str = struct.field(pytree_node=False, default="measured")

    @property
    def n_links(self) -> int:
        return int(self.length_km.shape[0])

    @property
    def n_nodes(self) -> int:
        return int(self.byzantine.shape[0])

    @property
    def n_demands(self) -> int:
        return int(self.path_valid.shape[0])


@struct.dataclass
class NetState:
    """State of the network between two slots (a pytree).

    Fields marked *simulator-only* are truth :func:`observe` never reads (the true QBER, the
    Byzantine set, the latent drift, excess-loss and fade states, the exact loss, the noise-free
    rate, the epoch's expected detections). ``reported`` is what the endpoints reported after the
    last completed epoch's verification; ``counts`` are its raw (errors, heralds) per link and
    basis (Z, X, Y); ``pe_abort`` the abort decision made from them.
    """

    excess_db: jax.Array  # (E,) OU excess loss, dB (simulator-only)
    fade_left: jax.Array  # (E,) slots of fade left (simulator-only)
    log_eta: jax.Array  # (E,) (simulator-only)
    log_src: jax.Array  # (E,) (simulator-only)
    pool: jax.Array  # (E,) bits
    rate_bps: jax.Array  # (E,) last slot's distilled key rate, noise-free closed form (simulator-only)
    mu: jax.Array  # (E,) last slot's μ
    loss_db: jax.Array  # (E,) last slot's exact total loss, dB (simulator-only)
    backlog: jax.Array  # (D,) bits requested and not yet delivered
    t: jax.Array  # slot counter
    byzantine: jax.Array  # (N,) the true set (drawn at reset when random_byzantine > 0)
    qber: jax.Array  # (E,) true QBER of the last slot (simulator-only)
    reported: jax.Array  # (E, 2) QBER reported by endpoint a and b after the last epoch
    counts: jax.Array  # (E, 3, 2) int: (errors, heralds) per basis Z, X, Y of the last epoch
    mix: jax.Array  # (E, 8) corner weights accumulated over the current epoch
    weights: jax.Array  # (N,) control-plane weights (weight_rule at epoch ends; a host control plane overrides)
    scores: jax.Array  # (N,) the weight rule's log-scores (0 = best)
    node_claims: jax.Array  # (N, W) QBER-equivalent each check partner reported after the last epoch (inf: none)
    node_counts: jax.Array  # (N, W, 2) int: (passes, rounds) each partner verified in the last epoch
    node_check: jax.Array  # (N,) median of node_claims over the partners (0: unchecked), what observe shows
    learned: jax.Array  # (N,) key or share bits each node saw as a relay
    block_sent: jax.Array  # (E,) pulses sent in the link's open finite-key block
    block_bits: jax.Array  # (E,) asymptotic key of the open block, not distilled yet
    block_level: jax.Array  # (E,) int: block size (index into block_pulses) of the open block
    block_mdi: jax.Array  # (E,) bool: protocol of the open block
    use_mdi: jax.Array  # (E,) bool: last slot's protocol
    loss_monitor: jax.Array  # (E,) last slot's loss monitor reading: loss_db + N(0, monitor_sigma_db²), dB
    pe_abort: jax.Array  # (E,) bool: aborted by its endpoints' parameter estimation at the last epoch end
    # (oracle abort rule: aborted in the last slot because its true QBER exceeded the threshold)
    pe_upper: jax.Array  # (E,) Clopper–Pearson upper bound of ``counts``' pooled Z/X error rate (1: no rounds)
    detected: jax.Array  # (E,) expected detections so far in the current epoch (simulator-only)


@struct.dataclass
class Decision:
    """What the control plane or the agent sets for a slot.

    Attributes:
        usable: (E,) links keys may be relayed over.
        mu: (E,) signal mean photon number.
        use_mdi: (E,) protocol (True: MDI-QKD, False: decoy BB84).
        route: (D,) candidate path per demand (single-path relay).
        block: (E,) finite-key block size per link, an index into ``NetParams.block_pulses``
            (``None``: the smallest; ignored when the network distils asymptotic key).
        test_scale: (E,) test rounds per epoch as a multiple of ``NetParams.verify_rounds``
            (``None``: 1); more rounds tighten the estimate and cost key. The DRA agent sets it
            from ``NetParams.test_levels`` (its ``tests`` branch, :mod:`qverify.dra.env`); the
            epoch's rounds follow the scale of its last slot.
    """

    usable: jax.Array
    mu: jax.Array
    use_mdi: jax.Array
    route: jax.Array
    block: Any = None
    test_scale: Any = None


@struct.dataclass
class SlotOut:
    """What one slot produced (simulator-side bookkeeping; arrays per link or demand)."""

    delivered: jax.Array  # (D,) bits that reached the users
    served: jax.Array  # (D,) request met in full
    exposed: jax.Array  # () delivered bits the adversary can reconstruct
    qber: jax.Array  # (E,) true QBER
    in_use: jax.Array  # (E,) on a path some demand was routed over
    violations: jax.Array  # () links in use whose true QBER is above the threshold (simulator-only)
    aborted: jax.Array  # (E,) links their endpoints' parameter estimation stopped in this slot
    generated: jax.Array  # (E,) bits distilled this slot (finite key: by the blocks that closed)
    block_lost: jax.Array  # (E,) asymptotic bits a closing block did not keep, or a restarted block dropped
    test_bits: jax.Array  # (E,) key the slot's test rounds cost (bits the link would have distilled)
    consumed: jax.Array  # (E,) bits drawn from the pools by relays
    discarded: jax.Array  # (E,) bits lost to the pool cap
    pool: jax.Array  # (E,) pool after the slot
    measured: jax.Array  # () whether an epoch's verification completed at this slot


def _link_rates(
    params: NetParams,
    mu: jax.Array,
    use_mdi: jax.Array,
    excess_db: jax.Array,
    eta_scale: jax.Array,
    clock_scale: jax.Array,
    extra_error: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """:func:`link_physics` with the signal gain (detections per pulse, MDI-QKD: per pulse pair) third."""
    return fibre_link_rates(
        params.length_km, params.relay_fraction, mu, use_mdi, params.loss_db_per_km, params.eta_det, params.p_dark,
        params.e_mis, params.f_ec, params.sift_mdi, params.sift_bb84, params.clock_hz, excess_db, eta_scale,
        clock_scale, extra_error, params.dead_time_slots, params.double_click,
    )  # fmt: skip


def link_physics(
    params: NetParams,
    mu: jax.Array,
    use_mdi: jax.Array,
    excess_db: jax.Array,
    eta_scale: jax.Array,
    clock_scale: jax.Array,
    extra_error: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Key rate (bit/s) and signal QBER per link: :func:`qverify.physics.rates.fibre_link_rates`, under
    the detector conventions of ``params`` (dead time on both protocols; double clicks on BB84)."""
    rate, qber, _gain = _link_rates(params, mu, use_mdi, excess_db, eta_scale, clock_scale, extra_error)
    return rate, qber


def draw_byzantine(key: jax.Array, params: NetParams) -> jax.Array:
    """``params.byzantine``, or ``random_byzantine`` nodes drawn uniformly when that is > 0.

    Traced (no Python branch on the count), so instances with different counts share one program.
    """
    n = params.byzantine.shape[0]
    ranks = jnp.argsort(jnp.argsort(jax.random.uniform(key, (n,))))
    return jnp.where(params.random_byzantine > 0, ranks < params.random_byzantine, params.byzantine)


# Jitted, so that eager calls in a loop compile once per shape (see run).
@jax.jit
def init(key: jax.Array, params: NetParams) -> NetState:
    """Calm channel, empty pools, no backlog, no report yet (reports read 0), equal weights."""
    e, n, d = params.n_links, params.n_nodes, params.n_demands
    f32 = jnp.float32
    return NetState(
        excess_db=jnp.zeros(e, f32),
        fade_left=jnp.zeros(e, jnp.int32),
        log_eta=jnp.zeros(e, f32),
        log_src=jnp.zeros(e, f32),
        pool=jnp.zeros(e, f32),
        rate_bps=jnp.zeros(e, f32),
        mu=jnp.asarray(params.nominal_mu, f32),
        loss_db=jnp.asarray(params.length_km * params.loss_db_per_km, f32),
        backlog=jnp.zeros(d, f32),
        t=jnp.array(0, jnp.int32),
        byzantine=draw_byzantine(key, params),
        qber=jnp.zeros(e, f32),
        reported=jnp.zeros((e, 2), f32),
        counts=jnp.zeros((e, 3, 2), jnp.int32),
        mix=jnp.zeros((e, 8), f32),
        weights=jnp.ones(n, f32),
        scores=jnp.zeros(n, f32),
        node_claims=jnp.full(params.check_links.shape, jnp.inf, f32),
        node_counts=jnp.zeros((*params.check_links.shape, 2), jnp.int32),
        node_check=jnp.zeros(n, f32),
        learned=jnp.zeros(n, f32),
        block_sent=jnp.zeros(e, f32),
        block_bits=jnp.zeros(e, f32),
        block_level=jnp.zeros(e, jnp.int32),
        block_mdi=jnp.asarray(params.is_mdi),
        use_mdi=jnp.asarray(params.is_mdi),
        loss_monitor=jnp.asarray(params.length_km * params.loss_db_per_km, f32),
        pe_abort=jnp.zeros(e, bool),
        pe_upper=jnp.ones(e, f32),  # no test round yet: the bound of 0 out of 0 (estimation.cp_upper)
        detected=jnp.zeros(e, f32),
    )


def _ou(key: jax.Array, x: jax.Array, theta: Any, sigma: Any) -> jax.Array:
    return x * (1 - theta) + sigma * jnp.sqrt(1 - (1 - theta) ** 2) * jax.random.normal(key, x.shape)


def active_byzantine(state: NetState, params: NetParams) -> jax.Array:
    """(N,) Byzantine nodes misbehaving in this slot (from ``onset_slot`` on)."""
    return state.byzantine & (state.t >= params.onset_slot)


def _relay(
    params: NetParams, decision: Decision, pool: jax.Array, aborted: jax.Array, active: jax.Array
) -> tuple[jax.Array, ...]:
    """Draw key for every demand; returns (pool, delivered, served, exposed bits, consumed, in_use, seen)."""
    e, d = params.n_links, params.n_demands
    if params.relay == "single":
        p = params.path_valid.shape[1]
        route = jnp.clip(decision.route, 0, p - 1)
        rows = jnp.arange(d)
        use_links = params.path_links[rows, route][:, None, :]
        use_inner = params.path_inner[rows, route][:, None, :]
        use_valid = params.path_valid[rows, route][:, None]
    else:
        use_links, use_inner, use_valid = params.path_links, params.path_inner, params.path_valid
    has = use_links >= 0
    lk = jnp.where(has, use_links, 0)
    ok_path = jnp.where(has, decision.usable[lk] & ~aborted[lk], True).all(axis=2) & use_valid
    req = jnp.where(has & ok_path[..., None], params.demand_bits, 0.0)
    requested = jnp.zeros(e).at[lk.ravel()].add(req.ravel())
    frac_link = jnp.where(requested > 0, jnp.minimum(1.0, pool / jnp.where(requested > 0, requested, 1.0)), 1.0)
    frac = jnp.where(has, frac_link[lk], 1.0).min(axis=2) * ok_path  # (D, P')
    drawn = jnp.where(has, frac[..., None], 0.0) * params.demand_bits
    consumed = jnp.zeros(e).at[lk.ravel()].add(drawn.ravel())
    pool = jnp.maximum(pool - consumed, 0.0)
    in_use = jnp.zeros(e, dtype=bool).at[lk.ravel()].max((has & use_valid[..., None]).ravel())

    has_inner = use_inner >= 0
    hi = jnp.where(has_inner, use_inner, 0)
    # Every relay on a path sees its share (an upper bound when a relay upstream drops it).
    seen = (
        jnp.zeros(params.n_nodes)
        .at[hi.ravel()]
        .add(jnp.where(has_inner, frac[..., None] * params.demand_bits, 0.0).ravel())
    )
    inner_active = jnp.where(has_inner, active[hi], False).any(axis=2)  # (D, P')
    learner = jnp.where(has_inner, active[hi] | ~params.trusted[hi], False).any(axis=2)
    frac = jnp.where(params.drop_keys & inner_active, 0.0, frac)
    full = frac >= 1.0 - SERVED_TOLERANCE
    hit = learner & use_valid
    n_valid = use_valid.sum(axis=1)
    n_hit = hit.sum(axis=1)
    if params.relay == "single":
        served = full[:, 0]
        delivered = frac[:, 0] * params.demand_bits
        exposed_d = hit[:, 0]
    elif params.relay == "xor":
        served = (full | ~use_valid).all(axis=1) & (n_valid > 0)
        delivered = jnp.where(n_valid > 0, jnp.where(use_valid, frac, 1.0).min(axis=1), 0.0) * params.demand_bits
        every_path = (n_hit == n_valid) & (n_hit > 0)
        exposed_d = jnp.where(params.collude, every_path, every_path & (n_valid == 1))
    else:
        k = params.shamir_k
        served = full.sum(axis=1) >= k
        ranked = -jnp.sort(-jnp.where(use_valid, frac, 0.0), axis=1)
        kth = ranked[:, k - 1] if ranked.shape[1] >= k else jnp.zeros(d)
        delivered = kth * params.demand_bits
        exposed_d = jnp.where(params.collude, n_hit >= k, (k == 1) & (n_hit >= 1))
    exposed = (delivered * exposed_d).sum()
    return pool, delivered, served, exposed, consumed, in_use, seen


def pulses_per_slot(params: NetParams, clock_scale: Any = 1.0) -> Any:
    """Pulses (MDI-QKD: pulse pairs) a source sends in one slot at ``clock_scale`` × its nominal clock."""
    return params.clock_hz * clock_scale * params.slot_s


MIN_TEST_ROUNDS = 3
"""Fewest test rounds a link may run in an epoch: one per basis Z, X, Y."""


def check_test_levels(levels: Sequence[float], verify_rounds: int) -> tuple[float, ...]:
    """The test-round multipliers ``levels`` (of ``verify_rounds``) as floats, else a ``ParameterError``.

    Every level must be finite and > 0, and level × ``verify_rounds`` ≥ :data:`MIN_TEST_ROUNDS` in
    the model's float32 arithmetic (a test round per basis Z, X, Y every epoch).

    >>> check_test_levels((0.5, 1, 2), 10_000)
    (0.5, 1.0, 2.0)
    >>> check_test_levels((1.0, 1e-4), 10_000)
    Traceback (most recent call last):
    ...
    qverify.errors.ParameterError: test_levels = 0.0001 is outside the allowed range [0.0003, inf) (level × verify_rounds ≥ 3 test rounds per epoch, one per basis Z, X, Y; verify_rounds = 10000)
    """
    try:
        values = tuple(float(x) for x in levels)
    except (TypeError, ValueError):
        raise ParameterError("test_levels", levels, "a sequence of numbers, e.g. (0.5, 1, 2)") from None
    if not values:
        raise ParameterError("test_levels", tuple(levels), "at least one level (None: no tests branch)")
    for v in values:
        if not (math.isfinite(v) and v > 0):
            raise ParameterError("test_levels", v, "(0, inf), finite")
        if np.float32(v) * np.float32(verify_rounds) < MIN_TEST_ROUNDS:
            raise ParameterError(
                "test_levels", v, f"[{MIN_TEST_ROUNDS / verify_rounds:g}, inf) (level × verify_rounds ≥ "
                f"{MIN_TEST_ROUNDS} test rounds per epoch, one per basis Z, X, Y; verify_rounds = {verify_rounds})",
            )  # fmt: skip
    return values


def _blocks(
    params: NetParams,
    state: NetState,
    decision: Decision,
    generated: jax.Array,
    clock_scale: jax.Array,
    aborted: jax.Array,
) -> dict[str, jax.Array]:
    """Finite-key blocks: a link distils key only when its open block has sent its pulses.

    Until then the slot's asymptotic key (``generated``) accumulates in the block. A block closes
    at the end of the first slot after which it has sent ``block_pulses[level]`` pulses and keeps
    ``block_keep[link, protocol, level]`` of what it accumulated (the finite-key cost, computed on
    the host at the link's nominal loss: :func:`qverify.network.blocks.with_finite_blocks`).
    Changing a link's protocol or block size restarts its block, and a slot whose QBER aborts the
    link ends it; either way the open block is lost. Without ``block_pulses`` every slot's key is
    distilled at once (the asymptotic model).
    """
    e = params.n_links
    zero = jnp.zeros(e, jnp.float32)
    if params.block_pulses is None:
        return {"released": generated, "lost": zero, "sent": state.block_sent, "bits": state.block_bits,
                "level": state.block_level, "mdi": state.block_mdi}  # fmt: skip
    n_levels = params.block_pulses.shape[0]
    level = jnp.zeros(e, jnp.int32) if decision.block is None else jnp.clip(decision.block, 0, n_levels - 1)
    level = level.astype(jnp.int32)
    mdi = jnp.asarray(decision.use_mdi, bool)
    restart = (level != state.block_level) | (mdi != state.block_mdi)
    sent = jnp.where(restart, 0.0, state.block_sent) + pulses_per_slot(params, clock_scale)
    acc = jnp.where(restart, 0.0, state.block_bits) + generated
    closes = (sent >= params.block_pulses[level]) & ~aborted
    keep = params.block_keep[jnp.arange(e), jnp.where(mdi, 0, 1), level]
    released = jnp.where(closes, acc * keep, 0.0)
    ends = closes | aborted
    lost = jnp.where(closes, acc - released, 0.0) + jnp.where(aborted, acc, 0.0)
    lost = lost + jnp.where(restart, state.block_bits, 0.0)
    return {"released": released, "lost": lost, "sent": jnp.where(ends, 0.0, sent),
            "bits": jnp.where(ends, 0.0, acc), "level": level, "mdi": mdi}  # fmt: skip


# Jitted, so that eager calls in a loop compile once per shape (see run).
@jax.jit
def step(
    key: jax.Array, state: NetState, decision: Decision, params: NetParams, measure_now: jax.Array | None = None
) -> tuple[NetState, SlotOut]:
    """Advance one slot under ``decision``; pure (``jit``/``vmap``-able).

    An epoch's verification rounds are sampled when ``state.t + 1`` is a multiple of
    ``epoch_slots``. Under ``vmap`` that test is batched, so both branches run every slot; a caller
    that knows the slot's phase without the batch (a scan index) passes it as ``measure_now`` and
    the sampling then runs only at epoch ends.
    """
    k_loss, k_fade, k_eta, k_src, k_meas = jax.random.split(key, 5)
    e = params.n_links
    excess = _ou(k_loss, state.excess_db, params.loss_theta, params.loss_sigma_db)
    starts = jax.random.uniform(k_fade, (e,)) < params.fade_rate
    fade_left = jnp.where(starts, params.fade_slots, jnp.maximum(state.fade_left - 1, 0)).astype(jnp.int32)
    log_eta = _ou(k_eta, state.log_eta, params.drift_theta, params.eta_sigma)
    log_src = _ou(k_src, state.log_src, params.drift_theta, params.source_sigma)
    base_db = params.length_km * params.loss_db_per_km
    excess_total = jnp.maximum(excess, -base_db) + params.fade_db * (fade_left > 0)

    active = active_byzantine(state, params)
    inject = active[params.link_a] | active[params.link_b]
    rate, qber, gain = _link_rates(
        params, decision.mu, decision.use_mdi, excess_total, jnp.exp(log_eta), jnp.exp(log_src),
        params.inject_error * inject,
    )  # fmt: skip
    loss_total = base_db + excess_total
    monitor = loss_total + params.monitor_sigma_db * jax.random.normal(jax.random.fold_in(key, MONITOR_SEED), (e,))
    # The endpoints' decision of the last epoch end; the true QBER decides nothing, except under the
    # oracle abort rule (the comparison of qverify reproduce's "price of realism"), where the slot's
    # true QBER stops the link in that very slot, whatever its endpoints measured or claim.
    aborted = jnp.where(params.oracle_aborts, qber > params.qber_threshold, state.pe_abort)
    detections = gain * pulses_per_slot(params, jnp.exp(log_src))
    scale = 1.0 if decision.test_scale is None else decision.test_scale
    wanted = jnp.asarray(params.verify_rounds, jnp.float32) * scale * jnp.ones(e, jnp.float32)
    if params.verify:
        tests = wanted / params.epoch_slots
        keep = jnp.clip(1.0 - tests / jnp.maximum(detections, 1e-30), 0.0, 1.0)
    else:
        keep = jnp.ones(e, jnp.float32)
    rate = jnp.where(aborted, 0.0, rate)
    test_bits = rate * (1.0 - keep) * params.slot_s
    rate = rate * keep
    generated = rate * params.slot_s
    blocks = _blocks(params, state, decision, generated, jnp.exp(log_src), aborted)
    generated = blocks["released"]
    filled = state.pool + generated
    discarded = jnp.maximum(filled - params.pool_cap_bits, 0.0)
    pool = jnp.minimum(filled, params.pool_cap_bits)

    pool, delivered, served, exposed, consumed, in_use, seen = _relay(params, decision, pool, aborted, active)
    backlog = jnp.maximum(state.backlog + params.demand_bits - delivered, 0.0)
    violations = (in_use & (qber > params.qber_threshold)).sum()

    t = state.t + 1
    epoch_done = (t % params.epoch_slots) == 0 if measure_now is None else measure_now
    detected = state.detected + detections
    if params.verify:
        mix = state.mix + corner_weights(qber, params.inject_prob * inject, decision.use_mdi)

        def verify() -> tuple[jax.Array, ...]:
            lam = depolarising(mix)
            rounds, chance = node_checks.trials(lam, active, params)
            # The epoch's test rounds: as many as wanted, at most the epoch's detections.
            n_tests = jnp.minimum(wanted, jnp.floor(detected))
            reported, counts, passes = measure(k_meas, mix, active, state.byzantine, params, (rounds, chance), n_tests)
            claims, node_counts = node_checks.claims(passes, rounds, active, state.byzantine, params)
            # The bounds are computed here, once per epoch: the counts' bound (kept for the
            # observation, so every slot's observe need not solve for it again on unchanged counts;
            # the honest abort reads it), each endpoint's claim bound and each node-check claim's
            # bound (the weights').
            upper, claim_upper = claim_bounds(reported, counts, params.pe_confidence)
            k = (params.check_links >= 0).sum(axis=1)[:, None]
            check_upper = node_checks.claim_upper(claims, rounds, k, params.pe_confidence, jnp)
            abort = endpoint_aborts(counts, active, state.byzantine, params, upper=upper)
            return (reported, counts, claims, node_counts, node_checks.median_claim(claims),
                    *weight_rule(state.scores, state.weights, claim_upper, check_upper, params), abort, upper)  # fmt: skip

        kept = (state.reported, state.counts, state.node_claims, state.node_counts, state.node_check, state.scores,
                state.weights, state.pe_abort, state.pe_upper)  # fmt: skip
        reported, counts, claims, node_counts, node_check, scores, weights, pe_abort, pe_upper = jax.lax.cond(
            epoch_done, verify, lambda: kept
        )
    else:
        mix, reported, counts = state.mix, state.reported, state.counts
        claims, node_counts, node_check = state.node_claims, state.node_counts, state.node_check
        scores, weights, pe_abort, pe_upper = state.scores, state.weights, state.pe_abort, state.pe_upper
    # Under the oracle rule the abort the network shows (observation, host) is the one that acted.
    pe_abort = jnp.where(params.oracle_aborts, aborted, pe_abort)
    new = NetState(
        excess_db=excess,
        fade_left=fade_left,
        log_eta=log_eta,
        log_src=log_src,
        pool=pool,
        rate_bps=rate,
        mu=jnp.asarray(decision.mu, jnp.float32),
        loss_db=loss_total,
        backlog=backlog,
        t=t,
        byzantine=state.byzantine,
        qber=qber,
        reported=reported,
        counts=counts,
        mix=jnp.where(epoch_done, 0.0, mix),
        weights=weights,
        scores=scores,
        node_claims=claims,
        node_counts=node_counts,
        node_check=node_check,
        learned=state.learned + seen,
        block_sent=blocks["sent"],
        block_bits=blocks["bits"],
        block_level=blocks["level"],
        block_mdi=blocks["mdi"],
        use_mdi=jnp.asarray(decision.use_mdi, bool),
        loss_monitor=monitor,
        pe_abort=pe_abort,
        pe_upper=pe_upper,
        detected=jnp.where(epoch_done, 0.0, detected),
    )
    out = SlotOut(
        delivered=delivered,
        served=served,
        exposed=exposed,
        qber=qber,
        in_use=in_use,
        violations=violations,
        aborted=aborted,
        generated=generated,
        block_lost=blocks["lost"],
        test_bits=test_bits,
        consumed=consumed,
        discarded=discarded,
        pool=pool,
        measured=epoch_done,
    )
    return new, out


def endpoint_aborts(
    counts: jax.Array,
    active: jax.Array,
    byzantine: jax.Array,
    params: NetParams,
    upper: jax.Array | None = None,
) -> jax.Array:
    """(E,) links stopped for the next epoch by their endpoints' parameter estimation on ``counts``.

    An honest endpoint aborts by :func:`qverify.network.estimation.pe_aborts` (the Clopper–Pearson
    upper bound of the epoch's pooled Z/X error rate at ``pe_confidence`` above ``qber_threshold``;
    ``upper``: that bound, if already computed, e.g. by :func:`~qverify.network.estimation.claim_bounds`).
    An active Byzantine endpoint that lies refuses to abort; one that slanders aborts its links to
    honest neighbours. Either end's abort stops the link: an honest end's decision stands.
    """
    honest_abort, _upper = pe_aborts(counts, params.qber_threshold, params.pe_confidence, upper)
    a, b = params.link_a, params.link_b
    out = jnp.zeros_like(honest_abort)
    for me, other in ((a, b), (b, a)):
        mine = jnp.where(params.lie & active[me], False, honest_abort)
        mine = jnp.where(params.slander & active[me] & ~byzantine[other], True, mine)
        out = out | mine
    return out


def weight_rule(
    scores: jax.Array, weights: jax.Array, claim_upper: jax.Array, check_upper: jax.Array, params: NetParams
) -> tuple[jax.Array, jax.Array]:
    """One epoch of the control plane's weight rule; returns (scores, weights), both (N,).

    ``claim_upper`` (E, 2) is the conservative statistic of each endpoint's link report, not the
    point value: the one-sided Clopper–Pearson upper bound at ``pe_confidence`` of its claim read
    as ``rint(claim × n)`` errors out of the epoch's ``n`` heralded Z/X test rounds (the claim itself
    where ``n = 0``), as :func:`qverify.network.estimation.claim_bounds` computes it in :func:`step`
    and :func:`qverify.network.measure.claim_upper` on the host (``FidelityReport.qber_upper``).
    Fewer rounds give larger bounds, hence larger losses and lower scores. ``check_upper`` (N, W) is
    the same kind of statistic of the node-check reports (:mod:`qverify.network.node_checks`,
    ``inf`` padding): the QBER-equivalent of a lower confidence bound (Hoeffding / relative Chernoff,
    closed form) of the pass fraction each partner's claim implies over its GHZ rounds, as
    :func:`qverify.network.node_checks.claim_upper` computes it in :func:`step` and on the host.
    :meth:`qverify.consensus.voting.FidelityWeightedVoting.end_epoch` in WHEAT mode, composed from
    the same array functions: a link's error is its worse endpoint's bound (clipped to [0, 0.5],
    as a :class:`~qverify.verify.report.FidelityReport`'s is), a node's loss the larger of the trimmed
    upper median of its links' errors and of its check partners' reports, over the abort QBER; the
    log-score update with decay and floor, the hysteresis bonus of the current weights, and the
    WHEAT projection for ``weight_f``. WHEAT weights are safe by construction (``W ≥ 3·T_f + 1``),
    so the host's fail-closed check never refuses them.
    """
    f = params.weight_f
    link_err = jnp.clip(claim_upper, 0.0, 0.5).max(axis=1)
    link_loss = node_losses_array(link_err, params.node_links, f, ABORT_QBER, jnp)
    loss = jnp.maximum(link_loss, check_losses(check_upper, f, ABORT_QBER, jnp))
    s = score_step(scores, loss, params.weight_alpha, params.weight_floor, params.weight_decay, jnp)
    adjusted = with_hysteresis(s, weights, params.weight_hysteresis, jnp)
    return s, wheat_array(adjusted, params.weight_f, jnp).astype(s.dtype)


OBS_LINK_FIELDS: tuple[str, ...] = (
    "mu", "mdi", "loss_mon", "rep_a", "rep_b", "meas", "upper", "tests", "err_y", "aborted", "pool",
)  # fmt: skip
OBS_PER_LINK = len(OBS_LINK_FIELDS)
OBS_BLOCK_FIELDS: tuple[str, ...] = ("block_fill",)
OBSERVATIONS: tuple[str, ...] = ("measured", "oracle")
ORACLE_LINK_FIELDS: tuple[str, ...] = ("true_qber",)
ORACLE_NODE_FIELDS: tuple[str, ...] = ("byzantine",)
"""What the oracle observation (``NetParams.observation = "oracle"``) appends: per link the last
slot's true QBER / threshold, per node the true Byzantine mask (simulator-only; no network has them)."""


def observe(state: NetState, params: NetParams) -> jax.Array:
    """The one observation of the control plane and the agent (flat float32 vector, O(1) scale).

    Only what a network could measure (DESIGN.md, "Only what a network could measure"); training,
    evaluation and deployment all read this function. Per link: the settings the node chose (μ,
    protocol: 1 for MDI-QKD), the loss monitor's reading / 20 dB (the exact loss plus a Gaussian
    reading error of sd ``monitor_sigma_db``, fresh every slot), the QBER each endpoint reported /
    threshold (two entries), the QBER the last epoch's public test counts give / threshold and its
    Clopper–Pearson upper bound at ``pe_confidence`` / threshold, log10(1 + heralded Z/X test
    rounds) / 5, the Y-basis error fraction of those counts / threshold, whether the endpoints'
    parameter estimation aborted the link, pool / capacity (key actually distilled and not spent);
    per node the control-plane weight / its maximum, then the median of its check partners'
    reports (QBER-equivalent / threshold, 0 for an unchecked node); per demand backlog / request;
    the slot's phase within an episode. With finite-key blocks, then per link the open block's
    fill (pulses sent / block size). Never the true QBER, the Byzantine set, a drift, excess-loss
    or fade state, the exact loss or the noise-free key rate (``tests/network/test_truth_leak.py``
    tries to recover the true QBER from this vector).

    The one exception is labelled: with ``params.observation == "oracle"`` the vector ends with the
    truth (:data:`ORACLE_LINK_FIELDS` per link, :data:`ORACLE_NODE_FIELDS` per node), an *oracle
    observation* no deployed agent could have; ``qverify reproduce`` trains an agent on it only to
    measure what the measured observation costs.
    """
    thr = params.qber_threshold
    k, n = zx_counts(state.counts)
    measured = jnp.where(n > 0, k / jnp.maximum(n, 1), 0.5)
    upper = state.pe_upper  # cp_upper(k, n, pe_confidence), computed when the counts were drawn
    y_err, y_n = state.counts[:, 2, 0], state.counts[:, 2, 1]
    per_link = jnp.stack(
        [
            state.mu,
            state.use_mdi.astype(jnp.float32),
            state.loss_monitor / 20.0,
            state.reported[:, 0] / thr,
            state.reported[:, 1] / thr,
            measured / thr,
            upper / thr,
            jnp.log10(1.0 + n) / 5.0,
            jnp.where(y_n > 0, y_err / jnp.maximum(y_n, 1), 0.5) / thr,
            state.pe_abort.astype(jnp.float32),
            state.pool / params.pool_cap_bits,
        ],
        axis=1,
    ).ravel()
    w = state.weights / jnp.maximum(state.weights.max(), 1e-12)
    phase = (state.t % params.max_steps) / params.max_steps
    check = state.node_check / thr
    parts = [per_link, w, check, state.backlog / params.demand_bits, jnp.array([phase])]
    if params.block_pulses is not None:
        parts.append(state.block_sent / params.block_pulses[state.block_level])
    if params.observation == "oracle":
        parts += [state.qber / thr, state.byzantine.astype(jnp.float32)]
    return jnp.concatenate(parts).astype(jnp.float32)


def obs_size(params: NetParams) -> int:
    """Length of :func:`observe`'s vector."""
    blocks = 0 if params.block_pulses is None else len(OBS_BLOCK_FIELDS) * params.n_links
    oracle = 0
    if params.observation == "oracle":
        oracle = len(ORACLE_LINK_FIELDS) * params.n_links + len(ORACLE_NODE_FIELDS) * params.n_nodes
    return OBS_PER_LINK * params.n_links + 2 * params.n_nodes + params.n_demands + 1 + blocks + oracle


def obs_fields(params: NetParams) -> list[str]:
    """Name of every entry of :func:`observe`'s vector (policy files record them)."""
    names = [f"link{i}.{f}" for i in range(params.n_links) for f in OBS_LINK_FIELDS]
    names += [f"node{i}.weight" for i in range(params.n_nodes)]
    names += [f"node{i}.check" for i in range(params.n_nodes)]
    names += [f"demand{i}.backlog" for i in range(params.n_demands)]
    names.append("phase")
    if params.block_pulses is not None:
        names += [f"link{i}.{f}" for i in range(params.n_links) for f in OBS_BLOCK_FIELDS]
    if params.observation == "oracle":
        names += [f"link{i}.{f}" for i in range(params.n_links) for f in ORACLE_LINK_FIELDS]
        names += [f"node{i}.{f}" for i in range(params.n_nodes) for f in ORACLE_NODE_FIELDS]
    return names


@partial(jax.jit, static_argnames=("slots", "allocator", "aligned"))
def run(
    key: jax.Array,
    state: NetState,
    decision: Decision,
    params: NetParams,
    slots: int,
    *,
    count: jax.Array | None = None,
    allocator: Callable[..., Decision] | None = None,
    allocator_params: Any = None,
    aligned: bool = False,
) -> tuple[NetState, SlotOut]:
    """``slots`` slots (``lax.scan``); outputs stacked along axis 0.

    ``count`` (int32 scalar, traced): only the first ``count`` slots run; the later ones leave the
    state as it is and output zeros. One compiled program then serves every stretch up to ``slots``
    long (a run's last, partial epoch, or runs shorter than an epoch), where a static length would
    compile one per length. Slot ``i`` draws from ``split(key, slots)[i]`` either way, and splits
    of a key agree on their common prefix (threefry with ``jax_threefry_partitionable``, JAX's
    default), so a slot's randomness does not depend on ``slots``.
    Under ``vmap`` pass ``count`` unbatched: the test ``i < count`` is then a real branch, and the
    idle slots cost nothing.

    Without ``allocator`` every slot runs under ``decision``; with it, each slot's decision is
    ``allocator(allocator_params, observe(state), decision, params)``, taken inside the scan.
    ``aligned``: the stretch starts at an epoch boundary, so the scan index gives each slot's
    epoch phase (see :func:`step`'s ``measure_now``) and, under ``vmap``, the verification
    sampling runs only at epoch ends.

    Jitted, with ``slots``, ``allocator`` and ``aligned`` static: a ``scan`` called outside ``jit``
    compiles its freshly made body on every call, and every compiled program keeps its code mapped
    until the caches are cleared, so a loop of eager calls would both pay the compile each time and
    use up the process's memory mappings.
    """

    def advance(s: NetState, k: jax.Array, i: jax.Array) -> tuple[NetState, SlotOut]:
        dec = decision if allocator is None else allocator(allocator_params, observe(s, params), decision, params)
        return step(k, s, dec, params, epoch_end(i, params) if aligned else None)

    def body(s: NetState, xs: tuple[jax.Array, jax.Array]) -> tuple[NetState, SlotOut]:
        k, i = xs
        if count is None:
            return advance(s, k, i)
        idle = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(advance, s, k, i)[1])
        return jax.lax.cond(i < count, advance, lambda s, _k, _i: (s, idle), s, k, i)

    return jax.lax.scan(body, state, (jax.random.split(key, slots), jnp.arange(slots)))


def epoch_end(index: jax.Array, params: NetParams) -> jax.Array:
    """Whether slot ``index`` of a stretch that began at an epoch boundary ends an epoch (unbatched)."""
    return (index + 1) % params.epoch_slots == 0
