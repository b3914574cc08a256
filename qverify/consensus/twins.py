"""Twins-style adversary search for weighted PBFT (Bano et al., "Twins: BFT Systems Made Robust",
OPODIS 2021).

A Byzantine identity is run as *two* replicas with the same keys ("twins"), each executing the
honest code. Put on opposite sides of a network partition, twins equivocate exactly as a real
Byzantine replica could — in pre-prepares, votes, checkpoints, ViewChanges and NewViews — without
any hand-written attack. A case fixes which identities have twins, a partition of the network per
phase (twins always on opposite sides), and which side hears each client request first; after the
last phase the network heals, so liveness can be judged too. The independent checker
(:mod:`qverify.consensus.checker`) judges what the correct replicas executed.

With at most f twinned identities every case must be safe; with f + 1 the search must find a fork
(the harness's self-test).

>>> found = search(4, 1, n_twins=1, phases=2, limit=40)
>>> found.cases, found.unsafe
(40, 0)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from qverify.consensus.checker import History, Verdict, check
from qverify.consensus.pbft import NetConfig, Partition, Schedule, Simulation
from qverify.consensus.weights import WeightVector
from qverify.errors import ParameterError

PHASE_LENGTH = 25.0
"""Duration of one partition phase, in nominal message delays (longer than one view-change timeout)."""
REQUESTS = ("a", "b", "c")
"""Client requests of every case, sent at times 0, 1, 2."""


@dataclass(frozen=True)
class TwinsCase:
    """One adversarial schedule.

    Attributes:
        weights: the replicas' voting weights (one weight vector for the run).
        f: Byzantine replicas tolerated.
        twins: identities that get a twin (slot ``n + k`` is the twin of ``twins[k]``).
        phases: per phase, the two groups of slots that can talk (``None``: no partition).
        client_sides: per request, the side of the first phase that hears it first (the other side
            hears it when the client retransmits at the end of that phase).
        seed: seed of the message delays.
        checkpoint_interval: sequence numbers per checkpoint; the watermark window is twice it. At 1,
            every sequence number is checkpointed and collected, so state transfer, watermarks and
            the proven checkpoints of ViewChanges are in play in every case.
        signatures: ``"ideal"`` by default: twins share their identity's keys, so the search is
            about the protocol, not the signature scheme, and a run's history is the same under
            Ed25519 (``tests/consensus/test_view_change_attacks.py``) at a tenth of the cost.
    """

    weights: tuple[int, ...]
    f: int
    twins: tuple[int, ...]
    phases: tuple[tuple[frozenset[int], frozenset[int]] | None, ...]
    client_sides: tuple[int, ...]
    seed: int = 0
    checkpoint_interval: int = 10
    signatures: str = "ideal"


@dataclass(frozen=True)
class SearchResult:
    """What :func:`search` found: cases run, unsafe ones (with the first), and liveness after healing."""

    cases: int
    unsafe: int
    first_unsafe: TwinsCase | None
    not_live: int


def run_case(case: TwinsCase, until: float = 600.0) -> Verdict:
    """Run one case to ``until`` (the network heals after the last phase) and check it."""
    return check(_history(simulate_case(case, until)))


def _history(sim: Simulation) -> History:
    logs = {r.idx: dict(r.executed) for r in sim.replicas[: sim.n]}
    return History(logs, frozenset(sim.byz), frozenset(REQUESTS))


def simulate_case(case: TwinsCase, until: float = 600.0) -> Simulation:
    """The finished simulation of one case (for inspection; :func:`run_case` checks it)."""
    ci = case.checkpoint_interval
    schedule = Schedule((WeightVector(0, case.weights, case.f),), checkpoint_interval=ci, window=2 * ci)
    parts = tuple(
        Partition(k * PHASE_LENGTH, (k + 1) * PHASE_LENGTH, groups)
        for k, groups in enumerate(case.phases)
        if groups is not None
    )
    net = NetConfig(0.5, 1.5, partitions=parts)
    sim = Simulation(schedule, {}, net, np.random.default_rng(case.seed), case.twins, signatures=case.signatures)
    first = case.phases[0] if case.phases else None
    for t, (value, side) in enumerate(zip(REQUESTS, case.client_sides, strict=True)):
        early = [s for s in range(len(sim.replicas)) if first is None or s in first[side]]
        sim.request(value, float(t), early)
        sim.request(value, PHASE_LENGTH, [s for s in range(len(sim.replicas)) if s not in early])
    sim.run(until)
    return sim


def partitions(n: int, twins: Sequence[int]) -> list[tuple[frozenset[int], frozenset[int]]]:
    """Every split of the ``n + len(twins)`` slots into two sides with each twin pair separated.

    The first pair's primary is always on side 0 (the mirror image is the same case).
    """
    pairs = [(t, n + k) for k, t in enumerate(twins)]
    paired = {s for p in pairs for s in p}
    free = [s for s in range(n) if s not in paired]
    out = []
    for flips in itertools.product((0, 1), repeat=max(len(pairs) - 1, 0)):
        side0 = {pairs[0][0]} if pairs else set()
        for (a, b), flip in zip(pairs[1:], flips, strict=True):
            side0.add(b if flip else a)
        for choice in itertools.product((0, 1), repeat=len(free)):
            s0 = side0 | {s for s, c in zip(free, choice, strict=True) if c == 0}
            s1 = set(range(n + len(twins))) - s0
            out.append((frozenset(s0), frozenset(s1)))
    return out


def cases(
    weights: Sequence[int], f: int, twins: Sequence[int], phases: int, seed: int = 0, checkpoint_interval: int = 10
) -> Iterator[TwinsCase]:
    """All cases for one choice of twins: every sequence of ``phases`` partitions (or none) × every
    assignment of requests to the first phase's sides."""
    splits: list[tuple[frozenset[int], frozenset[int]] | None] = [None, *partitions(len(weights), twins)]
    for seq in itertools.product(splits, repeat=phases):
        for sides in itertools.product((0, 1), repeat=len(REQUESTS)):
            if seq and seq[0] is None and any(sides):
                continue  # without a first partition the sides make no difference
            yield TwinsCase(tuple(weights), f, tuple(twins), seq, sides, seed, checkpoint_interval)


