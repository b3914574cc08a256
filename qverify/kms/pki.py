"""A throw-away PKI for local use: a CA, the KMEs' server certificate and one client certificate per SAE.

Written only when asked (``qverify serve --dev-pki DIR`` or :func:`write_dev_pki`), never used
silently. Keys are ECDSA P-256; the server certificate names ``localhost``, ``127.0.0.1`` and
``::1``; each SAE certificate carries the SAE ID as its subject common name (CN), which is how the
server identifies the calling SAE. Private keys are written 0600 in a 0700 folder.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from qverify.errors import QverifyError
from qverify.kms.server import TlsFiles


def _write(path: Path, data: bytes, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_dev_pki(folder: str | Path, saes: Iterable[str], valid_days: int = 30) -> TlsFiles:
    """Write ``ca.pem``, ``server.pem``/``server.key`` and ``<SAE>.pem``/``<SAE>.key`` per SAE into
    ``folder``; returns the server's :class:`~qverify.kms.server.TlsFiles`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out = Path(folder)
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise QverifyError(f"dev_pki = {str(out)!r} cannot be created ({exc.strerror})") from None
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=valid_days)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "qverify dev PKI"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # fmt: skip

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("qverify dev CA (throw-away)")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write(out / "ca.pem", ca.public_bytes(serialization.Encoding.PEM), private=False)

    def leaf(cn: str, stem: str, server: bool) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if server:
            alt = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                   x509.IPAddress(ipaddress.ip_address("::1"))]  # fmt: skip
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _write(out / f"{stem}.pem", cert.public_bytes(serialization.Encoding.PEM), private=False)
        _write(out / f"{stem}.key", pem_key(key), private=True)

    leaf("qverify KME", "server", server=True)
    for sae in saes:
        if not sae or "/" in sae or "\\" in sae or sae.startswith(".") or sae in ("ca", "server"):
            raise QverifyError(
                f"SAE ID = {sae!r} cannot name a certificate file; allowed: not empty, no '/', not ca or server"
            )
        leaf(sae, sae, server=False)
    return TlsFiles(out / "server.pem", out / "server.key", out / "ca.pem")
