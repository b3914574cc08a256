"""Bounded memory per sender, and replicas that never fail on what the network brings (issue 31,
observation 4: a Byzantine replica's 12,000 junk messages were all still held at the end)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.consensus.checker import check, history_of
from qverify.consensus.committee import tolerated
from qverify.consensus.netmodel import Behaviour, Msg, NetConfig
from qverify.consensus.node import BUFFER_FACTOR, Context, Node
from qverify.consensus.pbft import Simulation
from qverify.consensus.quorum import Schedule
from qverify.consensus.replica import Replica
from qverify.consensus.signing import Keyring
from qverify.consensus.weights import WeightVector

WINDOW = 20


def held_from(r: Replica, sender: int) -> int:
    """Messages of ``sender`` a replica holds in its five stores."""
    stores = (r.prepares, r.commits, r.checkpoints, r.view_changes)
    return sum(sender in v for s in stores for v in s.values()) + sum(m.sender == sender for m in r.future)


@pytest.mark.parametrize("n", [4, 7])
def test_a_flood_is_held_within_the_cap_and_the_protocol_stays_live(n):
    f = tolerated(n)
    flooder = n - 1
    schedule = Schedule((WeightVector(0, (1,) * n, f),), checkpoint_interval=5, window=WINDOW)
    sim = Simulation(
        schedule, {flooder: Behaviour(flood=20)}, NetConfig(0.5, 1.5), np.random.default_rng(n), signatures="ideal"
    )
    reqs = [(1.0 * i, f"r{i}") for i in range(40)]
    for t, v in reqs:
        sim.request(v, t)
    cap = 5 * BUFFER_FACTOR * WINDOW
    peak = 0
    for until in range(20, 301, 20):
        sim.run(until=float(until))
        peak = max(peak, *(held_from(r, flooder) for r in sim.replicas[: n - 1]))
    junk = sim.nodes[flooder].sent_junk
    assert junk > 20 * cap  # the cap is what bounds it, not a small flood
    assert peak <= cap, (peak, cap)
    verdict = check(history_of({r.idx: dict(r.executed) for r in sim.replicas}, {flooder}, [v for _t, v in reqs]))
    assert verdict.safe and verdict.executed_by_all == len(reqs), verdict
    dropped = sim.replicas[0].dropped
    assert dropped["malformed"] > 0 and dropped["window"] > 0 and dropped["evicted"] > 0


junk_field = st.one_of(
    st.none(), st.integers(-5, 10**12), st.text(max_size=5), st.binary(max_size=3), st.floats(), st.booleans(),
    st.tuples(st.integers(), st.text(max_size=2)), st.just(()), st.just(((), ())), st.dictionaries(st.integers(0, 5), st.none()),
)  # fmt: skip
kinds = st.sampled_from(
    ["pre-prepare", "prepare", "commit", "checkpoint", "view-change", "new-view", "status", "commit-cert", "state", "?"]
)


@settings(max_examples=200, deadline=None)
@given(kinds, st.integers(-1, 5) | junk_field, junk_field, junk_field, junk_field, junk_field)
def test_a_replica_never_fails_on_a_malformed_message(kind, sender, view, seq, value, payload):
    n = 4
    keys = Keyring.generate(n, "ideal")
    ctx = Context(Schedule((WeightVector(0, (1,) * n, 1),)), keys, {"a"}, tuple(range(n)), 20.0, 10.0)
    node = Node(ctx, 0)
    m = Msg(kind, sender, view, seq, value, payload)
    node.deliver(m, 1.0)  # must not raise
    node.deliver(Msg(kind, 1, 0, 1, "a", payload), 2.0)
    assert sum(node.r.dropped.values()) >= 0


def test_the_loop_drops_and_counts_what_is_not_a_message():
    sim = Simulation(Schedule((WeightVector(0, (1,) * 4, 1),)), {}, NetConfig(), np.random.default_rng(0))
    for junk in (None, 3, "prepare", Msg("prepare", 2, sig=b"x" * 64), Msg(7, 1)):  # type: ignore[arg-type]
        sim.handle(0, junk)  # type: ignore[arg-type]
    assert sim.replicas[0].dropped["malformed"] == 4 and sim.replicas[0].dropped["unverified"] == 1
