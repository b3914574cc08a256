"""Randomised attacks (qverify.consensus.fuzz): hundreds of seeds in CI, judged by the independent
checker. Within the fault model every run must be safe and, once the network heals, live; with f + 1
attackers the fuzzer must find forks (the harness's self-test)."""

from __future__ import annotations

import pytest

from qverify.consensus.fuzz import ATTACKS, STYLES, FuzzCase, fuzz
from qverify.errors import ParameterError


@pytest.mark.parametrize(
    ("n", "f", "seeds"), [(4, 1, range(0, 150)), (7, 2, range(1000, 1040)), (16, 5, range(2000, 2006))]
)
def test_fuzzed_runs_within_the_fault_model_are_safe_and_live(n, f, seeds):
    kinds = dict.fromkeys(ATTACKS, 0)
    styles = dict.fromkeys(STYLES, 0)
    for seed in seeds:
        r = fuzz(FuzzCase(n=n, f=f, seed=seed, attacks=30))
        assert r.verdict.safe, (seed, r.style, r.verdict)
        assert r.verdict.executed_by_all == 12, (seed, r.style, r.verdict)
        for k, c in r.by_kind.items():
            kinds[k] += c
        styles[r.style] += 1
    assert all(c > 0 for c in kinds.values()) or len(seeds) < 10  # every attack was tried
    assert all(c > 0 for c in styles.values()) or len(seeds) < 10  # and every attacker style


def test_fuzzer_forks_with_f_plus_one_attackers():
    # Self-test: two attackers at n = 4 exceed what the quorums tolerate; the fuzzer must find it.
    unsafe = sum(not fuzz(FuzzCase(n=4, f=2, seed=s, attacks=30)).verdict.safe for s in range(60))
    assert unsafe > 0


def test_same_seed_same_run():
    a, b = fuzz(FuzzCase(n=4, f=1, seed=9)), fuzz(FuzzCase(n=4, f=1, seed=9))
    assert a == b


@pytest.mark.parametrize(("kw", "field"), [({"n": 3}, "n"), ({"f": 4}, "f"), ({"attacks": -1}, "attacks")])
def test_bad_case_names_the_field(kw, field):
    with pytest.raises(ParameterError, match=field):
        FuzzCase(**kw)
