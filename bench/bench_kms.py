"""Benchmark: ETSI GS QKD 014 key delivery over mutual TLS vs the framework's own ceiling, in one run.

Two servers, each in its own process, on the loopback with the same mutual-TLS setup (a throw-away
PKI): qverify's KMS (a pair store filled in advance, ``GET enc_keys?number=1&size=256``: one SQLite
transaction and 32 fresh key bytes per request) and a bare Starlette app under uvicorn returning a
constant JSON body (the same TLS protocol class). For 1, 8 and 32 concurrent SAEs (threads, one
keep-alive httpx client each, in this process), every client sends requests for ``--seconds``
(bounded also by ``--max-requests`` per client); the script prints requests/s and p50/p99 latency for
both servers side by side and the KMS/bare ratio. Clients and servers share the machine's cores, so
the figures are for this machine under its load at the time; compare the ratio, not the absolute rates.

Run: python bench/bench_kms.py [--seconds 3] [--max-requests 2000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CONCURRENCY = (1, 8, 32)


def _serve_kms(folder: str, queue: Any) -> None:
    import numpy as np

    from qverify.kms.feed import TableFeed
    from qverify.kms.kme import KeyNetwork, KmeLimits
    from qverify.kms.server import KmsServer, TlsFiles

    pki = Path(folder) / "pki"
    feed = TableFeed(("A", "B"), (("A", "B"),), np.full((1, 1), 256.0 * 200_000))
    net = KeyNetwork(feed, Path(folder) / "stores", limits=KmeLimits(max_key_count=200_000))
    net.advance(1)
    server = KmsServer(net, TlsFiles(pki / "server.pem", pki / "server.key", pki / "ca.pem"), time_scale=None)
    server.start_in_thread()
    queue.put(server.addresses["A"] + "/api/v1/keys/SAE_B/enc_keys?number=1&size=256")
    threading.Event().wait()


def _serve_bare(folder: str, queue: Any) -> None:
    import asyncio
    import ssl

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from qverify.kms.server import TlsFiles, _tls_protocol_class, bind_sockets, server_ssl_context

    pki = Path(folder) / "pki"
    tls = TlsFiles(pki / "server.pem", pki / "server.key", pki / "ca.pem")

    async def constant(request: Any) -> JSONResponse:
        return JSONResponse({"keys": [{"key_ID": "00000000-0000-4000-8000-000000000000", "key": "AAAA"}]})

    app = Starlette(routes=[Route("/c", constant)])
    config = uvicorn.Config(app, http=_tls_protocol_class(), loop="asyncio", log_level="warning", access_log=False,
                            ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key), ssl_ca_certs=str(tls.ca),
                            ssl_cert_reqs=ssl.CERT_REQUIRED)  # fmt: skip
    config.load()
    config.ssl = server_ssl_context(tls)
    (sock,) = bind_sockets("127.0.0.1", [0])
    queue.put(f"https://127.0.0.1:{sock.getsockname()[1]}/c")
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


def _load(url: str, pki: Path, clients: int, seconds: float, max_requests: int) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, requests) of ``clients`` concurrent keep-alive clients."""
    import ssl

    import httpx
    import numpy as np

    def client() -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        ctx.load_cert_chain(str(pki / "SAE_A.pem"), str(pki / "SAE_A.key"))
        # TCP_NODELAY: without it a small request can wait ~40 ms for a delayed ACK (Nagle).
        nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        return httpx.Client(transport=httpx.HTTPTransport(verify=ctx, socket_options=nodelay), timeout=30.0)

    pool = [client() for _ in range(clients)]
    for c in pool:  # handshakes before the clock starts
        assert c.get(url).status_code == 200
    latencies: list[list[float]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    stop = [0.0]

    def run(i: int) -> None:
        barrier.wait()
        lat = latencies[i]
        while time.perf_counter() < stop[0] and len(lat) < max_requests:
            t = time.perf_counter()
            r = pool[i].get(url)
            lat.append(time.perf_counter() - t)
            if r.status_code != 200:
                raise RuntimeError(f"status {r.status_code}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in pool:
        c.close()
    flat = np.concatenate([np.asarray(x) for x in latencies]) * 1e3
    return len(flat) / wall, float(np.percentile(flat, 50)), float(np.percentile(flat, 99)), len(flat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="load per concurrency level and server (s)")
    ap.add_argument("--max-requests", type=int, default=2000, help="most requests per client and level")
    args = ap.parse_args()
    from qverify.kms.pki import write_dev_pki

    folder = tempfile.mkdtemp(prefix="bench-kms-")
    write_dev_pki(Path(folder) / "pki", ["SAE_A", "SAE_B"])
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=f, args=(folder, queue), daemon=True) for f in (_serve_kms, _serve_bare)]
    urls = []
    for p in procs:
        p.start()
        urls.append(queue.get(timeout=120))
    kms_url, bare_url = (urls[0], urls[1]) if "enc_keys" in urls[0] else (urls[1], urls[0])
    pki = Path(folder) / "pki"
    print("loopback, mutual TLS (ECDSA P-256), HTTP/1.1 keep-alive; clients and servers share this machine's cores")
    print(f"{'SAEs':>5} | {'KMS req/s':>10} {'p50 ms':>8} {'p99 ms':>8} | {'bare req/s':>10} {'p50 ms':>8} "
          f"{'p99 ms':>8} | KMS/bare")  # fmt: skip
    try:
        for n in CONCURRENCY:
            k = _load(kms_url, pki, n, args.seconds, args.max_requests)
            b = _load(bare_url, pki, n, args.seconds, args.max_requests)
            print(f"{n:>5} | {k[0]:>10.0f} {k[1]:>8.2f} {k[2]:>8.2f} | {b[0]:>10.0f} {b[1]:>8.2f} {b[2]:>8.2f} | "
                  f"{k[0] / b[0]:.2f}×")  # fmt: skip
    finally:
        for p in procs:
            p.terminate()
            p.join(10)


if __name__ == "__main__":
    main()
