"""Randomised attacks on the view change, checkpoints and state transfer of weighted PBFT.

A fuzzer in the Jepsen spirit: f Byzantine replicas run the honest code (so they hold genuine
messages and certificates) and, at random times, deviate with whatever they can produce under the
fault model — their own signatures on anything, and any message they received, replayed or doctored:

* ``replay``: a received message, re-sent unchanged to random replicas (any kind, any view);
* ``doctor``: a received message with its sender, view, sequence number or value changed (its
  signature no longer matches), or re-signed when it is the attacker's own;
* ``view_change``: a ViewChange for a higher view carrying a random subset of the prepared
  certificates it has seen (some with their prepares cut below a quorum or relabelled) and a
  stable checkpoint it claims with a random subset of a proof;
* ``new_view``: as the leader of some view, NewViews built from random subsets of the ViewChanges
  it holds, relabelled under other senders, with recomputed or random proposals and its own signed
  pre-prepares;
* ``checkpoint``: signed checkpoints with random digests at random sequence numbers;
* ``state``: a state transfer with a doctored log (swapped or replaced requests, or split and
  merged around a separator inside a client payload) and a genuine proof;
* ``pre_prepare``: as leader or not, pre-prepares of random requests at random sequence numbers.

Clients are faulty too: their payloads are arbitrary bytes or strings (:func:`client_payload`).

The network is lossy and jittery until ``heal_at`` and reliable afterwards, so both safety (the
independent checker) and liveness (every request executed by every correct replica) are judged.
Attacks are drawn from the seed, so a failing case replays exactly.

>>> r = fuzz(FuzzCase(n=4, f=1, seed=3, attacks=20))
>>> r.verdict.safe, r.verdict.executed_by_all, r.attacks
(True, 12, 20)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from qverify.consensus.checker import History, Verdict, check
from qverify.consensus.committee import tolerated
from qverify.consensus.encoding import request_value
from qverify.consensus.netmodel import Behaviour, Msg, NetConfig
from qverify.consensus.node import Node
from qverify.consensus.pbft import Simulation
from qverify.consensus.quorum import Schedule
from qverify.consensus.replica import NULL, log_digest
from qverify.consensus.weights import WeightVector
from qverify.errors import ParameterError

ATTACKS: tuple[str, ...] = ("replay", "doctor", "view_change", "new_view", "checkpoint", "state", "pre_prepare")
STYLES: tuple[str, ...] = ("equivocate", "pace", "churn", "censor", "flood")
"""How the attackers behave between the injected attacks (drawn per seed): equivocate as leaders and
voters; as leaders pace proposals just under the timeout, churn no-ops, or censor one request; or
flood every replica with junk (:mod:`qverify.consensus.adversaries`)."""


@dataclass(frozen=True)
class FuzzCase:
    """One fuzzing run.

    Attributes:
        n: replicas (4 … 64); the Byzantine ones are drawn from the seed.
        f: Byzantine replicas (the fuzzer's attackers); ``f ≤ (n − 1) // 3`` must stay safe.
        seed: seed of everything random (delays, drops, choice of attackers, attacks).
        attacks: deviations injected before ``heal_at``.
        requests: client requests, one every 1.5 delays from time 0.
        drop_prob: message loss before ``heal_at``.
        heal_at: time after which the network is reliable and no attack is injected.
        checkpoint_interval: sequence numbers per checkpoint (small values put garbage collection
            and state transfer in play).
        equivocate: the attackers also equivocate as leaders and voters (colluding, each half of
            the correct replicas sees only the votes for its value) between the attacks.
        adversarial_clients: client payloads drawn by :func:`client_payload` (arbitrary bytes,
            separators, unicode, very long) instead of ``r0, r1, …``.
        styles: the attackers' style between attacks is drawn from :data:`STYLES` (else they
            equivocate, as ``equivocate`` says).
    """

    n: int = 4
    f: int = 1
    seed: int = 0
    attacks: int = 30
    requests: int = 12
    drop_prob: float = 0.05
    heal_at: float = 150.0
    checkpoint_interval: int = 3
    equivocate: bool = True
    adversarial_clients: bool = True
    styles: bool = True

    def __post_init__(self) -> None:
        if not 4 <= self.n <= 64:
            raise ParameterError("n", self.n, "[4, 64]")
        if not 0 <= self.f < self.n:
            raise ParameterError("f", self.f, f"[0, {self.n - 1}]")
        if self.attacks < 0 or self.requests < 1:
            raise ParameterError("attacks, requests", (self.attacks, self.requests), "attacks ≥ 0, requests ≥ 1")


@dataclass(frozen=True)
class FuzzResult:
    """The checker's verdict on one run, the attackers, the attacks injected by kind, the attackers'
    style, and the latency and throughput every correct replica saw."""

    verdict: Verdict
    byzantine: tuple[int, ...]
    attacks: int
    by_kind: dict[str, int]
    style: str = "equivocate"
    latency: float = float("inf")
    """Mean over requests of (time the last correct replica executed it − time it was issued)."""
    throughput: float = 0.0
    """Requests executed by every correct replica per time unit, up to the last such execution."""


class _Recording(Simulation):
    """The simulator, remembering every message delivered to a Byzantine replica (its knowledge)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[Msg] = []

    def handle(self, dst: int, m: Msg) -> None:
        if self.ident[dst] in self.byz and m.kind != "request":
            self.seen.append(m)
        super().handle(dst, m)


