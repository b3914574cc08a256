"""Running the network model of :mod:`qverify.network.model` under a host-side control plane.

``simulate`` compiles the instance (links, demands, candidate paths, Byzantine set drawn from the
seed) into :class:`~qverify.network.model.NetParams`, then alternates:

* on the host, at every epoch boundary (``epoch_slots`` slots), the policy reads an
  :class:`~qverify.network.policy.Observation` — the verification reports of the epoch that just
  ended (measured counts, each endpoint's reported QBER), pools, last key rates — and returns a
  :class:`~qverify.network.policy.Decision`; the ABFT control plane runs its weighted PBFT here;
* on the device, one jit-compiled ``lax.scan`` runs the epoch's slots of
  :func:`qverify.network.model.step` under that decision (a DRA agent's allocator, when the policy
  has one, runs inside the scan, slot by slot, on :func:`qverify.network.model.observe`).

The per-slot outputs come back once per epoch; figures in :class:`SimResult` say whether they are
true (simulator-only) or measured.

``simulate_seeds`` runs several seeds at once: their parameters and states are stacked and every
stretch of slots is one ``vmap``-ped program, while each seed's policy (its own control plane) runs
on the host between stretches; each seed's result is the one it gives alone (tested array for
array). ``simulate`` is ``simulate_seeds`` with one seed. ``qverify reproduce`` runs each group of
tasks that differ only in seed this way (``qverify.experiments.grid.run_seeds``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np

from qverify.consensus.committee import tolerated
from qverify.consensus.voting import FidelityWeightedVoting
from qverify.consensus.weights import node_incidence
from qverify.errors import ChoiceError, ParameterError
from qverify.network import model as M
from qverify.network import node_checks
from qverify.network.adversary import Adversary, choose_byzantine, injected_error
from qverify.network.keys import Paths, candidate_paths, choose_demands
from qverify.network.links import LinkArrays, compile_links, nominal_mu
from qverify.network.measure import corner_distributions, measured_qber
from qverify.network.policy import BaselinePolicy, Context, Observation, Policy
from qverify.physics.params import LCQ_2012, LinkParams
from qverify.physics.relay import MAX_DEAD_TIME_SLOTS as MAX_RELAY_DEAD_TIME
from qverify.xla import jit

RELAYS = ("single", "xor", "shamir")
ABORT_RULES = ("measured", "oracle")
"""``SimConfig.abort_rule``: the endpoints' parameter estimation, or the simulator's truth (an oracle)."""

WEIGHT_RULE: dict[str, float] = {
    f.name: float(f.default)  # type: ignore[arg-type]
    for f in dataclasses.fields(FidelityWeightedVoting)
    if f.name in ("alpha", "decay", "floor", "hysteresis")
}
"""The control plane's weight-rule constants (:class:`FidelityWeightedVoting`'s defaults), which the model's
:func:`~qverify.network.model.weight_rule` runs with."""


@dataclass(frozen=True)
class Fluctuation:
    """Time variation of the links (per-slot processes).

    Attributes:
        loss_sigma_db: stationary standard deviation of the OU excess loss, dB (≥ 0).
        loss_theta: OU mean-reversion rate per slot, in (0, 1].
        fade_rate: probability per link and slot that a fade starts, in [0, 1].
        fade_db: extra loss during a fade, dB (≥ 0).
        fade_slots: fade duration in slots (≥ 1).
        eta_sigma: stationary std of log detector efficiency (≥ 0).
        source_sigma: stationary std of log source rate (≥ 0).
        drift_theta: mean-reversion rate of the two drifts per slot, in (0, 1].
    """

    loss_sigma_db: float = 1.0
    loss_theta: float = 0.05
    fade_rate: float = 2e-3
    fade_db: float = 10.0
    fade_slots: int = 30
    eta_sigma: float = 0.05
    source_sigma: float = 0.05
    drift_theta: float = 0.01

    def __post_init__(self) -> None:
        for name in ("loss_sigma_db", "fade_db", "eta_sigma", "source_sigma"):
            if not 0 <= getattr(self, name) < float("inf"):  # NaN fails too
                raise ParameterError(name, getattr(self, name), "[0, inf)")
        for name in ("loss_theta", "drift_theta"):
            if not 0 < getattr(self, name) <= 1:
                raise ParameterError(name, getattr(self, name), "(0, 1]")
        if not 0 <= self.fade_rate <= 1:
            raise ParameterError("fade_rate", self.fade_rate, "[0, 1]")
        if self.fade_slots < 1:
            raise ParameterError("fade_slots", self.fade_slots, "[1, inf)")

    @classmethod
    def off(cls) -> Fluctuation:
        """No fluctuation at all."""
        return cls(0.0, 1.0, 0.0, 0.0, 1, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class SimConfig:
    """Everything a run needs besides topology, policy and seed.

    Attributes:
        link: physics parameters shared by all links.
        slot_s: slot length in seconds (> 0).
        n_demands: number of node pairs requesting key.
        demand_bits: key bits each demand requests per slot (> 0).
        pool_cap_bits: capacity of each link's key pool (> 0).
        qber_threshold: abort QBER (protocol) and usability threshold (policy), in (0, 0.5].
        relay: ``"single"`` (hop-by-hop XOR, one path), ``"xor"`` (key split over node-disjoint
            paths, all needed) or ``"shamir"`` (k of n node-disjoint paths).
        paths: candidate paths per demand (single) or disjoint paths used (xor/shamir).
        shamir_k: shares needed with ``"shamir"``.
        fluctuation: link fluctuation model.
        adversary: Byzantine nodes.
        demand_seed: if set, demands are drawn from this seed among all nodes, the same for every
            run seed (a demand with a Byzantine endpoint then cannot be served); if ``None``, each
            run draws them among its honest nodes.
        epoch_slots: slots per control-plane epoch (≥ 1): the verification rounds of an epoch
            become the reports the policy reads at its end.
        verify_rounds: BSM test rounds per link and epoch (≥ 3; split evenly over bases Z, X, Y).
        node_rounds: GHZ node-check rounds per node and epoch, split over the node's check partners
            (≥ 0; 0: no node checks), see :mod:`qverify.network.node_checks`.
        block_pulses: finite-key block sizes in pulses (MDI-QKD: pulse pairs), ascending; empty:
            every slot's key is distilled at once (asymptotic). With sizes, a link's key reaches
            its pool only when its block closes (:mod:`qverify.network.blocks`); host policies use
            the first size, the DRA agent chooses per link.
        key_epsilon: ε_sec = ε_cor of the finite keys, in (0, 1).
        test_levels: test rounds per link and epoch the DRA agent chooses from, as multiples of
            ``verify_rounds`` (each finite, > 0, and level × ``verify_rounds`` ≥ 3); ``None``
            (default): no such choice, every link runs ``verify_rounds``. With levels the DRA
            environment has a ``tests`` branch per link (:mod:`qverify.dra.env`); host policies
            still run ``verify_rounds``.
        pe_confidence: one-sided confidence of the endpoints' parameter-estimation upper bound,
            which aborts a link above ``qber_threshold`` (:mod:`qverify.network.estimation`), in
            [0.5, 1) (below ½ the "upper" bound would lie below the median).
        monitor_sigma_db: standard deviation of the loss monitor's Gaussian reading error per slot,
            dB (≥ 0; what the observation shows instead of the exact loss).
        abort_rule: ``"measured"`` (default): links abort on their endpoints' parameter estimation;
            ``"oracle"``: a link aborts in exactly the slots whose true QBER exceeds
            ``qber_threshold`` (**an oracle**, no network could run it; kept to measure what the
            measured rule costs, see :mod:`qverify.network.model`).
        observation: ``"measured"`` (default): an in-scan agent observes measurables only;
            ``"oracle"``: its observation also carries the true per-link QBER and the Byzantine
            mask (**an oracle observation**, :data:`qverify.network.model.ORACLE_LINK_FIELDS`).
    """

    link: LinkParams = LCQ_2012
    slot_s: float = 1.0
    n_demands: int = 4
    demand_bits: float = 2_000.0
    pool_cap_bits: float = 1e7
    qber_threshold: float = 0.11
    relay: str = "single"
    paths: int = 3
    shamir_k: int = 2
    fluctuation: Fluctuation = field(default_factory=Fluctuation)
    adversary: Adversary = field(default_factory=Adversary)
    demand_seed: int | None = None
    epoch_slots: int = 10
    verify_rounds: int = 10_000
    node_rounds: int = 3_000
    block_pulses: tuple[float, ...] = ()
    key_epsilon: float = 1e-10
    test_levels: tuple[float, ...] | None = None
    pe_confidence: float = 0.95
    monitor_sigma_db: float = 0.5
    abort_rule: str = "measured"
    observation: str = "measured"

    def __post_init__(self) -> None:
        if self.abort_rule not in ABORT_RULES:
            raise ChoiceError("abort_rule", self.abort_rule, ABORT_RULES)
        if self.observation not in M.OBSERVATIONS:
            raise ChoiceError("observation", self.observation, M.OBSERVATIONS)
        if self.epoch_slots < 1:
            raise ParameterError("epoch_slots", self.epoch_slots, "[1, inf)")
        if self.block_pulses:
            from qverify.network.blocks import check_block_sizes

            check_block_sizes(self.block_pulses, self.key_epsilon)
        if not 0.5 <= self.pe_confidence < 1:  # below ½ an upper bound would not be conservative
            raise ParameterError("pe_confidence", self.pe_confidence, "[0.5, 1)")
        if not 0 <= self.monitor_sigma_db < float("inf"):
            raise ParameterError("monitor_sigma_db", self.monitor_sigma_db, "[0, inf)")
        if self.node_rounds < 0:
            raise ParameterError("node_rounds", self.node_rounds, "[0, inf) (0: no node checks)")
        if self.verify_rounds < 3:
            raise ParameterError("verify_rounds", self.verify_rounds, "[3, inf) (a share per basis Z, X, Y)")
        if self.test_levels is not None:
            object.__setattr__(self, "test_levels", M.check_test_levels(self.test_levels, self.verify_rounds))
        if not 0 < self.slot_s < float("inf"):  # NaN fails too
            raise ParameterError("slot_s", self.slot_s, "(0, inf)")
        if self.n_demands < 1:
            raise ParameterError("n_demands", self.n_demands, "[1, inf)")
        if not 0 < self.demand_bits < float("inf"):
            raise ParameterError("demand_bits", self.demand_bits, "(0, inf)")
        if not 0 < self.pool_cap_bits <= float("inf"):
            raise ParameterError("pool_cap_bits", self.pool_cap_bits, "(0, inf)")
        if not 0 < self.qber_threshold <= 0.5:
            raise ParameterError("qber_threshold", self.qber_threshold, "(0, 0.5]")
        if self.relay not in RELAYS:
            raise ChoiceError("relay", self.relay, RELAYS)
        if self.paths < 1:
            raise ParameterError("paths", self.paths, "[1, inf)")
        if self.relay == "shamir" and not 1 <= self.shamir_k <= self.paths:
            raise ParameterError("shamir_k", self.shamir_k, f"[1, paths = {self.paths}]")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["link"] = self.link.to_dict()
        return d


@dataclass(frozen=True)
class SimResult:
    """Per-slot series and per-run aggregates of one simulation.

    True values are the simulator's (nobody on the network knows them); measured values are what the
    verification rounds showed.

    Attributes:
        availability: (T,) fraction of the requested demands served in each slot (an unservable
            demand, with no path at all, counts as not served).
        delivered_bits: (T, D) key bits that reached each demand's users.
        served: (T, D) whether each demand's request was met.
        exposed_bits: (T,) delivered bits the adversary can reconstruct.
        learned_bits: (N,) key (or share) bits each node saw as a relay.
        qber_mean, qber_var: (E,) per-link mean and variance over slots of the **true** QBER.
        qber_series: (T, E) true QBER per slot, kept when T·E ≤ 2e6, else ``None``.
        measured_qber: (epochs, E) pooled Z/X error fraction of each epoch's verification rounds
            (**measured**; what an honest endpoint reports).
        reported_qber: (epochs, E, 2) what endpoint a and b reported (a Byzantine one may lie).
        node_check_qber: (epochs, N) per node, the median over its check partners of the
            QBER-equivalent their GHZ pass counts show (**measured**; NaN for an unchecked node).
        in_use: (T, E) whether a link lay on a chosen route.
        pool_mean_bits: (T,) mean pool level.
        unservable: (D,) demands with no path at all (disconnected endpoints).
        byzantine: (N,) Byzantine mask.
        demands: (D, 2) demand endpoints.
        nodes: node names.
        params: the full configuration, for provenance.
        aborted: (T, E) links their endpoints' parameter estimation had stopped in each slot.
        zx_counts: (epochs, E, 2) each epoch's heralded Z/X test rounds: (errors, rounds)
            (**measured**; the estimate, its interval and the abort decision come from them).
        abort_decisions: (epochs, E) the abort decision made at each epoch end (for the next epoch).
        link_ends: (E, 2) node indices of each link's endpoints.
    """

    availability: np.ndarray
    delivered_bits: np.ndarray
    served: np.ndarray
    exposed_bits: np.ndarray
    learned_bits: np.ndarray
    qber_mean: np.ndarray
    qber_var: np.ndarray
    qber_series: np.ndarray | None
    measured_qber: np.ndarray
    reported_qber: np.ndarray
    node_check_qber: np.ndarray
    in_use: np.ndarray
    pool_mean_bits: np.ndarray
    unservable: np.ndarray
    byzantine: np.ndarray
    demands: np.ndarray
    nodes: tuple[str, ...]
    params: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)
    aborted: np.ndarray | None = None
    zx_counts: np.ndarray | None = None
    abort_decisions: np.ndarray | None = None
    link_ends: np.ndarray | None = None

    def abort_rates(self) -> dict[str, float]:
        """False and missed abort rates against the truth (**simulator-only**).

        ``false_abort_rate``: of the link-slots whose true QBER was at most the threshold, the
        fraction the endpoints had aborted; ``missed_abort_rate``: of those above it, the fraction
        still distilling (NaN when there were none).
        """
        nan = float("nan")
        if self.aborted is None or self.qber_series is None:
            return {"false_abort_rate": nan, "missed_abort_rate": nan}
        thr = float(self.params["qber_threshold"])
        bad = self.qber_series > thr
        ab = np.asarray(self.aborted, bool)
        false = float(ab[~bad].mean()) if (~bad).any() else nan
        missed = float((~ab[bad]).mean()) if bad.any() else nan
        return {"false_abort_rate": false, "missed_abort_rate": missed}

    def interval_coverage(self, confidence: float = 0.95) -> float:
        """Fraction of (epoch, link) whose two-sided Clopper–Pearson interval at ``confidence`` from
        the epoch's Z/X test counts contains the epoch's mean true QBER (**simulator-only**; about
        ``confidence`` when the intervals are honest). NaN without per-slot truth or counts."""
        if self.zx_counts is None or self.qber_series is None or not self.zx_counts.size:
            return float("nan")
        from qverify.verify.stats import clopper_pearson_arrays

        epochs = self.zx_counts.shape[0]
        span = int(self.params["epoch_slots"])
        truth = self.qber_series[: epochs * span].reshape(epochs, span, -1).mean(axis=1)
        k, n = self.zx_counts[..., 0], self.zx_counts[..., 1]
        lo, hi = clopper_pearson_arrays(k, n, confidence)
        has = n > 0
        return float(((lo <= truth) & (truth <= hi))[has].mean()) if has.any() else float("nan")

    def realism_counts(self, confidence: float = 0.95) -> dict[str, int]:
        """The counts behind :meth:`interval_coverage` and :meth:`abort_rates` (**simulator-only**),
        so that runs can be pooled: ``intervals`` (epoch, link) pairs with Z/X test rounds, of which
        ``covered`` two-sided Clopper–Pearson intervals at ``confidence`` and ``upper_covered``
        one-sided upper bounds at ``pe_confidence`` (the bound the abort rule reads) contain the
        epoch's mean true QBER; ``good`` link-slots at or below the threshold, ``false_aborts`` of
        them aborted; ``bad`` link-slots above it, ``missed_aborts`` of them not aborted.
        Every count is 0 without per-slot truth."""
        from scipy.stats import beta

        from qverify.verify.stats import clopper_pearson_arrays

        out = dict.fromkeys(("intervals", "covered", "upper_covered", "good", "false_aborts", "bad",
                             "missed_aborts"), 0)  # fmt: skip
        if self.qber_series is None:
            return out
        if self.aborted is not None:
            bad = self.qber_series > float(self.params["qber_threshold"])
            ab = np.asarray(self.aborted, bool)
            out.update(good=int((~bad).sum()), false_aborts=int((ab & ~bad).sum()), bad=int(bad.sum()),
                       missed_aborts=int((~ab & bad).sum()))  # fmt: skip
        if self.zx_counts is not None and self.zx_counts.size:
            epochs = self.zx_counts.shape[0]
            span = int(self.params["epoch_slots"])
            truth = self.qber_series[: epochs * span].reshape(epochs, span, -1).mean(axis=1)
            k, n = self.zx_counts[..., 0], self.zx_counts[..., 1]
            has = n > 0
            lo, hi = clopper_pearson_arrays(k, n, confidence)
            with np.errstate(invalid="ignore", divide="ignore"):
                upper = np.where(k < n, beta.ppf(float(self.params["pe_confidence"]), k + 1, np.maximum(n - k, 1)), 1.0)
            out.update(intervals=int(has.sum()), covered=int(((lo <= truth) & (truth <= hi) & has).sum()),
                       upper_covered=int(((truth <= upper) & has).sum()))  # fmt: skip
        return out

    def link_table(self, confidence: float = 0.95) -> list[dict[str, Any]]:
        """Per link, the last epoch's measurement: measured QBER (pooled Z/X error fraction), its
        two-sided Clopper–Pearson interval at ``confidence``, the heralded Z/X rounds, and the abort
        decision the endpoints made from them."""
        from qverify.verify.stats import clopper_pearson_arrays

        if self.zx_counts is None or not self.zx_counts.shape[0]:
            return []
        k, n = self.zx_counts[-1, :, 0], self.zx_counts[-1, :, 1]
        lo, hi = clopper_pearson_arrays(k, n, confidence)
        rows = []
        for i in range(k.shape[0]):
            ends = {} if self.link_ends is None else {"a": self.nodes[self.link_ends[i, 0]],
                                                       "b": self.nodes[self.link_ends[i, 1]]}  # fmt: skip
            rows.append({
                "link": i,
                **ends,
                "measured_qber": float(k[i] / n[i]) if n[i] > 0 else None,
                "interval": [float(lo[i]), float(hi[i])],
                "confidence": confidence,
                "rounds": int(n[i]),
                "aborted": bool(self.abort_decisions[-1, i]) if self.abort_decisions is not None else None,
            })  # fmt: skip
        return rows

    def measured_in_use(self) -> float:
        """Mean measured QBER of the links that lay on a chosen route during each epoch (NaN if none).

        Epoch ``k``'s verification covers slots ``k·epoch_slots`` to ``(k + 1)·epoch_slots − 1``.
        """
        epochs = self.measured_qber.shape[0]
        if not epochs:
            return float("nan")
        span = self.in_use.shape[0] // epochs
        used = self.in_use[: epochs * span].reshape(epochs, span, -1).any(axis=1)
        return float(self.measured_qber[used].mean()) if used.any() else float("nan")

    def summary(self) -> dict[str, Any]:
        """Run-level figures (JSON-ready)."""
        # Every requested demand counts; an unservable one (no path) is never served.
        avail = float(self.served.mean()) if self.served.size else 0.0
        slots = self.served.shape[0]
        meas = self.measured_qber
        return {
            "slots": int(slots),
            "availability": avail,
            "delivered_bits_per_slot": float(self.delivered_bits.sum() / max(slots, 1)),
            "delivered_bits_per_demand": self.delivered_bits.sum(axis=0).tolist(),
            "exposed_bits": float(self.exposed_bits.sum()),
            "exposed_fraction": float(self.exposed_bits.sum() / max(self.delivered_bits.sum(), 1e-300)),
            "mean_link_qber": float(self.qber_mean.mean()) if self.qber_mean.size else 0.0,
            "max_link_qber": float(self.qber_mean.max()) if self.qber_mean.size else 0.0,
            "measured_mean_link_qber": float(meas.mean()) if meas.size else 0.0,
            "measured_qber_in_use": self.measured_in_use(),
            "measured_mean_node_check_qber": float(np.nanmean(self.node_check_qber))
            if np.isfinite(self.node_check_qber).any()
            else float("nan"),
            "unservable_demands": int(self.unservable.sum()),
            "byzantine_nodes": [self.nodes[i] for i in np.flatnonzero(self.byzantine)],
            "mean_pool_bits": float(self.pool_mean_bits.mean()) if self.pool_mean_bits.size else 0.0,
            **self.abort_rates(),
            "interval_coverage": self.interval_coverage(),
            **{k: v for k, v in self.extras.items() if isinstance(v, int | float | str)},
        }


def prepare(g: nx.Graph, config: SimConfig, seed: int) -> tuple[LinkArrays, np.ndarray, Paths, np.ndarray]:
    """Links, demands, candidate paths and Byzantine mask of a run (all drawn from ``seed``)."""
    rng = np.random.default_rng([seed, 1])
    links = compile_links(g)
    pairs = links.n_nodes * (links.n_nodes - 1) // 2
    if config.n_demands > pairs:
        raise ParameterError(
            "n_demands", config.n_demands, f"[1, {pairs}] (distinct node pairs of {links.n_nodes} nodes)"
        )
    byz = choose_byzantine(links.n_nodes, config.adversary.fraction, rng)
    if config.demand_seed is None:
        # Demands between honest users: what a Byzantine node does with its own key is its business.
        demands = choose_demands(links.n_nodes, config.n_demands, rng, allowed=~byz)
    else:
        demands = choose_demands(links.n_nodes, config.n_demands, np.random.default_rng([config.demand_seed, 3]))
    disjoint = config.relay != "single"
    paths = candidate_paths(g, links, demands, config.paths, disjoint=disjoint)
    return links, demands, paths, byz


DEFAULT_MU_LEVELS = (0.1, 0.25, 0.45, 0.7)


def build_params(
    g: nx.Graph,
    config: SimConfig,
    seed: int = 0,
    mu_levels: tuple[float, ...] = DEFAULT_MU_LEVELS,
    max_steps: int = 100,
    violation_cost: float = 1.0,
    random_byzantine: bool = False,
) -> M.NetParams:
    """The :class:`~qverify.network.model.NetParams` of topology ``g`` under ``config`` and ``seed``.

    Scalars are stored as float32 / int32 / bool arrays, so every instance of one topology shares a
    compiled program. ``random_byzantine=True`` keeps the number of Byzantine nodes but lets
    :func:`~qverify.network.model.init` draw their placement anew.
    """
    links, _demands, paths, byz = prepare(g, config, seed)
    return _params(links, paths, byz, config, mu_levels, max_steps, violation_cost, random_byzantine)


def _params(
    links: LinkArrays,
    paths: Paths,
    byz: np.ndarray,
    config: SimConfig,
    mu_levels: tuple[float, ...] = DEFAULT_MU_LEVELS,
    max_steps: int = 100,
    violation_cost: float = 1.0,
    random_byzantine: bool = False,
) -> M.NetParams:
    lp: LinkParams = config.link
    if lp.detector.dead_time_slots > MAX_RELAY_DEAD_TIME and links.is_mdi.any():
        raise ParameterError(
            "dead_time_slots", lp.detector.dead_time_slots,
            f"at most {MAX_RELAY_DEAD_TIME} for a topology with MDI-QKD links ({int(links.is_mdi.sum())} here): "
            "the relay's four-detector chain is solved up to that",
        )  # fmt: skip
    fl = config.fluctuation
    adv = config.adversary
    incidence = node_incidence(links.a, links.b, links.n_nodes)
    check_links = node_checks.partners(incidence)
    if not config.node_rounds:
        check_links = np.full_like(check_links, -1)
    f32, i32, b = jnp.float32, jnp.int32, jnp.bool_
    injects = adv.does("inject")
    params = M.NetParams(
        length_km=jnp.asarray(links.length_km, f32),
        relay_fraction=jnp.asarray(links.relay_fraction, f32),
        is_mdi=jnp.asarray(links.is_mdi),
        link_a=jnp.asarray(links.a, i32),
        link_b=jnp.asarray(links.b, i32),
        path_links=jnp.asarray(paths.links, i32),
        path_inner=jnp.asarray(paths.inner, i32),
        path_valid=jnp.asarray(paths.valid),
        trusted=jnp.asarray(links.trusted),
        byzantine=jnp.asarray(byz),
        mu_levels=jnp.asarray(mu_levels, f32),
        nominal_mu=jnp.asarray(nominal_mu(links, lp), f32),
        corners=jnp.asarray(corner_distributions(), f32),
        loss_db_per_km=jnp.asarray(lp.channel.loss_db_per_km, f32),
        eta_det=jnp.asarray(lp.detector.eta_det, f32),
        p_dark=jnp.asarray(lp.detector.p_dark, f32),
        e_mis=jnp.asarray(lp.channel.e_mis, f32),
        f_ec=jnp.asarray(lp.ec.f_ec, f32),
        sift_mdi=jnp.asarray(lp.source.sift_for("mdi"), f32),
        sift_bb84=jnp.asarray(lp.source.sift_for("bb84"), f32),
        clock_hz=jnp.asarray(lp.source.clock_hz, f32),
        inject_prob=jnp.asarray(adv.inject_prob if injects else 0.0, f32),
        inject_error=jnp.asarray(injected_error(adv.inject_prob) if injects else 0.0, f32),
        drop_keys=jnp.asarray(adv.does("drop") or adv.does("corrupt"), b),
        lie=jnp.asarray(adv.does("lie"), b),
        slander=jnp.asarray(adv.does("slander"), b),
        collude=jnp.asarray(adv.collude, b),
        onset_slot=jnp.asarray(adv.onset_slot, i32),
        demand_bits=jnp.asarray(config.demand_bits, f32),
        pool_cap_bits=jnp.asarray(config.pool_cap_bits, f32),
        slot_s=jnp.asarray(config.slot_s, f32),
        qber_threshold=jnp.asarray(config.qber_threshold, f32),
        violation_cost=jnp.asarray(violation_cost, f32),
        loss_sigma_db=jnp.asarray(fl.loss_sigma_db, f32),
        loss_theta=jnp.asarray(fl.loss_theta, f32),
        fade_rate=jnp.asarray(fl.fade_rate, f32),
        fade_db=jnp.asarray(fl.fade_db, f32),
        fade_slots=jnp.asarray(fl.fade_slots, i32),
        eta_sigma=jnp.asarray(fl.eta_sigma, f32),
        source_sigma=jnp.asarray(fl.source_sigma, f32),
        drift_theta=jnp.asarray(fl.drift_theta, f32),
        verify_rounds=jnp.asarray(config.verify_rounds, i32),
        pe_confidence=jnp.asarray(config.pe_confidence, f32),
        monitor_sigma_db=jnp.asarray(config.monitor_sigma_db, f32),
        oracle_aborts=jnp.asarray(config.abort_rule == "oracle", b),
        node_links=jnp.asarray(incidence, i32),
        check_links=jnp.asarray(check_links, i32),
        check_table=jnp.asarray(node_checks.corner_table(), f32),
        node_rounds=jnp.asarray(config.node_rounds, i32),
        node_cheat=jnp.asarray(injects, b),
        weight_alpha=jnp.asarray(WEIGHT_RULE["alpha"], f32),
        weight_decay=jnp.asarray(WEIGHT_RULE["decay"], f32),
        weight_floor=jnp.asarray(WEIGHT_RULE["floor"], f32),
        weight_hysteresis=jnp.asarray(WEIGHT_RULE["hysteresis"], f32),
        weight_f=tolerated(links.n_nodes),
        epoch_slots=int(config.epoch_slots),
        dead_time_slots=lp.detector.dead_time_slots,
        double_click=lp.detector.double_click,
        random_byzantine=jnp.asarray(int(byz.sum()) if random_byzantine else 0, i32),
        relay=config.relay,
        shamir_k=config.shamir_k,
        max_steps=max_steps,
        observation=config.observation,
        test_levels=None if config.test_levels is None else jnp.asarray(config.test_levels, f32),
    )
    if config.block_pulses:
        from qverify.network.blocks import with_finite_blocks

        params = with_finite_blocks(params, config.link, config.block_pulses, config.key_epsilon)
    return params


STRETCH_FUSION_EMITTERS = True
"""Whether the stretch compiles with XLA's CPU fusion emitters (:mod:`qverify.xla`): it does, because
without them it compiled in 4.9 s instead of 7.6 s but ran 1.3× slower (``python
bench/bench_network.py``, 256 seeds × 1000 slots), and a stretch runs many times per compile."""


@partial(jit, static_argnames=("slots", "alloc"), fusion_emitters=STRETCH_FUSION_EMITTERS)
def _stretch(
    keys: jax.Array,
    state: M.NetState,
    host: M.Decision,
    params: M.NetParams,
    alloc_params: Any,
    count: jax.Array,
    slots: int,
    alloc: Callable[..., M.Decision] | None,
) -> tuple[M.NetState, M.SlotOut]:
    """``count`` (≤ ``slots``, traced) slots of every seed at once: state, decision, parameters and
    allocator parameters stacked along axis 0; outputs ``slots`` long, zero past ``count``.

    ``slots`` is the epoch length, so a run's last, shorter epoch (and a run shorter than an epoch)
    reuses the full epochs' program instead of compiling its own."""

    def one(key: jax.Array, s: M.NetState, h: M.Decision, p: M.NetParams, a: Any) -> tuple[M.NetState, M.SlotOut]:
        # Every stretch starts at an epoch boundary.
        return M.run(key, s, h, p, slots, count=count, allocator=alloc, allocator_params=a, aligned=True)

    return jax.vmap(one)(keys, state, host, params, alloc_params)


