"""Helpers of the KMS tests: the test network, clients with real certificates, the live-server handle."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from qverify.kms.feed import TableFeed
from qverify.kms.kme import KeyNetwork, KmeLimits
from qverify.kms.server import KmsServer, TlsFiles

NODES = ("A", "B", "C", "D")
PAIRS = (("A", "B"), ("A", "C"))  # D: a node whose pairs get no key
SAES = {"SAE_A": "A", "SAE_B": "B", "SAE_B2": "B", "SAE_C": "C", "SAE_D": "D"}
LIMITS = KmeLimits(key_size_bits=256, min_key_size_bits=64, max_key_size_bits=1024, max_key_per_request=16,
                   max_key_count=400)  # fmt: skip
BITS_PER_SLOT = 256.0 * 20  # 20 default-size keys per slot and pair


def table_feed() -> TableFeed:
    return TableFeed(NODES, PAIRS, np.full((1000, len(PAIRS)), BITS_PER_SLOT))


def client_for(pki: Path, name: str, ca: Path | None = None, **ctx_kw) -> httpx.Client:
    """An httpx client presenting ``name``'s certificate from ``pki`` and trusting ``ca``."""
    ctx = ssl.create_default_context(cafile=str(ca or pki / "ca.pem"))
    ctx.load_cert_chain(str(pki / f"{name}.pem"), str(pki / f"{name}.key"))
    for k, v in ctx_kw.items():
        setattr(ctx, k, v)
    return httpx.Client(verify=ctx, timeout=10.0)


@dataclass
class Live:
    """A running server and what a test needs to talk to it."""

    server: KmsServer
    network: KeyNetwork
    pki: Path
    tls: TlsFiles
    clients: dict[str, httpx.Client]

    def url(self, node: str, sae: str, op: str) -> str:
        return f"{self.server.addresses[node]}/api/v1/keys/{sae}/{op}"

    def as_(self, sae: str) -> httpx.Client:
        return self.clients[sae]
