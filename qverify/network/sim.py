"""Time-slotted QKD network simulator, vectorised over links and demands.

One slot (``slot_s`` seconds):

1. fluctuations: excess fibre loss follows an Ornstein–Uhlenbeck process in dB plus fades (random
   onsets, fixed depth and duration); detector efficiency and source rate drift as log-OU processes;
2. Byzantine nodes (from ``onset_slot``) inject corrupted states on their links (QBER from the
   misbehaving-relay circuit), lie or slander in their reports;
3. the policy decides from reports (never from the truth): usable links, μ, protocol, routes;
4. links run the protocol: key rate and QBER from :mod:`qverify.physics`; a link whose true QBER
   exceeds the abort threshold distils nothing; pools fill at rate × slot, up to a cap;
5. demands draw ``demand_bits`` from every link of their path(s); a demand is *served* when its
   whole request is met; Byzantine relays drop or corrupt keys; bits learned by relays are tracked
   and a delivered key counts as *exposed* when the adversary could reconstruct it.

No Python loop runs over links or demands inside a slot.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from qverify.errors import ChoiceError, ParameterError
from qverify.network.adversary import Adversary, choose_byzantine, injected_error
from qverify.network.keys import Paths, candidate_paths, choose_demands
from qverify.network.links import LinkArrays, compile_links, link_state, nominal_mu
from qverify.network.policy import BaselinePolicy, Context, Observation, Policy
from qverify.physics.params import LCQ_2012, LinkParams

RELAYS = ("single", "xor", "shamir")


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
            if getattr(self, name) < 0:
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

    def __post_init__(self) -> None:
        if self.slot_s <= 0:
            raise ParameterError("slot_s", self.slot_s, "(0, inf)")
        if self.n_demands < 1:
            raise ParameterError("n_demands", self.n_demands, "[1, inf)")
        if self.demand_bits <= 0:
            raise ParameterError("demand_bits", self.demand_bits, "(0, inf)")
        if self.pool_cap_bits <= 0:
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

    Attributes:
        availability: (T,) fraction of demands served in each slot.
        delivered_bits: (T, D) key bits delivered to each demand.
        served: (T, D) whether each demand's request was met.
        exposed_bits: (T,) delivered bits the adversary can reconstruct.
        learned_bits: (N,) key (or share) bits each node learned as a relay.
        qber_mean, qber_var: (E,) per-link mean and variance over slots of the true QBER.
        qber_series: (T, E) true QBER per slot, kept when T·E ≤ 2e6, else ``None``.
        pool_mean_bits: (T,) mean pool level.
        unservable: (D,) demands with no path at all (disconnected endpoints).
        byzantine: (N,) Byzantine mask.
        demands: (D, 2) demand endpoints.
        nodes: node names.
        params: the full configuration, for provenance.
    """

    availability: np.ndarray
    delivered_bits: np.ndarray
    served: np.ndarray
    exposed_bits: np.ndarray
    learned_bits: np.ndarray
    qber_mean: np.ndarray
    qber_var: np.ndarray
    qber_series: np.ndarray | None
    pool_mean_bits: np.ndarray
    unservable: np.ndarray
    byzantine: np.ndarray
    demands: np.ndarray
    nodes: tuple[str, ...]
    params: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Run-level figures (JSON-ready)."""
        servable = ~self.unservable
        avail = float(self.served[:, servable].mean()) if servable.any() and self.served.size else 0.0
        slots = self.served.shape[0]
        return {
            "slots": int(slots),
            "availability": avail,
            "delivered_bits_per_slot": float(self.delivered_bits.sum() / max(slots, 1)),
            "delivered_bits_per_demand": self.delivered_bits.sum(axis=0).tolist(),
            "exposed_bits": float(self.exposed_bits.sum()),
            "exposed_fraction": float(self.exposed_bits.sum() / max(self.delivered_bits.sum(), 1e-300)),
            "mean_link_qber": float(self.qber_mean.mean()) if self.qber_mean.size else 0.0,
            "max_link_qber": float(self.qber_mean.max()) if self.qber_mean.size else 0.0,
            "unservable_demands": int(self.unservable.sum()),
            "byzantine_nodes": [self.nodes[i] for i in np.flatnonzero(self.byzantine)],
            "mean_pool_bits": float(self.pool_mean_bits.mean()) if self.pool_mean_bits.size else 0.0,
            **{k: v for k, v in self.extras.items() if isinstance(v, int | float | str)},
        }


def _ou_step(x: np.ndarray, theta: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    if sigma == 0:
        return x
    return x * (1 - theta) + sigma * math.sqrt(1 - (1 - theta) ** 2) * rng.standard_normal(x.shape)


@dataclass
class _State:
    excess_db: np.ndarray
    fade_left: np.ndarray
    log_eta: np.ndarray
    log_src: np.ndarray
    pool: np.ndarray


def prepare(g: nx.Graph, config: SimConfig, seed: int) -> tuple[LinkArrays, np.ndarray, Paths, np.ndarray]:
    """Links, demands, candidate paths and Byzantine mask of a run (all drawn from ``seed``)."""
    rng = np.random.default_rng([seed, 1])
    links = compile_links(g)
    byz = choose_byzantine(links.n_nodes, config.adversary.fraction, rng)
    if config.demand_seed is None:
        # Demands between honest users: what a Byzantine node does with its own key is its business.
        demands = choose_demands(links.n_nodes, config.n_demands, rng, allowed=~byz)
    else:
        demands = choose_demands(links.n_nodes, config.n_demands, np.random.default_rng([config.demand_seed, 3]))
    disjoint = config.relay != "single"
    paths = candidate_paths(g, links, demands, config.paths, disjoint=disjoint)
    return links, demands, paths, byz


def simulate(
    g: nx.Graph,
    config: SimConfig,
    slots: int,
    seed: int = 0,
    policy: Policy | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimResult:
    """Run ``slots`` slots on topology ``g`` under ``policy`` (default: :class:`BaselinePolicy`).

    Same ``seed``, same result. ``progress(k)`` is called every 100 slots with the slots done.
    """
    if slots < 1:
        raise ParameterError("slots", slots, "[1, inf)")
    policy = policy or BaselinePolicy()
    links, demands, paths, byz = prepare(g, config, seed)
    rng = np.random.default_rng([seed, 2])
    e_n, d_n, n_n = links.n_links, len(demands), links.n_nodes
    adv = config.adversary
    fl = config.fluctuation
    mu0 = nominal_mu(links, config.link)
    policy.reset(Context(links, paths, demands, mu0, config.qber_threshold, byz, config.adversary.onset_slot))

    st = _State(
        excess_db=np.zeros(e_n),
        fade_left=np.zeros(e_n, dtype=np.int64),
        log_eta=np.zeros(e_n),
        log_src=np.zeros(e_n),
        pool=np.zeros(e_n),
    )
    e_att = injected_error(adv.inject_prob) if adv.does("inject") else 0.0
    byz_a, byz_b = byz[links.a], byz[links.b]
    multi = config.relay != "single"
    k_paths = paths.links.shape[1]
    unservable = np.asarray(~paths.valid.any(axis=1))

    keep_series = slots * e_n <= 2_000_000
    out_avail = np.zeros(slots)
    out_deliv = np.zeros((slots, d_n))
    out_served = np.zeros((slots, d_n), dtype=bool)
    out_exposed = np.zeros(slots)
    out_pool = np.zeros(slots)
    qsum = np.zeros(e_n)
    qsq = np.zeros(e_n)
    series = np.zeros((slots, e_n)) if keep_series else None
    learned = np.zeros(n_n)
    reported = np.zeros((e_n, 2))
    last_rate = np.zeros(e_n)
    arange_d = np.arange(d_n)

    backlog = np.zeros(d_n)
    last_mu = mu0.copy()
    base_loss_db = links.length_km * config.link.channel.loss_db_per_km
    excess = np.zeros(e_n)  # excess loss of the last slot (fades included), dB
    for t in range(slots):
        active = byz if t >= adv.onset_slot else np.zeros(n_n, dtype=bool)
        act_a, act_b = active[links.a], active[links.b]
        # 1. the control plane decides from what the last slot showed (as the DRA environment does)
        dec = policy.decide(
            Observation(
                t, reported.copy(), st.pool.copy(), last_rate.copy(), base_loss_db + excess, np.exp(st.log_eta),
                np.exp(st.log_src), last_mu.copy(), backlog.copy(),
            )
        )  # fmt: skip
        last_mu = np.asarray(dec.mu, dtype=float)
        # 2. fluctuations of this slot
        st.excess_db = _ou_step(st.excess_db, fl.loss_theta, fl.loss_sigma_db, rng)
        starts = rng.random(e_n) < fl.fade_rate if fl.fade_rate else np.zeros(e_n, dtype=bool)
        st.fade_left = np.where(starts, fl.fade_slots, np.maximum(st.fade_left - 1, 0))
        st.log_eta = _ou_step(st.log_eta, fl.drift_theta, fl.eta_sigma, rng)
        st.log_src = _ou_step(st.log_src, fl.drift_theta, fl.source_sigma, rng)
        excess = np.maximum(st.excess_db, -base_loss_db) + fl.fade_db * (st.fade_left > 0)
        # 2+4. links run with this slot's conditions and the attackers' injected states
        inject = (act_a | act_b) if adv.does("inject") else np.zeros(e_n, dtype=bool)
        ls = link_state(
            links,
            config.link,
            dec.mu,
            dec.use_mdi,
            excess,
            np.exp(st.log_eta),
            np.exp(st.log_src),
            e_att * inject,
        )
        aborted = ls.qber > config.qber_threshold
        rate = np.where(aborted, 0.0, ls.key_rate_bps)
        st.pool = np.minimum(st.pool + rate * config.slot_s, config.pool_cap_bits)
        last_rate = rate
        qsum += ls.qber
        qsq += ls.qber**2
        if series is not None:
            series[t] = ls.qber
        # reports for the next slot: honest endpoints report the measured QBER
        rep_a, rep_b = ls.qber.copy(), ls.qber.copy()
        if adv.does("lie"):
            rep_a = np.where(act_a, 0.0, rep_a)
            rep_b = np.where(act_b, 0.0, rep_b)
        if adv.does("slander"):
            rep_a = np.where(act_a & ~byz_b, 0.5, rep_a)
            rep_b = np.where(act_b & ~byz_a, 0.5, rep_b)
        reported = np.stack([rep_a, rep_b], axis=1)

        # 5. relay
        if multi:
            use_links = paths.links  # (D, P, L): every disjoint path carries a share
            use_inner = paths.inner
            use_valid = paths.valid
        else:
            route = np.clip(dec.route, 0, k_paths - 1)
            use_links = paths.links[arange_d, route][:, None, :]
            use_inner = paths.inner[arange_d, route][:, None, :]
            use_valid = paths.valid[arange_d, route][:, None]
        has = use_links >= 0
        lk = np.where(has, use_links, 0)
        ok_link = np.where(has, dec.usable[lk] & ~aborted[lk], True).all(axis=2) & use_valid
        req = np.where(has & ok_link[..., None], config.demand_bits, 0.0)
        requested = np.bincount(lk.ravel(), weights=req.ravel(), minlength=e_n)
        frac_link = np.where(requested > 0, np.minimum(1.0, st.pool / np.where(requested > 0, requested, 1.0)), 1.0)
        frac_path = np.where(has, frac_link[lk], 1.0).min(axis=2) * ok_link
        consumed = np.bincount(
            lk.ravel(), weights=(np.where(has, frac_path[..., None], 0.0) * config.demand_bits).ravel(), minlength=e_n
        )
        st.pool = np.maximum(st.pool - consumed, 0.0)
        hi = np.where(use_inner >= 0, use_inner, 0)
        inner_byz = np.where(use_inner >= 0, active[hi], False)
        sabotage: np.ndarray = np.zeros_like(frac_path, dtype=bool)
        if adv.does("drop") or adv.does("corrupt"):
            sabotage = np.asarray(inner_byz.any(axis=2))
        frac_path = np.where(sabotage, 0.0, frac_path)
        full = frac_path >= 1.0 - 1e-12
        if config.relay == "single":
            served = full[:, 0]
            delivered = frac_path[:, 0] * config.demand_bits
            exposed_path = np.asarray(inner_byz.any(axis=2))[:, 0]
        elif config.relay == "xor":
            n_valid = use_valid.sum(axis=1)
            served = (full | ~use_valid).all(axis=1) & (n_valid > 0)
            delivered = np.where(n_valid > 0, np.where(use_valid, frac_path, 1.0).min(axis=1), 0.0) * config.demand_bits
            hit = inner_byz.any(axis=2) & use_valid
            exposed_path = (hit | ~use_valid).all(axis=1) & hit.any(axis=1) if adv.collude else np.zeros(d_n, bool)
        else:
            kk = config.shamir_k
            served = full.sum(axis=1) >= kk
            kth = -np.sort(-np.where(use_valid, frac_path, 0.0), axis=1)[:, kk - 1] if k_paths >= kk else np.zeros(d_n)
            delivered = kth * config.demand_bits
            hits = (inner_byz.any(axis=2) & use_valid).sum(axis=1)
            exposed_path = hits >= kk if adv.collude else np.zeros(d_n, bool)
        served = served & ~unservable
        delivered = np.where(unservable, 0.0, delivered)
        # bits each relay learned (a share per path it forwarded)
        share = np.where(use_inner >= 0, frac_path[..., None] * config.demand_bits, 0.0)
        learned += np.bincount(hi.ravel(), weights=share.ravel(), minlength=n_n)
        backlog = np.maximum(backlog + config.demand_bits - delivered, 0.0)
        out_deliv[t] = delivered
        out_served[t] = served
        out_exposed[t] = float((delivered * exposed_path).sum())
        servable = ~unservable
        out_avail[t] = float(served[servable].mean()) if servable.any() else 0.0
        out_pool[t] = float(st.pool.mean()) if e_n else 0.0
        if progress is not None and (t + 1) % 100 == 0:
            progress(t + 1)

    mean = qsum / slots
    var = np.maximum(qsq / slots - mean**2, 0.0)
    return SimResult(
        availability=out_avail,
        delivered_bits=out_deliv,
        served=out_served,
        exposed_bits=out_exposed,
        learned_bits=learned,
        qber_mean=mean,
        qber_var=var,
        qber_series=series,
        pool_mean_bits=out_pool,
        unservable=unservable,
        byzantine=byz,
        demands=demands,
        nodes=links.nodes,
        params={**config.to_dict(), "seed": seed, "slots": slots, "policy": policy.name},
        extras=dict(getattr(policy, "extras", {})),
    )