_PAD = {"path_links": -1, "path_inner": -1, "path_valid": False}
"""Candidate-path arrays and their padding: seeds with other demands may have other path shapes."""


def _stack(params: list[M.NetParams]) -> M.NetParams:
    """Stack per-seed parameters along a new axis 0, padding the candidate-path arrays to a common
    shape (padding is a link −1 / an invalid path, which the model skips)."""

    def padded(p: M.NetParams, name: str) -> jax.Array:
        shape = np.max([np.shape(getattr(q, name)) for q in params], axis=0)
        a = np.asarray(getattr(p, name))
        full = np.full(shape, _PAD[name], dtype=a.dtype)
        full[tuple(slice(0, n) for n in a.shape)] = a
        return jnp.asarray(full)

    same = [
        dataclasses.replace(
            p,
            path_links=padded(p, "path_links"),
            path_inner=padded(p, "path_inner"),
            path_valid=padded(p, "path_valid"),
        )
        for p in params
    ]
    return _stacked(same)


def _same_levels(trained: Any, configured: tuple[float, ...] | None) -> bool:
    """Whether an agent's test levels (float32 array or ``None``) are the configured ones."""
    if trained is None or configured is None:
        return trained is None and configured is None
    a = np.asarray(trained, np.float32)
    return a.shape == (len(configured),) and bool(np.all(a == np.asarray(configured, np.float32)))


