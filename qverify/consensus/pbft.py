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
This module is the event loop and the replicas' message handlers; the quorum arithmetic is in
:mod:`qverify.consensus.quorum`, a replica's state in :mod:`qverify.consensus.replica`, messages and
the network model in :mod:`qverify.consensus.netmodel`, Twins-style adversaries in
:mod:`qverify.consensus.twins`.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qverify.consensus.checker import History, check
from qverify.consensus.netmodel import Behaviour, Msg, NetConfig, Partition
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
    """Event loop of one weighted-PBFT run; use :func:`simulate`."""

    def __init__(
        self,
        schedule: Schedule,
        byzantine: dict[int, Behaviour],
        net: NetConfig,
        rng: np.random.Generator,
        twins: Sequence[int] = (),
        keys: Keyring | None = None,
        signatures: str = "ed25519",
    ) -> None:
        self.s = schedule
        self.n = schedule.n
        # Copies: amnesia changes a behaviour during the run, and the caller's objects stay as given.
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
        self.slots_of: dict[int, list[int]] = defaultdict(list)
        for slot, ident in enumerate(self.ident):
            self.slots_of[ident].append(slot)
        self.replicas = [Replica(i, slot=k) for k, i in enumerate(self.ident)]
        self.all_slots = tuple(range(len(self.replicas)))
        self.queue: list[tuple[float, int, int, Msg]] = []
        self.counter = itertools.count()
        self.now = 0.0
        self.keys = keys if keys is not None else Keyring.generate(self.n, signatures)
        self.delivered = 0
        self.decide_time: dict[str, float] = {}
        self.timers: list[tuple[float, int, int, int, str]] = []  # (time, order, replica, token, kind)
        self.requests: set[str] = set()
        self.state_transfers = 0  # checkpoint states adopted (how often catching up needed one)
        # How an equivocating leader split each (view, seq) over the replicas: colluding Byzantine
        # voters know it and send each half only the votes for the value it was given.
        self.split: dict[tuple[int, int], dict[int, str]] = {}
        self.handlers: dict[str, Callable[[Replica, Msg], None]] = {
            "pre-prepare": self.on_pre_prepare,
            "prepare": self.on_prepare,
            "commit": self.on_commit,
            "checkpoint": self.on_checkpoint,
            "view-change": self.on_view_change,
            "new-view": self.on_new_view,
            "status": self.on_status,
            "commit-cert": self.on_commit_cert,
            "state": self.on_state,
        }

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
            msg = self.keys.sign(signer, msg)
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
    def request(self, value: str, at: float, slots: Sequence[int] | None = None) -> None:
        """The client sends ``value`` at time ``at`` to ``slots`` (default: every replica)."""
        self.requests.add(value)
        for dst in range(len(self.replicas)) if slots is None else slots:
            heapq.heappush(self.queue, (at, next(self.counter), dst, Msg("request", -1, value=value)))

    # ---- replica logic -------------------------------------------------------------------
    def on_request(self, r: Replica, value: str) -> None:
        if value in r.executed.values() or value in r.pending:
            return
        r.pending[value] = self.now
        self._arm_timer(r)
        self._arm_status(r)
        if self.leader(r.view) == r.idx and not r.in_view_change:
            self.propose(r, value)

    def propose(self, r: Replica, value: str) -> None:
        if (r.view, value) in r.proposed or r.next_seq > r.stable + self.s.window:
            return  # proposed already, or above the high watermark: wait for the next stable checkpoint
        b = self._deviating(r.idx)
        others = sorted(v for v in r.pending if v != value and (r.view, v) not in r.proposed)
        if b is not None and b.equivocate and not others:
            return  # an equivocating leader waits until it holds two requests to split
        r.proposed.add((r.view, value))
        seq = r.next_seq
        r.next_seq += 1
        if b is not None and b.equivocate:
            # Two real requests for one sequence number, alternating over the replicas; colluding
            # Byzantine replicas get both so they can vote for both.
            alt = others[0]
            r.proposed.add((r.view, alt))
            split = self.split.setdefault((r.view, seq), {})
            for dst in range(len(self.replicas)):
                if self.ident[dst] in self.byz:
                    self.send(r.slot, dst, Msg("pre-prepare", r.idx, r.view, seq, value))
                    self.send(r.slot, dst, Msg("pre-prepare", r.idx, r.view, seq, alt))
                else:
                    split[dst] = value if dst % 2 == 0 else alt
                    self.send(r.slot, dst, Msg("pre-prepare", r.idx, r.view, seq, split[dst]))
        else:
            self.broadcast(r.slot, Msg("pre-prepare", r.idx, r.view, seq, value))

    def _propose_pending(self, r: Replica) -> None:
        """As leader, propose every pending request not yet assigned in this view (oldest first)."""
        if self.leader(r.view) != r.idx or r.in_view_change:
            return
        done = set(r.executed.values())
        for value in sorted(r.pending, key=r.pending.__getitem__):
            if value not in done:
                self.propose(r, value)

    def on_pre_prepare(self, r: Replica, m: Msg) -> None:
        if m.sender != self.leader(m.view) or m.view != r.view or r.in_view_change:
            return
        if not r.stable < m.seq <= r.stable + self.s.window:
            return  # outside the watermarks: a leader cannot exhaust or jump the sequence space
        if m.value not in self.requests:
            return  # requests carry client signatures: a leader cannot invent one
        key = (m.view, m.seq)
        if key in r.pre_prepared and r.pre_prepared[key] != m.value and not self._equivocating_voter(r):
            return
        if key not in r.pre_prepared:
            r.pre_prepared[key] = m.value
            r.pre_prepare_msg[key] = m
        r.next_seq = max(r.next_seq, m.seq + 1)
        self._vote(r, Msg("prepare", r.idx, m.view, m.seq, m.value))
        self._check_prepared(r, m.view, m.seq, m.value)

    def _vote(self, r: Replica, m: Msg) -> None:
        """Broadcast a prepare or commit; an equivocating voter sends it only where it helps a fork."""
        split = self.split.get((m.view, m.seq)) if self._equivocating_voter(r) else None
        if split is None:
            self.broadcast(r.slot, m)
            return
        dsts = [d for d in self.all_slots if self.ident[d] in self.byz or split.get(d, m.value) == m.value]
        self.send_many(r.slot, dsts, m)

    def _equivocating_voter(self, r: Replica) -> bool:
        b = self._deviating(r.idx)
        return b is not None and (b.equivocate or (b.amnesia_at is not None and self.now >= b.amnesia_at))

    def on_prepare(self, r: Replica, m: Msg) -> None:
        if m.view != r.view:
            return
        r.prepares[(m.view, m.seq, m.value)][m.sender] = m
        self._check_prepared(r, m.view, m.seq, m.value)

    def _check_prepared(self, r: Replica, view: int, seq: int, value: str) -> None:
        if r.pre_prepared.get((view, seq)) != value and not self._equivocating_voter(r):
            return
        key = (view, seq, value)
        if key in r.sent_commit:
            return
        votes = r.prepares[key]
        voters = set(votes) | {self.leader(view)}
        if not self.s.is_quorum(voters, seq):
            return
        r.sent_commit.add(key)
        pre = r.pre_prepare_msg.get((view, seq))
        if pre is not None and pre.value == value and (seq not in r.prepared or r.prepared[seq][0] < view):
            r.prepared[seq] = (view, value, (pre, tuple(votes.values())))
        self._vote(r, Msg("commit", r.idx, view, seq, value))
        self._check_committed(r, view, seq, value)

    def on_commit(self, r: Replica, m: Msg) -> None:
        r.commits[(m.view, m.seq, m.value)][m.sender] = m
        self._check_committed(r, m.view, m.seq, m.value)

    def _check_committed(self, r: Replica, view: int, seq: int, value: str) -> None:
        if seq in r.committed or seq <= max(r.stable, len(r.executed)):
            return
        # A quorum of commits is a committed certificate on its own: its correct members (weight
        # > T_f) all prepared ``value`` at (view, seq), so no other value can commit at seq (PBFT's
        # committed(m, v, n), Castro–Liskov §4.2). A replica that missed the pre-prepare or the
        # prepares (drops, a partition, a later view) can therefore still commit from retransmitted
        # commits.
        votes = r.commits[(view, seq, value)]
        if not self.s.is_quorum(votes.keys(), seq):
            return
        r.committed[seq] = value
        r.commit_cert[seq] = tuple(votes.values())
        self._execute(r)

    def _execute(self, r: Replica) -> None:
        nxt = len(r.executed) + 1
        done = set(r.executed.values())
        while nxt in r.committed:
            value = r.committed[nxt]
            if value in done:
                value = NULL  # exactly-once: a request executed before is a no-op now
            done.add(value)
            r.executed[nxt] = value
            r.pending.pop(value, None)
            r.failed_views = 0
            if r.idx not in self.byz and value != NULL:
                self.decide_time.setdefault(value, self.now)
            if nxt % self.s.checkpoint_interval == 0:
                digest = log_digest([r.executed[k] for k in range(1, nxt + 1)])
                self.broadcast(r.slot, Msg("checkpoint", r.idx, seq=nxt, value=digest))
            nxt += 1
        if r.pending:
            self._arm_timer(r, restart=True)
        else:
            self._cancel_timer(r)

    def on_checkpoint(self, r: Replica, m: Msg) -> None:
        if m.seq <= r.stable:
            return
        key = (m.seq, m.value)
        r.checkpoints[key][m.sender] = m
        if self.s.is_quorum(r.checkpoints[key].keys(), m.seq):
            self._advance_stable(r, m.seq, m.value, tuple(r.checkpoints[key].values()))

    # ---- certificates: signed messages, checked one by one --------------------------------
    def _quorum_of(self, msgs: Any, kind: str, view: int | None, seq: int, value: str) -> set[int] | None:
        """The signers of ``msgs`` if every one is a validly signed ``kind`` message for (view, seq,
        value) from a distinct sender; else None. ``view=None`` skips the view (checkpoints)."""
        if not isinstance(msgs, tuple):
            return None
        signers: set[int] = set()
        for m in msgs:
            if not isinstance(m, Msg) or m.kind != kind or m.seq != seq or m.value != value or m.sender in signers:
                return None
            if (view is not None and m.view != view) or not self.keys.verify(m):
                return None
            signers.add(m.sender)
        return signers

    def _valid_checkpoint(self, seq: int, digest: str, proof: Any) -> bool:
        """``proof`` is the signed checkpoints of a quorum for ``digest`` at ``seq``: the log it
        certifies is the one a correct replica executed (any two quorums share a correct replica)."""
        if seq == 0:
            return digest == ""
        signers = self._quorum_of(proof, "checkpoint", None, seq, digest)
        return signers is not None and self.s.is_quorum(signers, seq)

    def _is_pre_prepare(self, pre: Any, view: int, seq: int, value: str) -> bool:
        """``pre`` is the leader of ``view``'s signed pre-prepare of (view, seq, value)."""
        return (
            isinstance(pre, Msg)
            and (pre.kind, pre.sender, pre.view, pre.seq, pre.value)
            == ("pre-prepare", self.leader(view), view, seq, value)
            and self.keys.verify(pre)
        )

    def _valid_cert(self, seq: int, view: int, value: str, cert: Any) -> bool:
        """A prepared certificate: the leader's signed pre-prepare of (view, seq, value) and signed
        prepares that, with the leader, weigh a quorum."""
        try:
            pre, prepares = cert
        except (TypeError, ValueError):
            return False
        leader = self.leader(view)
        if not self._is_pre_prepare(pre, view, seq, value):
            return False
        signers = self._quorum_of(prepares, "prepare", view, seq, value)
        return signers is not None and self.s.is_quorum(signers | {leader}, seq)

    def _advance_stable(self, r: Replica, seq: int, digest: str, proof: tuple[Msg, ...], propose: bool = True) -> None:
        """Make ``seq`` the stable checkpoint (``proof``: the checkpoints of a quorum for ``digest``):
        collect the log below it (PBFT §4.3), move the watermarks, and let a leader propose what
        waited above the old high watermark."""
        r.stable, r.stable_digest, r.stable_proof = seq, digest, proof
        r.pre_prepared = {k: v for k, v in r.pre_prepared.items() if k[1] > seq}
        r.pre_prepare_msg = {k: v for k, v in r.pre_prepare_msg.items() if k[1] > seq}
        r.prepares = defaultdict(dict, {k: v for k, v in r.prepares.items() if k[1] > seq})
        r.commits = defaultdict(dict, {k: v for k, v in r.commits.items() if k[1] > seq})
        r.sent_commit = {k for k in r.sent_commit if k[1] > seq}
        r.prepared = {s: pv for s, pv in r.prepared.items() if s > seq}
        r.committed = {s: v for s, v in r.committed.items() if s > seq}
        r.commit_cert = {s: v for s, v in r.commit_cert.items() if s > seq}
        r.checkpoints = defaultdict(dict, {k: v for k, v in r.checkpoints.items() if k[0] > seq})
        r.next_seq = max(r.next_seq, seq + 1)
        if propose:
            self._propose_pending(r)

    # ---- retransmission and state transfer ----------------------------------------------
    def _arm_status(self, r: Replica) -> None:
        if r.status_active:
            return
        r.status_token += 1
        r.status_active = True
        at = self.now + self.net.status_interval
        heapq.heappush(self.timers, (at, next(self.counter), r.slot, r.status_token, "status"))

    def on_status_timer(self, r: Replica, token: int) -> None:
        if token != r.status_token:
            return
        r.status_active = False
        if r.pending or len(r.executed) < r.stable or r.in_view_change:
            # It carries the last stable checkpoint this replica holds a proof for (a replica that
            # learned of a checkpoint it has not executed fetches exactly that state) and whether it
            # is changing view (the new view's leader then sends it the NewView again).
            status = Msg("status", r.idx, r.view, seq=len(r.executed), value=str(r.stable), payload=r.in_view_change)
            self.broadcast(r.slot, status)
            if r.in_view_change and r.last_view_change is not None and r.last_view_change.view == r.view:
                # ViewChanges are retransmitted until the new view starts (Castro's thesis §5.2):
                # under loss, a quorum for the new view otherwise may never gather.
                self.broadcast(r.slot, r.last_view_change)
            self._arm_status(r)

    def on_status(self, r: Replica, m: Msg) -> None:
        """A replica that executed more than the sender sends what the sender lacks: its stable
        checkpoint's state when the sender is below it (or the checkpoint the sender says it holds a
        proof for), then the committed certificate of every later sequence number it executed."""
        if m.sender == r.idx:
            return
        lagging = m.view < r.view or (m.view == r.view and m.payload is True)
        if lagging and not r.in_view_change and r.view in r.new_view_sent and r.view in r.new_view_msg:
            # The sender has not started the view this leader announced: the NewView was lost.
            self.send_many(r.slot, self.slots_of[m.sender], r.new_view_msg[r.view])
        behind, mine = m.seq, len(r.executed)
        if behind >= mine:
            return
        theirs = int(m.value) if m.value.isdigit() else 0
        start = behind
        to = self.slots_of[m.sender]
        for c in sorted({r.stable, theirs}, reverse=True):
            if behind < c <= mine:
                log = tuple(r.executed[k] for k in range(1, c + 1))
                # Its own proof goes with its stable checkpoint; for the one the sender says it
                # holds a proof for, the sender checks the digest against that proof.
                proof = r.stable_proof if c == r.stable else ()
                self.send_many(r.slot, to, Msg("state", r.idx, seq=c, value=log_digest(log), payload=(log, proof)))
                start = c
                break
        for seq in range(start + 1, mine + 1):
            if seq in r.commit_cert:
                cert = r.commit_cert[seq]
                self.send_many(r.slot, to, Msg("commit-cert", r.idx, cert[0].view, seq, r.committed[seq], payload=cert))

    def on_commit_cert(self, r: Replica, m: Msg) -> None:
        """A forwarded committed certificate: the signed commits of a quorum for (view, seq, value),
        each checked against its signer's key."""
        if m.seq in r.committed or m.seq <= max(r.stable, len(r.executed)):
            return
        signers = self._quorum_of(m.payload, "commit", m.view, m.seq, m.value)
        if signers is None or not self.s.is_quorum(signers, m.seq):
            return
        for c in m.payload:
            r.commits[(m.view, m.seq, m.value)][c.sender] = c
        self._check_committed(r, m.view, m.seq, m.value)

    def on_state(self, r: Replica, m: Msg) -> None:
        """State transfer: adopt a log up to a stable checkpoint if its digest is the one a quorum
        certified — by the proof sent with it, or by the proof this replica already holds for that
        checkpoint (a Byzantine sender's doctored log fails either check)."""
        try:
            log, proof = m.payload
        except (TypeError, ValueError):
            return
        if m.seq <= len(r.executed) or not isinstance(log, tuple) or len(log) != m.seq:
            return
        if log_digest(log) != m.value:
            return
        known = m.seq == r.stable and m.value == r.stable_digest
        if not known and not self._valid_checkpoint(m.seq, m.value, proof):
            return
        r.executed = {k: v for k, v in enumerate(log, start=1)}
        self.state_transfers += 1
        for value in log:
            r.pending.pop(value, None)
        if m.seq > r.stable:
            self._advance_stable(r, m.seq, m.value, proof)
        self._execute(r)

    # ---- view change ---------------------------------------------------------------------
    def _arm_timer(self, r: Replica, restart: bool = False) -> None:
        if r.timer_active and not restart:
            return
        if r.in_view_change and not self.s.is_view_quorum(set(r.view_changes[r.view])):
            # The view-change timer starts only once a quorum has asked for this view (PBFT
            # §4.5.2): a replica that timed out alone waits for the others instead of climbing one
            # view per timeout, which under loss kept it forever one view above the rest.
            return
        r.timer_token += 1
        r.timer_active = True
        # Exponential back-off over consecutive view changes without progress (PBFT §4.5.2).
        wait = self.net.timeout * 2 ** min(r.failed_views, 8)
        heapq.heappush(self.timers, (self.now + wait, next(self.counter), r.slot, r.timer_token, "view"))

    def _cancel_timer(self, r: Replica) -> None:
        r.timer_token += 1
        r.timer_active = False

    def on_timeout(self, r: Replica, token: int) -> None:
        if token != r.timer_token:
            return
        r.timer_active = False
        if r.pending or r.in_view_change:
            self.start_view_change(r, r.view + 1)

    def start_view_change(self, r: Replica, new_view: int) -> None:
        if new_view < r.view or (new_view == r.view and r.in_view_change):
            return
        r.view = new_view
        r.in_view_change = True
        r.failed_views += 1
        # It carries the replica's stable checkpoint (seq, digest) with its proof, and its prepared
        # certificates above it.
        certs = tuple((s, v, val, cert) for s, (v, val, cert) in sorted(r.prepared.items()))
        payload = (certs, r.stable_proof)
        r.last_view_change = Msg("view-change", r.idx, new_view, seq=r.stable, value=r.stable_digest, payload=payload)
        self.broadcast(r.slot, r.last_view_change)
        self._cancel_timer(r)
        self._arm_timer(r)  # only if a quorum already asked for this view
        self._arm_status(r)

    @staticmethod
    def _vc_parts(m: Msg) -> tuple[tuple[Any, ...], Any]:
        """(prepared certificates, checkpoint proof) of a ViewChange; a malformed payload (a
        Byzantine sender's) counts as none."""
        p = m.payload
        if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], tuple):
            return p[0], p[1]
        return (), ()

    def _low_proof(self, vcs: dict[int, Msg]) -> tuple[int, str, tuple[Msg, ...]]:
        """The highest stable checkpoint with a valid proof among a ViewChange set (PBFT's min-s):
        (seq, digest, proof)."""
        best: tuple[int, str, tuple[Msg, ...]] = (0, "", ())
        for m in vcs.values():
            proof = self._vc_parts(m)[1]
            if m.seq > best[0] and self._valid_checkpoint(m.seq, m.value, proof):
                best = (m.seq, m.value, proof)
        return best

    def _low(self, vcs: dict[int, Msg]) -> int:
        return self._low_proof(vcs)[0]

    def _proposals(self, vcs: dict[int, Msg]) -> tuple[tuple[int, str], ...]:
        low = self._low(vcs)
        best: dict[int, tuple[int, str]] = {}
        for m in vcs.values():
            for item in self._vc_parts(m)[0]:
                if not (isinstance(item, tuple) and len(item) == 4):
                    continue
                seq, view, value, cert = item
                if not (isinstance(seq, int) and isinstance(view, int) and isinstance(value, str)):
                    continue
                if seq > low and (seq not in best or best[seq][0] < view) and self._valid_cert(seq, view, value, cert):
                    best[seq] = (view, value)
        top = max(best, default=low)
        return tuple((s, best[s][1] if s in best else NULL) for s in range(low + 1, top + 1))

    def on_view_change(self, r: Replica, m: Msg) -> None:
        if m.view < r.view:
            return
        r.view_changes[m.view][m.sender] = m
        senders = set(r.view_changes[m.view])
        if m.view > r.view and self.s.is_weak(senders):
            self.start_view_change(r, m.view)
        if r.in_view_change and m.view == r.view and not r.timer_active and self.s.is_view_quorum(senders):
            self._arm_timer(r)
        if (
            self.leader(m.view) == r.idx
            and r.view == m.view
            and r.in_view_change
            and m.view not in r.new_view_sent
            and self.s.is_view_quorum(senders)
        ):
            r.new_view_sent.add(m.view)
            vcs = dict(r.view_changes[m.view])
            proposals = self._proposals(vcs)
            # The NewView carries the new view's pre-prepares (PBFT's set O), each signed by the leader.
            pres = tuple(self.sign(r.idx, Msg("pre-prepare", r.idx, m.view, seq, value)) for seq, value in proposals)
            r.new_view_msg[m.view] = Msg("new-view", r.idx, m.view, payload=(vcs, proposals, pres))
            self.broadcast(r.slot, r.new_view_msg[m.view])

    def _valid_view_change_set(self, view: int, vcs: Any) -> bool:
        """Every ViewChange is for ``view``, listed under its signer, and signed by it."""
        if not isinstance(vcs, dict):
            return False
        for signer, vc in vcs.items():
            if not isinstance(vc, Msg) or vc.kind != "view-change" or vc.view != view or vc.sender != signer:
                return False
            if not self.keys.verify(vc):
                return False
        return self.s.is_view_quorum(set(vcs))

    def on_new_view(self, r: Replica, m: Msg) -> None:
        if m.sender != self.leader(m.view) or m.view < r.view or m.view in r.new_view_accepted:
            return  # at most one NewView per view: a second one (equivocation) is ignored
        if m.view == r.view and not r.in_view_change and m.view > 0:
            return  # already running this view under an accepted NewView
        try:
            vcs, proposals, pres = m.payload
        except (TypeError, ValueError):
            return
        if not self._valid_view_change_set(m.view, vcs) or proposals != self._proposals(vcs):
            return  # a NewView whose proposals do not follow from a genuine ViewChange set is ignored
        if not isinstance(pres, tuple) or len(pres) != len(proposals):
            return
        if not all(self._is_pre_prepare(pre, m.view, s, v) for pre, (s, v) in zip(pres, proposals, strict=True)):
            return
        if any(r.committed.get(seq, value) != value for seq, value in proposals):
            return  # would re-prepare a committed sequence number with another value: refuse
        r.new_view_accepted.add(m.view)
        r.view = m.view
        r.in_view_change = False
        low, digest, proof = self._low_proof(vcs)
        if low > r.stable:
            # Proven stable: state transfer brings the log up to it. New requests wait until the
            # NewView's own pre-prepares are in place (below), so none is given one of their numbers.
            self._advance_stable(r, low, digest, proof, propose=False)
        for pre, (seq, value) in zip(pres, proposals, strict=True):
            r.pre_prepared[(m.view, seq)] = value
            r.pre_prepare_msg[(m.view, seq)] = pre
            r.proposed.add((m.view, value))
            self.broadcast(r.slot, Msg("prepare", r.idx, m.view, seq, value))
            self._check_prepared(r, m.view, seq, value)
        # Every committed sequence number above ``low`` is ≤ the last proposal (a correct replica of
        # the ViewChange quorum holds its prepared certificate), so new proposals continue right after.
        r.next_seq = max(low, proposals[-1][0] if proposals else 0) + 1
        self._propose_pending(r)
        if r.pending:
            self._arm_timer(r, restart=True)
        else:
            self._cancel_timer(r)
        early, r.future = r.future, []
        for msg in early:
            self.handle(r.slot, msg)

    # ---- loop ----------------------------------------------------------------------------
    def handle(self, dst: int, m: Msg) -> None:
        r = self.replicas[dst]
        b = self.byz.get(dst)
        if b is not None and b.amnesia_at is not None and self.now >= b.amnesia_at:
            b.amnesia_at = None
            self.replicas[dst] = r = Replica(r.idx, slot=dst, view=r.view)
            b.equivocate = True
        if m.kind == "request":
            self.on_request(r, m.value)
        elif m.kind not in SELF_AUTHENTICATING and not self.keys.verify(m):
            return  # not signed by its claimed sender: dropped
        elif m.kind in ("pre-prepare", "prepare") and (m.view > r.view or (m.view == r.view and r.in_view_change)):
            r.future.append(m)  # arrived before this replica entered view m.view: keep it
        else:
            self.handlers[m.kind](r, m)

    def run(self, until: float, max_events: int = 2_000_000) -> None:
        events = 0
        while (self.queue or self.timers) and events < max_events:
            t_msg = self.queue[0][0] if self.queue else np.inf
            t_tim = self.timers[0][0] if self.timers else np.inf
            if min(t_msg, t_tim) > until:
                break
            if t_tim < t_msg:
                self.now, _, idx, token, kind = heapq.heappop(self.timers)
                if kind == "status":
                    self.on_status_timer(self.replicas[idx], token)
                else:
                    self.on_timeout(self.replicas[idx], token)
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
