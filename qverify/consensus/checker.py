"""An independent checker of BFT histories (Jepsen style): it sees only what replicas executed.

Inputs are the executed logs (replica → sequence number → value), the set of Byzantine replicas
and the client requests; nothing of a replica's internal state. The no-op value of view changes
and of duplicate requests is :data:`qverify.consensus.pbft.NULL`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

NOOP = "<null>"


@dataclass(frozen=True)
class History:
    """What a run left behind: per replica its executed log, who was Byzantine, what was asked."""

    executed: Mapping[int, Mapping[int, str]]
    byzantine: frozenset[int]
    requests: frozenset[str]

    @property
    def correct(self) -> list[int]:
        return sorted(i for i in self.executed if i not in self.byzantine)


@dataclass(frozen=True)
class Verdict:
    """Counts of each property's violations, and liveness counted at every correct replica.

    Attributes:
        agreement: sequence numbers where two correct replicas executed different values.
        exactly_once: (correct replica, request) pairs executed more than once.
        validity: values executed by a correct replica that no client requested.
        prefix: correct replicas whose log has a gap (a sequence number executed after a missing one).
        executed_by_all: requests executed by *every* correct replica.
        executed_by_any: requests executed by at least one correct replica.
    """

    agreement: int
    exactly_once: int
    validity: int
    prefix: int
    executed_by_all: int
    executed_by_any: int

    @property
    def violations(self) -> int:
        """All safety violations: agreement + exactly-once + validity + log gaps."""
        return self.agreement + self.exactly_once + self.validity + self.prefix

    @property
    def safe(self) -> bool:
        return self.violations == 0


def check(history: History) -> Verdict:
    """Check agreement, exactly-once, validity and log prefixes; count liveness.

    >>> h = History({0: {1: "a", 2: "b"}, 1: {1: "a"}, 2: {1: "c"}}, frozenset({2}), frozenset({"a", "b"}))
    >>> v = check(h)
    >>> v.safe, v.executed_by_all, v.executed_by_any
    (True, 1, 2)
    """
    by_seq: dict[int, set[str]] = defaultdict(set)
    twice = invalid = gaps = 0
    per_replica: list[set[str]] = []
    for i in history.correct:
        log = history.executed[i]
        for seq, value in log.items():
            by_seq[seq].add(value)
        counts = Counter(v for v in log.values() if v != NOOP)
        twice += sum(1 for c in counts.values() if c > 1)
        invalid += sum(1 for v in counts if v not in history.requests)
        gaps += int(bool(log) and sorted(log) != list(range(1, len(log) + 1)))
        per_replica.append(set(counts))
    agree = sum(1 for values in by_seq.values() if len(values) > 1)
    everyone = set.intersection(*per_replica) if per_replica else set()
    anyone = set.union(*per_replica) if per_replica else set()
    return Verdict(agree, twice, invalid, gaps, len(everyone & history.requests), len(anyone & history.requests))


def history_of(executed: Mapping[int, Mapping[int, str]], byzantine: Iterable[int], requests: Iterable[str]) -> History:
    """Build a :class:`History` from plain containers."""
    return History(executed, frozenset(byzantine), frozenset(requests))
