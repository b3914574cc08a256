"""Message-level weighted PBFT (Castro–Liskov 1999) with epoch-tagged weight vectors.

A deterministic discrete-event simulation: every message gets a delay drawn from a seeded
``numpy.random.Generator``; drops and partitions come from the :class:`NetConfig`. Replicas run
pre-prepare / prepare / commit, checkpoints, and view change with NewView verification. Quorums are
*weighted*: a set of replicas is a quorum for sequence number ``s`` when its weight reaches
``Q = W − T_f`` under the weight vector of ``s``'s epoch, and also under the previous epoch's vector
until the new epoch's first stable checkpoint (joint quorums). View changes require a quorum under
every vector in the schedule, which all correct replicas evaluate identically.

Every protocol message carries its sender's Ed25519 signature (:mod:`qverify.consensus.signing`,
keys fresh per run or supplied): receivers drop a message whose signature does not verify against
the claimed sender's key. Certificates travel as the signed messages themselves — a prepared
certificate is the leader's pre-prepare and the prepares of a quorum, a checkpoint proof the
checkpoints of a quorum, a committed certificate the commits of a quorum — and every replica checks
each signature in them, so a Byzantine replica can replay what it received but cannot forge a
message of another, relabel one under another sender, or move one to another view. Client requests
are assumed signed by clients (a leader cannot invent one; modelled by the set of issued requests).

View change follows Castro–Liskov (OSDI 1999, §4.4): a replica adopts at most one NewView per
view; every ViewChange inside it must be for that view, listed under its own signer and really
sent; the new leader's pre-prepares must equal the ones every replica recomputes from that set;
and a NewView that would re-prepare an executed sequence number with another value is refused.
Execution is exactly-once (PBFT §4.1, client timestamps): a request that a replica has already
executed is executed again as a no-op, so a leader that assigns one request two sequence numbers
cannot make it take effect twice.

Catching up (Castro–Liskov §4.3; the status messages of Castro's thesis, §5.2): a replica accepts
pre-prepares only between its watermarks ``(h, h + window]``, h its last stable checkpoint, and
collects its log below h. A replica still waiting to execute a request broadcasts its status (last
executed sequence number) every ``status_interval``; a replica ahead of it answers with its stable
checkpoint's state when the sender is below it (adopted only if its digest is the one a quorum
certified) and with the committed certificate (the signed commits of a quorum) of every later
sequence number. A quorum of commits is a committed certificate by itself, so a replica that missed
the pre-prepare or the prepares, or voted in another view, still commits. ViewChanges carry the sender's stable checkpoint; the new view starts after the highest
*proven* one among them (PBFT's min-s).

Byzantine replicas follow a :class:`Behaviour`; :mod:`qverify.consensus.checker` judges the histories.
This module is the harness: the event loop, the network model's delays, drops and partitions,
signing what nodes send and verifying what they receive, timers, and statistics. The protocol is in
:mod:`qverify.consensus.node` (one replica's handlers, each returning the effects it causes),
Byzantine replicas in :mod:`qverify.consensus.adversaries` (subclasses of the node), the quorum
arithmetic in :mod:`qverify.consensus.quorum`, a replica's state in :mod:`qverify.consensus.replica`,
messages and the network model in :mod:`qverify.consensus.netmodel`, signatures in
:mod:`qverify.consensus.signing`, the checker in :mod:`qverify.consensus.checker`, searched and
randomised adversaries in :mod:`qverify.consensus.twins` and :mod:`qverify.consensus.fuzz`.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from qverify.consensus.adversaries import Collusion, node_for
from qverify.consensus.checker import History, check
from qverify.consensus.encoding import request_value
from qverify.consensus.netmodel import Behaviour, Msg, NetConfig, Partition
from qverify.consensus.node import Context, Effect, Executed, Node, Send, Timer
from qverify.consensus.quorum import Schedule
from qverify.consensus.replica import NULL, Replica, log_digest
from qverify.consensus.signing import SELF_AUTHENTICATING, Keyring
from qverify.errors import ParameterError

__all__ = [
    "NULL",
    "Behaviour",
    "Msg",
    "NetConfig",
    "Partition",
    "Replica",
    "RunResult",
    "Schedule",
    "Simulation",
    "agreement_violations",
    "log_digest",
    "simulate",
]


@dataclass(frozen=True)
class RunResult:
    """Outcome of :func:`simulate`.

    Attributes:
        executed: per replica, sequence number → executed value.
        decide_time: per request value, time at which the first correct replica executed it.
        messages: number of messages delivered.
        end_time: simulated time at the end.
        views: final view per replica.
    """

    executed: dict[int, dict[int, str]]
    decide_time: dict[str, float]
    messages: int
    end_time: float
    views: dict[int, int]
    byzantine: frozenset[int]


class Simulation:
    """The event loop of one weighted-PBFT run (the harness): the network model, signing and
    verification, timers, and one :class:`~qverify.consensus.node.Node` per slot whose effects it
    carries out. Use :func:`simulate`."""

    def __init__(
        self,
        schedule: Schedule,
        byzantine: dict[int, Behaviour],
        net: NetConfig,
        rng: np.random.Generator,
        twins: Sequence[int] = (),
        keys: Keyring | None = None,
        signatures: str = "ed25519",
        node_factory: Callable[[Context, int, Behaviour | None, Collusion], Node] = node_for,
    ) -> None:
        """``node_factory(ctx, slot, behaviour, collusion)`` builds each slot's node (default
        :func:`~qverify.consensus.adversaries.node_for`); a new attack passes its own."""
        self.s = schedule
        self.n = schedule.n
        for i in byzantine:
            if not (isinstance(i, int) and 0 <= i < self.n):
                raise ParameterError("byzantine", i, f"replica ids in [0, {self.n - 1}]")
        # Copies: the caller's objects stay as given.
        self.byz = {i: dataclasses.replace(b) for i, b in byzantine.items()}
        self.net = net
        self.rng = rng
        for t in twins:
            if not 0 <= t < self.n:
                raise ParameterError("twins", t, f"replica ids in [0, {self.n - 1}]")
            self.byz.setdefault(t, Behaviour())  # a twinned identity is Byzantine by construction
        # Slots 0..n−1 are the replicas; slot n + k is a second, honest-code copy of ``twins[k]``
        # with the same keys (Twins, Bano et al., 2022): it equivocates only through what it is told.
        self.ident = list(range(self.n)) + list(twins)
        self.queue: list[tuple[float, int, int, Msg]] = []
        self.counter = itertools.count()
        self.now = 0.0
        self.keys = keys if keys is not None else Keyring.generate(self.n, signatures)
        self.delivered = 0
        self.decide_time: dict[str, float] = {}
        # per correct slot, request → time it executed it (liveness is judged at every replica)
        self.executed_at: dict[int, dict[str, float]] = defaultdict(dict)
        self.timers: list[tuple[float, int, int, int, str]] = []  # (time, order, slot, token, kind)
        self.requests: set[str] = set()
        self.state_transfers = 0  # checkpoint states adopted (how often catching up needed one)
        ctx = Context(
            schedule, self.keys, self.requests, tuple(self.ident), net.timeout, net.status_interval, net.monitor
        )
        self.all_slots, self.slots_of = ctx.all_slots, ctx.slots_of
        self.collusion = Collusion(frozenset(k for k, i in enumerate(self.ident) if i in self.byz))
        # A twin runs the honest code: only the first slot of an identity gets its behaviour.
        self.nodes = [
            node_factory(ctx, k, self.byz.get(i) if k < self.n else None, self.collusion)
            for k, i in enumerate(self.ident)
        ]

    @property
    def replicas(self) -> list[Replica]:
        """Every slot's replica state (read it; the nodes own it)."""
        return [node.r for node in self.nodes]

    # ---- network -------------------------------------------------------------------------
    def leader(self, view: int) -> int:
        return view % self.n

    def _deviating(self, i: int) -> Behaviour | None:
        b = self.byz.get(i)
        return b if b is not None and self.now >= b.active_from else None

    def send(self, src: int, dst: int, msg: Msg) -> None:
        """Send from slot ``src`` to slot ``dst`` (slots are replica ids unless there are twins)."""
        self.send_many(src, (dst,), msg)

    def broadcast(self, src: int, msg: Msg) -> None:
        self.send_many(src, self.all_slots, msg)

    def sign(self, ident: int, msg: Msg) -> Msg:
        """``msg`` signed by identity ``ident`` (replicas sign only as themselves; tests that play a
        Byzantine replica by hand use this for its own messages)."""
        return self.keys.sign(ident, msg)

    def send_many(self, src: int, dsts: Sequence[int], msg: Msg) -> None:
        """Send one message from slot ``src`` to each of ``dsts``: signed once with the slot's
        identity key, and every copy draws its own drop and delay."""
        signer = self.ident[src]
        b = self._deviating(signer)
        if b is not None and b.silent:
            return
        if msg.sender != signer and not msg.sig:
            return  # it cannot sign as another replica: every receiver would reject it
        if not msg.sig and msg.kind not in SELF_AUTHENTICATING:
            try:
                msg = self.keys.sign(signer, msg)
            except (TypeError, ValueError, RecursionError):
                pass  # a faulty node's unencodable message goes out unsigned: receivers drop it
        # (an already signed message is forwarded as it is: a replay, which receivers judge)
        net, k = self.net, len(dsts)
        extra = b.extra_delay if b is not None else 0.0
        blocking = [p for p in net.partitions if p.start <= self.now < p.end]
        for _ in range(b.duplicate if b is not None else 1):
            # One draw per message and destination, taken as arrays: the per-message cost of the
            # loop is the heap push.
            lost = self.rng.random(k) < net.drop_prob if net.drop_prob else None
            delays = self.rng.uniform(net.delay_min, net.delay_max, k) + (self.now + extra)
            for j, dst in enumerate(dsts):
                if lost is not None and lost[j]:
                    continue
                if blocking and any(p.blocks(self.now, src, dst) for p in blocking):
                    continue
                at = self.now if src == dst else float(delays[j])
                heapq.heappush(self.queue, (at, next(self.counter), dst, msg))

    # ---- client --------------------------------------------------------------------------
    def request(self, value: str | bytes, at: float, slots: Sequence[int] | None = None) -> str:
        """The client sends ``value`` (str or arbitrary bytes, at most
        :data:`~qverify.consensus.encoding.MAX_REQUEST_BYTES`) at time ``at`` to ``slots`` (default:
        every replica); returns the string the replicas order it as
        (:func:`~qverify.consensus.encoding.request_value`)."""
        value = request_value(value)
        self.requests.add(value)
        for dst in self.all_slots if slots is None else slots:
            heapq.heappush(self.queue, (at, next(self.counter), dst, Msg("request", -1, value=value)))
        return value

    # ---- driving a node by hand (tests that play an adversary) ----------------------------
    def node_of(self, r: Replica) -> Node:
        return self.nodes[r.slot]

    def _drive(self, r: Replica, handler: Callable[[Node], None]) -> None:
        node = self.node_of(r)
        node.now = self.now
        handler(node)
        self._apply(r.slot, node._flush())

    def start_view_change(self, r: Replica, new_view: int) -> None:
        """Make the replica ``r`` ask for ``new_view`` now, as if its timer had expired."""
        self._drive(r, lambda node: node.start_view_change(new_view))

    def on_new_view(self, r: Replica, m: Msg) -> None:
        """Hand the replica ``r`` a NewView directly (its signature unchecked, as after the loop's check)."""
        self._drive(r, lambda node: node.on_new_view(m))

    def _proposals(self, vcs: dict[int, Msg]) -> tuple[tuple[int, str], ...]:
        """The pre-prepares every replica recomputes from a ViewChange set."""
        return self.nodes[0]._proposals(vcs)

    def _low(self, vcs: dict[int, Msg]) -> int:
        return self.nodes[0]._low(vcs)

    # ---- loop ----------------------------------------------------------------------------
    def _apply(self, slot: int, effects: list[Effect]) -> None:
        for e in effects:
            if isinstance(e, Send):
                self.send_many(slot, e.dsts, e.msg)
            elif isinstance(e, Timer):
                heapq.heappush(self.timers, (e.at, next(self.counter), slot, e.token, e.kind))
            elif isinstance(e, Executed):
                if self.ident[slot] not in self.byz:
                    self.decide_time.setdefault(e.value, self.now)
                    self.executed_at[slot].setdefault(e.value, self.now)
            else:
                self.state_transfers += 1

    def handle(self, dst: int, m: Msg) -> None:
        node = self.nodes[dst]
        if not isinstance(m, Msg) or not isinstance(m.kind, str):
            node.r.dropped["malformed"] += 1
            return
        if m.kind == "request":
            self._apply(dst, node.request(m.value, self.now))
        elif m.kind in SELF_AUTHENTICATING or self.keys.verify(m):
            self._apply(dst, node.deliver(m, self.now))
        else:
            node.r.dropped["unverified"] += 1  # not signed by its claimed sender

    def run(self, until: float, max_events: int = 2_000_000) -> None:
        events = 0
        while (self.queue or self.timers) and events < max_events:
            t_msg = self.queue[0][0] if self.queue else np.inf
            t_tim = self.timers[0][0] if self.timers else np.inf
            if min(t_msg, t_tim) > until:
                break
            if t_tim < t_msg:
                self.now, _, slot, token, kind = heapq.heappop(self.timers)
                self._apply(slot, self.nodes[slot].timer(kind, token, self.now))
            else:
                self.now, _, dst, m = heapq.heappop(self.queue)
                self.delivered += 1
                self.handle(dst, m)
            events += 1


