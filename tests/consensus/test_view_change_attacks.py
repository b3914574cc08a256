"""Attacks on the view change itself, judged by the independent checker (not the replicas' counters).

Each test drives a Byzantine replica by hand through the simulator: it may send any message it can
sign (its own) and replay or relabel messages it received, which is exactly what the fault model
allows. Castro–Liskov (OSDI 1999, §4.4) is the reference for what a correct replica must refuse.
"""

from __future__ import annotations

import dataclasses
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
    msg = sim.sign(src, msg)
    for dst in to if to is not None else range(sim.n):
        heapq.heappush(sim.queue, (at, next(sim.counter), dst, msg))


def _new_view(sim: Simulation, leader: int, view: int, vcs: dict) -> Msg:
    """A NewView built by ``leader`` from ``vcs``, with its own signed pre-prepares of the proposals."""
    proposals = sim._proposals(vcs)
    pres = tuple(sim.sign(leader, Msg("pre-prepare", leader, view, seq, value)) for seq, value in proposals)
    return Msg("new-view", leader, view, payload=(vcs, proposals, pres))


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
    sim.broadcast(1, Msg("view-change", 1, 1, payload=((), ())))
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
        vcs = {1: vc1, 3: vc3, 0: Msg("view-change", 0, 1, payload=((), ()), sig=vc1.sig)}
    else:  # replica 0's genuine ViewChange of an older view (signed by it back then), replayed
        vcs = {1: vc1, 3: vc3, 0: sim.sign(0, Msg("view-change", 0, 0, payload=((), ())))}
    assert sim._proposals(vcs) == ()  # the doctored set indeed hides "a"
    _inject(sim, 1, _new_view(sim, 1, 1, vcs), at=61.0)
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
    assert sim._proposals(vcs) == ((1, "a"),)
    _inject(sim, 1, _new_view(sim, 1, 1, vcs), at=61.0)
    sim.run(until=200.0)
    assert all(not sim.replicas[i].in_view_change for i in (0, 2, 3))
    assert sim.replicas[3].executed.get(1) == "a"
    assert _verdict(sim).safe


def test_second_new_view_for_the_same_view_is_ignored():
    # Issue item 1: two NewViews for view 1, each from a genuine ViewChange quorum but with
    # different proposals. A replica adopts the first and never prepares the second's values.
    sim = Simulation(EQUAL4, {1: Behaviour()}, NetConfig(timeout=1e6), np.random.default_rng(1))
    sim.requests.update({"a", "b"})
    # Replica 0 holds a genuine prepared certificate for "a" at seq 1 in view 0: the leader's signed
    # pre-prepare and signed prepares of 0, 1 and 2.
    pre = sim.sign(0, Msg("pre-prepare", 0, 0, 1, "a"))
    prepares = tuple(sim.sign(i, Msg("prepare", i, 0, 1, "a")) for i in (0, 1, 2))
    certs = {0: ((1, 0, "a", (pre, prepares)),), 1: (), 2: (), 3: ()}
    vcs = {i: sim.sign(i, Msg("view-change", i, 1, payload=(c, ()))) for i, c in certs.items()}
    set_a = {i: vcs[i] for i in (0, 1, 2)}
    set_b = {i: vcs[i] for i in (1, 2, 3)}
    nv_a = sim.sign(1, _new_view(sim, 1, 1, set_a))
    nv_b = sim.sign(1, _new_view(sim, 1, 1, set_b))
    assert sim._proposals(set_a) == ((1, "a"),) and sim._proposals(set_b) == ()
    r2 = sim.replicas[2]
    sim.start_view_change(r2, 1)
    sim.on_new_view(r2, nv_a)
    assert r2.pre_prepared[(1, 1)] == "a" and not r2.in_view_change
    sim.on_new_view(r2, nv_b)
    assert r2.pre_prepared[(1, 1)] == "a" and 1 in r2.new_view_accepted
    # and it never sent a prepare for anything but "a" in view 1
    sent = [m for *_rest, m in sim.queue if m.kind == "prepare" and m.sender == 2 and m.view == 1]
    assert sent and all(m.value == "a" for m in sent)


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
    sim.requests.add("x")
    sim.send(1, 2, Msg("prepare", 0, 0, 1, "x"))  # replica 1 pretending to be replica 0: it cannot sign
    assert not sim.queue
    # Its own signature under replica 0's name, or replica 0's signature moved to another value or
    # view, fails verification at the receiver.
    own = sim.sign(1, Msg("prepare", 1, 0, 1, "x"))
    genuine = sim.sign(0, Msg("prepare", 0, 0, 1, "y"))
    for forged in (
        dataclasses.replace(own, sender=0),
        dataclasses.replace(genuine, value="x"),
        dataclasses.replace(genuine, view=1),
    ):
        heapq.heappush(sim.queue, (1.0, next(sim.counter), 2, forged))
    sim.run(until=10.0)
    assert not any(sim.replicas[2].prepares.values())


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
                _inject(sim, 1, _new_view(sim, 1, 1, vcs), at=61.0)
                for seq, value in ((1, "b"), (2, "b"), (1, "a"), (2, "a")):
                    _inject(sim, 1, Msg("pre-prepare", 1, 1, seq, value), at=62.0 + seq)
                sim.run(until=150.0)
                v = _verdict(sim)
                assert v.safe, (chosen, labels, v)
                tried += 1
    assert tried > 50


