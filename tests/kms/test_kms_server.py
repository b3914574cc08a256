"""ETSI GS QKD 014 V1.1.1 against the live server: the invariants 1-18 of the project's key-delivery
fact sheet (shared/refs/key_delivery.md, section 4), each named in its test, over mutual TLS."""

from __future__ import annotations

import base64
import concurrent.futures as cf
import logging
import ssl
import time
import uuid

import httpx
import pytest
from kms_live import LIMITS, Live, client_for

MISSING = "00000000-0000-4000-8000-000000000000"
NOT_FOUND = "one or more keys specified are not found on KME"  # ETSI GS QKD 014 clause 6.4, verbatim


def status(live: Live, master: str = "SAE_A", slave: str = "SAE_B", node: str = "A") -> dict:
    r = live.as_(master).get(live.url(node, slave, "status"))
    assert r.status_code == 200, r.text
    return r.json()


def enc(live: Live, body: dict | None = None, master: str = "SAE_A", slave: str = "SAE_B", node: str = "A"):
    return live.as_(master).post(live.url(node, slave, "enc_keys"), json=body)


def dec(live: Live, ids: list[str], slave: str = "SAE_B", master: str = "SAE_A", node: str = "B"):
    return live.as_(slave).post(live.url(node, master, "dec_keys"), json={"key_IDs": [{"key_ID": i} for i in ids]})


def assert_error(r: httpx.Response, code: int, message: str | None = None) -> dict:
    """Invariant 12: every refusal is the code asked for with an Error body (Table 13) in JSON."""
    assert r.status_code == code, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body["message"], str) and set(body) <= {"message", "details"}
    assert isinstance(body.get("details", []), list)
    if message is not None:
        assert body["message"] == message
    return body


def fill(live: Live, slots: int = 5) -> None:
    live.network.advance(slots)


def test_1_round_trip_post_and_get(live):
    fill(live)
    r = enc(live, {"number": 3, "size": 512})
    assert r.status_code == 200
    keys = r.json()["keys"]
    back = dec(live, [k["key_ID"] for k in keys])
    assert back.status_code == 200 and back.json()["keys"] == keys
    one = live.as_("SAE_A").get(live.url("A", "SAE_B", "enc_keys")).json()["keys"][0]
    got = live.as_("SAE_B").get(live.url("B", "SAE_A", "dec_keys"), params={"key_ID": one["key_ID"]})
    assert got.status_code == 200 and got.json()["keys"] == [one]


def test_2_once_per_slave(live):
    fill(live)
    ids = [k["key_ID"] for k in enc(live, {"number": 2}).json()["keys"]]
    assert dec(live, ids).status_code == 200
    for again in (ids, ids[:1]):
        assert_error(dec(live, again), 400, NOT_FOUND)
    assert_error(live.as_("SAE_B").get(live.url("B", "SAE_A", "dec_keys"), params={"key_ID": ids[1]}), 400)


def test_3_no_double_spend_under_32_concurrent_clients(live, pki):
    fill(live, 20)
    before = status(live)["stored_key_count"]
    clients = [client_for(pki, "SAE_A") for _ in range(32)]
    deadline = time.monotonic() + 15.0

    def hammer(c: httpx.Client) -> tuple[list[dict], list[int]]:
        keys, codes = [], []
        for _ in range(10):  # bounded in count and time
            if time.monotonic() > deadline:
                break
            r = c.post(live.url("A", "SAE_B", "enc_keys"), json={"number": 2})
            codes.append(r.status_code)
            if r.status_code == 200:
                keys += r.json()["keys"]
        return keys, codes

    try:
        with cf.ThreadPoolExecutor(32) as pool:
            results = list(pool.map(hammer, clients))
    finally:
        for c in clients:
            c.close()
    keys = [k for ks, _ in results for k in ks]
    codes = {c for _, cs in results for c in cs}
    assert codes <= {200, 503} and keys
    if time.monotonic() < deadline:  # no client stopped early: the pool went down to its last odd key
        assert len(keys) == before - before % 2
    assert len({k["key_ID"] for k in keys}) == len(keys) and len({k["key"] for k in keys}) == len(keys)
    assert status(live)["stored_key_count"] == before - len(keys)
    # And 32 slave connections racing for one key: exactly one gets it.
    fill(live)
    kid = enc(live).json()["keys"][0]["key_ID"]
    slaves = [client_for(pki, "SAE_B") for _ in range(32)]
    try:
        with cf.ThreadPoolExecutor(32) as pool:
            got = list(pool.map(lambda c: c.get(live.url("B", "SAE_A", "dec_keys"), params={"key_ID": kid}), slaves))
    finally:
        for c in slaves:
            c.close()
    assert sorted(r.status_code for r in got) == [200] + [400] * 31
    # Drain what the race left waiting so later tests see an empty slave queue.
    dec(live, [k["key_ID"] for k in keys])


