"""Leaders that stay inside the fault model's letter but starve clients (issue 31, observations 2–3).

* null churn: from t = 5 the leader proposes no new request and re-proposes executed ones (no-ops)
  every 3 units; the old timer restarted on every execution, so it was never replaced;
* censorship: the leader serves every request but one, while a stream of others flows.

PBFT's timer (Castro–Liskov OSDI 1999, §4.5.2) runs for the oldest request a replica waits for and
is not restarted by other executions, so each Byzantine leader in a row costs at most one timeout,
doubled per consecutive view change: with T the timeout and f faulty leaders in a row, every request
is executed by every correct replica within ``T·(2^(f+1) − 1) + 20`` time units of being issued
(20 = ample message delays of the view change and the three phases at delays ≤ 1.5).
"""

from __future__ import annotations

import numpy as np
import pytest

from qverify.consensus.checker import check, history_of
from qverify.consensus.committee import tolerated
from qverify.consensus.netmodel import Behaviour, LeaderMonitor, NetConfig
from qverify.consensus.pbft import Simulation
from qverify.consensus.quorum import Schedule
from qverify.consensus.weights import WeightVector

TIMEOUT = 10.0
SEEDS = range(20)


def bound(f: int) -> float:
    return TIMEOUT * (2 ** (f + 1) - 1) + 20.0


def _run(
    n: int, seed: int, behaviour: Behaviour, monitor: LeaderMonitor | None = LeaderMonitor()
) -> tuple[float, bool, int, int]:
    """(worst latency of any request at any correct replica, safe, executed by all, issued)."""
    f = tolerated(n)
    rng = np.random.default_rng(seed)
    byz = [0, *(int(x) for x in rng.choice(range(1, n), size=f - 1, replace=False))]  # leader of view 0 included
    schedule = Schedule((WeightVector(0, (1,) * n, f),), checkpoint_interval=5, window=20)
    net = NetConfig(0.5, 1.5, timeout=TIMEOUT, monitor=monitor)
    sim = Simulation(schedule, dict.fromkeys(byz, behaviour), net, np.random.default_rng(seed), signatures="ideal")
    # A warm-up served honestly, the victim, then a stream of other requests lasting 100 units.
    reqs = [(float(i), f"w{i}") for i in range(4)] + [(6.0, "victim")]
    reqs += [(6.0 + 2.5 * k, f"s{k}") for k in range(40)]
    for t, v in reqs:
        sim.request(v, t)
    sim.run(until=400.0)
    correct = [k for k in range(n) if k not in byz]
    worst = max(sim.executed_at[k].get(v, np.inf) - t for k in correct for t, v in reqs)
    verdict = check(history_of({r.idx: dict(r.executed) for r in sim.replicas}, byz, [v for _t, v in reqs]))
    return worst, verdict.safe, verdict.executed_by_all, len(reqs)


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize(
    "behaviour",
    [Behaviour(churn=3.0, active_from=5.0), Behaviour(censor=frozenset({"victim"}))],
    ids=["null_churn", "censor"],
)
def test_every_request_executes_at_every_correct_replica_within_the_bound(n, behaviour):
    for seed in SEEDS:
        worst, safe, by_all, issued = _run(n, seed, behaviour)
        assert safe, seed
        assert by_all == issued, (seed, by_all, issued)
        assert worst <= bound(tolerated(n)), (seed, worst, bound(tolerated(n)))


@pytest.mark.parametrize("n", [4, 7])
def test_a_leader_pacing_under_the_timeout_is_replaced_by_the_monitor(n):
    # Aardvark's slow primary (Clement et al., NSDI 2009): one proposal every 0.8 timeouts, so the
    # timer alone never fires. The monitor (LeaderMonitor: after one timeout of busy time, a rate
    # below max(0.2, half the best recent view) asks for the next view) brings every request within
    # the same bound; without it the last requests wait for the pace (the self-test below).
    pacing = Behaviour(pace=0.8 * TIMEOUT)
    for seed in range(5):
        worst, safe, by_all, issued = _run(n, seed, pacing)
        assert safe and by_all == issued, seed
        assert worst <= bound(tolerated(n)), (seed, worst)
    worst, *_ = _run(n, 0, pacing, monitor=None)
    assert worst > 2 * bound(tolerated(n))
