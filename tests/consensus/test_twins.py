"""Twins-style search (Bano et al., OPODIS 2021): Byzantine identities run as two honest-code copies
on opposite sides of partitions. Within the fault model no case may fork and, once the network heals,
every request must reach every correct replica; with f + 1 twins the search must find forks."""

from __future__ import annotations

import itertools

import pytest

from qverify.consensus.twins import REQUESTS, TwinsCase, cases, partitions, run_case, search, simulate_case
from qverify.errors import ParameterError


def test_every_two_phase_case_at_n4_with_one_twin_is_safe_and_live():
    # Exhaustive: each of the 4 identities twinned × every pair of partitions (or none) × every side
    # that hears each request first.
    r = search(4, 1, n_twins=1, phases=2)
    assert r.cases == 2340
    assert r.unsafe == 0, r.first_unsafe
    assert r.not_live == 0


@pytest.mark.parametrize(
    ("n", "f", "weights", "phases"),
    [(5, 1, None, 2), (5, 1, (2, 2, 1, 1, 1), 2), (4, 1, None, 3), (7, 2, None, 2)],
)
def test_sampled_cases_within_the_fault_model_are_safe_and_live(n, f, weights, phases):
    r = search(n, f, n_twins=f, phases=phases, weights=weights, limit=150, sample_seed=n + phases)
    assert r.cases == 150 and r.unsafe == 0, r.first_unsafe
    assert r.not_live == 0


def test_with_a_checkpoint_at_every_sequence_number_every_case_is_still_safe_and_live():
    # Checkpoint interval 1 (window 2): every sequence number is checkpointed and collected, so
    # watermarks, state transfer and the proven checkpoints of ViewChanges are in every case.
    r = search(4, 1, n_twins=1, phases=2, checkpoint_interval=1)
    assert r.cases == 2340 and r.unsafe == 0 and r.not_live == 0, r.first_unsafe
    r = search(7, 2, n_twins=2, phases=2, limit=150, sample_seed=1, checkpoint_interval=1)
    assert r.unsafe == 0 and r.not_live == 0, r.first_unsafe
    # ...and the catching-up path is really taken: some cases need a checkpoint state.
    some = list(itertools.islice(cases((1, 1, 1, 1), 1, (0,), 2, checkpoint_interval=1), 0, 400, 7))
    assert sum(simulate_case(c).state_transfers for c in some) > 0


@pytest.mark.parametrize(("n", "f", "weights"), [(4, 1, None), (5, 1, (2, 2, 1, 1, 1))])
def test_f_plus_one_twins_fork_the_harness_self_test(n, f, weights):
    r = search(n, f, n_twins=f + 1, phases=2, weights=weights, limit=200, sample_seed=0)
    assert r.unsafe > 0
    v = run_case(r.first_unsafe)
    assert v.agreement > 0 or not v.safe  # the fork reproduces from the recorded case


def test_partitions_keep_every_twin_pair_apart():
    for twins in ((0,), (1, 3)):
        splits = partitions(4, twins)
        assert len(splits) == 2 ** (4 - len(twins)) * 2 ** (len(twins) - 1)
        for side0, side1 in splits:
            assert side0 | side1 == set(range(4 + len(twins))) and not side0 & side1
            for k, t in enumerate(twins):
                assert (t in side0) != (4 + k in side0)


def test_a_case_without_partitions_executes_every_request():
    v = run_case(TwinsCase((1, 1, 1, 1), 1, (2,), (None, None), (0, 0, 0)))
    assert v.safe and v.executed_by_all == len(REQUESTS)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"n": 3, "f": 1, "n_twins": 1}, "n"), ({"n": 4, "f": 1, "n_twins": 5}, "n_twins"),
     ({"n": 4, "f": 1, "n_twins": 1, "phases": 0}, "phases")],
)  # fmt: skip
def test_bad_search_input_names_the_field(kwargs, field):
    with pytest.raises(ParameterError, match=field):
        search(**kwargs)


def test_twin_of_an_unknown_replica_is_refused():
    with pytest.raises(ParameterError, match="twins"):
        run_case(TwinsCase((1, 1, 1, 1), 1, (7,), (None,), (0, 0, 0)))


def test_twins_histories_do_not_depend_on_the_signature_scheme():
    # The search runs with ideal signatures by default; twins share their identity's keys under
    # Ed25519 too, and every case sampled here executes the same logs under both schemes.
    import dataclasses

    sample = list(itertools.islice(cases((1, 1, 1, 1), 1, (0,), 2), 0, 585, 23))
    assert len(sample) > 20
    for case in sample:
        logs = [
            {r.idx: r.executed for r in simulate_case(dataclasses.replace(case, signatures=s)).replicas}
            for s in ("ideal", "ed25519")
        ]
        assert logs[0] == logs[1], case
