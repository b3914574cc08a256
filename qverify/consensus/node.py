"""One weighted-PBFT replica's protocol logic: message handlers that return an outbox.

A :class:`Node` owns its replica's state (:class:`~qverify.consensus.replica.Replica`) and nothing
else. :meth:`Node.deliver`, :meth:`Node.timer` and :meth:`Node.request` take one input and return
the effects it causes — messages to send (:class:`Send`), timers to set (:class:`Timer`), requests
executed (:class:`Executed`), states adopted by state transfer (:class:`Adopted`) — and never touch
the network, the event queue, the message they were given or any other replica. The event loop
(:mod:`qverify.consensus.pbft`) signs and delivers what a node sends and fires its timers.

What every node shares is read-only (:class:`Context`): the weight schedule, the keyring that
checks signatures, the set of client requests (standing in for client signatures), the replica
slots. The certificate checks (prepared certificates, checkpoint proofs, ViewChange sets) are
methods of the node because they read only that context.

Adversaries are subclasses (:mod:`qverify.consensus.adversaries`): they override the documented
hooks :meth:`Node.propose`, :meth:`Node._vote` and :meth:`Node._equivocating_voter`, or wrap
:meth:`Node.deliver`; a new attack is a new subclass.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qverify.consensus.netmodel import LeaderMonitor, Msg
from qverify.consensus.quorum import Schedule
from qverify.consensus.replica import NULL, Replica, log_digest
from qverify.consensus.signing import Keyring

BUFFER_FACTOR = 4
"""A replica keeps at most ``BUFFER_FACTOR × window`` messages per sender in each of its five
stores of not-yet-used messages (early pre-prepares and prepares of a later view, prepares, commits,
checkpoints, view changes), so at most ``5 × 4 × window × n`` in all, whatever a faulty sender
sends. A correct sender stays far below it: between two stable checkpoints it sends at most one
prepare and one commit per sequence number in the window and view, one checkpoint per interval and
one ViewChange per view. Prepares and commits outside the watermarks are dropped (PBFT §4.3)."""


def well_formed(m: Any, slots: int) -> bool:
    """Whether ``m`` is a :class:`Msg` whose fields have the types the handlers expect (a sender
    identity in ``[-1, slots)``, non-negative view and sequence number, a string value, a bytes signature)."""
    return (
        isinstance(m, Msg)
        and isinstance(m.kind, str)
        and type(m.sender) is int
        and -1 <= m.sender < slots
        and type(m.view) is int
        and type(m.seq) is int
        and m.view >= 0
        and m.seq >= 0
        and isinstance(m.value, str)
        and isinstance(m.sig, bytes)
    )


@dataclass(frozen=True)
class Send:
    """Send ``msg`` (unsigned: the loop signs it with the node's key) to replica slots ``dsts``."""

    dsts: tuple[int, ...]
    msg: Msg


@dataclass(frozen=True)
class Timer:
    """Fire ``kind`` (``"view"`` or ``"status"``) at time ``at`` with ``token`` (stale tokens are ignored)."""

    at: float
    token: int
    kind: str


@dataclass(frozen=True)
class Executed:
    """The node executed client request ``value``."""

    value: str


@dataclass(frozen=True)
class Adopted:
    """The node adopted a checkpoint state by state transfer."""


Effect = Send | Timer | Executed | Adopted


@dataclass(frozen=True)
class Context:
    """What every node of a run shares, read-only.

    Attributes:
        s: the weight schedule (quorums, watermarks, checkpoint interval).
        keys: the run's keyring (verifies signatures; a node signs only through the loop, except
            the pre-prepares it puts inside its own NewView).
        requests: the client requests issued so far (client signatures are assumed).
        ident: per slot, the identity that signs its messages (twins share an identity).
        timeout: base view-change timeout; status_interval: period of status messages.
        monitor: the leader-throughput monitor (None: off).
        all_slots, slots_of: every slot, and each identity's slots (derived from ``ident``).
    """

    s: Schedule
    keys: Keyring
    requests: frozenset[str] | set[str]
    ident: tuple[int, ...]
    timeout: float
    status_interval: float
    monitor: LeaderMonitor | None = None

    @functools.cached_property
    def all_slots(self) -> tuple[int, ...]:
        return tuple(range(len(self.ident)))

    @functools.cached_property
    def slots_of(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for k, i in enumerate(self.ident):
            out.setdefault(i, []).append(k)
        return out


class Node:
    """An honest replica (see the module docstring); ``slot`` is its network address."""

    def __init__(self, ctx: Context, slot: int) -> None:
        self.ctx = ctx
        self.s = ctx.s
        self.keys = ctx.keys
        self.requests = ctx.requests
        self.n = ctx.s.n
        self.all_slots = ctx.all_slots
        self.slots_of = ctx.slots_of
        self.r = Replica(ctx.ident[slot], slot=slot)
        self.cap = BUFFER_FACTOR * ctx.s.window
        """Messages kept per sender in each store (see :data:`BUFFER_FACTOR`)."""
        self.now = 0.0
        self.out: list[Effect] = []
        self.handlers = {
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

    # ---- interface: one input, the effects it causes ------------------------------------
    def deliver(self, m: Msg, now: float) -> list[Effect]:
        """Handle a message whose signature the loop has checked (or that needs none). A malformed
        message (fields of the wrong type, a payload a handler cannot take apart) is dropped and
        counted in ``r.dropped["malformed"]``: a replica never fails on what the network brings."""
        self._tick(now)
        if not well_formed(m, self.n):
            self.r.dropped["malformed"] += 1
            return self._flush()
        try:
            self.dispatch(m)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError):
            self.r.dropped["malformed"] += 1
        return self._flush()

    def request(self, value: str, now: float) -> list[Effect]:
        """Handle a client request."""
        self._tick(now)
        self.on_request(value)
        return self._flush()

    def timer(self, kind: str, token: int, now: float) -> list[Effect]:
        """Handle a timer set earlier by a :class:`Timer` effect."""
        self._tick(now)
        if kind == "status":
            self.on_status_timer(token)
        else:
            self.on_timeout(token)
        return self._flush()

    def _tick(self, now: float) -> None:
        """Advance the clock; time spent waiting for a request in a running view counts as busy."""
        r = self.r
        if r.pending and not r.in_view_change:
            r.busy += now - r.last_tick
        r.last_tick = self.now = now

    def _close_view(self) -> None:
        """Leaving the current view: remember its measured rate (if measured long enough), reset."""
        r, mon = self.r, self.ctx.monitor
        if mon is not None and r.busy >= 0.5 * mon.grace_timeouts * self.ctx.timeout:
            r.rates = [*r.rates[-(self.n - 1) :], r.served / r.busy]
        r.busy, r.served = 0.0, 0

    def _monitor(self) -> None:
        """Aardvark's check (:class:`~qverify.consensus.netmodel.LeaderMonitor`): ask for the next
        view when the leader's rate, measured over at least the grace period, is below what recent
        views achieved."""
        r, mon = self.r, self.ctx.monitor
        if mon is None or r.in_view_change or r.busy < mon.grace_timeouts * self.ctx.timeout:
            return
        required = max(mon.floor_rate, mon.fraction * max(r.rates, default=0.0))
        if r.served / r.busy < required:
            r.monitor_view_changes += 1
            self.start_view_change(r.view + 1)

    def _flush(self) -> list[Effect]:
        out, self.out = self.out, []
        return out

    def dispatch(self, m: Msg) -> None:
        r = self.r
        if m.kind in ("pre-prepare", "prepare") and (m.view > r.view or (m.view == r.view and r.in_view_change)):
            # Arrived before this replica entered view m.view: keep it, within the sender's cap.
            if not r.stable < m.seq <= r.stable + self.s.window or r.future_count[m.sender] >= self.cap:
                r.dropped["future"] += 1
                return
            r.future_count[m.sender] += 1
            r.future.append(m)
        elif m.kind in self.handlers:
            self.handlers[m.kind](m)
        else:
            r.dropped["malformed"] += 1

    def _hold(self, store: dict[Any, dict[int, Msg]], name: str, key: Any, m: Msg) -> None:
        """Keep ``m`` as ``store[key][m.sender]``, at most :attr:`cap` entries per sender and store:
        the sender's oldest entry in that store is evicted first (a correct sender's old entries are
        the ones garbage collection would drop next; a flooding sender only evicts its own)."""
        votes = store[key]
        if m.sender not in votes:
            fifo = self.r.held[(name, m.sender)]
            fifo.append(key)
            if len(fifo) > self.cap:
                old = fifo.popleft()
                self.r.dropped["evicted"] += 1
                entry = store.get(old)
                if entry is not None:
                    entry.pop(m.sender, None)
                    if not entry:
                        del store[old]
        votes[m.sender] = m

    def _in_window(self, seq: int) -> bool:
        """Whether ``seq`` lies between the watermarks ``(h, h + window]`` (PBFT §4.3); votes
        outside are dropped and counted."""
        if self.r.stable < seq <= self.r.stable + self.s.window:
            return True
        self.r.dropped["window"] += 1
        return False

    def leader(self, view: int) -> int:
        return view % self.n

    def broadcast(self, msg: Msg) -> None:
        self.out.append(Send(self.all_slots, msg))

    def send_to(self, dsts: Sequence[int], msg: Msg) -> None:
        self.out.append(Send(tuple(dsts), msg))

    # ---- protocol --------------------------------------------------------------------------
    def on_request(self, value: str) -> None:
        r = self.r
        if value in r.executed.values() or value in r.pending:
            return
        r.pending[value] = self.now
        self._arm_timer()
        self._arm_status()
        if self.leader(r.view) == r.idx and not r.in_view_change:
            self.propose(value)

    def propose(self, value: str) -> None:
        """As leader, assign ``value`` the next sequence number and pre-prepare it to everyone."""
        r = self.r
        if (r.view, value) in r.proposed or r.next_seq > r.stable + self.s.window:
            return  # proposed already, or above the high watermark: wait for the next stable checkpoint
        r.proposed.add((r.view, value))
        seq = r.next_seq
        r.next_seq += 1
        self.broadcast(Msg("pre-prepare", r.idx, r.view, seq, value))

    def _propose_pending(self) -> None:
        """As leader, propose every pending request not yet assigned in this view (oldest first)."""
        r = self.r
        if self.leader(r.view) != r.idx or r.in_view_change:
            return
        done = set(r.executed.values())
        for value in sorted(r.pending, key=r.pending.__getitem__):
            if value not in done:
                self.propose(value)

    def on_pre_prepare(self, m: Msg) -> None:
        r = self.r
        if m.sender != self.leader(m.view) or m.view != r.view or r.in_view_change:
            return
        if not r.stable < m.seq <= r.stable + self.s.window:
            return  # outside the watermarks: a leader cannot exhaust or jump the sequence space
        if m.value not in self.requests:
            return  # requests carry client signatures: a leader cannot invent one
        key = (m.view, m.seq)
        if key in r.pre_prepared and r.pre_prepared[key] != m.value and not self._equivocating_voter():
            return
        if key not in r.pre_prepared:
            r.pre_prepared[key] = m.value
            r.pre_prepare_msg[key] = m
        r.next_seq = max(r.next_seq, m.seq + 1)
        self._vote(Msg("prepare", r.idx, m.view, m.seq, m.value))
        self._check_prepared(m.view, m.seq, m.value)

    def _vote(self, m: Msg) -> None:
        """Send a prepare or commit to everyone (an adversary may choose otherwise)."""
        self.broadcast(m)

    def _equivocating_voter(self) -> bool:
        """Whether this replica votes for every value it sees (only adversaries do)."""
        return False

    def on_prepare(self, m: Msg) -> None:
        r = self.r
        if m.view != r.view or not self._in_window(m.seq):
            return
        self._hold(r.prepares, "prepare", (m.view, m.seq, m.value), m)
        self._check_prepared(m.view, m.seq, m.value)

    def _check_prepared(self, view: int, seq: int, value: str) -> None:
        r = self.r
        if r.pre_prepared.get((view, seq)) != value and not self._equivocating_voter():
            return
        key = (view, seq, value)
        if key in r.sent_commit:
            return
        votes = r.prepares[key]
        leader = self.leader(view)
        # Counted before the set is built: most prepares arrive before a quorum could exist.
        if len(votes) + (leader not in votes) < self.s.min_quorum_size(seq):
            return
        voters = set(votes) | {leader}
        if not self.s.is_quorum(voters, seq):
            return
        r.sent_commit.add(key)
        pre = r.pre_prepare_msg.get((view, seq))
        if pre is not None and pre.value == value and (seq not in r.prepared or r.prepared[seq][0] < view):
            r.prepared[seq] = (view, value, (pre, tuple(votes.values())))
        self._vote(Msg("commit", r.idx, view, seq, value))
        self._check_committed(view, seq, value)

    def on_commit(self, m: Msg) -> None:
        r = self.r
        if not self._in_window(m.seq):
            return
        self._hold(r.commits, "commit", (m.view, m.seq, m.value), m)
        self._check_committed(m.view, m.seq, m.value)

    def _check_committed(self, view: int, seq: int, value: str) -> None:
        r = self.r
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
        self._execute()

    def _execute(self) -> None:
        r = self.r
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
            if value != NULL:
                self.out.append(Executed(value))
                r.served += 1
            if nxt % self.s.checkpoint_interval == 0:
                digest = log_digest([r.executed[k] for k in range(1, nxt + 1)])
                self.broadcast(Msg("checkpoint", r.idx, seq=nxt, value=digest))
            nxt += 1
        # PBFT §4.5.2: the timer runs for one request (the oldest this replica waits for); it is
        # stopped when that request executes and restarted if another is still waiting. Executing
        # no-ops or other requests does not touch it, so a leader that churns nulls or serves
        # everything but one request is replaced within a timeout of that request.
        self._monitor()
        if r.timer_for is not None and r.timer_for in r.pending and r.timer_active:
            return
        if r.pending:
            self._arm_timer(restart=True)
        else:
            self._cancel_timer()

    def on_checkpoint(self, m: Msg) -> None:
        r = self.r
        if m.seq <= r.stable:
            return
        key = (m.seq, m.value)
        self._hold(r.checkpoints, "checkpoint", key, m)
        if self.s.is_quorum(r.checkpoints[key].keys(), m.seq):
            self._advance_stable(m.seq, m.value, tuple(r.checkpoints[key].values()))

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

    def _advance_stable(self, seq: int, digest: str, proof: tuple[Msg, ...], propose: bool = True) -> None:
        """Make ``seq`` the stable checkpoint (``proof``: the checkpoints of a quorum for ``digest``):
        collect the log below it (PBFT §4.3), move the watermarks, and let a leader propose what
        waited above the old high watermark."""
        r = self.r
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
        stores: dict[str, dict[Any, dict[int, Msg]]] = {
            "prepare": r.prepares,
            "commit": r.commits,
            "checkpoint": r.checkpoints,
        }
        for (name, sender), fifo in r.held.items():
            if name in stores:
                store = stores[name]
                kept = [k for k in fifo if k in store and sender in store[k]]
                fifo.clear()
                fifo.extend(kept)
        if propose:
            self._propose_pending()

    # ---- retransmission and state transfer ----------------------------------------------
    def _arm_status(self) -> None:
        r = self.r
        if r.status_active:
            return
        r.status_token += 1
        r.status_active = True
        at = self.now + self.ctx.status_interval
        self.out.append(Timer(at, r.status_token, "status"))

    def on_status_timer(self, token: int) -> None:
        r = self.r
        if token != r.status_token:
            return
        r.status_active = False
        self._monitor()
        if r.pending or len(r.executed) < r.stable or r.in_view_change:
            # It carries the last stable checkpoint this replica holds a proof for (a replica that
            # learned of a checkpoint it has not executed fetches exactly that state) and whether it
            # is changing view (the new view's leader then sends it the NewView again).
            status = Msg("status", r.idx, r.view, seq=len(r.executed), value=str(r.stable), payload=r.in_view_change)
            self.broadcast(status)
            if r.in_view_change and r.last_view_change is not None and r.last_view_change.view == r.view:
                # ViewChanges are retransmitted until the new view starts (Castro's thesis §5.2):
                # under loss, a quorum for the new view otherwise may never gather.
                self.broadcast(r.last_view_change)
            self._arm_status()

    def on_status(self, m: Msg) -> None:
        """A replica that executed more than the sender sends what the sender lacks: its stable
        checkpoint's state when the sender is below it (or the checkpoint the sender says it holds a
        proof for), then the committed certificate of every later sequence number it executed."""
        r = self.r
        if m.sender == r.idx:
            return
        lagging = m.view < r.view or (m.view == r.view and m.payload is True)
        if lagging and not r.in_view_change and r.view in r.new_view_msg:
            # The sender has not started the view this leader announced: the NewView was lost.
            self.send_to(self.slots_of[m.sender], r.new_view_msg[r.view])
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
                self.send_to(to, Msg("state", r.idx, seq=c, value=log_digest(log), payload=(log, proof)))
                start = c
                break
        for seq in range(start + 1, mine + 1):
            if seq in r.commit_cert:
                cert = r.commit_cert[seq]
                self.send_to(to, Msg("commit-cert", r.idx, cert[0].view, seq, r.committed[seq], payload=cert))

    def on_commit_cert(self, m: Msg) -> None:
        """A forwarded committed certificate: the signed commits of a quorum for (view, seq, value),
        each checked against its signer's key."""
        r = self.r
        if m.seq in r.committed or m.seq <= max(r.stable, len(r.executed)):
            return
        signers = self._quorum_of(m.payload, "commit", m.view, m.seq, m.value)
        if signers is None or not self.s.is_quorum(signers, m.seq):
            return
        for c in m.payload:
            r.commits[(m.view, m.seq, m.value)][c.sender] = c
        self._check_committed(m.view, m.seq, m.value)

    def on_state(self, m: Msg) -> None:
        """State transfer: adopt a log up to a stable checkpoint if its digest is the one a quorum
        certified — by the proof sent with it, or by the proof this replica already holds for that
        checkpoint (a Byzantine sender's doctored log fails either check)."""
        r = self.r
        try:
            log, proof = m.payload
        except (TypeError, ValueError):
            return
        if m.seq <= len(r.executed) or not isinstance(log, tuple) or len(log) != m.seq:
            return
        # The proof first (signatures, each verified once): a log is hashed and read only when a
        # quorum certified its sequence number and digest.
        known = m.seq == r.stable and m.value == r.stable_digest
        if not known and not self._valid_checkpoint(m.seq, m.value, proof):
            return
        if not self._valid_log(log) or log_digest(log) != m.value:
            return
        r.executed = {k: v for k, v in enumerate(log, start=1)}
        self.out.append(Adopted())
        for value in log:
            r.pending.pop(value, None)
        if m.seq > r.stable:
            self._advance_stable(m.seq, m.value, proof)
        self._execute()

    def _valid_log(self, log: tuple[Any, ...]) -> bool:
        """A log a correct replica could have executed: every entry an issued (client-signed) request
        or the no-op, no request twice (exactly-once turns a repeat into the no-op), and this
        replica's own executed prefix unchanged. The digest alone is not trusted to say so."""
        seen: set[str] = set()
        for k, value in enumerate(log, start=1):
            if not isinstance(value, str):
                return False
            if k in self.r.executed and self.r.executed[k] != value:
                return False
            if value == NULL:
                continue
            if value in seen or value not in self.requests:
                return False
            seen.add(value)
        return True

    # ---- view change ---------------------------------------------------------------------
    def _arm_timer(self, restart: bool = False) -> None:
        r = self.r
        if r.timer_active and not restart:
            return
        if r.in_view_change and not self.s.is_view_quorum(set(r.view_changes[r.view])):
            # The view-change timer starts only once a quorum has asked for this view (PBFT
            # §4.5.2): a replica that timed out alone waits for the others instead of climbing one
            # view per timeout, which under loss kept it forever one view above the rest.
            return
        r.timer_token += 1
        r.timer_active = True
        r.timer_for = min(r.pending, key=r.pending.__getitem__) if r.pending else None
        # Exponential back-off over consecutive view changes without progress (PBFT §4.5.2).
        wait = self.ctx.timeout * 2 ** min(r.failed_views, 8)
        self.out.append(Timer(self.now + wait, r.timer_token, "view"))

    def _cancel_timer(self) -> None:
        r = self.r
        r.timer_token += 1
        r.timer_active = False
        r.timer_for = None

    def on_timeout(self, token: int) -> None:
        r = self.r
        if token != r.timer_token:
            return
        r.timer_active = False
        if r.pending or r.in_view_change:
            self.start_view_change(r.view + 1)

    def start_view_change(self, new_view: int) -> None:
        r = self.r
        if new_view < r.view or (new_view == r.view and r.in_view_change):
            return
        if not r.in_view_change:
            self._close_view()
        r.view = new_view
        r.in_view_change = True
        r.failed_views += 1
        # It carries the replica's stable checkpoint (seq, digest) with its proof, and its prepared
        # certificates above it.
        certs = tuple((s, v, val, cert) for s, (v, val, cert) in sorted(r.prepared.items()))
        payload = (certs, r.stable_proof)
        r.last_view_change = Msg("view-change", r.idx, new_view, seq=r.stable, value=r.stable_digest, payload=payload)
        self.broadcast(r.last_view_change)
        self._cancel_timer()
        self._arm_timer()  # only if a quorum already asked for this view
        self._arm_status()

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

    def on_view_change(self, m: Msg) -> None:
        r = self.r
        if m.view < r.view:
            return
        self._hold(r.view_changes, "view-change", m.view, m)
        senders = set(r.view_changes[m.view])
        if m.view > r.view and self.s.is_weak(senders):
            self.start_view_change(m.view)
        if r.in_view_change and m.view == r.view:
            self._arm_timer()  # starts it once a quorum asked for this view
        if (
            self.leader(m.view) == r.idx
            and r.view == m.view
            and r.in_view_change
            and m.view not in r.new_view_msg
            and self.s.is_view_quorum(senders)
        ):
            vcs = dict(r.view_changes[m.view])
            proposals = self._proposals(vcs)
            # The NewView carries the new view's pre-prepares (PBFT's set O), each signed by the leader.
            pres = tuple(
                self.keys.sign(r.idx, Msg("pre-prepare", r.idx, m.view, seq, value)) for seq, value in proposals
            )
            r.new_view_msg[m.view] = Msg("new-view", r.idx, m.view, payload=(vcs, proposals, pres))
            self.broadcast(r.new_view_msg[m.view])

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

    def on_new_view(self, m: Msg) -> None:
        r = self.r
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
        if not r.in_view_change:
            self._close_view()
        r.busy, r.served = 0.0, 0
        r.view = m.view
        r.in_view_change = False
        low, digest, proof = self._low_proof(vcs)
        if low > r.stable:
            # Proven stable: state transfer brings the log up to it. New requests wait until the
            # NewView's own pre-prepares are in place (below), so none is given one of their numbers.
            self._advance_stable(low, digest, proof, propose=False)
        for pre, (seq, value) in zip(pres, proposals, strict=True):
            r.pre_prepared[(m.view, seq)] = value
            r.pre_prepare_msg[(m.view, seq)] = pre
            r.proposed.add((m.view, value))
            self.broadcast(Msg("prepare", r.idx, m.view, seq, value))
            self._check_prepared(m.view, seq, value)
        # Every committed sequence number above ``low`` is ≤ the last proposal (a correct replica of
        # the ViewChange quorum holds its prepared certificate), so new proposals continue right after.
        r.next_seq = max(low, proposals[-1][0] if proposals else 0) + 1
        self._propose_pending()
        if r.pending:
            self._arm_timer(restart=True)
        else:
            self._cancel_timer()
        early, r.future = r.future, []
        r.future_count.clear()
        for msg in early:
            self.dispatch(msg)
