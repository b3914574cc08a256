"""The one canonical encoder (qverify.consensus.encoding): injective on logs and nested values;
state transfer adopts only issued requests or the no-op; client payloads validated at the API."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.consensus.encoding import MAX_REQUEST_BYTES, digest, encode, log_digest, request_value
from qverify.consensus.netmodel import Msg, NetConfig
from qverify.consensus.node import Context, Node
from qverify.consensus.pbft import NULL, Simulation
from qverify.consensus.quorum import Schedule
from qverify.consensus.signing import Keyring
from qverify.consensus.weights import WeightVector
from qverify.errors import ParameterError

# Separators, NULs, the no-op's spelling and unicode are over-represented: they are what a
# separator-joined encoding confuses.
payload = st.lists(st.sampled_from(["\x1f", "\x00", "|", "a", "b", "é", "<null>", "\U0001f512"]), max_size=4).map(
    "".join
)
logs = st.lists(payload, max_size=6)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | payload | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(logs, logs)
def test_distinct_logs_never_share_an_encoding_or_digest(a, b):
    if a != b:
        assert encode(a) != encode(b)
        assert log_digest(a) != log_digest(b)
    else:
        assert log_digest(a) == log_digest(b)


@settings(max_examples=300, deadline=None)
@given(values, values)
def test_encoding_is_injective_on_nested_values(a, b):
    def norm(x):  # lists and tuples are one sequence type to the encoder
        return [norm(y) for y in x] if isinstance(x, (list, tuple)) else (type(x), x)

    assert (encode(a) == encode(b)) == (norm(a) == norm(b))


def test_the_old_separator_collision_is_gone():
    # The observed collision of issue 31: ['r1\x1fr5', 'r6'] and ['r1', 'r5\x1fr6'].
    assert log_digest(["r1\x1fr5", "r6"]) != log_digest(["r1", "r5\x1fr6"])
    assert len(log_digest([])) == 64  # full SHA-256, not a truncated one


def test_weight_vectors_and_messages_share_the_encoder():
    assert digest(("weights", (1, 12))) != digest(("weights", (11, 2)))
    keys = Keyring.generate(2, "ideal")
    m = keys.sign(0, Msg("prepare", 0, 0, 1, "r1\x1fr5"))
    assert not keys.verify(dataclasses.replace(m, value="r1"))


def _node_with_quorum_proof(log: tuple[str, ...], issued: set[str]) -> tuple[Node, Msg]:
    """A fresh replica and a state message for ``log`` whose checkpoint proof a quorum signed (the
    digest is genuine: only the entry check can refuse it)."""
    n = 4
    schedule = Schedule((WeightVector(0, (1,) * n, f=1),), checkpoint_interval=len(log), window=4 * len(log))
    keys = Keyring.generate(n, "ideal")
    ctx = Context(schedule, keys, issued, tuple(range(n)), 20.0, 10.0)
    d = log_digest(log)
    proof = tuple(keys.sign(i, Msg("checkpoint", i, seq=len(log), value=d)) for i in range(3))
    return Node(ctx, 0), Msg("state", 3, seq=len(log), value=d, payload=(log, proof))


@pytest.mark.parametrize(
    ("log", "adopted"),
    [
        (("a", "b"), True),
        (("a", NULL), True),
        (("a", "forged"), False),  # never issued: no client signed it
        (("a", "a"), False),  # a request twice: exactly-once makes the repeat the no-op
        (("a", 7), False),  # not a request at all
    ],
)
def test_state_transfer_adopts_only_issued_requests(log, adopted):
    node, state = _node_with_quorum_proof(log, {"a", "b"})
    node.deliver(state, 1.0)
    assert (len(node.r.executed) == 2) is adopted


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (3, "request = 'int'"),
        ("", r"len\(request\) = 0"),
        (b"", r"len\(request\) = 0"),
        ("x" * (MAX_REQUEST_BYTES + 1), rf"len\(request\) = {MAX_REQUEST_BYTES + 1}"),
        ("\ud800", "request"),
        (NULL, "reserved no-op"),
    ],
)
def test_bad_requests_name_the_field(payload, match):
    with pytest.raises(ParameterError, match=match):
        request_value(payload)
    sim = Simulation(Schedule((WeightVector(0, (1,) * 4, f=1),)), {}, NetConfig(), np.random.default_rng(0))
    with pytest.raises(ParameterError, match=match):
        sim.request(payload, 0.0)


def test_byte_payloads_are_ordered_and_distinct_from_their_neighbours():
    sim = Simulation(
        Schedule((WeightVector(0, (1,) * 4, f=1),)), {}, NetConfig(), np.random.default_rng(0), signatures="ideal"
    )
    raw = [b"\xff\x1f", b"\xff", b"\x1f", "\x1f\x1f", "é".encode(), "x" * 5000, "é"]
    values = [sim.request(p, float(i)) for i, p in enumerate(raw)]
    assert len(set(values)) == len(raw) - 1  # b"\xc3\xa9" and "é" are the same payload
    sim.run(until=500.0)
    for r in sim.replicas:
        assert sorted(r.executed.values()) == sorted(set(values))
