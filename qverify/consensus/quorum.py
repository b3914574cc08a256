"""Quorum arithmetic of weighted PBFT across weight epochs, and the watermark window.

A set of replicas is a quorum for sequence number ``s`` when its weight reaches ``Q = W − T_f`` under
the weight vector of ``s``'s epoch (and the previous epoch's until the new one's first stable
checkpoint); any two such sets share weight > T_f, hence a correct replica
(:mod:`qverify.consensus.weights`).
"""

from __future__ import annotations

from dataclasses import dataclass

from qverify.consensus.weights import WeightVector
from qverify.errors import ParameterError


@dataclass(frozen=True)
class Schedule:
    """Weight vectors per epoch; epoch e covers sequence numbers ``e·epoch_len + 1 …``.

    The first ``checkpoint_interval`` sequence numbers of epoch e ≥ 1 need joint quorums under
    epochs e − 1 and e (until the epoch's first stable checkpoint). A replica accepts pre-prepares
    only between its watermarks, ``(h, h + window]`` with h its last stable checkpoint (PBFT §4.3).
    """

    vectors: tuple[WeightVector, ...]
    epoch_len: int = 1_000_000
    checkpoint_interval: int = 10
    window: int = 40

    def __post_init__(self) -> None:
        if not self.vectors:
            raise ParameterError("vectors", "()", "at least one weight vector")
        if self.checkpoint_interval < 1:
            raise ParameterError("checkpoint_interval", self.checkpoint_interval, "[1, inf)")
        if self.window < self.checkpoint_interval:
            raise ParameterError("window", self.window, f"[checkpoint_interval = {self.checkpoint_interval}, inf)")
        n = {len(v.weights) for v in self.vectors}
        if len(n) != 1:
            raise ParameterError("vectors", sorted(n), "weight vectors of one length (same nodes)")
        if self.epoch_len % self.checkpoint_interval:
            raise ParameterError("epoch_len", self.epoch_len, "a multiple of checkpoint_interval")

    @property
    def n(self) -> int:
        return len(self.vectors[0].weights)

    def epoch_of(self, seq: int) -> int:
        return min((max(seq, 1) - 1) // self.epoch_len, len(self.vectors) - 1)

    def vectors_for(self, seq: int) -> list[WeightVector]:
        e = self.epoch_of(seq)
        joint = e >= 1 and seq <= e * self.epoch_len + self.checkpoint_interval
        return [self.vectors[e - 1], self.vectors[e]] if joint else [self.vectors[e]]

    def is_quorum(self, nodes: set[int], seq: int) -> bool:
        return all(v.weight_of(nodes) >= v.quorum.quorum for v in self.vectors_for(seq))

    def is_view_quorum(self, nodes: set[int]) -> bool:
        return all(v.weight_of(nodes) >= v.quorum.quorum for v in self.vectors)

    def is_weak(self, nodes: set[int]) -> bool:
        """At least ``T_f + 1`` under every vector: the set contains a correct replica."""
        return all(v.weight_of(nodes) >= v.quorum.weak for v in self.vectors)
