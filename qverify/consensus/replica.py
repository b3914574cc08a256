"""The state one weighted-PBFT replica keeps, the no-op value and the digest its checkpoints certify."""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from qverify.consensus.checker import NOOP
from qverify.consensus.encoding import log_digest
from qverify.consensus.netmodel import Msg

__all__ = ["NULL", "PreparedCert", "Replica", "log_digest"]

NULL = NOOP
"""Value proposed for a sequence number that a view change finds empty (the checker's no-op)."""


PreparedCert = tuple[Msg, tuple[Msg, ...]]
"""A prepared certificate: the leader's signed pre-prepare and the signed prepares of the others."""


@dataclass
class Replica:
    """State of one replica (honest logic; a Byzantine one is steered by its behaviour).

    Votes and checkpoints are kept as the signed messages themselves, so that the certificates a
    replica passes on (in ViewChanges, state transfer, forwarded commits) can be checked by anyone.
    """

    idx: int  # identity: who signs its messages
    slot: int = -1  # network address (a Byzantine identity's twin has a slot of its own)
    view: int = 0
    in_view_change: bool = False
    pre_prepared: dict[tuple[int, int], str] = field(default_factory=dict)
    pre_prepare_msg: dict[tuple[int, int], Msg] = field(default_factory=dict)  # the signed one adopted
    prepares: dict[tuple[int, int, str], dict[int, Msg]] = field(default_factory=lambda: defaultdict(dict))
    commits: dict[tuple[int, int, str], dict[int, Msg]] = field(default_factory=lambda: defaultdict(dict))
    sent_commit: set[tuple[int, int, str]] = field(default_factory=set)
    prepared: dict[int, tuple[int, str, PreparedCert]] = field(default_factory=dict)
    committed: dict[int, str] = field(default_factory=dict)
    commit_cert: dict[int, tuple[Msg, ...]] = field(default_factory=dict)  # the quorum of commits per seq
    executed: dict[int, str] = field(default_factory=dict)
    pending: dict[str, float] = field(default_factory=dict)
    next_seq: int = 1
    view_changes: dict[int, dict[int, Msg]] = field(default_factory=lambda: defaultdict(dict))
    checkpoints: dict[tuple[int, str], dict[int, Msg]] = field(default_factory=lambda: defaultdict(dict))
    stable: int = 0
    stable_digest: str = ""
    stable_proof: tuple[Msg, ...] = ()  # the checkpoint messages of a quorum for ``stable``
    timer_token: int = 0
    timer_active: bool = False
    timer_for: str | None = None  # the pending request the view-change timer runs for (PBFT §4.5.2)
    proposed: set[tuple[int, str]] = field(default_factory=set)
    new_view_accepted: set[int] = field(default_factory=set)
    failed_views: int = 0
    future: list[Msg] = field(default_factory=list)
    status_token: int = 0
    status_active: bool = False
    last_view_change: Msg | None = None  # retransmitted while the view change lasts
    future_count: Counter[int] = field(default_factory=Counter)  # early messages held per sender
    held: dict[tuple[str, int], deque[Any]] = field(
        default_factory=lambda: defaultdict(deque)
    )  # (store, sender) → keys, oldest first
    dropped: Counter[str] = field(default_factory=Counter)  # messages dropped, by reason
    busy: float = 0.0  # time waited for requests in the current view (leader monitor)
    served: int = 0  # requests executed in the current view (leader monitor)
    last_tick: float = 0.0
    rates: list[float] = field(default_factory=list)  # measured rates of recent views, newest last
    monitor_view_changes: int = 0  # view changes this replica asked for because the leader was slow
    new_view_msg: dict[int, Msg] = field(default_factory=dict)  # as leader: the NewView it sent per view (at most one)
