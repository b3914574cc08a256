"""Run the test network's KMS server in its own process (for the kill -9 test): argv = stores, pki folder.

Prints one JSON line {node: address} once it accepts connections, then serves until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from kms_live import LIMITS, SAES, table_feed

from qverify.kms.kme import KeyNetwork
from qverify.kms.server import KmsServer, TlsFiles

if __name__ == "__main__":
    stores, pki = Path(sys.argv[1]), Path(sys.argv[2])
    net = KeyNetwork(table_feed(), stores, saes=SAES, limits=LIMITS)
    if net.slot == 0:
        net.advance(5)
    server = KmsServer(net, TlsFiles(pki / "server.pem", pki / "server.key", pki / "ca.pem"), time_scale=None)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server._server.started:
            await asyncio.sleep(0.01)
        print(json.dumps(server.addresses), flush=True)
        await task

    asyncio.run(main())
