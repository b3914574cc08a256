"""The policy interface the control plane plugs into, and the baseline policy.

At every epoch boundary the simulator hands a policy an :class:`Observation` (what the control plane
can know: the epoch's verification counts and the QBER each endpoint *reports*, pool levels, last key
rates) and applies its :class:`Decision` (which links are usable, the source intensity and protocol
per link, the route of every demand) to the coming epoch. Policies never see ground truth (true
QBERs, who is Byzantine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qverify.network.keys import Paths
from qverify.network.links import LinkArrays


@dataclass(frozen=True)
class Context:
    """What a policy knows before the run: links, candidate paths, nominal settings, threshold.

    ``faulty`` and ``faulty_from_slot`` tell a control-plane *simulation* which replicas to run as
    Byzantine inside its agreement protocol; a policy must never base a decision on them.
    ``pe_confidence``: the one-sided confidence of the conservative statistic decisions read
    (:func:`qverify.network.measure.claim_upper`), the network's parameter-estimation confidence.
    """

    links: LinkArrays
    paths: Paths
    demands: np.ndarray
    nominal_mu: np.ndarray
    qber_threshold: float
    faulty: np.ndarray | None = None
    faulty_from_slot: int = 0
    pe_confidence: float = 0.95


@dataclass(frozen=True)
class Observation:
    """What the control plane sees at an epoch boundary (measured, never true values).

    Attributes:
        slot: first slot of the coming epoch.
        reported_qber: (E, 2) QBER reported by endpoint ``a`` and endpoint ``b`` of each link after
            the last epoch's verification rounds (zeros before the first epoch; a Byzantine
            endpoint may lie).
        pool_bits: (E,) key bits in each link's pool.
        key_rate_bps: (E,) key each link distilled in the last epoch, per second (pool increments
            the nodes saw, bit/s).
        counts: (E, 3, 2) the last epoch's public test outcomes per link and basis Z, X, Y:
            (errors, heralds); see :func:`qverify.network.measure.link_reports`.
        loss_db: (E,) last slot's loss monitor reading, dB (the true loss plus a Gaussian reading
            error of sd ``NetParams.monitor_sigma_db``).
        aborted: (E,) links their endpoints' parameter estimation aborted at the last epoch end.
        node_claims: (N, W) the QBER-equivalent each node-check partner reported about each node
            after the last epoch (``inf``: no such partner), see :mod:`qverify.network.node_checks`.
        node_counts: (N, W, 2) (passes, rounds) each partner verified.
    """

    slot: int
    reported_qber: np.ndarray
    pool_bits: np.ndarray
    key_rate_bps: np.ndarray
    counts: np.ndarray | None = None
    loss_db: np.ndarray | None = None
    node_claims: np.ndarray | None = None
    node_counts: np.ndarray | None = None
    aborted: np.ndarray | None = None


@dataclass(frozen=True)
class Decision:
    """Control-plane decision for one slot.

    Attributes:
        usable: (E,) links keys may be relayed over.
        mu: (E,) signal mean photon number per link.
        use_mdi: (E,) protocol per link (True: MDI-QKD, False: decoy BB84).
        route: (D,) index of the candidate path each demand uses (single-path relay).
    """

    usable: np.ndarray
    mu: np.ndarray
    use_mdi: np.ndarray
    route: np.ndarray


class Policy(Protocol):
    """A control-plane policy: ``reset`` once per run, ``decide`` at every epoch boundary."""

    name: str

    def reset(self, ctx: Context) -> None: ...

    def decide(self, obs: Observation) -> Decision: ...


class BaselinePolicy:
    """Single shortest path, static source settings, every report trusted.

    A link is usable when the mean of its endpoints' conservative QBER (the upper confidence bound at
    ``Context.pe_confidence`` of each claim over the epoch's test rounds,
    :func:`qverify.network.measure.claim_upper`) is below the QBER threshold; each demand always
    uses its shortest path; μ stays at the nominal optimum, the protocol as built.
    """

    name = "baseline"

    def reset(self, ctx: Context) -> None:
        self.ctx = ctx
        self._route = np.zeros(len(ctx.demands), dtype=np.int64)

    def decide(self, obs: Observation) -> Decision:
        from qverify.network.measure import claim_upper

        upper = claim_upper(obs.reported_qber, obs.counts, self.ctx.pe_confidence)
        usable = upper.mean(axis=1) < self.ctx.qber_threshold
        return Decision(usable, self.ctx.nominal_mu, self.ctx.links.is_mdi, self._route)