def test_4_pool_accounting(live):
    fill(live)
    s0 = status(live)
    assert enc(live, {"number": 4}).status_code == 200
    s1 = status(live)
    assert s1["stored_key_count"] == s0["stored_key_count"] - 4
    waiting = s1["status_extension"]["qverify_keys_waiting_for_slave"]
    assert waiting >= 4
    ids = [k["key_ID"] for k in enc(live, {"number": 3}).json()["keys"]]
    assert dec(live, ids).status_code == 200
    s2 = status(live)
    assert s2["status_extension"]["qverify_keys_waiting_for_slave"] == waiting
    # 512-bit keys use two 256-bit blocks each.
    assert enc(live, {"number": 2, "size": 512}).status_code == 200
    assert status(live)["stored_key_count"] == s2["stored_key_count"] - 4


def test_5_bounds(live):
    fill(live, 200)  # 20 keys per slot: far past max_key_count
    s = status(live)
    assert 0 <= s["stored_key_count"] <= s["max_key_count"] == LIMITS.max_key_count
    assert s["stored_key_count"] == LIMITS.max_key_count
    assert s["min_key_size"] <= s["key_size"] <= s["max_key_size"]
    assert s["max_SAE_ID_count"] == 0
    assert status(live, "SAE_A", "SAE_D")["stored_key_count"] == 0  # a pair the network delivers no key


def test_6_defaults(live):
    fill(live)
    key_size = status(live)["key_size"]
    for r in (enc(live), live.as_("SAE_A").get(live.url("A", "SAE_B", "enc_keys")),
              live.as_("SAE_A").post(live.url("A", "SAE_B", "enc_keys"))):  # fmt: skip
        assert r.status_code == 200
        (key,) = r.json()["keys"]
        assert len(base64.b64decode(key["key"], validate=True)) * 8 == key_size


@pytest.mark.parametrize("size", [64, 72, 256, 1000, 1024])
def test_7_size_in_bits(live, size):
    fill(live)
    keys = enc(live, {"number": 2, "size": size}).json()["keys"]
    assert [len(base64.b64decode(k["key"])) * 8 for k in keys] == [size, size]


def test_7_size_not_multiple_of_8(live):
    before = status(live)["stored_key_count"]
    assert_error(enc(live, {"size": 100}), 400, "size shall be a multiple of 8")
    assert_error(live.as_("SAE_A").get(live.url("A", "SAE_B", "enc_keys"), params={"size": 65}), 400)
    assert status(live)["stored_key_count"] == before


@pytest.mark.parametrize(
    "body",
    [
        {"number": 0},
        {"number": -1},
        {"number": LIMITS.max_key_per_request + 1},
        {"number": 1.5},
        {"number": True},
        {"number": "2"},
        {"size": 56},
        {"size": 1032},
        {"size": None},
        {"additional_slave_SAE_IDs": ["SAE_C"]},
        {"additional_slave_SAE_IDs": "SAE_C"},
        {"extension_optional": "x"},
        {"unknown_field": 1},
        [1, 2],
        "text",
    ],
)
def test_8_limits_and_bad_fields_are_400_and_consume_nothing(live, body):
    fill(live)
    before = status(live)["stored_key_count"]
    assert_error(enc(live, body), 400)
    assert status(live)["stored_key_count"] == before