def _stacked(trees: list[Any]) -> Any:
    """Per-seed pytrees of one structure stacked leaf by leaf along a new axis 0."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _observation(state: dict[str, np.ndarray], i: int, slot: int) -> Observation:
    """Seed ``i``'s :class:`Observation` from the stacked state (host copies)."""
    return Observation(
        slot=slot,
        reported_qber=state["reported"][i].astype(float),
        pool_bits=state["pool"][i].astype(float),
        key_rate_bps=state["distilled_bps"][i].astype(float),
        counts=state["counts"][i],
        loss_db=state["loss_monitor"][i].astype(float),
        node_claims=state["node_claims"][i].astype(float),
        node_counts=state["node_counts"][i],
        aborted=state["pe_abort"][i].astype(bool),
    )


_OBSERVED = ("reported", "pool", "counts", "loss_monitor", "pe_abort", "node_claims", "node_counts", "weights")
"""The state fields a host policy may read: measurements only (the truth stays on the device)."""


def _host_copy(state: M.NetState) -> dict[str, np.ndarray]:
    """The stacked state's fields the host reads (observations, reports, weights), copied once."""
    return {name: np.asarray(getattr(state, name)) for name in _OBSERVED}


def simulate(
    g: nx.Graph,
    config: SimConfig,
    slots: int,
    seed: int = 0,
    policy: Policy | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimResult:
    """Run ``slots`` slots on topology ``g`` under ``policy`` (default: :class:`BaselinePolicy`).

    Same ``seed``, same result. ``progress(k)`` is called after every epoch with the slots done.
    A policy with an ``allocator`` attribute (a jax function ``(alloc_params, obs, host_decision,
    params) -> Decision``, with ``alloc_params`` its ``allocator_params``) decides inside the
    compiled scan, slot by slot; its host ``decide`` still runs at epoch boundaries.
    :func:`simulate_seeds` with one seed.
    """
    return simulate_seeds(g, config, slots, [seed], None if policy is None else [policy], progress)[0]


def simulate_seeds(
    g: nx.Graph,
    config: SimConfig,
    slots: int,
    seeds: Sequence[int],
    policies: Sequence[Policy] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[SimResult]:
    """:func:`simulate` for several seeds in one compiled program: the seeds' slots run ``vmap``-ped,
    each seed's policy (its own control plane) on the host at every epoch boundary.

    Seed ``s`` gives the same result here as ``simulate(g, config, slots, s, policy)`` alone.
    ``policies``: one per seed (default: :class:`BaselinePolicy` each); policies with an in-scan
    allocator must all have the same one (each with its own parameters, e.g. its route constraints).
    """
    if slots < 1:
        raise ParameterError("slots", slots, "[1, inf)")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ParameterError("seeds", seeds, "at least one seed")
    pols = list(policies) if policies is not None else [BaselinePolicy() for _ in seeds]
    if len(pols) != len(seeds):
        raise ParameterError("policies", len(pols), f"{len(seeds)} (one per seed)")
    alloc = getattr(pols[0], "allocator", None)
    if any(getattr(p, "allocator", None) is not alloc for p in pols):
        raise ParameterError("policies", [p.name for p in pols], "one kind of in-scan allocator for every seed")
    prepared = [prepare(g, config, s) for s in seeds]
    # An agent sees the episode phase and picks μ levels: use those it was trained with.
    trained = getattr(pols[0], "env_params", None)
    if trained is not None and trained.observation != config.observation:
        raise ParameterError(
            "observation", config.observation, f"{trained.observation!r}, the observation the agent was trained on"
        )
    if trained is not None and not _same_levels(trained.test_levels, config.test_levels):
        levels = None if trained.test_levels is None else tuple(np.asarray(trained.test_levels).tolist())
        raise ParameterError("test_levels", config.test_levels, f"{levels}, the test levels the agent was trained with")
    shape = (
        {"mu_levels": tuple(np.asarray(trained.mu_levels).tolist()), "max_steps": trained.max_steps} if trained else {}
    )
    per_seed = [_params(links, paths, byz, config, **shape) for links, _d, paths, byz in prepared]
    params = _stack(per_seed)
    keys = [jax.random.PRNGKey(s) for s in seeds]
    state = _stacked([M.init(jax.random.fold_in(k, 0), p) for k, p in zip(keys, per_seed, strict=True)])
    for pol, (links, demands, paths, byz), p in zip(pols, prepared, per_seed, strict=True):
        mu0 = np.asarray(p.nominal_mu, dtype=float)
        pol.reset(
            Context(
                links, paths, demands, mu0, config.qber_threshold, byz, config.adversary.onset_slot,
                config.pe_confidence,
            )
        )  # fmt: skip
    outs: list[M.SlotOut] = []
    measured: list[np.ndarray] = []
    checked: list[np.ndarray] = []
    reported: list[np.ndarray] = []
    zx: list[np.ndarray] = []
    decided: list[np.ndarray] = []
    t = 0
    epoch = 0
    host = _host_copy(state)
    host["distilled_bps"] = np.zeros(np.shape(host["pool"]), np.float32)
    while t < slots:
        n = min(config.epoch_slots, slots - t)
        decisions = [pol.decide(_observation(host, i, t)) for i, pol in enumerate(pols)]
        weights = host["weights"].copy()
        for i, pol in enumerate(pols):
            weights_of = getattr(pol, "node_weights", None)
            adopted = weights_of() if weights_of is not None else None
            if adopted is not None:
                weights[i] = np.asarray(adopted, dtype=np.float32)
        state = dataclasses.replace(state, weights=jnp.asarray(weights, jnp.float32))
        decision = M.Decision(
            jnp.asarray(np.stack([d.usable for d in decisions]), bool),
            jnp.asarray(np.stack([d.mu for d in decisions]), jnp.float32),
            jnp.asarray(np.stack([d.use_mdi for d in decisions]), bool),
            jnp.asarray(np.stack([d.route for d in decisions]), jnp.int32),
        )
        # Each seed's allocator parameters as its policy left them in decide (an agent's route
        # constraints differ per seed), stacked like the states.
        alloc_params = _stacked([getattr(p, "allocator_params", None) for p in pols])
        epoch_keys = jnp.stack([jax.random.fold_in(k, epoch + 1) for k in keys])
        state, out = _stretch(
            epoch_keys, state, decision, params, alloc_params, jnp.int32(n), config.epoch_slots, alloc
        )
        out = jax.tree.map(lambda x, n=n: np.asarray(x)[:, :n], out)  # on the host: no program per n
        outs.append(out)
        host = _host_copy(state)  # what the next epoch's policies read, and this epoch's reports
        host["distilled_bps"] = np.asarray(out.generated).sum(axis=1) / (n * config.slot_s)
        if n == config.epoch_slots:
            measured.append(measured_qber(host["counts"]))
            checked.append(np.stack([node_checks.measured_node_qber(c) for c in host["node_counts"]]))
            reported.append(host["reported"].astype(float))
            c = host["counts"]
            zx.append(np.stack([c[..., 0, 0] + c[..., 1, 0], c[..., 0, 1] + c[..., 1, 1]], axis=-1))
            decided.append(host["pe_abort"].copy())
        t += n
        epoch += 1
        if progress is not None:
            progress(t)

    o = jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs], axis=1), *outs)
    learned = np.asarray(state.learned, dtype=float)
    results = []
    for i, (seed, pol, (links, demands, paths, byz)) in enumerate(zip(seeds, pols, prepared, strict=True)):
        mine = jax.tree.map(lambda x, i=i: x[i], o)
        results.append(_result(mine, links, demands, paths, byz, learned[i], config, slots, seed, pol,
                               [m[i] for m in measured], [r[i] for r in reported], [c[i] for c in checked],
                               [z[i] for z in zx], [a[i] for a in decided]))  # fmt: skip
    return results


