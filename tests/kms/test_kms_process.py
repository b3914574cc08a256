"""The KMS as a process: kill -9 of a live server, the network model as the feed, `qverify serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from kms_live import client_for

from qverify.kms.kme import KeyNetwork

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def start(args: list[str], env_path: list[Path]) -> tuple[subprocess.Popen[str], dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in env_path)}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError(proc.stderr.read() if proc.stderr else "no output")
    return proc, json.loads(line)


def test_kill_9_of_a_live_server_loses_no_key_and_delivers_none_twice(pki, tmp_path):
    stores = tmp_path / "stores"
    cmd = [sys.executable, str(HERE / "kms_serve_table.py"), str(stores), str(pki)]
    proc, addr = start(cmd, [HERE, ROOT])
    issued = []
    try:
        with client_for(pki, "SAE_A") as a:
            for _ in range(5):
                r = a.post(f"{addr['A']}/api/v1/keys/SAE_B/enc_keys", json={"number": 4})
                assert r.status_code == 200
                issued += r.json()["keys"]
            stored = a.get(f"{addr['A']}/api/v1/keys/SAE_B/status").json()["stored_key_count"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    proc, addr = start(cmd, [HERE, ROOT])  # a restart on the same stores
    try:
        with client_for(pki, "SAE_B") as b, client_for(pki, "SAE_A") as a:
            assert a.get(f"{addr['A']}/api/v1/keys/SAE_B/status").json()["stored_key_count"] == stored
            url = f"{addr['B']}/api/v1/keys/SAE_A/dec_keys"
            for batch in (issued[:10], issued[10:]):
                body = {"key_IDs": [{"key_ID": k["key_ID"]} for k in batch]}
                r = b.post(url, json=body)
                assert r.status_code == 200 and r.json()["keys"] == batch
                assert b.post(url, json=body).status_code == 400
            fresh = a.post(f"{addr['A']}/api/v1/keys/SAE_B/enc_keys", json={"number": 16}).json()["keys"]
            assert not {k["key_ID"] for k in fresh} & {k["key_ID"] for k in issued}
    finally:
        proc.terminate()
        proc.wait(10)


def test_stores_fill_at_the_rate_the_network_model_delivers(tmp_path):
    from qverify.kms.feed import SimulatedFeed
    from qverify.network.sim import SimConfig
    from qverify.network.topology import resolve

    # The configuration of the `qverify serve` test below (which then reuses this compilation).
    slots = 40
    config = SimConfig(verify_rounds=300, node_rounds=0)
    feed = SimulatedFeed(resolve("secoqc"), config, horizon_slots=slots, seed=0)
    res = feed.result
    assert feed.pairs == tuple((res.nodes[a], res.nodes[b]) for a, b in res.demands)
    np.testing.assert_array_equal(feed.table, res.delivered_bits)
    net = KeyNetwork(feed, tmp_path)
    net.advance(slots)
    for d, (a, b) in enumerate(feed.pairs):
        store = net.store(a, b)
        assert store is not None
        # Whole 256-bit blocks of what the model delivered to the pair over the run.
        assert store.pool_blocks() == int(res.delivered_bits[:, d].sum() // 256)
    # Past the horizon the run is replayed from its first slot.
    np.testing.assert_array_equal(feed.bits(slots + 3), res.delivered_bits[3])
    net.close()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from qverify.cli import main; main()", *args],
                          capture_output=True, text=True, check=False, cwd=cwd, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ([], "tls"),
        (["--tls-cert", "missing.pem", "--tls-key", "k", "--tls-ca", "c"], "tls cert"),
        (["--dev-pki", "p", "--tls-ca", "c"], "tls"),
        (["--dev-pki", "p", "--time-scale", "0"], "time_scale"),
        (["--dev-pki", "p", "--time-scale", "nan"], "time"),
        (["--dev-pki", "p", "--port", "70000"], "port"),
    ],
)
def test_serve_misconfiguration_is_one_line_and_exit_2(tmp_path, args, field):
    r = run_cli("serve", *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in r.stderr


def test_serve_refuses_a_ca_that_did_not_sign_the_server_and_a_port_in_use(tmp_path, pki, foreign_pki):
    r = run_cli("serve", "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
                "--tls-ca", str(foreign_pki / "ca.pem"), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and "did not sign" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_cli("serve", "--dev-pki", "p", "--port", str(port), cwd=tmp_path)
    assert r.returncode == 2 and f"127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr


def test_qverify_serve_dev_pki_serves_keys(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", "from qverify.cli import main; main()", "serve", "--dev-pki", "pki", "--port", "0",
           "--time-scale", "20", "--horizon-slots", "40", "--json", "--store", "stores",
           "--verify-rounds", "300", "--node-rounds", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        text = ""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # the JSON document is printed whole, then the server runs
            line = proc.stdout.readline()
            if not line:
                break
            text += line
            if line.startswith("}"):
                break
        info = json.loads(text)
        kmes = {k["node"]: k for k in info["kmes"]}
        a, b = info["pairs"][0]
        pki = tmp_path / "pki"
        with client_for(pki, f"SAE_{a}") as ca, client_for(pki, f"SAE_{b}") as cb:
            url = f"{kmes[a]['address']}/api/v1/keys/SAE_{b}/enc_keys"
            for _ in range(100):  # bounded: up to ~10 s for the first slots to be deposited
                r = ca.get(url)
                if r.status_code == 200:
                    break
                assert r.status_code == 503
                time.sleep(0.1)
            assert r.status_code == 200
            key = r.json()["keys"][0]
            back = cb.get(f"{kmes[b]['address']}/api/v1/keys/SAE_{a}/dec_keys", params={"key_ID": key["key_ID"]})
            assert back.json()["keys"] == [key]
        assert key["key"] not in text
        for f in (tmp_path / "stores").iterdir():
            assert (f.stat().st_mode & 0o777) == 0o600
    finally:
        proc.terminate()
        proc.wait(15)