def search(
    n: int,
    f: int,
    n_twins: int,
    phases: int = 2,
    weights: Sequence[int] | None = None,
    limit: int | None = None,
    sample_seed: int | None = None,
    checkpoint_interval: int = 10,
) -> SearchResult:
    """Run the cases of every choice of ``n_twins`` twinned identities (in order, or a random
    sample of ``limit`` cases when ``sample_seed`` is given) and count unsafe and non-live ones.

    Liveness counts cases where some request was not executed by every correct replica after the
    network healed.
    """
    if n < 1 or not 0 <= f or 3 * f + 1 > n:
        raise ParameterError("n", n, f"≥ 3f + 1 = {3 * f + 1}")
    if not 0 <= n_twins <= n:
        raise ParameterError("n_twins", n_twins, f"[0, {n}]")
    if phases < 1:
        raise ParameterError("phases", phases, "[1, inf)")
    w = tuple(weights) if weights is not None else (1,) * n
    every = [
        c
        for tw in itertools.combinations(range(n), n_twins)
        for c in cases(w, f, tw, phases, checkpoint_interval=checkpoint_interval)
    ]
    if sample_seed is not None and limit is not None and limit < len(every):
        pick = np.random.default_rng(sample_seed).choice(len(every), size=limit, replace=False)
        every = [every[i] for i in sorted(pick)]
    elif limit is not None:
        every = every[:limit]
    unsafe = not_live = 0
    first: TwinsCase | None = None
    for case in every:
        v = run_case(case)
        if not v.safe:
            unsafe += 1
            first = first or case
        elif v.executed_by_all < len(REQUESTS):
            not_live += 1
    return SearchResult(len(every), unsafe, first, not_live)