def _result(
    o: M.SlotOut,
    links: LinkArrays,
    demands: np.ndarray,
    paths: Paths,
    byz: np.ndarray,
    learned: np.ndarray,
    config: SimConfig,
    slots: int,
    seed: int,
    policy: Policy,
    measured: list[np.ndarray],
    reported: list[np.ndarray],
    checked: list[np.ndarray],
    zx: list[np.ndarray] | None = None,
    decided: list[np.ndarray] | None = None,
) -> SimResult:
    """One seed's :class:`SimResult` from its per-slot outputs (host arrays, slots along axis 0)."""
    e_n = links.n_links
    valid = np.asarray(paths.valid)
    unservable = np.asarray(~valid.any(axis=1))
    # Padding to another seed's path shape adds invalid paths only; the slot outputs are per demand.
    served = np.asarray(o.served) & ~unservable
    delivered = np.where(unservable, 0.0, np.asarray(o.delivered, dtype=float))
    avail = served.mean(axis=1) if served.shape[1] else np.zeros(slots)
    qber = np.asarray(o.qber, dtype=float)
    return SimResult(
        availability=avail,
        delivered_bits=delivered,
        served=served,
        exposed_bits=np.asarray(o.exposed, dtype=float),
        learned_bits=learned,
        qber_mean=qber.mean(axis=0),
        qber_var=qber.var(axis=0),
        qber_series=qber if slots * e_n <= 2_000_000 else None,
        measured_qber=np.array(measured).reshape(-1, e_n),
        reported_qber=np.array(reported).reshape(-1, e_n, 2),
        node_check_qber=np.array(checked).reshape(-1, links.n_nodes),
        in_use=np.asarray(o.in_use),
        pool_mean_bits=np.asarray(o.pool, dtype=float).mean(axis=1) if e_n else np.zeros(slots),
        unservable=unservable,
        byzantine=byz,
        demands=demands,
        nodes=links.nodes,
        params={**config.to_dict(), "seed": seed, "slots": slots, "policy": policy.name},
        extras=dict(getattr(policy, "extras", {})),
        aborted=np.asarray(o.aborted, bool),
        zx_counts=np.array(zx or [], dtype=np.int64).reshape(-1, e_n, 2),
        abort_decisions=np.array(decided or [], dtype=bool).reshape(-1, e_n),
        link_ends=np.stack([np.asarray(links.a), np.asarray(links.b)], axis=1),
    )