def _split_merge(log: list[str]) -> list[str]:
    """A log of the same length whose ``"\\x1f"``-joined string equals ``log``'s (when an entry holds
    the separator): what a separator-joined digest could not tell apart."""
    for i in range(1, len(log)):
        if "\x1f" in log[i]:
            head, tail = log[i].split("\x1f", 1)
            out = list(log)
            out[i - 1], out[i] = log[i - 1] + "\x1f" + head, tail
            return out
    return log


def _attack(sim: _Recording, rng: np.random.Generator, b: int, kind: str) -> None:
    """Byzantine identity ``b`` deviates once with an attack of ``kind`` (see the module docstring)."""
    n = sim.n
    everyone = list(range(n))

    def pick(seq: list[Any]) -> Any:
        return seq[int(rng.integers(len(seq)))]

    def targets() -> list[int]:
        k = int(rng.integers(1, n + 1))
        return sorted(int(x) for x in rng.choice(n, size=k, replace=False))

    def emit(msg: Msg) -> None:
        # Sent through the loop as the attacker's own; its signature (or the replayed one) decides.
        sim.send_many(b, targets(), msg)

    seen = sim.seen
    view = max(r.view for r in sim.replicas)
    seq_hi = max(len(r.executed) for r in sim.replicas) + 3
    values = [*sorted(sim.requests), NULL]
    if kind == "replay" and seen:
        emit(pick(seen))
    elif kind == "doctor" and seen:
        m = pick(seen)
        field = pick(["sender", "view", "seq", "value"])
        change: dict[str, Any] = {
            "sender": pick(everyone),
            "view": m.view + int(rng.integers(-1, 3)),
            "seq": max(0, m.seq + int(rng.integers(-2, 3))),
            "value": pick(values),
        }
        doctored = dataclasses.replace(m, **{field: change[field]})
        if doctored.sender == b:
            try:
                doctored = sim.sign(b, dataclasses.replace(doctored, sig=b""))
            except (TypeError, ValueError):
                pass  # a colluder's junk nothing can encode: sent as it is, receivers drop it
        emit(doctored)
    elif kind == "view_change":
        certs = [c for m in seen if m.kind == "view-change" for c in Node._vc_parts(m)[0]]
        chosen = [pick(certs) for _ in range(int(rng.integers(0, 3)))] if certs else []
        mangled = []
        for c in chosen:
            try:
                s, v, val, (pre, prepares) = c
            except (TypeError, ValueError):
                continue
            if rng.random() < 0.5 and prepares:
                prepares = prepares[: int(rng.integers(len(prepares)))]  # below a quorum
            if rng.random() < 0.3 and prepares:
                prepares = (*prepares, dataclasses.replace(prepares[0], sender=pick(everyone)))  # relabelled
            mangled.append((s, v, pick(values) if rng.random() < 0.2 else val, (pre, prepares)))
        proofs = [m for m in seen if m.kind == "checkpoint"]
        claim = pick(proofs) if proofs else None
        proof = tuple(p for p in proofs if claim is not None and p.seq == claim.seq and rng.random() < 0.6)
        seq, digest = (claim.seq, claim.value) if claim is not None else (0, "")
        target = view + int(rng.integers(1, 3))
        emit(Msg("view-change", b, target, seq=seq, value=digest, payload=(tuple(mangled), proof)))
    elif kind == "new_view":
        led = [v for v in range(view, view + 3 * n) if sim.leader(v) == b]
        vcs_by_view: dict[int, dict[int, Msg]] = {}
        for m in seen:
            if m.kind == "view-change":
                vcs_by_view.setdefault(m.view, {})[m.sender] = m
        target = pick(led) if rng.random() < 0.5 or not vcs_by_view else max(vcs_by_view)
        pool = list(vcs_by_view.get(target, {}).values()) or [m for m in seen if m.kind == "view-change"]
        vcs: dict[int, Msg] = {}
        for m in pool:
            if rng.random() < 0.7:
                vcs[pick(everyone) if rng.random() < 0.2 else m.sender] = m
        if rng.random() < 0.6:
            proposals = sim._proposals(vcs)
        else:
            proposals = tuple((s, pick(values)) for s in range(1, int(rng.integers(1, 4)) + 1))
        pres = tuple(sim.sign(b, Msg("pre-prepare", b, target, s, v)) for s, v in proposals)
        emit(Msg("new-view", b, target, payload=(vcs, proposals, pres)))
    elif kind == "checkpoint":
        s = int(rng.integers(1, seq_hi + 1))
        emit(Msg("checkpoint", b, seq=s, value=log_digest([pick(values) for _ in range(s)])))
    elif kind == "state":
        r = sim.replicas[sim.slots_of[b][0]]
        if r.stable:
            log = [r.executed.get(k, NULL) for k in range(1, r.stable + 1)]
            i, j = int(rng.integers(len(log))), int(rng.integers(len(log)))
            log[i], log[j] = log[j], pick(values) if rng.random() < 0.5 else log[i]
            if rng.random() < 0.5:
                log = _split_merge(log)  # the separator collision of a joined-string digest
            digest = r.stable_digest if rng.random() < 0.5 else log_digest(log)
            emit(Msg("state", b, seq=r.stable, value=digest, payload=(tuple(log), r.stable_proof)))
    elif kind == "pre_prepare":
        emit(Msg("pre-prepare", b, view + int(rng.integers(0, 2)), int(rng.integers(1, seq_hi + 1)), pick(values)))


