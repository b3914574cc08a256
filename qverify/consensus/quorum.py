"""Quorum arithmetic of weighted PBFT across weight epochs, and the watermark window.

A set of replicas is a quorum for sequence number ``s`` when its weight reaches ``Q = W − T_f`` under
the weight vector of ``s``'s epoch (and the previous epoch's until the new one's first stable
checkpoint); any two such sets share weight > T_f, hence a correct replica
(:mod:`qverify.consensus.weights`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from qverify.consensus.weights import WeightVector
from qverify.errors import ParameterError


@dataclass(frozen=True)
class Schedule:
    """Weight vectors per epoch; epoch e covers sequence numbers ``e·epoch_len + 1 …``.

    The first ``checkpoint_interval`` sequence numbers of epoch e ≥ 1 need joint quorums under
    epochs e − 1 and e (until the epoch's first stable checkpoint); with ``previous`` set, those of
    epoch 0 need a quorum under ``previous`` too (the vector this schedule's first one replaces,
    when a weight change was itself decided by consensus). View changes need a quorum under every
    vector, ``previous`` included. A replica accepts pre-prepares only between its watermarks,
    ``(h, h + window]`` with h its last stable checkpoint (PBFT §4.3).
    """

    vectors: tuple[WeightVector, ...]
    epoch_len: int = 1_000_000
    checkpoint_interval: int = 10
    window: int = 40
    previous: WeightVector | None = None
    # seq → (fewest members any quorum has, ((weights, Q) per vector in force)): vote counting asks
    # for a quorum on every vote, so each sequence number's figures are worked out once.
    _plans: dict[int, tuple[int, tuple[tuple[tuple[int, ...], int], ...]]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not self.vectors:
            raise ParameterError("vectors", "()", "at least one weight vector")
        if self.checkpoint_interval < 1:
            raise ParameterError("checkpoint_interval", self.checkpoint_interval, "[1, inf)")
        if self.window < self.checkpoint_interval:
            raise ParameterError("window", self.window, f"[checkpoint_interval = {self.checkpoint_interval}, inf)")
        n = {len(v.weights) for v in self.all_vectors}
        if len(n) != 1:
            raise ParameterError("vectors", sorted(n), "weight vectors of one length (same nodes)")
        fs = {v.f for v in self.all_vectors}
        if len(fs) != 1:
            raise ParameterError("vectors", f"f = {sorted(fs)}", "weight vectors tolerating one f")
        if self.epoch_len % self.checkpoint_interval:
            raise ParameterError("epoch_len", self.epoch_len, "a multiple of checkpoint_interval")

    @property
    def n(self) -> int:
        return len(self.vectors[0].weights)

    @property
    def all_vectors(self) -> tuple[WeightVector, ...]:
        """``previous`` (if any) and every epoch's vector."""
        return self.vectors if self.previous is None else (self.previous, *self.vectors)

    def epoch_of(self, seq: int) -> int:
        return min((max(seq, 1) - 1) // self.epoch_len, len(self.vectors) - 1)

    def _key(self, seq: int) -> tuple[int, bool]:
        """``seq``'s epoch and whether it still needs the joint quorum of the previous epoch."""
        e = self.epoch_of(seq)
        return e, (e >= 1 or self.previous is not None) and seq <= e * self.epoch_len + self.checkpoint_interval

    def vectors_for(self, seq: int) -> list[WeightVector]:
        e, joint = self._key(seq)
        if not joint:
            return [self.vectors[e]]
        before = self.vectors[e - 1] if e >= 1 else self.previous
        assert before is not None
        return [before, self.vectors[e]]

    def _plan(self, seq: int) -> tuple[int, tuple[tuple[tuple[int, ...], int], ...]]:
        plan = self._plans.get(seq)
        if plan is None:
            vs = self.vectors_for(seq)
            plan = (max(v.min_size(v.quorum.quorum) for v in vs), tuple((v.weights, v.quorum.quorum) for v in vs))
            self._plans[seq] = plan
        return plan

    def min_quorum_size(self, seq: int) -> int:
        """The fewest replicas any quorum for ``seq`` has (fewer can never weigh a quorum)."""
        return self._plan(seq)[0]

    def is_quorum(self, nodes: Collection[int], seq: int) -> bool:
        """Whether ``nodes`` (distinct replica ids) weigh a quorum for ``seq``."""
        plan = self._plan(seq)
        if len(nodes) < plan[0]:
            return False
        for weights, q in plan[1]:
            if sum(weights[i] for i in nodes) < q:
                return False
        return True

    def is_view_quorum(self, nodes: set[int]) -> bool:
        return all(v.weight_of(nodes) >= v.quorum.quorum for v in self.all_vectors)

    def is_weak(self, nodes: set[int]) -> bool:
        """At least ``T_f + 1`` under every vector: the set contains a correct replica."""
        return all(v.weight_of(nodes) >= v.quorum.weak for v in self.all_vectors)
