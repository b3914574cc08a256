"""Regression: a Byzantine replica serving a lagging correct replica a colliding log.

The executed-log digest used to be ``sha256("\\x1f".join(log))``: a log holding a client request
that contains the separator collides with a different log of the same length (``[x, "p\\x1fq"]``
and ``["x\\x1fp", "q"]``). A Byzantine replica could then hand a lagging replica the other log
with a genuine checkpoint proof, and the victim forked (issue 31, observation 1: 20/20 seeds at
n = 4). The run below replays that attack; it must leave the correct replicas agreeing.
"""

from __future__ import annotations

import numpy as np
import pytest

from qverify.consensus.checker import check, history_of
from qverify.consensus.netmodel import Behaviour, Msg, NetConfig, Partition
from qverify.consensus.pbft import Simulation
from qverify.consensus.quorum import Schedule
from qverify.consensus.weights import WeightVector

SEP = "\x1f"


def _colliding(log: list[str]) -> list[str]:
    """Another log of the same length whose separator-joined string equals ``log``'s."""
    for i in range(1, len(log)):
        if SEP in log[i]:
            head, tail = log[i].split(SEP, 1)
            out = list(log)
            out[i - 1], out[i] = log[i - 1] + SEP + head, tail
            return out
    raise AssertionError("no entry holds the separator")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_colliding_state_transfer_cannot_fork(seed: int) -> None:
    n, byz, victim = 4, 3, 2
    schedule = Schedule((WeightVector(0, (1,) * n, f=1),), checkpoint_interval=2, window=8)
    heal = 40.0
    part = Partition(0.0, heal, (frozenset({0, 1, 3}), frozenset({victim})))
    sim = Simulation(schedule, {byz: Behaviour()}, NetConfig(partitions=(part,)), np.random.default_rng(seed))
    values = ["r0", f"a{SEP}b", "r2", f"c{SEP}{SEP}d", "r4", "r5"]
    for i, v in enumerate(values):
        sim.request(v, float(i))
    sim.run(until=heal - 0.5)
    attacker = sim.replicas[byz]
    assert attacker.stable >= 2 and len(sim.replicas[victim].executed) == 0
    log = [attacker.executed[k] for k in range(1, attacker.stable + 1)]
    doctored = tuple(_colliding(log))
    assert doctored != tuple(log)
    state = Msg(
        "state", byz, seq=attacker.stable, value=attacker.stable_digest, payload=(doctored, attacker.stable_proof)
    )
    sim.now = heal
    sim.handle(victim, state)  # served first, before any correct replica answers the victim
    sim.run(until=heal + 400.0)
    verdict = check(history_of({r.idx: dict(r.executed) for r in sim.replicas}, {byz}, values))
    assert verdict.safe, verdict
    assert verdict.executed_by_all == len(values)
