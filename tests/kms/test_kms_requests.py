"""The 014 methods as Python calls, fed arbitrary JSON: only KeyDeliveryError 400/401/503, nothing consumed
on a refusal, and a successful Get key always takes exactly what it returns."""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kms_live import LIMITS, SAES, table_feed

from qverify.errors import KeyDeliveryError
from qverify.kms.kme import KeyNetwork

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
fields = st.sampled_from(["number", "size", "additional_slave_SAE_IDs", "extension_mandatory", "extension_optional",
                          "key_IDs", "key_IDs_extension", "other"])  # fmt: skip
bodies = json_values | st.dictionaries(fields, json_values | st.integers(-4, 2000), max_size=4)
saes = st.sampled_from([*SAES, "SAE_NOBODY", ""])


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    n = KeyNetwork(table_feed(), tmp_path_factory.mktemp("req"), saes=SAES, limits=LIMITS)
    n.advance(2)
    yield n
    n.close()


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, caller=saes, peer=saes, node=st.sampled_from(["A", "B", "C", "D"]))
def test_any_request_is_answered_or_refused_cleanly(net, body, caller, peer, node):
    net.advance(1)
    before = {k: (s.pool_blocks(), s.waiting()) for k, s in net.stores.items()}
    for method in (net.enc_keys, net.dec_keys):
        try:
            out = method(node, caller or None, peer, body)
        except KeyDeliveryError as e:
            assert e.status in (400, 401, 503) and e.message
            assert {k: (s.pool_blocks(), s.waiting()) for k, s in net.stores.items()} == before
            continue
        keys = out["keys"]
        assert keys and all(len(base64.b64decode(k["key"])) * 8 >= LIMITS.min_key_size_bits for k in keys)
        if method == net.enc_keys:
            store = net.store(node, SAES[peer])
            size = body.get("size", LIMITS.key_size_bits) if isinstance(body, dict) else LIMITS.key_size_bits
            used = len(keys) * store.blocks_per_key(size)
            pool, waiting = before[frozenset((node, SAES[peer]))]
            assert (store.pool_blocks(), store.waiting()) == (pool - used, waiting + len(keys))
        before = {k: (s.pool_blocks(), s.waiting()) for k, s in net.stores.items()}
