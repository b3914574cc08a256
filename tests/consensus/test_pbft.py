"""Weighted PBFT under every adversary, many seeds: agreement holds; f + 1 faults are caught."""

from __future__ import annotations

import pytest

from qverify.consensus.pbft import Behaviour, Schedule, agreement_violations, simulate
from qverify.consensus.scenarios import SCENARIOS, run_scenario
from qverify.consensus.weights import WeightVector
from qverify.errors import ChoiceError, ParameterError

WITHIN_MODEL = [s for s in SCENARIOS if s != "f_plus_one"]


@pytest.mark.parametrize("scenario", WITHIN_MODEL)
@pytest.mark.parametrize(("n", "f"), [(4, 1), (7, 2), (8, 1)])
def test_no_agreement_violation_within_the_model(scenario, n, f):
    for seed in range(6):
        r = run_scenario(scenario, n, f, seed=seed, rounds=20)
        assert r.violations == 0, (scenario, n, f, seed)
        assert r.executed_by_all == r.requests, (scenario, n, f, seed)  # every request reaches every correct replica


def test_weights_actually_vary_in_weighted_runs():
    r = run_scenario("liars", n=8, f=1, seed=0, rounds=20)
    assert len(set(r.weights[-1])) > 1


def test_checker_detects_fork_with_f_plus_one_faults():
    forks = [run_scenario("f_plus_one", 4, 1, seed=s, rounds=20, weighting="equal").violations for s in range(6)]
    assert sum(v > 0 for v in forks) >= 3  # the harness sees the fork it must see


def test_explicit_fork_is_counted():
    s = Schedule((WeightVector(0, (1, 1, 1, 1), f=1),))
    reqs = [(0.0, "a"), (0.0, "b")]
    byz = {0: Behaviour(equivocate=True), 1: Behaviour(equivocate=True)}
    assert agreement_violations(simulate(s, reqs, byz)) >= 1
    assert agreement_violations(simulate(s, reqs, {0: Behaviour(equivocate=True)})) == 0


def test_fault_free_is_deterministic_and_fast():
    a = run_scenario("fault_free", 7, 2, seed=3, rounds=20)
    b = run_scenario("fault_free", 7, 2, seed=3, rounds=20)
    assert a == b and a.latency_ratio == 1.0 and a.rounds_to_decision < 10


def test_bad_scenario_input():
    with pytest.raises(ChoiceError, match="scenario"):
        run_scenario("byzantium")
    with pytest.raises(ParameterError, match="faulty"):
        run_scenario("fault_free", n=6, f=2)
