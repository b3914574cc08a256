"""A live KMS server on ephemeral loopback ports, real certificates, httpx clients per SAE."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kms_live import LIMITS, SAES, Live, client_for, table_feed

from qverify.kms.kme import KeyNetwork
from qverify.kms.pki import write_dev_pki
from qverify.kms.server import KmsServer, TlsFiles


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    write_dev_pki(folder, [*SAES, "SAE_UNKNOWN"])
    return folder


@pytest.fixture(scope="session")
def foreign_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another CA with a certificate that names a real SAE: the server must not trust it."""
    folder = tmp_path_factory.mktemp("foreign")
    write_dev_pki(folder, ["SAE_A"])
    return folder


@pytest.fixture(scope="module")
def live(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    net = KeyNetwork(table_feed(), tmp_path_factory.mktemp("stores"), saes=SAES, limits=LIMITS)
    tls = TlsFiles(pki / "server.pem", pki / "server.key", pki / "ca.pem")
    server = KmsServer(net, tls, time_scale=None).start_in_thread()
    clients = {sae: client_for(pki, sae) for sae in [*SAES, "SAE_UNKNOWN"]}
    try:
        yield Live(server, net, pki, tls, clients)
    finally:
        for c in clients.values():
            c.close()
        server.stop()
        net.close()
