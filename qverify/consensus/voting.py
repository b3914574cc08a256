"""Fidelity-weighted voting with the BFT safety invariant enforced: the public API.

>>> from qverify.consensus import FidelityWeightedVoting
>>> nodes = ["alice", "bob", "carol", "dave", "eve"]
>>> v = FidelityWeightedVoting(nodes, f=1)
>>> v.report_link("alice", "bob", 0.012, 0.013)          # QBER each endpoint measured
>>> v.report_link("carol", "eve", 0.09, 0.10)            # a noisy link
>>> v.weights().weights, v.quorum().quorum               # epoch 0: equal weights
((1, 1, 1, 1, 1), 4)
>>> change = v.end_epoch()                               # adopt the new vector (it passes the invariant)
>>> change.adopted, v.weights().weights, v.quorum().quorum
(True, (2, 2, 1, 1, 1), 5)
>>> for node in ["alice", "bob", "carol"]:
...     cert = v.cast(v.sign(node, instance=7, value="route-A"))
>>> cert.value, cert.weight, cert.kind
('route-A', 5, 'quorum')

Votes carry Ed25519 signatures (RFC 8032, through the ``cryptography`` package). Each node's key
pair is generated afresh for every voting instance unless the caller supplies private keys
(``keys``) or only public keys (``public_keys``: verify-only, votes signed elsewhere); no key is
derivable from a node's name. Forged, duplicate, stale-epoch and non-member votes are rejected
with the reason; two conflicting votes of one node are kept as proof of misbehaviour, the only
ground on which a node is removed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from qverify.consensus.committee import tolerated
from qverify.consensus.weights import (
    ABORT_QBER,
    Quorum,
    UnsafeWeightsError,
    WeightVector,
    check_losses,
    check_weights,
    link_errors,
    node_losses,
    project_box,
    project_wheat,
    update_scores,
    with_hysteresis,
)
from qverify.errors import ChoiceError, ParameterError, QverifyError

Mode = Literal["wheat", "box"]


class VoteRejected(QverifyError):
    """A vote was not counted; ``reason`` says why (forged, duplicate, stale-epoch, …)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"vote rejected ({reason}): {detail}")


@dataclass(frozen=True)
class Vote:
    """A signed vote of ``node`` for ``value`` in consensus instance ``instance`` of ``epoch``."""

    node: str
    epoch: int
    instance: int
    value: str
    signature: bytes

    def payload(self) -> bytes:
        return f"{self.node}|{self.epoch}|{self.instance}|{self.value}".encode()


@dataclass(frozen=True)
class Certificate:
    """Votes for one value whose weight reaches a threshold.

    ``kind`` is ``"quorum"`` (weight ≥ Q = W − T_f: a decision) or ``"weak"`` (weight ≥ T_f + 1:
    at least one correct node voted for it, PBFT's f + 1).
    """

    epoch: int
    instance: int
    value: str
    voters: tuple[str, ...]
    weight: int
    threshold: int
    kind: str


@dataclass(frozen=True)
class EpochChange:
    """What :meth:`FidelityWeightedVoting.end_epoch` did.

    Attributes:
        epoch: the epoch now in force.
        adopted: whether the new weight vector was adopted.
        weights: the weights now in force.
        alert: why a candidate vector was refused (fail closed), else ``None``.
    """

    epoch: int
    adopted: bool
    weights: tuple[int, ...]
    alert: str | None = None