def test_9_insufficient_key_is_503(live):
    fill(live)
    n = status(live)["stored_key_count"]
    # Drain the pool (bounded: at most max_key_count / max_key_per_request requests).
    for _ in range(LIMITS.max_key_count // LIMITS.max_key_per_request + 1):
        if status(live)["stored_key_count"] < LIMITS.max_key_per_request:
            break
        assert enc(live, {"number": LIMITS.max_key_per_request}).status_code == 200
    left = status(live)["stored_key_count"]
    assert left < n
    body = assert_error(enc(live, {"number": left + 1}), 503, "insufficient amount of key material")
    assert body["details"][0]["keys_available"] == left
    assert status(live)["stored_key_count"] == left
    assert_error(enc(live, master="SAE_A", slave="SAE_D"), 503)  # no key between A and D at all


def test_10_only_the_named_slave(live):
    fill(live)
    ids = [k["key_ID"] for k in enc(live, {"number": 2}).json()["keys"]]
    assert live.as_("SAE_B2").post(live.url("B", "SAE_A", "dec_keys"), json={"key_IDs": [{"key_ID": ids[0]}]}).status_code == 401  # fmt: skip
    assert_error(dec(live, ids, slave="SAE_C", node="C"), 400, NOT_FOUND)  # another KME knows no such key
    assert_error(live.as_("SAE_UNKNOWN").get(live.url("B", "SAE_A", "status")), 401)  # CA-signed, unknown SAE
    assert dec(live, ids).status_code == 200  # nothing was consumed by the refusals


def test_11_mutual_tls(live, pki, foreign_pki):
    url = live.url("A", "SAE_B", "status")
    bare = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.get(url, verify=bare)  # no client certificate
    with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)):
        client_for(foreign_pki, "SAE_A", ca=pki / "ca.pem").get(url)  # a certificate from another CA
    tls12 = client_for(pki, "SAE_A", maximum_version=ssl.TLSVersion.TLSv1_2)
    assert tls12.get(url).status_code == 200
    bare12 = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    bare12.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(httpx.ConnectError):  # TLS 1.2: the refusal is in the handshake itself
        httpx.get(url, verify=bare12)
    old = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    old.load_cert_chain(str(pki / "SAE_A.pem"), str(pki / "SAE_A.key"))
    try:
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, verify=old)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "SAE_B/status"),
        ("DELETE", "SAE_B/enc_keys"),
        ("PUT", "SAE_A/dec_keys"),
        ("GET", "SAE_B/nothing"),
        ("GET", "SAE_B/status/extra"),
        ("GET", ""),
    ],
)
def test_12_no_framework_codes(live, method, path):
    r = live.as_("SAE_A").request(method, live.server.addresses["A"] + "/api/v1/keys/" + path)
    assert_error(r, 400)


def test_12_malformed_json_and_bad_queries(live):
    fill(live)
    a = live.as_("SAE_A")
    before = status(live)["stored_key_count"]
    assert_error(a.post(live.url("A", "SAE_B", "enc_keys"), content=b'{"number": '), 400)
    assert_error(a.post(live.url("A", "SAE_B", "enc_keys"), content=b"\xff\xfe"), 400)
    assert_error(a.get(live.url("A", "SAE_B", "enc_keys"), params={"number": "two"}), 400)
    assert_error(a.get(live.url("A", "SAE_B", "enc_keys"), params=[("number", "1"), ("number", "2")]), 400)
    assert_error(a.get(live.url("A", "SAE_B", "status"), params={"x": "1"}), 400)
    assert_error(a.post(live.url("A", "SAE_B", "enc_keys"), content=b"{" * 70_000), 400)
    assert_error(a.post(live.url("A", "SAE_B", "enc_keys"), content=b"[" * 60_000), 400)  # too deep to parse
    assert_error(a.post(live.url("A", "SAE_B", "enc_keys"), content=b'{"number": 1' + b"0" * 5000 + b"}"), 400)
    # An unknown SAE is refused before its request is even parsed.
    assert_error(live.as_("SAE_UNKNOWN").post(live.url("A", "SAE_B", "enc_keys"), content=b"{bad"), 401)

    def chunked():  # no Content-Length: the server stops reading past its limit
        for _ in range(100):
            yield b" " * 1024

    assert_error(a.post(live.url("A", "SAE_B", "enc_keys"), content=chunked()), 400)
    assert status(live)["stored_key_count"] == before


