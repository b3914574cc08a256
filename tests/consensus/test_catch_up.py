"""Retransmission, state transfer and watermarks (Castro–Liskov §4.3 and the status protocol of
Castro's thesis), judged by the independent checker: liveness counts requests executed by *every*
correct replica, and the attacks on the new messages must change nothing a correct replica executes."""

from __future__ import annotations

import heapq

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.consensus.checker import History, check
from qverify.consensus.pbft import (
    Behaviour,
    Msg,
    NetConfig,
    Partition,
    Schedule,
    Simulation,
    log_digest,
)
from qverify.consensus.weights import WeightVector
from qverify.errors import ParameterError


def _schedule(n: int, f: int, **kw) -> Schedule:
    return Schedule((WeightVector(0, (1,) * n, f=f),), **kw)


def _verdict(sim: Simulation):
    return check(History({r.idx: dict(r.executed) for r in sim.replicas}, frozenset(sim.byz), frozenset(sim.requests)))


def _inject(sim: Simulation, src: int, msg: Msg, at: float, to: list[int]) -> None:
    """Byzantine ``src`` delivers a message it signed itself, bypassing its behaviour flags."""
    assert msg.sender == src
    msg = sim.sign(src, msg)
    for dst in to:
        heapq.heappush(sim.queue, (at, next(sim.counter), dst, msg))


@given(seed=st.integers(0, 10_000), drop=st.sampled_from([0.02, 0.05, 0.1]), size=st.sampled_from([(4, 1), (7, 2)]))
@settings(max_examples=12, deadline=None)
def test_lossy_network_every_request_reaches_every_correct_replica(seed, drop, size):
    # Issue #14 item 5 observed 267 of 400 requests executed by all correct replicas at 2 % drops:
    # with retransmission (status → commits) every request must reach every correct replica.
    n, f = size
    sim = Simulation(_schedule(n, f), {}, NetConfig(0.5, 1.5, drop_prob=drop), np.random.default_rng(seed))
    for i in range(120):
        sim.request(f"r{i}", 0.2 * i)
    sim.run(until=50_000.0)
    v = _verdict(sim)
    assert v.safe and v.executed_by_all == 120, (v, seed, drop, size)


@given(seed=st.integers(0, 10_000), size=st.sampled_from([(4, 1), (7, 2)]))
@settings(max_examples=12, deadline=None)
def test_heavy_loss_view_changes_still_converge(seed, size):
    # At 20 % loss ViewChanges and NewViews get lost too. Before they were retransmitted (and before
    # the view-change timer waited for a quorum of ViewChanges), 25 of 100 seeds at n = 7 left a
    # request short of some correct replica (bench/bench_pbft_loss.py).
    n, f = size
    sim = Simulation(_schedule(n, f), {}, NetConfig(0.5, 1.5, drop_prob=0.2), np.random.default_rng(seed))
    for i in range(120):
        sim.request(f"r{i}", 0.2 * i)
    sim.run(until=50_000.0)
    v = _verdict(sim)
    assert v.safe and v.executed_by_all == 120, (v, seed, size)


def test_a_replica_cut_off_does_not_race_ahead_in_views():
    # Replica 3 hears nothing for 600 delays while holding a request. Its timer expires and it asks
    # for view 1, but no quorum joins it, so it must wait there (PBFT §4.5.2) rather than climb one
    # view per timeout (20, 40, 80, 160, 320 delays: view 5 by t = 600).
    others = frozenset({0, 1, 2})
    cut = Partition(0.0, 600.0, (others, frozenset({3})))
    sim = Simulation(_schedule(4, 1), {}, NetConfig(0.5, 1.5, partitions=(cut,)), np.random.default_rng(0))
    sim.request("a", 0.0, slots=[3])
    for i in range(30):
        sim.request(f"r{i}", 1.0 + i)
    sim.run(until=590.0)
    assert sim.replicas[3].view == 1 and sim.replicas[3].in_view_change
    assert all(sim.replicas[i].view == 0 for i in others)
    sim.run(until=5_000.0)
    v = _verdict(sim)
    assert v.safe and v.executed_by_all == 30  # "a" reached only the cut-off replica