_ALPHABET = ("\x1f", "\x00", "|", ",", ":", "\n", "<null>", "é", "\u2028", "\U0001f512", "r", "1")


def client_payload(rng: np.random.Generator, i: int, earlier: list[str]) -> str | bytes:
    """A faulty client's request ``i``: arbitrary bytes (invalid UTF-8 included) or a string of
    separators, NULs, unicode, the no-op's spelling inside a longer payload, a concatenation of
    earlier payloads around a separator, or a very long payload (up to 8 KiB). Never empty and
    never a repeat (the API refuses an empty one; a repeat is a duplicate, tested elsewhere)."""
    kind = int(rng.integers(5))
    if kind == 0:
        out: str | bytes = bytes(rng.integers(0, 256, size=int(rng.integers(1, 24)), dtype=np.uint8).tolist())
    elif kind == 1:
        out = "".join(_ALPHABET[int(k)] for k in rng.integers(len(_ALPHABET), size=int(rng.integers(1, 8))))
    elif kind == 2 and len(earlier) >= 2:
        a, b = (earlier[int(k)] for k in rng.integers(len(earlier), size=2))
        out = a + "\x1f" + b
    elif kind == 3:
        out = "x" * int(rng.integers(1024, 8192))
    else:
        out = f"r{i}\x1f"
    text = out.decode("utf-8", "surrogateescape") if isinstance(out, bytes) else out
    return out if text and text != NULL and text not in earlier else f"r{i}\x1f#{len(earlier)}"


def fuzz(case: FuzzCase) -> FuzzResult:
    """Run one fuzzing case and judge it with the independent checker."""
    rng = np.random.default_rng(case.seed)
    byz = sorted(int(x) for x in rng.choice(case.n, size=case.f, replace=False))
    interval = case.checkpoint_interval
    schedule = Schedule((WeightVector(0, (1,) * case.n, f=tolerated(case.n)),), epoch_len=interval * 10**5, checkpoint_interval=interval,
                        window=4 * interval)  # fmt: skip
    lossy = NetConfig(0.5, 2.0, drop_prob=case.drop_prob, timeout=15.0)
    style = STYLES[int(rng.integers(len(STYLES)))] if case.styles else "equivocate"
    issued: list[str | bytes] = []
    values: list[str] = []  # the strings the replicas order them as
    for i in range(case.requests):
        issued.append(client_payload(rng, i, values) if case.adversarial_clients else f"r{i}")
        values.append(request_value(issued[-1]))
    behaviour = {
        "equivocate": Behaviour(equivocate=case.equivocate),
        "pace": Behaviour(pace=0.8 * lossy.timeout),
        "churn": Behaviour(churn=2.0, active_from=5.0),
        "censor": Behaviour(censor=frozenset({values[int(rng.integers(len(values)))]})),
        "flood": Behaviour(flood=2),
    }[style]
    sim = _Recording(schedule, {i: behaviour for i in byz}, lossy, np.random.default_rng(case.seed + 1))
    at = {}
    for i, payload in enumerate(issued):
        at[sim.request(payload, 1.5 * i)] = 1.5 * i
    times = np.sort(rng.uniform(0.0, case.heal_at, size=case.attacks))
    by_kind = dict.fromkeys(ATTACKS, 0)
    for t in times:
        sim.run(until=float(t))
        sim.now = max(sim.now, float(t))
        kind = ATTACKS[int(rng.integers(len(ATTACKS)))]
        if byz:
            _attack(sim, rng, byz[int(rng.integers(len(byz)))], kind)
            by_kind[kind] += 1
    sim.run(until=case.heal_at)
    sim.net = dataclasses.replace(lossy, drop_prob=0.0, delay_max=1.0, delay_min=0.5)
    sim.run(until=case.heal_at + 3_000.0)
    logs = {r.idx: dict(r.executed) for r in sim.replicas[: sim.n]}
    verdict = check(History(logs, frozenset(byz), frozenset(sim.requests)))
    correct = [k for k in range(sim.n) if k not in byz]
    done = [max(sim.executed_at[k].get(v, np.inf) for k in correct) for v in at]
    lat = [t - at[v] for v, t in zip(at, done, strict=True) if np.isfinite(t)]
    last = max((t for t in done if np.isfinite(t)), default=np.inf)
    return FuzzResult(
        verdict,
        tuple(byz),
        int(case.attacks),
        by_kind,
        style,
        float(np.mean(lat)) if lat else float("inf"),
        verdict.executed_by_all / last if np.isfinite(last) else 0.0,
    )