def test_13_method_rules(live):
    fill(live)
    a = live.as_("SAE_A")
    r = a.get(live.url("A", "SAE_B", "enc_keys"), params={"number": 3, "size": 128})
    assert r.status_code == 200 and [len(base64.b64decode(k["key"])) for k in r.json()["keys"]] == [16] * 3
    assert_error(a.get(live.url("A", "SAE_B", "enc_keys"), params={"additional_slave_SAE_IDs": "SAE_C"}), 400)
    ids = [k["key_ID"] for k in r.json()["keys"]]
    b = live.as_("SAE_B")
    two = b.get(live.url("B", "SAE_A", "dec_keys"), params=[("key_ID", ids[0]), ("key_ID", ids[1])])
    assert_error(two, 400)
    assert_error(b.get(live.url("B", "SAE_A", "dec_keys")), 400)
    assert dec(live, ids).status_code == 200  # the refused GETs consumed nothing


def test_14_key_ids_are_uuids_unique_across_a_restart(live, pki, tmp_path):
    from kms_live import SAES, table_feed

    from qverify.kms.kme import KeyNetwork
    from qverify.kms.server import KmsServer

    net = KeyNetwork(table_feed(), tmp_path, saes=SAES, limits=LIMITS)
    net.advance(3)
    seen: set[str] = set()
    for _round in range(2):
        server = KmsServer(net, live.tls, time_scale=None).start_in_thread()
        try:
            with client_for(pki, "SAE_A") as a:
                keys = a.post(f"{server.addresses['A']}/api/v1/keys/SAE_C/enc_keys", json={"number": 16}).json()
        finally:
            server.stop()
        for k in keys["keys"]:
            assert str(uuid.UUID(k["key_ID"])) == k["key_ID"]
        ids = {k["key_ID"] for k in keys["keys"]}
        assert len(ids) == 16 and not ids & seen
        seen |= ids
        net.close()
        net = KeyNetwork(table_feed(), tmp_path, saes=SAES, limits=LIMITS)  # a restart of the KMEs
    assert net.slot == 3  # the feed resumes where it stopped
    server = KmsServer(net, live.tls, time_scale=None).start_in_thread()
    try:
        with client_for(pki, "SAE_C") as c:  # keys issued before the restart are still there, once
            url = f"{server.addresses['C']}/api/v1/keys/SAE_A/dec_keys"
            ids = sorted(seen)
            for batch in (ids[:16], ids[16:]):
                body = {"key_IDs": [{"key_ID": i} for i in batch]}
                assert c.post(url, json=body).status_code == 200
                assert c.post(url, json=body).status_code == 400
    finally:
        server.stop()
        net.close()


def test_14_key_id_not_a_uuid(live):
    for bad in ("not-a-uuid", "550e8400e29b41d4a716446655440000", "", "550e8400-e29b-41d4-a716-44665544000g"):
        assert_error(dec(live, [bad]), 400)
    assert_error(live.as_("SAE_B").post(live.url("B", "SAE_A", "dec_keys"), json={"key_IDs": [{"key_ID": 7}]}), 400)
    assert_error(live.as_("SAE_B").post(live.url("B", "SAE_A", "dec_keys"), json={"key_IDs": []}), 400)
    assert_error(live.as_("SAE_B").post(live.url("B", "SAE_A", "dec_keys"), content=b""), 400)