def test_replica_cut_off_past_garbage_collection_catches_up_by_state_transfer():
    # Replica 3 misses the first 60 requests; the others checkpoint and collect their logs, so the
    # commits it missed no longer exist anywhere: it must adopt a certified checkpoint state.
    net = NetConfig(partitions=(Partition(0.0, 200.0, (frozenset({0, 1, 2}), frozenset({3}))),), timeout=1e6)
    sim = Simulation(_schedule(4, 1), {}, net, np.random.default_rng(0))
    for i in range(60):
        sim.request(f"r{i}", 0.5 * i)
    sim.run(until=199.0)
    assert len(sim.replicas[0].executed) == 60 and not sim.replicas[3].executed
    assert sim.replicas[0].stable == 60 and not sim.replicas[0].committed  # collected below the checkpoint
    sim.run(until=400.0)
    r3 = sim.replicas[3]
    assert r3.executed == sim.replicas[0].executed and r3.stable == 60
    assert _verdict(sim).safe and _verdict(sim).executed_by_all == 60


def test_doctored_state_from_a_byzantine_replica_is_refused():
    # Replica 1 is Byzantine: it answers the lagging replica 3 first, with a state whose log swaps
    # two requests (digest of the doctored log) and with the honest digest over a doctored log.
    net = NetConfig(partitions=(Partition(0.0, 200.0, (frozenset({0, 1, 2}), frozenset({3}))),), timeout=1e6)
    sim = Simulation(_schedule(4, 1), {1: Behaviour()}, net, np.random.default_rng(1))
    for i in range(20):
        sim.request(f"r{i}", 0.5 * i)
    sim.run(until=199.0)
    honest = tuple(sim.replicas[0].executed[k] for k in range(1, 21))
    doctored = (honest[1], honest[0], *honest[2:])
    # It holds a genuine proof (a quorum of signed checkpoints) for the honest log and attaches it.
    proof = sim.replicas[1].stable_proof
    assert sim.replicas[1].stable == 20 and proof
    _inject(sim, 1, Msg("state", 1, seq=20, value=log_digest(doctored), payload=(doctored, proof)), 200.0, [3])
    _inject(sim, 1, Msg("state", 1, seq=20, value=log_digest(honest), payload=(doctored, proof)), 200.0, [3])
    sim.run(until=200.5)
    assert not sim.replicas[3].executed  # both refused
    sim.run(until=400.0)
    assert sim.replicas[3].executed == sim.replicas[0].executed
    assert _verdict(sim).safe


def test_a_leader_that_jumps_the_sequence_number_cannot_stall_the_run():
    # Issue #14 item 5: a leader jumping the sequence number by 10⁴. Watermarks refuse the
    # pre-prepare; the timeout replaces the leader; nothing is padded with 10⁴ no-ops.
    sim = Simulation(_schedule(4, 1), {0: Behaviour(silent=True)}, NetConfig(timeout=20.0), np.random.default_rng(2))
    for i in range(5):
        sim.request(f"r{i}", 0.0)
    _inject(sim, 0, Msg("pre-prepare", 0, 0, 10_001, "r0"), 0.5, [1, 2, 3])
    sim.run(until=2_000.0)
    v = _verdict(sim)
    assert v.safe and v.executed_by_all == 5
    assert max(sim.replicas[1].executed) < 50 and sim.delivered < 2_000


def test_a_view_change_claiming_an_unproven_checkpoint_moves_nothing():
    # A Byzantine replica's ViewChange claims a stable checkpoint at 30 that no quorum certified:
    # the new view's proposals must still start right after the highest *proven* checkpoint.
    sim = Simulation(_schedule(4, 1), {3: Behaviour()}, NetConfig(timeout=1e6), np.random.default_rng(3))
    for i in range(12):
        sim.request(f"r{i}", 0.0)
    sim.run(until=100.0)
    assert all(len(sim.replicas[i].executed) == 12 for i in range(4)) and sim.replicas[0].stable == 10
    # It signs its own ViewChange; the proof it attaches is its genuine proof of checkpoint 10.
    fake = sim.sign(3, Msg("view-change", 3, 1, seq=30, value="f" * 16, payload=((), sim.replicas[3].stable_proof)))
    for i in (0, 1, 2):
        sim.start_view_change(sim.replicas[i], 1)
    sim.run(until=101.0)
    vcs = {**{i: sim.replicas[1].view_changes[1][i] for i in (0, 2)}, 3: fake}
    assert sim._low(vcs) == 10  # the proven checkpoint of replica 0 and 2, not the claimed 30
    assert sim._proposals(vcs)[0][0] == 11


@pytest.mark.parametrize(
    ("field", "kwargs"), [("window", {"window": 5}), ("checkpoint_interval", {"checkpoint_interval": 0})]
)
def test_bad_watermark_settings_name_the_field(field, kwargs):
    with pytest.raises(ParameterError, match=field):
        _schedule(4, 1, **kwargs)


def test_bad_status_interval_names_the_field():
    with pytest.raises(ParameterError, match="status_interval"):
        NetConfig(status_interval=0.0)
