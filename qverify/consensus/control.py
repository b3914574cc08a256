"""Control-plane policies for the network simulator whose decisions go through weighted PBFT.

At every epoch boundary of the simulator the control plane:

1. orders the epoch's verification reports (each endpoint's :class:`~qverify.verify.report.FidelityReport`,
   built from the sampled test-round counts by :func:`qverify.network.measure.link_reports`) — they
   are the input of the consensus instance, so every correct node folds the same reports;
2. updates the fidelity scores and the *candidate* weight vector through
   :meth:`FidelityWeightedVoting.report` (the only way fidelity enters the weights; a link report
   counts by its ``qber_upper``, the Clopper–Pearson upper bound of its claim over the epoch's test
   rounds at ``Context.pe_confidence``) and ``end_epoch`` (fail-closed);
3. computes the decision — usable links, route table, relay commit — deterministically from the
   ordered reports;
4. runs one weighted-PBFT instance ordering the decision (one batch) among the network's nodes, with the epoch's
   weight vector and a leader that rotates with the epoch; a decision takes effect only when
   committed. The batch carries the candidate vector's digest: the replicas vote under a vector
   only once an instance committed it, and the first instance under a new vector needs quorums
   under the vector it replaces as well (joint quorums, ``Schedule.previous``), so a weight change
   is itself ordered by the current quorum and never adopted from a global schedule. Every
   Byzantine node of the network
   is a faulty replica — also when there are more of them than the ``f`` the weights are built for,
   so safety beyond ``f`` is measured, not assumed. Byzantine nodes submit a forged decision beside
   the honest one; a faulty replica equivocates (as leader it pre-prepares the honest and the forged
   decision to the two halves of the replicas, as voter it votes for everything)
   and, halfway through the instance, forgets its log. The independent checker counts agreement
   violations (two correct replicas executing different values at one sequence number).
   Above :data:`MAX_PBFT_NODES` nodes the instance runs in a committee of that size, drawn
   uniformly per instance (:func:`qverify.consensus.committee.sortition`); the probability that
   a committee holds more Byzantine members than it tolerates is reported (``extras``) for the f
   the weights assume and for the simulator's true count, and the checker counts what happens.

:class:`ABFTPolicy` sanitises reports (a link's error is its worse endpoint's report; nodes are
scored by a trimmed median) and routes around low-score nodes. With ``weighting="equal"`` and
``sanitise=False`` it is the *equal-weight PBFT* baseline: agreement, but every report trusted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qverify.consensus.beacon import BeaconChain
from qverify.consensus.committee import capture_probability, tolerated
from qverify.consensus.encoding import digest
from qverify.consensus.pbft import Behaviour, NetConfig, Schedule, agreement_violations, simulate
from qverify.consensus.signing import SCHEMES
from qverify.consensus.voting import FidelityWeightedVoting
from qverify.consensus.weights import WeightVector, node_incidence
from qverify.errors import ChoiceError, ParameterError
from qverify.network.measure import claim_upper, link_reports
from qverify.network.node_checks import node_reports, partners
from qverify.network.policy import Context, Decision, Observation

AMNESIA_AT = 10.0
"""Simulated time (message delays are 0.5–1.5) at which a faulty replica forgets its log."""

MAX_PBFT_NODES = 64
"""Above this many nodes each instance runs in a committee of this size drawn by sortition
(:mod:`qverify.consensus.committee`), with equal weights inside it."""


class ABFTPolicy:
    """Fidelity-weighted control plane (see module docstring).

    Args:
        alpha: the paper's damping α for the score update, in [0, 1).
        weighting: ``"abft"`` (WHEAT weights from scores) or ``"equal"``.
        sanitise: use the worse endpoint report per link and avoid low-score nodes; ``False``
            trusts the mean of the reports, as the baseline does.
        suspect_loss: node loss (trimmed-median QBER / abort QBER) above which a node is avoided
            as a relay, in (0, 1].
        signatures: how PBFT messages are signed (:data:`qverify.consensus.signing.SCHEMES`):
            ``"ed25519"``, or ``"ideal"`` (a keyed hash only the simulator can make and check:
            equally unforgeable for the replicas, ~100× cheaper).
        beacon_key: seeds the committee members' private beacon secrets (networks above
            ``MAX_PBFT_NODES`` nodes; :mod:`qverify.consensus.beacon`); explicit so a run replays.
    """

    def __init__(
        self,
        alpha: float = 0.5,
        weighting: str = "abft",
        sanitise: bool = True,
        suspect_loss: float = 0.6,
        signatures: str = "ed25519",
        beacon_key: int = 0,
    ) -> None:
        if weighting not in ("abft", "equal"):
            raise ChoiceError("weighting", weighting, ("abft", "equal"))
        if signatures not in SCHEMES:
            raise ChoiceError("signatures", signatures, SCHEMES)
        self.signatures = signatures
        if not 0 < suspect_loss <= 1:
            raise ParameterError("suspect_loss", suspect_loss, "(0, 1]")
        self.alpha = alpha
        self.weighting = weighting
        self.sanitise = sanitise
        self.suspect_loss = suspect_loss
        self.beacon_key = beacon_key
        self.name = "abft" if weighting == "abft" and sanitise else "pbft_equal"
        self.extras: dict[str, Any] = {}

    def reset(self, ctx: Context) -> None:
        self.ctx = ctx
        n = ctx.links.n_nodes
        self.f = tolerated(n)
        self.voting = FidelityWeightedVoting(list(ctx.links.nodes), self.f, alpha=self.alpha)
        self.epoch = 0
        self.beacon: BeaconChain | None = None
        e = ctx.links.n_links
        self.usable = np.ones(e, dtype=bool)
        self.route = np.zeros(len(ctx.demands), dtype=np.int64)
        self.suspect = np.zeros(n, dtype=bool)
        self.check_links = partners(node_incidence(ctx.links.a, ctx.links.b, n))
        # The vector the replicas vote under is the one a committed instance adopted, never the
        # scores' latest candidate; ``replaced`` is the vector it replaced, whose quorums are also
        # needed until an instance commits under the new one (joint quorums).
        self.adopted: WeightVector = self.voting.weights()
        self.replaced: WeightVector | None = None
        self.weights_history: list[tuple[int, ...]] = [self.adopted.weights]
        self.weight_changes = 0
        self.violations = 0
        self.faulty_replicas = 0
        self.instances = 0
        self.committed = 0
        self.latency: list[float] = []
        self.extras = {}
        self.committee_extras: dict[str, Any] = {}
        if n > MAX_PBFT_NODES:
            byz_true = int(np.sum(ctx.faulty)) if ctx.faulty is not None else 0
            self.committee_extras = {
                "control_committee_size": MAX_PBFT_NODES,
                "control_committee_tolerates": tolerated(MAX_PBFT_NODES),
                "control_committee_capture_assumed_f": capture_probability(n, self.f, MAX_PBFT_NODES),
                "control_committee_capture_true": capture_probability(n, byz_true, MAX_PBFT_NODES),
            }

    # ---- decision computation (deterministic in the ordered reports) ------------------------
    def _decide(self, mean_rep: np.ndarray, obs: Observation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        links = self.ctx.links
        # Usability, routes and weights read the conservative statistic: each claim's upper confidence
        # bound at pe_confidence over the epoch's test rounds (qverify.network.measure.claim_upper),
        # not the point value; the weights through the reports' qber_upper (link_reports, and
        # node_reports for the node checks' claims, both at pe_confidence).
        conf = self.ctx.pe_confidence
        upper = claim_upper(mean_rep, obs.counts, conf)
        if self.sanitise:
            link_err = upper.max(axis=1)
        else:
            link_err = upper.mean(axis=1)
        usable = link_err < self.ctx.qber_threshold
        suspect = np.zeros(links.n_nodes, dtype=bool)
        if self.sanitise:
            counts = obs.counts if obs.counts is not None else np.zeros((links.n_links, 3, 2), dtype=np.int64)
            for rep in link_reports(links.nodes, links.a, links.b, counts, mean_rep, float(obs.slot), conf):
                self.voting.report(rep)
            if obs.node_claims is not None and obs.node_counts is not None:
                for rep in node_reports(links.nodes, self.check_links, links.a, links.b, obs.node_counts,
                                        obs.node_claims, float(obs.slot), conf):  # fmt: skip
                    self.voting.report(rep)
            self.voting.end_epoch()  # fail-closed: an unsafe candidate vector is refused there
            suspect = self.voting.losses >= self.suspect_loss
        paths = self.ctx.paths
        has = paths.links >= 0
        lk = np.where(has, paths.links, 0)
        path_ok = np.where(has, usable[lk], True).all(axis=2) & paths.valid
        inner = paths.inner
        hi = np.where(inner >= 0, inner, 0)
        path_clean = ~np.where(inner >= 0, suspect[hi], False).any(axis=2)
        score = np.where(path_ok & path_clean, 0.0, np.where(path_ok, 1.0, 2.0)) * 1e9 + paths.length_km
        route = np.argmin(np.where(paths.valid, score, np.inf), axis=1)
        return usable, route, suspect

    def _agree(self, slot: int) -> bool:
        """One weighted-PBFT instance ordering this epoch's decision (usable links, routes, relay commit)
        as one batch, as PBFT batches requests."""
        n = self.ctx.links.n_nodes
        self.instances += 1
        if n < 4:
            self.committed += 1
            return True
        weighted = n <= MAX_PBFT_NODES and self.weighting == "abft"
        if n > MAX_PBFT_NODES:
            # The committee comes from the commit–reveal beacon over the previous decision
            # (:mod:`qverify.consensus.beacon`), not from the public (slot, epoch). The chain runs
            # alongside the instances: its commitments are not carried in the simulated batch.
            if self.beacon is None:
                self.beacon = BeaconChain(
                    n, MAX_PBFT_NODES, b"qverify control plane", np.random.default_rng(self.beacon_key)
                )
            members = [int(i) for i in self.beacon.committee()]
            self.beacon.advance()
            weights, f = (1,) * n, tolerated(MAX_PBFT_NODES)
        else:
            members = list(range(n))
            weights = self.adopted.weights if weighted else (1,) * n
            f = self.f
        m = len(members)
        # The leader rotates with the epoch (replica r is member (r + epoch) mod m), so Byzantine
        # nodes lead some instances: an equivocating leader is the attack that can break agreement.
        shift = self.epoch % m
        order = [members[(r + shift) % m] for r in range(m)]
        previous = None
        if weighted and self.replaced is not None:
            previous = WeightVector(0, tuple(self.replaced.weights[i] for i in order), f)
        schedule = Schedule((WeightVector(0, tuple(weights[i] for i in order), f),), previous=previous)
        faulty = self.ctx.faulty
        byz: dict[int, Behaviour] = {}
        if faulty is not None and slot >= self.ctx.faulty_from_slot:
            byz = {r: Behaviour(equivocate=True, amnesia_at=AMNESIA_AT) for r, i in enumerate(order) if bool(faulty[i])}
        self.faulty_replicas = max(self.faulty_replicas, len(byz))
        tag = f"e{self.epoch}"
        # The batch carries the next weight vector (the scores' candidate): it is adopted only if
        # this instance commits it.
        candidate = self.voting.weights()
        honest = (
            f"{tag}:usable+routes+relay-commit+weights={digest(('weights', tuple(int(w) for w in candidate.weights)))}"
        )
        reqs = [(0.0, honest)]
        if byz:
            # Every node submits the decision it computed; the Byzantine ones submit a forged one,
            # which an equivocating leader can pre-prepare to half of the replicas at the same
            # sequence number as the honest one.
            reqs.append((0.0, f"{tag}:forged"))
        net = NetConfig(0.5, 1.5, timeout=20.0)
        res = simulate(schedule, reqs, byz, net, seed=slot, until=2_000.0, signatures=self.signatures)
        self.violations += agreement_violations(res)
        if honest in res.decide_time:
            self.committed += 1
            self.latency.append(res.decide_time[honest])
            return True
        return False

    def _adopt(self, candidate: WeightVector) -> None:
        """A committed instance carried ``candidate``: the replicas vote under it from now on, and
        under the vector it replaces as well until an instance commits under the new one."""
        changed = candidate.weights != self.adopted.weights
        self.replaced = self.adopted if changed else None
        self.adopted = candidate
        self.weight_changes += changed

    # ---- policy interface ---------------------------------------------------------------------
    def node_weights(self) -> np.ndarray:
        """(N,) the current weight vector (what the agent's observation shows)."""
        return np.asarray(self.adopted.weights, dtype=float)

    def decide(self, obs: Observation) -> Decision:
        if obs.slot > 0:
            self.epoch += 1
            usable, route, suspect = self._decide(np.asarray(obs.reported_qber, dtype=float), obs)
            if self._agree(obs.slot):
                self.usable, self.route, self.suspect = usable, route, suspect
                self._adopt(self.voting.weights())
            self.weights_history.append(self.adopted.weights)
            self.extras = {
                "control_violations": self.violations,
                "control_f": self.f,
                "control_faulty": self.faulty_replicas,
                "control_instances": self.instances,
                "control_committed": self.committed,
                "control_weight_changes": self.weight_changes,
                "control_signatures": self.signatures,
                "control_rounds_mean": float(np.mean(self.latency)) if self.latency else 0.0,
                **self.committee_extras,
            }
        return Decision(self.usable, self.ctx.nominal_mu, self.ctx.links.is_mdi, self.route)


def equal_weight_pbft() -> ABFTPolicy:
    """The equal-weight PBFT baseline: agreement on decisions, but every report trusted."""
    return ABFTPolicy(weighting="equal", sanitise=False)


def make_policy(name: str) -> Any:
    """The control-plane policy called ``name``: ``baseline``, ``pbft_equal`` or ``abft``."""
    from qverify.network.policy import BaselinePolicy

    if name == "baseline":
        return BaselinePolicy()
    if name == "abft":
        return ABFTPolicy()
    if name == "pbft_equal":
        return equal_weight_pbft()
    raise ChoiceError("policy", name, ("baseline", "pbft_equal", "abft"))