def test_15_extensions(live):
    fill(live)
    before = status(live)["stored_key_count"]
    body = assert_error(
        enc(live, {"extension_mandatory": [{"abc_route_type": "direct"}]}),
        400,
        "not all extension_mandatory parameters are supported",
    )
    assert "abc_route_type" in str(body["details"])
    assert status(live)["stored_key_count"] == before
    r = enc(live, {"extension_optional": [{"abc_max_age": 10}]})  # may be ignored: 200
    assert r.status_code == 200 and len(r.json()["keys"]) == 1


def test_16_atomic_failure(live):
    fill(live)
    ids = [k["key_ID"] for k in enc(live, {"number": 2}).json()["keys"]]
    assert_error(dec(live, [*ids, MISSING]), 400, NOT_FOUND)
    assert_error(dec(live, [ids[0], ids[0]]), 400)  # the same ID twice
    got = dec(live, ids)
    assert got.status_code == 200 and [k["key_ID"] for k in got.json()["keys"]] == ids


def test_17_path_semantics(live):
    fill(live)
    s = status(live, "SAE_A", "SAE_B")
    assert (s["master_SAE_ID"], s["slave_SAE_ID"], s["source_KME_ID"], s["target_KME_ID"]) == (
        "SAE_A", "SAE_B", "KME_A", "KME_B",
    )  # fmt: skip
    ids = [k["key_ID"] for k in enc(live).json()["keys"]]
    # The slave names the master in the dec_keys path; naming itself (the standard's typo) is a 400.
    assert_error(dec(live, ids, master="SAE_B"), 400)
    assert_error(dec(live, ids, master="SAE_C"), 400, NOT_FOUND)
    assert_error(dec(live, ids, master="SAE_NOBODY"), 400)
    # An SAE asking another node's KME, or an unknown slave: 401 / 400.
    assert_error(live.as_("SAE_A").get(live.url("B", "SAE_C", "status")), 401)
    assert_error(live.as_("SAE_A").get(live.url("A", "SAE_NOBODY", "status")), 400)
    assert_error(live.as_("SAE_A").get(live.url("A", "SAE_A", "status")), 400)
    assert dec(live, ids).status_code == 200


def test_18_no_multicast(live):
    fill(live)
    before = status(live)["stored_key_count"]
    assert status(live)["max_SAE_ID_count"] == 0
    assert_error(enc(live, {"additional_slave_SAE_IDs": ["SAE_C"]}), 400)
    assert status(live)["stored_key_count"] == before


def test_background_fill_follows_time_scale(pki, tmp_path):
    from kms_live import SAES, table_feed

    from qverify.kms.kme import KeyNetwork
    from qverify.kms.server import KmsServer, TlsFiles

    net = KeyNetwork(table_feed(), tmp_path, saes=SAES, limits=LIMITS)
    tls = TlsFiles(pki / "server.pem", pki / "server.key", pki / "ca.pem")
    server = KmsServer(net, tls, time_scale=20.0).start_in_thread()  # 20 one-second slots per wall second
    try:
        with client_for(pki, "SAE_A") as a:
            url = f"{server.addresses['A']}/api/v1/keys/SAE_B/status"
            deadline = time.monotonic() + 5.0
            while a.get(url).json()["stored_key_count"] < 40 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert a.get(url).json()["stored_key_count"] >= 40
    finally:
        server.stop()
        net.close()
    assert 2 <= net.slot < 200


def test_no_key_material_or_traceback_in_logs(live, caplog):
    fill(live)
    caplog.set_level(logging.DEBUG)
    keys = enc(live, {"number": 3}).json()["keys"]
    enc(live, {"number": 0})
    dec(live, [keys[0]["key_ID"], MISSING])
    live.as_("SAE_B2").post(live.url("B", "SAE_A", "dec_keys"), json={"key_IDs": [{"key_ID": keys[0]["key_ID"]}]})
    dec(live, [k["key_ID"] for k in keys])
    text = caplog.text
    assert "Traceback" not in text and "400" in text
    for k in keys:
        raw = base64.b64decode(k["key"])
        assert k["key"] not in text and raw.hex() not in text and repr(raw) not in text