@dataclass
class FidelityWeightedVoting:
    """Fidelity-weighted voting for ``nodes`` tolerating ``f`` Byzantine nodes.

    Args:
        nodes: node names; ``len(nodes) ≥ 3f + 1``.
        f: Byzantine nodes tolerated.
        mode: ``"wheat"`` (2f best get ``f + Δ``, others ``f``) or ``"box"`` (weights in
            ``[vmin, vmax]`` linear in score, ``vmax/vmin < (n − f)/(2f)``).
        alpha: the paper's damping α in [0, 1).
        floor: lowest log-score (< 0); weights never reach 0.
        hysteresis: log-score margin a node must gain over a heavier one before they swap.
        decay: per-epoch forgetting λ of old scores in [0, 1) (see :func:`update_scores`), so a node
            demoted by a transient fade recovers: its gap halves every ≈ 6.6 clean epochs at 0.1.
        abort_qber: QBER normalising the losses (11 %).
        keys: per-node Ed25519 private keys (``cryptography``'s ``Ed25519PrivateKey``); fresh random
            keys per instance if omitted.
        public_keys: per-node Ed25519 public keys (``Ed25519PublicKey`` or 32 raw bytes) for a
            verify-only instance; :meth:`sign` then needs the node's private key elsewhere.
    """

    nodes: Sequence[str]
    f: int
    mode: Mode = "wheat"
    alpha: float = 0.5
    floor: float = -5.0
    hysteresis: float = 0.05
    decay: float = 0.1
    abort_qber: float = ABORT_QBER
    keys: Mapping[str, Any] | None = None
    public_keys: Mapping[str, Any] | None = None
    _epoch: int = field(default=0, init=False)
    _vectors: dict[int, WeightVector] = field(default_factory=dict, init=False)
    _scores: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False)
    _reports: dict[tuple[int, int], dict[int, float]] = field(default_factory=dict, init=False)
    _checks: dict[int, dict[int, float]] = field(default_factory=dict, init=False)
    _losses: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False)
    _votes: dict[tuple[int, int], dict[str, Vote]] = field(default_factory=lambda: defaultdict(dict), init=False)
    _certs: dict[tuple[int, int], Certificate] = field(default_factory=dict, init=False)
    evidence: list[tuple[Vote, Vote]] = field(default_factory=list, init=False)
    alerts: list[str] = field(default_factory=list, init=False)
    _excluded: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.nodes = tuple(self.nodes)
        if len(set(self.nodes)) != len(self.nodes):
            raise ParameterError("nodes", list(self.nodes), "distinct names")
        n = len(self.nodes)
        if self.mode not in ("wheat", "box"):
            raise ChoiceError("mode", self.mode, ("wheat", "box"))
        if not 0 <= self.f or 3 * self.f + 1 > n:
            raise ParameterError("f", self.f, f"[0, {tolerated(n)}] for n = {n} nodes (equal weights need n ≥ 3f + 1)")
        if not 0 <= self.alpha < 1:
            raise ParameterError("alpha", self.alpha, "[0, 1)")
        if self.floor >= 0:
            raise ParameterError("floor", self.floor, "(-inf, 0)")
        if not 0 <= self.decay < 1:
            raise ParameterError("decay", self.decay, "[0, 1)")
        self._index = {name: i for i, name in enumerate(self.nodes)}
        self._signers, self._verifiers = _key_pairs(self.nodes, self.keys, self.public_keys)
        self._scores = np.zeros(n)
        # Epoch 0: equal weights (plain PBFT: W = n, Q = n − f).
        self._vectors[0] = WeightVector(0, (1,) * n, self.f)

    # ---- reports and epochs --------------------------------------------------------------
    def _node(self, name: str) -> int:
        if name not in self._index:
            raise VoteRejected("non-member", f"unknown node {name!r}; members are {', '.join(self.nodes)}")
        return self._index[name]

    def report_link(self, a: str, b: str, qber_by_a: float | None, qber_by_b: float | None) -> None:
        """Record the QBER each endpoint of link a–b reports (``None``: no report) for this epoch."""
        i, j = self._node(a), self._node(b)
        if i == j:
            raise ParameterError("link", (a, b), "two distinct nodes")
        by: dict[int, float] = {}
        for idx, q in ((i, qber_by_a), (j, qber_by_b)):
            if q is not None:
                if not 0 <= q <= 0.5:
                    raise ParameterError("qber", q, "[0, 0.5]")
                by[idx] = float(q)
        self._reports[(min(i, j), max(i, j))] = by

    def report(self, fidelity_report: Any) -> None:
        """Record a :class:`~qverify.verify.report.FidelityReport` (or anything with its attributes).

        A link report (``kind == "link"``: ``link``, ``reporter``, ``qber``, optional ``qber_upper``)
        counts like :meth:`report_link` with its conservative statistic ``qber_upper`` where the
        report carries one (not ``None``; :func:`qverify.network.measure.link_reports` fills it with
        the Clopper–Pearson upper bound of the claim over the epoch's test rounds), else ``qber``.
        A node report (``kind == "node"``: ``subject`` the checked node, ``reporter`` the partner
        that verified it, ``qber`` its QBER-equivalent, optional ``qber_upper``) enters the node's
        *check loss*, the trimmed upper median of its partners' reports (as for links), by its
        ``qber_upper`` where it carries one (:func:`qverify.network.node_checks.node_reports` fills it
        with the QBER-equivalent of the pass fraction's lower confidence bound), else ``qber``;
        a node's loss is the larger of its link loss and its check loss.
        """
        upper = getattr(fidelity_report, "qber_upper", None)
        field_name = "qber" if upper is None else "qber_upper"
        q = float(fidelity_report.qber if upper is None else upper)
        if not 0 <= q <= 0.5:
            raise ParameterError(field_name, q, "[0, 0.5]")
        if getattr(fidelity_report, "kind", "link") == "node":
            i, r = self._node(fidelity_report.subject), self._node(str(fidelity_report.reporter))
            if i == r:
                raise ParameterError(
                    "reporter",
                    fidelity_report.reporter,
                    f"a check partner of {fidelity_report.subject}, not the node itself",
                )
            self._checks.setdefault(i, {})[r] = q
            return
        a, b = fidelity_report.link
        i, j = self._node(a), self._node(b)
        reporter = self._node(fidelity_report.reporter)
        if reporter not in (i, j):
            raise ParameterError("reporter", fidelity_report.reporter, f"an endpoint of link {a}–{b}")
        self._reports.setdefault((min(i, j), max(i, j)), {})[reporter] = q

    def _project(self, scores: np.ndarray, old: WeightVector) -> list[int]:
        adjusted = with_hysteresis(np.asarray(scores, dtype=float), np.array(old.weights, dtype=float), self.hysteresis)
        if self.mode == "wheat":
            return project_wheat(adjusted, self.f)
        return project_box(adjusted, self.f)

    def end_epoch(self) -> EpochChange:
        """Fold this epoch's reports into scores and adopt a new weight vector if it is safe.

        A link's error is the worse of its endpoints' statistics (:func:`link_errors`): for a
        :class:`~qverify.verify.report.FidelityReport` that carries ``qber_upper`` (the network's
        link reports), that conservative bound, so an epoch with fewer test rounds yields larger
        errors and lower scores; otherwise the value reported (``qber``, or :meth:`report_link`'s
        argument as given). Node-check reports likewise, by their ``qber_upper`` where they carry one. The network
        model's :func:`~qverify.network.model.weight_rule` is this arithmetic in WHEAT mode.
        """
        n = len(self.nodes)
        errors = link_errors(self._reports)
        losses = np.maximum(node_losses(errors, n, self.f, self.abort_qber), self._check_losses())
        self._losses = losses
        self._checks = {}
        self._scores = update_scores(self._scores, losses, self.alpha, self.floor, self.decay)
        self._reports = {}
        old = self._vectors[self._epoch]
        try:
            candidate = self._project(self._scores, old)
            check_weights(candidate, self.f)
        except (UnsafeWeightsError, ParameterError) as exc:
            self.alerts.append(str(exc))
            self._epoch += 1
            self._vectors[self._epoch] = WeightVector(self._epoch, old.weights, self.f)
            return EpochChange(self._epoch, False, old.weights, str(exc))
        self._epoch += 1
        self._vectors[self._epoch] = WeightVector(self._epoch, tuple(candidate), self.f)
        return EpochChange(self._epoch, True, tuple(candidate))

    def _check_losses(self) -> np.ndarray:
        """(N,) check loss per node from this epoch's node reports (0 for a node nobody checked)."""
        n = len(self.nodes)
        width = max((len(r) for r in self._checks.values()), default=0)
        if not width:
            return np.zeros(n)
        values = np.full((n, width), np.inf)
        for i, by in self._checks.items():
            values[i, : len(by)] = list(by.values())
        return np.asarray(check_losses(values, self.f, self.abort_qber))

    def propose_weights(self, weights: Sequence[int]) -> EpochChange:
        """Adopt an externally computed vector at the next epoch, only if it is safe (else alert)."""
        old = self._vectors[self._epoch]
        self._epoch += 1
        try:
            vec = WeightVector(self._epoch, tuple(weights), self.f)
        except (UnsafeWeightsError, ParameterError, ValueError, TypeError) as exc:
            self.alerts.append(str(exc))
            self._vectors[self._epoch] = WeightVector(self._epoch, old.weights, self.f)
            return EpochChange(self._epoch, False, old.weights, str(exc))
        self._vectors[self._epoch] = vec
        return EpochChange(self._epoch, True, vec.weights)

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def losses(self) -> np.ndarray:
        """(N,) each node's loss in the last :meth:`end_epoch` (link and check losses combined; empty before)."""
        return self._losses.copy()

    @property
    def scores(self) -> np.ndarray:
        """Log-scores (0 = best), one per node."""
        return self._scores.copy()

    def weights(self, epoch: int | None = None) -> WeightVector:
        """The weight vector of ``epoch`` (default: current)."""
        e = self._epoch if epoch is None else epoch
        if e not in self._vectors:
            raise ParameterError("epoch", e, f"[0, {self._epoch}]")
        return self._vectors[e]

    def quorum(self, epoch: int | None = None) -> Quorum:
        """Quorum sizes of ``epoch`` (default: current)."""
        return self.weights(epoch).quorum

    # ---- votes ---------------------------------------------------------------------------
    def sign(self, node: str, instance: int, value: str, epoch: int | None = None) -> Vote:
        """A vote signed with ``node``'s key (what a node's own signing code would produce)."""
        self._node(node)
        e = self._epoch if epoch is None else epoch
        signer = self._signers.get(node)
        if signer is None:
            raise ParameterError("keys", node, "a private key for this node (this instance only verifies)")
        unsigned = Vote(node, e, instance, value, b"")
        return Vote(node, e, instance, value, signer.sign(unsigned.payload()))

    def cast(self, vote: Vote) -> Certificate | None:
        """Count ``vote``; return the best certificate of its instance, or ``None`` if none yet.

        Raises :class:`VoteRejected` with reason ``non-member``, ``forged``, ``stale-epoch``,
        ``future-epoch``, ``duplicate``, ``equivocation`` or ``excluded``; a rejected vote changes nothing
        (except that an equivocation is kept in :attr:`evidence`).
        """
        self._node(vote.node)
        if vote.node in self._excluded:
            raise VoteRejected("excluded", f"{vote.node!r} was excluded on proof of misbehaviour")
        from cryptography.exceptions import InvalidSignature

        try:
            self._verifiers[vote.node].verify(vote.signature, vote.payload())
        except (InvalidSignature, TypeError, ValueError):
            raise VoteRejected("forged", f"signature of {vote.node!r} does not verify") from None
        if vote.epoch < self._epoch:
            raise VoteRejected("stale-epoch", f"vote for epoch {vote.epoch}; current epoch is {self._epoch}")
        if vote.epoch > self._epoch:
            raise VoteRejected("future-epoch", f"vote for epoch {vote.epoch}; current epoch is {self._epoch}")
        box = self._votes[(vote.epoch, vote.instance)]
        prior = box.get(vote.node)
        if prior is not None:
            if prior.value == vote.value:
                raise VoteRejected("duplicate", f"{vote.node!r} already voted in instance {vote.instance}")
            self.evidence.append((prior, vote))
            raise VoteRejected(
                "equivocation",
                f"{vote.node!r} voted {prior.value!r} and {vote.value!r} in instance {vote.instance}",
            )
        box[vote.node] = vote
        return self._certificate(vote.epoch, vote.instance)

    def _certificate(self, epoch: int, instance: int) -> Certificate | None:
        vec = self._vectors[epoch]
        q = vec.quorum
        by_value: dict[str, list[str]] = defaultdict(list)
        for v in self._votes[(epoch, instance)].values():
            by_value[v.value].append(v.node)
        best: Certificate | None = None
        for value, voters in sorted(by_value.items()):
            weight = vec.weight_of(self._index[x] for x in voters)
            for kind, threshold in (("quorum", q.quorum), ("weak", q.weak)):
                if weight >= threshold:
                    cert = Certificate(epoch, instance, value, tuple(sorted(voters)), weight, threshold, kind)
                    if (
                        best is None
                        or (kind == "quorum" and best.kind != "quorum")
                        or (kind == best.kind and weight > best.weight)
                    ):
                        best = cert
                    break
        if best is not None and best.kind == "quorum":
            self._certs[(epoch, instance)] = best
        return best

    def decision(self, instance: int, epoch: int | None = None) -> Certificate | None:
        """The quorum certificate of ``instance``, if one was formed."""
        return self._certs.get((self._epoch if epoch is None else epoch, instance))

    def remove_node(self, node: str) -> EpochChange:
        """Exclude ``node``, only on proof (two conflicting signed votes); never because of noise.

        Its later votes are rejected (reason ``excluded``) and its score drops to the floor, so from
        the next epoch it holds the minimum weight; W still counts it, which only makes quorums
        harder for the faulty side.
        """
        self._node(node)
        proof = [p for p in self.evidence if p[0].node == node]
        if not proof:
            raise QverifyError(f"node {node!r} can only be removed on proof of misbehaviour; none recorded")
        self._excluded.add(node)
        self.alerts.append(f"{node!r} excluded: voted {proof[0][0].value!r} and {proof[0][1].value!r}")
        self._scores[self._index[node]] = self.floor
        return self.end_epoch()


def _key_pairs(
    nodes: Sequence[str], keys: Mapping[str, Any] | None, public_keys: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Signers and verifiers per node: given private keys, given public keys, or fresh key pairs."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    if keys is not None and public_keys is not None:
        raise ParameterError("keys", "both keys and public_keys", "one of them (or neither)")
    signers: dict[str, Any] = {}
    verifiers: dict[str, Any] = {}
    for name in nodes:
        if public_keys is not None:
            pk = public_keys.get(name)
            if isinstance(pk, bytes | bytearray) and len(pk) == 32:
                pk = Ed25519PublicKey.from_public_bytes(bytes(pk))
            if not isinstance(pk, Ed25519PublicKey):
                raise ParameterError(f"public_keys[{name!r}]", type(pk).__name__, "an Ed25519 public key or 32 bytes")
            verifiers[name] = pk
            continue
        sk = Ed25519PrivateKey.generate() if keys is None else keys.get(name)
        if not isinstance(sk, Ed25519PrivateKey):
            raise ParameterError(f"keys[{name!r}]", type(sk).__name__, "an Ed25519PrivateKey (cryptography)")
        signers[name] = sk
        verifiers[name] = sk.public_key()
    return signers, verifiers
