"""A replica's protocol logic on its own (qverify.consensus.node): one input in, the effects out,
nothing else touched; and a new attack written as a small subclass, run by the event loop."""

from __future__ import annotations

import copy

import numpy as np

from qverify.consensus.adversaries import Collusion, node_for
from qverify.consensus.checker import History, check
from qverify.consensus.netmodel import Behaviour, Msg, NetConfig
from qverify.consensus.node import Context, Executed, Node, Send, Timer
from qverify.consensus.pbft import Simulation
from qverify.consensus.quorum import Schedule
from qverify.consensus.signing import Keyring
from qverify.consensus.weights import WeightVector

SCHEDULE = Schedule((WeightVector(0, (1, 1, 1, 1), f=1),))


def _node(slot: int = 1) -> tuple[Node, Keyring]:
    keys = Keyring.generate(4, "ideal")
    ctx = Context(SCHEDULE, keys, frozenset({"a"}), (0, 1, 2, 3), timeout=20.0, status_interval=10.0)
    return Node(ctx, slot), keys


def test_handlers_return_their_effects_and_touch_nothing_else():
    node, keys = _node()
    eff = node.request("a", now=0.0)
    assert {e.kind for e in eff if isinstance(e, Timer)} == {"view", "status"}  # it waits for "a"
    pre = keys.sign(0, Msg("pre-prepare", 0, 0, 1, "a"))
    before = copy.copy(pre.__dict__)
    eff = node.deliver(pre, now=1.0)
    assert pre.__dict__ == before  # the message it was given is unchanged
    sends = [e for e in eff if isinstance(e, Send)]
    assert [(e.msg.kind, e.msg.sender, e.msg.value, e.dsts) for e in sends] == [("prepare", 1, "a", (0, 1, 2, 3))]
    assert not sends[0].msg.sig  # the loop signs what a node sends
    # Prepares of 1 and 2 (+ the leader) weigh a quorum: it commits; commits of a quorum: it executes.
    eff = [e for i in (1, 2) for e in node.deliver(keys.sign(i, Msg("prepare", i, 0, 1, "a")), now=2.0)]
    assert [e.msg.kind for e in eff if isinstance(e, Send)] == ["commit"]
    eff = [e for i in (0, 1, 2) for e in node.deliver(keys.sign(i, Msg("commit", i, 0, 1, "a")), now=3.0)]
    assert Executed("a") in eff and node.r.executed == {1: "a"}


def test_a_new_attack_is_a_small_subclass():
    # An attack the library does not ship: a leader that proposes every request twice, at two
    # sequence numbers. Exactly-once execution must make the second a no-op at every correct replica.
    class DoubleProposer(Node):
        def propose(self, value: str) -> None:
            super().propose(value)
            r = self.r
            r.proposed.discard((r.view, value))
            super().propose(value)

    def factory(ctx: Context, slot: int, behaviour: Behaviour | None, collusion: Collusion) -> Node:
        return DoubleProposer(ctx, slot) if slot == 0 else node_for(ctx, slot, behaviour, collusion)

    sim = Simulation(SCHEDULE, {0: Behaviour()}, NetConfig(), np.random.default_rng(0), node_factory=factory)
    for i in range(5):
        sim.request(f"r{i}", float(i))
    sim.run(until=500.0)
    v = check(History({r.idx: dict(r.executed) for r in sim.replicas}, frozenset({0}), frozenset(sim.requests)))
    assert v.safe and v.executed_by_all == 5
    assert sum(len(sim.replicas[i].executed) for i in (1, 2, 3)) == 3 * 10  # each request twice, once a no-op
