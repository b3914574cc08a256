"""Byzantine replicas as subclasses of the honest :class:`~qverify.consensus.node.Node`.

Each attack overrides the node's documented hooks — :meth:`Node.propose` (what a leader
pre-prepares), :meth:`Node._vote` (where a prepare or commit goes), :meth:`Node._equivocating_voter`
(whether it votes for every value it sees) — or wraps :meth:`Node.deliver`. Deviations on the wire
(silence, extra delay, duplicates, from a start time) are applied by the event loop to whatever a
Byzantine node sends (:class:`~qverify.consensus.netmodel.Behaviour`). A new attack is a new
subclass here or in a file of its own, chosen by :func:`node_for` or built directly.

Colluding replicas share a :class:`Collusion`: who they are, and how an equivocating leader split
each (view, sequence number) over the correct replicas, so that each half receives only the votes
for the value it was given (the attack that can fork once the colluders exceed T_f).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qverify.consensus.netmodel import Behaviour, Msg
from qverify.consensus.node import Context, Effect, Node
from qverify.consensus.replica import Replica


@dataclass
class Collusion:
    """What colluding Byzantine replicas share: their slots, and each equivocation's split
    ((view, seq) → correct slot → the value it was pre-prepared)."""

    slots: frozenset[int]
    split: dict[tuple[int, int], dict[int, str]] = field(default_factory=dict)


class EquivocatingNode(Node):
    """From ``active_from`` on: as leader, pre-prepares two requests at one sequence number to the
    two halves of the correct replicas (both to its colluders); as voter, votes for every value it
    sees and sends each half only the votes for its value."""

    def __init__(self, ctx: Context, slot: int, collusion: Collusion, active_from: float = 0.0) -> None:
        super().__init__(ctx, slot)
        self.collusion = collusion
        self.active_from = active_from

    def _equivocating_voter(self) -> bool:
        return self.now >= self.active_from

    def propose(self, value: str) -> None:
        if not self._equivocating_voter():
            super().propose(value)
            return
        r = self.r
        if (r.view, value) in r.proposed or r.next_seq > r.stable + self.s.window:
            return
        others = sorted(v for v in r.pending if v != value and (r.view, v) not in r.proposed)
        if not others:
            return  # it waits until it holds two requests to split
        alt = others[0]
        r.proposed.update({(r.view, value), (r.view, alt)})
        seq = r.next_seq
        r.next_seq += 1
        split = self.collusion.split.setdefault((r.view, seq), {})
        for d in self.all_slots:
            if d not in self.collusion.slots:
                split[d] = value if d % 2 == 0 else alt
        colluders = [d for d in self.all_slots if d in self.collusion.slots]
        for v in (value, alt):
            self.send_to(colluders + [d for d, x in split.items() if x == v], Msg("pre-prepare", r.idx, r.view, seq, v))

    def _vote(self, m: Msg) -> None:
        split = self.collusion.split.get((m.view, m.seq)) if self._equivocating_voter() else None
        if split is None:
            super()._vote(m)
            return
        self.send_to([d for d in self.all_slots if d in self.collusion.slots or split.get(d, m.value) == m.value], m)


class AmnesiaNode(EquivocatingNode):
    """At ``amnesia_at`` it forgets its log (keeping only its view); it equivocates from
    ``active_from`` (by default from the moment it forgets)."""

    def __init__(
        self, ctx: Context, slot: int, collusion: Collusion, amnesia_at: float, active_from: float | None = None
    ) -> None:
        super().__init__(ctx, slot, collusion, active_from=amnesia_at if active_from is None else active_from)
        self.amnesia_at = amnesia_at
        self.forgotten = False

    def deliver(self, m: Msg, now: float) -> list[Effect]:
        if not self.forgotten and now >= self.amnesia_at:
            self.forgotten = True
            self.r = Replica(self.r.idx, slot=self.r.slot, view=self.r.view)
        return super().deliver(m, now)


def node_for(ctx: Context, slot: int, behaviour: Behaviour | None, collusion: Collusion) -> Node:
    """The node a slot runs: honest, or the subclass its behaviour asks for."""
    if behaviour is not None and behaviour.amnesia_at is not None:
        start = behaviour.active_from if behaviour.equivocate else max(behaviour.amnesia_at, behaviour.active_from)
        return AmnesiaNode(ctx, slot, collusion, behaviour.amnesia_at, start)
    if behaviour is not None and behaviour.equivocate:
        return EquivocatingNode(ctx, slot, collusion, behaviour.active_from)
    return Node(ctx, slot)
