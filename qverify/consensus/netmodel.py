"""What the weighted-PBFT simulator's world is made of: messages, the network model (delays, drops,
partitions) and how a Byzantine replica may deviate. Times are in units of one nominal message delay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qverify.errors import ParameterError


@dataclass(frozen=True)
class Partition:
    """During ``[start, end)`` messages cross between ``groups`` only inside a group."""

    start: float
    end: float
    groups: tuple[frozenset[int], ...]

    def blocks(self, t: float, a: int, b: int) -> bool:
        if not self.start <= t < self.end:
            return False
        return not any(a in g and b in g for g in self.groups)


@dataclass(frozen=True)
class LeaderMonitor:
    """Aardvark-style monitoring of the leader's throughput (Clement et al., NSDI 2009, §4.3).

    Each replica measures, in the current view, the requests it executed per unit of *busy* time
    (time during which it waited for at least one request). Once it has been busy ``grace_timeouts``
    view-change timeouts in the view, it asks for the next view when that rate is below
    ``max(floor_rate, fraction × best rate of the last n views)`` (the views whose leader it measured
    for at least half the grace). A leader that paces its proposals just under the timeout is thus
    replaced although the view-change timer alone never fires. ``floor_rate`` (requests per time
    unit) is the rate any leader must reach before there is history; a correct leader executes a
    lone request in about three message delays (rate ≈ 1/3 at unit delays), well above the default.

    Attributes:
        fraction: the share of recent views' best rate a leader must sustain, in (0, 1].
        floor_rate: requests per time unit required with no history, ≥ 0.
        grace_timeouts: busy time measured before judging, in view-change timeouts, > 0.
    """

    fraction: float = 0.5
    floor_rate: float = 0.2
    grace_timeouts: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ParameterError("monitor.fraction", self.fraction, "(0, 1]")
        if not self.floor_rate >= 0:
            raise ParameterError("monitor.floor_rate", self.floor_rate, "[0, inf)")
        if not self.grace_timeouts > 0:
            raise ParameterError("monitor.grace_timeouts", self.grace_timeouts, "(0, inf)")


@dataclass(frozen=True)
class NetConfig:
    """Network model (times in units of one nominal message delay).

    Attributes:
        delay_min, delay_max: uniform one-way delay range, ``0 < delay_min ≤ delay_max``.
        drop_prob: probability a message is lost, in [0, 1).
        partitions: partitions in force at given times.
        timeout: base view-change timeout; view v waits ``timeout·2^(v − v0)``.
        status_interval: a replica waiting to execute a request broadcasts its status (view, last
            executed sequence number) this often; replicas ahead of it answer with what it lacks.
        monitor: the leader-throughput monitor (:class:`LeaderMonitor`); None turns it off.
    """

    delay_min: float = 1.0
    delay_max: float = 1.0
    drop_prob: float = 0.0
    partitions: tuple[Partition, ...] = ()
    timeout: float = 20.0
    status_interval: float = 10.0
    monitor: LeaderMonitor | None = LeaderMonitor()

    def __post_init__(self) -> None:
        if not 0 < self.delay_min <= self.delay_max:
            raise ParameterError("delay_min", self.delay_min, f"(0, delay_max = {self.delay_max}]")
        if not 0 <= self.drop_prob < 1:
            raise ParameterError("drop_prob", self.drop_prob, "[0, 1)")
        if self.timeout <= 0:
            raise ParameterError("timeout", self.timeout, "(0, inf)")
        if not self.status_interval > 0:
            raise ParameterError("status_interval", self.status_interval, "(0, inf)")


@dataclass(frozen=True, eq=False)
class Msg:
    """One protocol message. ``kind`` ∈ pre-prepare, prepare, commit, checkpoint, view-change,
    new-view, status, state, commit-cert, request; ``sig`` is the sender's Ed25519 signature over
    the other fields (:mod:`qverify.consensus.signing`; client requests carry none).

    Payloads: view-change ``(prepared, proof)`` with ``prepared`` a tuple of
    ``(seq, view, value, (pre-prepare, prepares))`` certificates and ``proof`` the checkpoint
    messages of a quorum for its (seq, value = digest); new-view ``(view-changes by signer,
    proposals, pre-prepares)``; state ``(log, proof)``; commit-cert the commits of a quorum; status
    whether the sender is changing view.
    """

    kind: str
    sender: int
    view: int = 0
    seq: int = 0
    value: str = ""
    payload: Any = None
    sig: bytes = b""


@dataclass
class Behaviour:
    """How a Byzantine replica deviates (all default to honest).

    Attributes:
        silent: send nothing (from ``active_from`` on).
        equivocate: as leader, propose different values to the two halves of the replicas; as a
            voter, vote for every value it sees, to everyone.
        extra_delay: added to every message it sends.
        duplicate: send every message this many times.
        active_from: time at which the deviation starts (sleepers); before, it acts honestly.
        amnesia_at: time at which it forgets its log and then votes again for anything it sees.
        pace: as leader, propose one request every ``pace`` time units (0: at once).
        churn: as leader, propose no new request and re-propose an executed one (a no-op) every
            ``churn`` time units (0: never).
        censor: as leader, never propose these requests.
        flood: junk messages it sends each time it receives one (malformed, out of its window,
            unverifiable), to every replica.
    """

    silent: bool = False
    equivocate: bool = False
    extra_delay: float = 0.0
    duplicate: int = 1
    active_from: float = 0.0
    amnesia_at: float | None = None
    pace: float = 0.0
    churn: float = 0.0
    censor: frozenset[str] = frozenset()
    flood: int = 0
