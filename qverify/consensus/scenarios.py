"""Adversarial scenarios for the weighted PBFT, in the spirit of Twins/Jepsen.

Each scenario builds (i) synthetic link-QBER reports from which the ABFT pipeline computes the weight
vector of every epoch — honest nodes on noisy links included, liars and slanderers reporting what
they like — and (ii) a PBFT run with the chosen Byzantine behaviours, delays, drops and partitions.
:func:`run_scenario` returns agreement violations (the checker), decisions, rounds to decision and
latency relative to the fault-free run with the same seed.

Byzantine nodes are drawn by seed, except where a scenario needs the view-0 leader among them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from qverify.consensus.checker import check, history_of
from qverify.consensus.committee import tolerated
from qverify.consensus.pbft import (
    Behaviour,
    NetConfig,
    Partition,
    Schedule,
    simulate,
)
from qverify.consensus.voting import FidelityWeightedVoting
from qverify.consensus.weights import WeightVector
from qverify.errors import ChoiceError, ParameterError

SCENARIOS: tuple[str, ...] = (
    "fault_free",
    "equivocating_leader",
    "silent_heavy",
    "liars",
    "slanderers",
    "sleeper",
    "vote_delay",
    "amnesia",
    "weight_race",
    "duplicate_votes",
    "partition",
    "drops",
    "f_plus_one",
    "slow_leader",
    "null_churn",
    "censor",
    "flood",
)
"""Scenario names accepted by :func:`run_scenario`."""

LEADER_ATTACKS: tuple[str, ...] = ("slow_leader", "null_churn", "censor")
"""Scenarios whose Byzantine replicas attack as leaders (the view-0 leader is among them)."""
PACE = 13.0
"""The slow leader proposes one request every PACE time units: just under the 20-unit timeout."""

WEIGHTINGS: tuple[str, ...] = ("abft", "equal")
EPOCHS = 3
MEAN_DELAY = 1.0


@dataclass(frozen=True)
class ScenarioResult:
    """Figures of one scenario run.

    Attributes:
        violations: safety violations found by the independent checker
            (:mod:`qverify.consensus.checker`): agreement + exactly-once + validity + log gaps.
        decided: requests executed by at least one correct replica.
        executed_by_all: requests executed by *every* correct replica (what a client can rely on).
        requests: requests issued.
        rounds_to_decision: mean (decision time − request time) in mean message delays.
        latency_ratio: that mean divided by the fault-free run's mean (same n, f, seed).
        byzantine: indices of the Byzantine nodes.
        weights: the weight vector of every epoch.
        messages: messages delivered.
    """

    scenario: str
    n: int
    f: int
    seed: int
    weighting: str
    violations: int
    decided: int
    requests: int
    rounds_to_decision: float
    latency_ratio: float
    byzantine: tuple[int, ...]
    weights: tuple[tuple[int, ...], ...]
    messages: int
    executed_by_all: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _graph(n: int, rng: np.random.Generator, degree: int = 4) -> list[tuple[int, int]]:
    """A ring (connected) plus random chords: each node ends with ≥ 2 links."""
    edges = {(i, (i + 1) % n) if i < (i + 1) % n else ((i + 1) % n, i) for i in range(n)}
    extra = max(0, n * (degree - 2) // 2)
    for _ in range(extra):
        a, b = (int(x) for x in rng.choice(n, size=2, replace=False))
        edges.add((min(a, b), max(a, b)))
    return sorted(edges)


def _weights(
    n: int,
    f: int,
    byz: set[int],
    scenario: str,
    rng: np.random.Generator,
    weighting: str,
) -> list[WeightVector]:
    """Epoch weight vectors from synthetic reports through :class:`FidelityWeightedVoting`."""
    if weighting == "equal":
        return [WeightVector(e, (1,) * n, f) for e in range(EPOCHS)]
    voting = FidelityWeightedVoting([str(i) for i in range(n)], f)
    edges = _graph(n, rng)
    noisy = set(int(x) for x in rng.choice(sorted(set(range(n)) - byz), size=max(1, n // 4), replace=False))
    victims = sorted(set(range(n)) - byz)[:2]
    for _epoch in range(EPOCHS - 1):
        for a, b in edges:
            true_q = float(rng.uniform(0.01, 0.03))
            if a in noisy or b in noisy:
                true_q = float(rng.uniform(0.06, 0.09))  # honest node on a bad fibre
            reports = {}
            for node, other in ((a, b), (b, a)):
                q = min(0.5, true_q + float(rng.normal(0, 0.002)))
                if node in byz and scenario in ("liars", "silent_heavy", "sleeper", "f_plus_one"):
                    q = 0.0  # claims a perfect link to become heavy
                if node in byz and scenario == "slanderers" and other in victims:
                    q = 0.5  # slanders a neighbour
                reports[node] = max(0.0, q)
            voting.report_link(str(a), str(b), reports[a], reports[b])
        voting.end_epoch()
    return [voting.weights(e) for e in range(EPOCHS)]


def build(
    scenario: str, n: int, f: int, seed: int, rounds: int, weighting: str = "abft"
) -> tuple[Schedule, list[tuple[float, str]], dict[int, Behaviour], NetConfig]:
    """The inputs of one scenario run: weight schedule, client requests (time, value), Byzantine
    behaviours and network model, ready for :func:`qverify.consensus.pbft.simulate`."""
    rng = np.random.default_rng(seed)
    n_byz = 0 if scenario == "fault_free" else (f + 1 if scenario == "f_plus_one" else f)
    need_leader = scenario in ("equivocating_leader", "f_plus_one", "weight_race", *LEADER_ATTACKS)
    pool = [i for i in range(n) if not (need_leader and i == 0)]
    chosen = [int(x) for x in rng.choice(pool, size=n_byz - (1 if need_leader and n_byz else 0), replace=False)]
    byz_set = set(chosen) | ({0} if need_leader and n_byz else set())
    vectors = _weights(n, f, byz_set, scenario, rng, weighting)
    interval = 5
    epoch_len = max(interval, (rounds // EPOCHS) // interval * interval)
    schedule = Schedule(tuple(vectors), epoch_len=epoch_len, checkpoint_interval=interval)
    # Requests in bursts of 4, one burst every 3 mean delays.
    requests = [(3.0 * (i // 4), f"req{i}") for i in range(rounds)]
    t_epoch1 = 3.0 * (epoch_len // 4)
    net = NetConfig(delay_min=0.5, delay_max=1.5, timeout=20.0)
    behaviour: dict[str, Behaviour] = {
        "equivocating_leader": Behaviour(equivocate=True),
        "silent_heavy": Behaviour(silent=True, active_from=t_epoch1),
        "liars": Behaviour(equivocate=True),
        "slanderers": Behaviour(equivocate=True),
        "sleeper": Behaviour(silent=True, active_from=t_epoch1),
        "vote_delay": Behaviour(extra_delay=5.0),
        "amnesia": Behaviour(amnesia_at=t_epoch1 / 2),
        "weight_race": Behaviour(silent=True, active_from=t_epoch1 - 2.0),
        "duplicate_votes": Behaviour(duplicate=3),
        "partition": Behaviour(equivocate=True),
        "drops": Behaviour(),
        "f_plus_one": Behaviour(equivocate=True),
        "fault_free": Behaviour(),
        # Aardvark's attacks (Clement et al., NSDI 2009): a leader pacing just under the timeout,
        # one churning no-ops, one censoring a request; and a junk flood.
        "slow_leader": Behaviour(pace=PACE),
        "null_churn": Behaviour(churn=3.0, active_from=3.0),
        "censor": Behaviour(censor=frozenset({"req1"})),
        "flood": Behaviour(flood=5),
    }
    byzantine = {i: Behaviour(**asdict(behaviour[scenario])) for i in sorted(byz_set)}
    if scenario == "partition":
        correct = [i for i in range(n) if i not in byz_set]
        half = len(correct) // 2
        groups = (frozenset(correct[:half]) | byz_set, frozenset(correct[half:]) | byz_set)
        net = NetConfig(0.5, 1.5, partitions=(Partition(5.0, 5.0 + 4 * 20.0, groups),), timeout=20.0)
    if scenario == "drops":
        net = NetConfig(0.5, 1.5, drop_prob=0.05, timeout=20.0)
    if scenario == "weight_race":
        net = NetConfig(0.5, 3.0, timeout=10.0)
    return schedule, requests, byzantine, net


def _mean_latency(decide: dict[str, float], requests: list[tuple[float, str]]) -> float:
    lat = [decide[v] - t for t, v in requests if v in decide]
    return float(np.mean(lat)) if lat else float("inf")


def run_scenario(
    scenario: str,
    n: int = 7,
    f: int = 2,
    seed: int = 0,
    rounds: int = 60,
    weighting: str = "abft",
    until: float = 5_000.0,
    signatures: str = "ed25519",
) -> ScenarioResult:
    """Run ``scenario`` on ``n`` replicas tolerating ``f`` faults and check agreement.

    >>> r = run_scenario("equivocating_leader", n=4, f=1, seed=1, rounds=20)
    >>> r.violations, r.decided
    (0, 20)
    """
    if scenario not in SCENARIOS:
        raise ChoiceError("scenario", scenario, SCENARIOS)
    if weighting not in WEIGHTINGS:
        raise ChoiceError("weighting", weighting, WEIGHTINGS)
    if n < 3 * f + 1 or f < 0:
        raise ParameterError("faulty", f, f"[0, {tolerated(n)}] for {n} nodes (n ≥ 3f + 1)")
    if scenario == "f_plus_one" and f + 1 > n:
        raise ParameterError("faulty", f, f"[0, {n - 1}]")
    if rounds < 1:
        raise ParameterError("rounds", rounds, "[1, inf)")
    schedule, requests, byzantine, net = build(scenario, n, f, seed, rounds, weighting)
    res = simulate(schedule, requests, byzantine, net, seed, until, signatures=signatures)
    base_sched, base_req, _b, base_net = build("fault_free", n, f, seed, rounds, weighting)
    base = simulate(base_sched, base_req, {}, base_net, seed, until, signatures=signatures)
    verdict = check(history_of(res.executed, res.byzantine, [v for _t, v in requests]))
    mean = _mean_latency(res.decide_time, requests)
    base_mean = _mean_latency(base.decide_time, base_req)
    return ScenarioResult(
        scenario=scenario,
        n=n,
        f=f,
        seed=seed,
        weighting=weighting,
        violations=verdict.violations,
        decided=len(res.decide_time),
        requests=len(requests),
        rounds_to_decision=mean / MEAN_DELAY,
        latency_ratio=mean / base_mean,
        byzantine=tuple(sorted(byzantine)),
        weights=tuple(v.weights for v in schedule.vectors),
        messages=res.messages,
        executed_by_all=verdict.executed_by_all,
    )
