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
from typing import Any

import numpy as np

from qverify.consensus.netmodel import Behaviour, Msg
from qverify.consensus.node import Context, Effect, Node, Send, Timer
from qverify.consensus.replica import NULL, Replica


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


class SlowLeaderNode(Node):
    """A leader that stays just inside what the view-change timer tolerates (Aardvark's performance
    attacks, Clement et al., NSDI 2009, §2), from ``active_from`` on:

    * ``pace`` > 0: proposes at most one request per ``pace`` time units (oldest pending first;
      the first at once);
    * ``churn`` > 0: proposes no new request; every ``churn`` units it re-proposes one it already
      executed, which every replica executes as the no-op (null churn);
    * ``censor``: never proposes these requests (it serves every other one at once).

    As a voter it is honest. Its clock is a ``"pace"`` timer it sets itself.
    """

    def __init__(
        self,
        ctx: Context,
        slot: int,
        pace: float = 0.0,
        churn: float = 0.0,
        censor: frozenset[str] = frozenset(),
        active_from: float = 0.0,
    ) -> None:
        super().__init__(ctx, slot)
        self.pace, self.churn, self.censor, self.active_from = pace, churn, censor, active_from
        # Its clock ticks every churn units, or eight times per pace (so proposals are pace apart,
        # give or take an eighth).
        self.period = churn or pace / 8
        self._armed = False
        self.last = -float("inf")  # time of its last paced proposal

    def _active(self) -> bool:
        return self.now >= self.active_from

    def _arm_pace(self) -> None:
        if self.period > 0 and not self._armed:
            self._armed = True
            self.out.append(Timer(self.now + self.period, 0, "pace"))

    def deliver(self, m: Msg, now: float) -> list[Effect]:
        self.now = now
        self._arm_pace()
        return super().deliver(m, now)

    def request(self, value: str, now: float) -> list[Effect]:
        self.now = now
        self._arm_pace()
        return super().request(value, now)

    def timer(self, kind: str, token: int, now: float) -> list[Effect]:
        if kind != "pace":
            return super().timer(kind, token, now)
        self.now = now
        self._armed = False
        self._arm_pace()
        r = self.r
        if self.leader(r.view) == r.idx and not r.in_view_change and self._active():
            if self.churn:
                done = [v for v in r.executed.values() if v != NULL]
                if done and r.next_seq <= r.stable + self.s.window:
                    seq, r.next_seq = r.next_seq, r.next_seq + 1
                    self.broadcast(Msg("pre-prepare", r.idx, r.view, seq, done[seq % len(done)]))
            elif now - self.last >= self.pace:
                self._pace_one()
        return self._flush()

    def _pace_one(self) -> None:
        """Propose the oldest pending request not yet proposed in this view."""
        r = self.r
        executed = set(r.executed.values())
        for value in sorted(r.pending, key=r.pending.__getitem__):
            if value not in executed and (r.view, value) not in r.proposed and value not in self.censor:
                self._paced(value)
                return

    def _paced(self, value: str) -> None:
        before = self.r.next_seq
        super().propose(value)
        if self.r.next_seq != before:
            self.last = self.now

    def propose(self, value: str) -> None:
        if not self._active():
            super().propose(value)
        elif value in self.censor or self.churn:
            return  # censored, or no new request at all
        elif self.pace and self.now - self.last < self.pace:
            return  # held back for the pace timer
        elif self.pace:
            self._pace_one()  # oldest first, so each proposal is the one the timers wait for
        else:
            super().propose(value)


class FloodNode(Node):
    """Honest in the protocol, but answers every message another replica sends it with ``flood`` junk messages
    to every replica (the unbounded-buffer attack): prepares and commits above the watermarks and
    inside them for values nobody proposed, checkpoints with random digests, ViewChanges for far
    views, early pre-prepares of later views, and malformed messages (unknown kinds, fields of the
    wrong type, payloads nothing can encode). The loop signs what it can as this node's own.
    ``rng`` draws the junk (explicit, so a run replays). At most one burst every ``BURST_GAP``
    time units (ten per nominal message delay)."""

    BURST_GAP = 0.1

    def __init__(
        self, ctx: Context, slot: int, flood: int, rng: np.random.Generator, colluders: frozenset[int] = frozenset()
    ) -> None:
        super().__init__(ctx, slot)
        self.colluders = colluders | {ctx.ident[slot]}
        self.flood, self.rng = flood, rng
        self.sent_junk = 0
        self.next_burst = 0.0

    def _junk(self) -> Msg:
        r, rng = self.r, self.rng
        kind = int(rng.integers(7))
        seq = r.stable + int(rng.integers(1, 10 * self.s.window))
        value = f"junk{int(rng.integers(1 << 30))}"
        if kind == 0:
            return Msg("prepare", r.idx, r.view, seq, value)
        if kind == 1:
            return Msg("commit", r.idx, r.view, r.stable + int(rng.integers(1, self.s.window + 1)), value)
        if kind == 2:
            return Msg("checkpoint", r.idx, seq=seq, value=value)
        if kind == 3:
            return Msg("view-change", r.idx, r.view + int(rng.integers(1, 1000)), payload=((), ()))
        if kind == 4:
            return Msg("pre-prepare", r.idx, r.view + int(rng.integers(1, 50)), seq, value)
        if kind == 5:
            return Msg(value, r.idx, seq=seq)  # a kind nobody handles
        # Malformed: unsigned kinds with fields of the wrong type or payloads no handler can take
        # apart, and a payload nothing can encode (it goes out unsigned).
        bad: Any = (object(), -1, "x", b"y", None, float("nan"), ((1, 2, 3),))[int(rng.integers(7))]
        pick = int(rng.integers(4))
        if pick == 0:
            return Msg("state", r.idx, seq=-seq, value=bad)
        if pick == 1:
            return Msg("state", r.idx, seq=seq, value=value, payload=bad)
        if pick == 2:
            return Msg("commit-cert", r.idx, r.view, seq, value, payload=bad)
        return Msg("prepare", r.idx, r.view, seq, value, payload=bad)

    def deliver(self, m: Msg, now: float) -> list[Effect]:
        out = super().deliver(m, now)
        if getattr(m, "sender", None) in self.colluders or now < self.next_burst:
            return out  # not to its own or a colluder's junk, which would feed on itself; one burst per BURST_GAP
        self.next_burst = now + self.BURST_GAP
        for _ in range(self.flood):
            out.append(Send(self.all_slots, self._junk()))
            self.sent_junk += len(self.all_slots)
        return out


def node_for(ctx: Context, slot: int, behaviour: Behaviour | None, collusion: Collusion) -> Node:
    """The node a slot runs: honest, or the subclass its behaviour asks for."""
    if behaviour is not None and behaviour.amnesia_at is not None:
        start = behaviour.active_from if behaviour.equivocate else max(behaviour.amnesia_at, behaviour.active_from)
        return AmnesiaNode(ctx, slot, collusion, behaviour.amnesia_at, start)
    if behaviour is not None and behaviour.flood:
        colluders = frozenset(ctx.ident[k] for k in collusion.slots)
        return FloodNode(ctx, slot, behaviour.flood, np.random.default_rng(slot), colluders)
    if behaviour is not None and (behaviour.pace or behaviour.churn or behaviour.censor):
        return SlowLeaderNode(ctx, slot, behaviour.pace, behaviour.churn, behaviour.censor, behaviour.active_from)
    if behaviour is not None and behaviour.equivocate:
        return EquivocatingNode(ctx, slot, collusion, behaviour.active_from)
    return Node(ctx, slot)
