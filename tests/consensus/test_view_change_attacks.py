"""Attacks on the view change itself, judged by the independent checker (not the replicas' counters).

Each test drives a Byzantine replica by hand through the simulator: it may send any message it can
sign (its own) and replay or relabel messages it received, which is exactly what the fault model
allows. Castro–Liskov (OSDI 1999, §4.4) is the reference for what a correct replica must refuse.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np
import pytest

from qverify.consensus.checker import NOOP, History, check
from qverify.consensus.pbft import NULL, Behaviour, Msg, NetConfig, Partition, Schedule, Simulation
from qverify.consensus.weights import WeightVector

EQUAL4 = Schedule((WeightVector(0, (1, 1, 1, 1), f=1),))


def _verdict(sim: Simulation) -> object:
    return check(History({r.idx: dict(r.executed) for r in sim.replicas}, frozenset(sim.byz), frozenset(sim.requests)))


def _inject(sim: Simulation, src: int, msg: Msg, at: float, to: range | list[int] | None = None) -> None:
    """The Byzantine replica ``src`` delivers ``msg`` (signed by itself) directly, whatever its flags."""
    assert msg.sender == src  # it can only sign as itself
    if msg.kind == "view-change":
        sim.view_changes_sent.add((src, msg.view, msg.payload))
    sim.sent.add((src, msg.kind, msg.view, msg.seq, msg.value))
    for dst in to if to is not None else range(sim.n):
        heapq.heappush(sim.queue, (at, next(sim.counter), dst, msg))


def _cut_off_replica_3_then_view_change() -> Simulation:
    """Replicas 0–2 execute "a" at seq 1 while 3 is cut off; then everyone moves to view 1, whose
    leader (replica 1) is Byzantine: it sends an empty ViewChange of its own, then goes quiet."""
    net = NetConfig(partitions=(Partition(0.0, 25.0, (frozenset({0, 1, 2}), frozenset({3}))),), timeout=1e6)
    sim = Simulation(EQUAL4, {1: Behaviour(silent=True, active_from=26.0)}, net, np.random.default_rng(0))
    sim.request("a", 0.0)
    sim.run(until=24.0)
    assert all(sim.replicas[i].executed.get(1) == "a" for i in (0, 1, 2)) and not sim.replicas[3].executed
    sim.now = 25.0
    # Its own ViewChange hides the certificate it holds for "a" (it may sign anything as itself).
    sim.broadcast(1, Msg("view-change", 1, 1, payload=()))
    sim.now = 30.0
    for i in (0, 2, 3):
        sim.start_view_change(sim.replicas[i], 1)
    sim.request("b", 30.0)
    sim.run(until=60.0)
    return sim


@pytest.mark.parametrize("attack", ["relabelled", "forged", "old_view"])
def test_new_view_with_a_doctored_view_change_set_is_refused(attack):
    # Issue items 2–3: a NewView whose ViewChange set omits the certificate of "a" (committed at
    # seq 1) would let the leader re-propose seq 1 with "b"; replica 3, cut off, would execute it.
    sim = _cut_off_replica_3_then_view_change()
    leader = sim.replicas[1]
    vc1, vc3 = leader.view_changes[1][1], leader.view_changes[1][3]
    if attack == "relabelled":  # replica 3's ViewChange listed under replica 0 as well
        vcs = {1: vc1, 3: vc3, 0: vc3}
    elif attack == "forged":  # a ViewChange "from" replica 0 that replica 0 never signed
        vcs = {1: vc1, 3: vc3, 0: Msg("view-change", 0, 1, payload=())}
    else:  # replica 0's genuine ViewChange of an older view, replayed
        sim.view_changes_sent.add((0, 0, ()))
        vcs = {1: vc1, 3: vc3, 0: Msg("view-change", 0, 0, payload=())}
    proposals = sim._proposals(vcs)
    assert proposals == ()  # the doctored set indeed hides "a"
    _inject(sim, 1, Msg("new-view", 1, 1, payload=(vcs, proposals)), at=61.0)
    _inject(sim, 1, Msg("pre-prepare", 1, 1, 1, "b"), at=62.0)
    sim.run(until=200.0)
    v = _verdict(sim)
    assert v.safe, v
    assert all(r.view == 1 and r.in_view_change for r in sim.replicas if r.idx != 1)  # NewView refused


def test_a_genuine_new_view_is_still_accepted():
    # The same run with the leader's honest NewView: everybody enters view 1 and nothing forks.
    sim = _cut_off_replica_3_then_view_change()
    leader = sim.replicas[1]
    vcs = dict(leader.view_changes[1])
    proposals = sim._proposals(vcs)
    assert proposals == ((1, "a"),)
    _inject(sim, 1, Msg("new-view", 1, 1, payload=(vcs, proposals)), at=61.0)
    sim.run(until=200.0)
    assert all(not sim.replicas[i].in_view_change for i in (0, 2, 3))
    assert sim.replicas[3].executed.get(1) == "a"
    assert _verdict(sim).safe


def test_second_new_view_for_the_same_view_is_ignored():
    # Issue item 1: two NewViews for view 1, each from a genuine ViewChange quorum but with
    # different proposals. A replica adopts the first and never prepares the second's values.
    sim = Simulation(EQUAL4, {1: Behaviour()}, NetConfig(timeout=1e6), np.random.default_rng(1))
    sim.requests.update({"a", "b"})
    # Replica 0 holds a genuine prepared certificate for "a" at seq 1 in view 0.
    sim.sent.update({(0, "pre-prepare", 0, 1, "a"), (0, "prepare", 0, 1, "a"), (2, "prepare", 0, 1, "a")})
    sim.sent.add((1, "prepare", 0, 1, "a"))
    certs = {0: ((1, 0, "a"),), 1: (), 2: (), 3: ()}
    vcs = {}
    for i, c in certs.items():
        msg = Msg("view-change", i, 1, payload=c)
        sim.view_changes_sent.add((i, 1, c))
        sim.sent.add((i, "view-change", 1, 0, ""))  # each was really sent by its signer
        vcs[i] = msg
    set_a = {i: vcs[i] for i in (0, 1, 2)}
    set_b = {i: vcs[i] for i in (1, 2, 3)}
    nv_a = Msg("new-view", 1, 1, payload=(set_a, sim._proposals(set_a)))
    nv_b = Msg("new-view", 1, 1, payload=(set_b, sim._proposals(set_b)))
    assert sim._proposals(set_a) == ((1, "a"),) and sim._proposals(set_b) == ()
    r2 = sim.replicas[2]
    sim.start_view_change(r2, 1)
    sim.on_new_view(r2, nv_a)
    assert r2.pre_prepared[(1, 1)] == "a" and not r2.in_view_change
    sim.on_new_view(r2, nv_b)
    assert r2.pre_prepared[(1, 1)] == "a" and 1 in r2.new_view_accepted
    # and it never sent a prepare for anything but "a" in view 1
    assert not any(k == (2, "prepare", 1, 1, v) for k in sim.sent for v in ("b", NULL))


def test_request_proposed_twice_takes_effect_once():
    # Issue item 4: a leader that proposes one request at two sequence numbers. Execution is
    # exactly-once (PBFT §4.1): the second becomes a no-op at every correct replica.
    sim = Simulation(EQUAL4, {0: Behaviour()}, NetConfig(timeout=1e6), np.random.default_rng(2))
    sim.request("a", 0.0)
    _inject(sim, 0, Msg("pre-prepare", 0, 0, 2, "a"), at=0.5)
    sim.run(until=100.0)
    v = _verdict(sim)
    assert v.safe and v.executed_by_all == 1, v
    for i in (1, 2, 3):
        assert sim.replicas[i].executed == {1: "a", 2: NULL}


def test_messages_signed_as_another_replica_are_dropped():
    sim = Simulation(EQUAL4, {1: Behaviour()}, NetConfig(timeout=1e6), np.random.default_rng(3))
    sim.send(1, 2, Msg("prepare", 0, 0, 1, "x"))  # replica 1 pretending to be replica 0
    assert not sim.queue and (0, "prepare", 0, 1, "x") not in sim.sent


def test_checker_noop_is_the_protocol_noop():
    assert NOOP == NULL


def test_random_new_view_attacks_never_fork():
    # A small generator: the Byzantine leader of view 1 builds NewViews from every subset of the
    # ViewChanges it holds, relabels them under every sender, replays them, and follows each with
    # pre-prepares of fresh and old requests at low sequence numbers. Over all of them, the checker
    # must find no violation among the correct replicas.
    base = _cut_off_replica_3_then_view_change()
    received = base.replicas[1].view_changes[1]
    tried = 0
    for k in (2, 3, 4):
        for chosen in itertools.combinations(sorted(received), k):
            for labels in itertools.permutations(range(4), k):
                sim = _cut_off_replica_3_then_view_change()
                vcs = {lab: sim.replicas[1].view_changes[1][src] for lab, src in zip(labels, chosen, strict=True)}
                _inject(sim, 1, Msg("new-view", 1, 1, payload=(vcs, sim._proposals(vcs))), at=61.0)
                for seq, value in ((1, "b"), (2, "b"), (1, "a"), (2, "a")):
                    _inject(sim, 1, Msg("pre-prepare", 1, 1, seq, value), at=62.0 + seq)
                sim.run(until=150.0)
                v = _verdict(sim)
                assert v.safe, (chosen, labels, v)
                tried += 1
    assert tried > 50