def simulate(
    schedule: Schedule,
    requests: Sequence[tuple[float, str]],
    byzantine: dict[int, Behaviour] | None = None,
    net: NetConfig | None = None,
    seed: int = 0,
    until: float = 10_000.0,
    keys: Keyring | None = None,
    signatures: str = "ed25519",
) -> RunResult:
    """Run weighted PBFT on ``requests`` (time, value) and return what each replica executed.

    ``keys``: the replicas' keys (:class:`~qverify.consensus.signing.Keyring`); fresh random ones
    of the ``signatures`` scheme (``"ed25519"`` or ``"ideal"``) when omitted.

    >>> from qverify.consensus.weights import WeightVector
    >>> s = Schedule((WeightVector(0, (1, 1, 1, 1), f=1),))
    >>> res = simulate(s, [(0.0, "a"), (0.0, "b")])
    >>> sorted(res.executed[0].values()), agreement_violations(res)
    (['a', 'b'], 0)
    """
    sim = Simulation(
        schedule,
        dict(byzantine or {}),
        net or NetConfig(),
        np.random.default_rng(seed),
        keys=keys,
        signatures=signatures,
    )
    for t, value in requests:
        sim.request(value, t)
    sim.run(until)
    return RunResult(
        executed={r.idx: dict(r.executed) for r in sim.replicas[: sim.n]},
        decide_time=dict(sim.decide_time),
        messages=sim.delivered,
        end_time=sim.now,
        views={r.idx: r.view for r in sim.replicas[: sim.n]},
        byzantine=frozenset(sim.byz),
    )


def agreement_violations(result: RunResult) -> int:
    """Number of sequence numbers at which two correct replicas executed different values.

    The count of :func:`qverify.consensus.checker.check`, which also checks exactly-once,
    validity and log gaps.
    """
    return check(History(result.executed, result.byzantine, frozenset())).agreement