def test_forged_prepared_certificate_in_a_view_change_is_ignored():
    # The Byzantine leader of view 1 puts into its own ViewChange a certificate for "b" at seq 1 in
    # view 1 (above the genuine view-0 certificate of "a"): its pre-prepare is genuinely its own, but
    # the prepares "of" replicas 0 and 2 are its own prepare relabelled. Accepted, the new view
    # would re-propose seq 1 with "b" and the cut-off replica 3 would execute it against "a".
    sim = _cut_off_replica_3_then_view_change()
    sim.requests.add("b")
    pre = sim.sign(1, Msg("pre-prepare", 1, 1, 1, "b"))
    own = sim.sign(1, Msg("prepare", 1, 1, 1, "b"))
    relabelled = tuple(dataclasses.replace(own, sender=i) for i in (0, 2))
    cert = (1, 1, "b", (pre, (own, *relabelled)))
    vcs = dict(sim.replicas[1].view_changes[1])
    vcs[1] = sim.sign(1, Msg("view-change", 1, 1, payload=((cert,), ())))
    assert sim._proposals(vcs) == ((1, "a"),)  # the forged certificate does not count
    _inject(sim, 1, _new_view(sim, 1, 1, vcs), at=61.0)
    sim.run(until=200.0)
    assert sim.replicas[3].executed.get(1) == "a"
    assert _verdict(sim).safe


@pytest.mark.parametrize("scenario", ["equivocating_leader", "amnesia", "partition"])
def test_ideal_and_ed25519_signatures_give_the_same_history(scenario):
    # Signing draws nothing from the simulation's random stream and both schemes accept exactly the
    # validly signed messages, so a run's history does not depend on the scheme: what experiments
    # measure with ideal signatures is what Ed25519 would give.
    from qverify.consensus.pbft import simulate
    from qverify.consensus.scenarios import build

    schedule, requests, byzantine, net = build(scenario, 7, 2, seed=5, rounds=30)
    given = {i: dataclasses.asdict(b) for i, b in byzantine.items()}
    runs = [simulate(schedule, requests, byzantine, net, seed=5, signatures=s) for s in ("ed25519", "ideal")]
    assert {i: dataclasses.asdict(b) for i, b in byzantine.items()} == given  # the caller's objects untouched
    assert runs[0].executed == runs[1].executed
    assert runs[0].messages == runs[1].messages and runs[0].decide_time == runs[1].decide_time
