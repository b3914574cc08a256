"""The ETSI GS QKD 014 V1.1.1 REST server: a Starlette app under uvicorn, mutual TLS, one address per KME.

**How the SAE identity reaches the app.** uvicorn verifies the client certificate at the TLS
handshake (``ssl_cert_reqs = CERT_REQUIRED`` against the configured CA: a client without a
certificate from that CA never gets a connection), but stock uvicorn does not pass the certificate
to the application: its HTTP scope has no transport and no ``extensions["tls"]`` (checked in the
uvicorn source, 0.29 to 0.55; uvicorn issues #400, #745). :class:`TlsH11Protocol` therefore
subclasses uvicorn's h11 protocol: when a connection is made (after the handshake) it reads the
verified peer certificate from the transport's ``ssl_object`` and puts it into every request scope
of that connection as the ASGI TLS extension, ``scope["extensions"]["tls"]`` with
``client_cert_chain`` (the leaf, PEM) and ``tls_version``. The app takes the SAE ID from the leaf
certificate's subject common name (CN). No header, query or body can set it.

**Which KME.** Every node's KME listens on its own loopback port; the app maps the local address
of the connection (``scope["server"]``) to the node.

**Status codes.** The key endpoints answer 200, 400 and 401 as ETSI GS QKD 014 Tables 4, 6 and 8
say, and 503 with an Error body when the KME cannot serve (e.g. too little key: a project rule,
since the standard fixes no code for it). Nothing else: an unsupported method or sub-path under
``/api/v1/keys/`` is a 400, malformed JSON a 400, and an unexpected fault a 503 whose body and log
line name only the exception type. Every non-200 body is ``{"message": str, "details"?: [...]}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from qverify.errors import KeyDeliveryError, ParameterError, QverifyError
from qverify.kms.kme import KeyNetwork

log = logging.getLogger("qverify.kms")

MAX_BODY_BYTES = 64 * 1024
"""Largest request body read, bytes (a longer one is a 400)."""

API = "/api/v1/keys/"
ALLOWED = {"status": ("GET",), "enc_keys": ("GET", "POST"), "dec_keys": ("GET", "POST")}


# --- TLS ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TlsFiles:
    """PEM files of the server's TLS identity and of the CA that signs the SAEs' certificates.

    Attributes:
        cert: the KMEs' server certificate (PEM).
        key: its private key (PEM, unencrypted).
        ca: the CA certificate that signed the SAE certificates (and the server's).
    """

    cert: Path
    key: Path
    ca: Path

    def check(self) -> None:
        """Raise a :class:`~qverify.errors.QverifyError` naming the field if a file cannot be read, is
        not what it should be, or the CA did not sign the server certificate."""
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        def read(name: str, path: Path) -> bytes:
            try:
                return Path(path).read_bytes()
            except OSError as exc:
                raise QverifyError(f"{name} = {str(path)!r} cannot be read ({exc.strerror})") from None

        certs = {}
        for name in ("cert", "ca"):
            data = read(f"tls {name}", getattr(self, name))
            try:
                certs[name] = x509.load_pem_x509_certificate(data)
            except ValueError:
                raise QverifyError(f"tls {name} = {str(getattr(self, name))!r} is not a PEM certificate") from None
        key = read("tls key", self.key)
        try:
            load_pem_private_key(key, password=None)
        except (ValueError, TypeError):
            raise QverifyError(f"tls key = {str(self.key)!r} is not an unencrypted PEM private key") from None
        try:
            certs["cert"].verify_directly_issued_by(certs["ca"])
        except Exception as exc:  # InvalidSignature, or a key type that cannot have signed it
            raise QverifyError(
                f"tls ca = {str(self.ca)!r} did not sign the server certificate {str(self.cert)!r} "
                f"({type(exc).__name__})"
            ) from None


@lru_cache(maxsize=1024)
def sae_of_pem(pem: str) -> str | None:
    """The SAE ID a client certificate carries: its subject common name (None if it has none)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else None
    return value if isinstance(value, str) else None


def _tls_protocol_class() -> type:
    """uvicorn's h11 protocol, extended to put the verified client certificate into the scope."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TlsH11Protocol(H11Protocol):
        """See the module docstring: the ASGI TLS extension from the connection's ``ssl_object``."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            tls: dict[str, Any] = {"client_cert_chain": [], "client_cert_error": None, "tls_version": None}
            obj = transport.get_extra_info("ssl_object")
            if obj is not None:
                der = obj.getpeercert(binary_form=True)
                if der:
                    tls["client_cert_chain"] = [ssl.DER_cert_to_PEM_cert(der)]
                tls["tls_version"] = obj.version()
            inner = self.app

            async def with_tls(scope: Any, receive: Any, send: Any) -> None:
                scope.setdefault("extensions", {})["tls"] = tls
                await inner(scope, receive, send)

            self.app = with_tls

    return TlsH11Protocol


def server_ssl_context(tls: TlsFiles) -> ssl.SSLContext:
    """TLS ≥ 1.2 server context that requires a client certificate signed by ``tls.ca``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_RENEGOTIATION  # the identity read at the handshake holds for the connection
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(str(tls.ca))
    return ctx


# --- the app -----------------------------------------------------------------------------------------
def _error(status: int, message: str, details: list[dict[str, Any]] | None = None) -> Any:
    from starlette.responses import JSONResponse

    body: dict[str, Any] = {"message": message}
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=status)


def _query_ints(query: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    params = parse_qs(query, keep_blank_values=True)
    out: dict[str, Any] = {}
    for name, values in params.items():
        if name not in allowed:
            raise KeyDeliveryError(
                400, f"query parameter {name!r} is not allowed on GET; allowed: {', '.join(allowed)} (else POST)"
            )
        if len(values) != 1:
            raise KeyDeliveryError(400, f"query parameter {name!r} given {len(values)} times; allowed: once")
        v = values[0]
        try:
            out[name] = int(v) if v.strip() == v and v.lstrip("-").isdigit() and v.isascii() else v
        except ValueError:
            out[name] = v
    return out


async def _bounded_body(request: Any) -> bytes:
    """The request body, read no further than :data:`MAX_BODY_BYTES` (a longer one is a 400)."""
    too_long = KeyDeliveryError(400, f"request body is longer than {MAX_BODY_BYTES} bytes; allowed: ≤ {MAX_BODY_BYTES}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_long
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_long
        chunks.append(chunk)
    return b"".join(chunks)


class Clock:
    """Simulated time against wall time: slot ``start + floor(elapsed_wall_s · time_scale / slot_s)``."""

    def __init__(self, time_scale: float, slot_s: float, start_slot: int, now: Callable[[], float]) -> None:
        if not (math.isfinite(time_scale) and time_scale > 0):
            raise ParameterError("time_scale", time_scale, "(0, inf) simulated seconds per wall second")
        self.time_scale = time_scale
        self.slot_s = slot_s
        self.start_slot = start_slot
        self.now = now
        self.t0 = now()

    def target(self) -> int:
        """The slot simulated time has reached."""
        return self.start_slot + int((self.now() - self.t0) * self.time_scale / self.slot_s)


def create_app(network: KeyNetwork, nodes_by_port: dict[int, str], time_scale: float | None = 1.0) -> Any:
    """The Starlette app serving ``network``'s KMEs; ``nodes_by_port`` maps a listening port to its
    node. With ``time_scale`` the stores fill in the background as simulated time passes (at most 1000
    slots per 20 ms tick); ``None`` leaves filling to the caller (``network.advance``)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    if time_scale is not None and not (math.isfinite(time_scale) and time_scale > 0):
        raise ParameterError("time_scale", time_scale, "(0, inf) simulated seconds per wall second")
    lock = threading.Lock()

    async def fill() -> None:
        assert time_scale is not None
        clock = Clock(time_scale, network.feed.slot_s, network.slot, time.monotonic)
        while True:
            due = clock.target() - network.slot
            if due > 0:
                with lock:
                    network.advance(min(due, 1000))
            await asyncio.sleep(0.02)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(fill()) if time_scale is not None else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def keys(request: Request) -> Response:
        parts = request.scope["path"].removeprefix(API.rstrip("/")).strip("/").split("/")
        if len(parts) != 2 or not parts[0]:
            return _error(400, f"{request.url.path!r} is not a key-delivery path; allowed: {API}{{SAE_ID}}/{{method}}")
        sae_path, op = parts
        try:
            if op not in ALLOWED:
                raise KeyDeliveryError(400, f"{op!r} is not a key-delivery method; allowed: {', '.join(ALLOWED)}")
            if request.method not in ALLOWED[op]:
                raise KeyDeliveryError(
                    400, f"method {request.method} is not allowed on {op}; allowed: {', '.join(ALLOWED[op])}"
                )
            node = nodes_by_port.get(request.scope.get("server", (None, None))[1] or -1)
            if node is None:
                raise KeyDeliveryError(503, "this address serves no KME")
            chain = request.scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
            caller = sae_of_pem(chain[0]) if chain else None
            if caller is None or caller not in network.saes:  # authenticate before reading the request
                raise KeyDeliveryError(401, "the client certificate names no SAE known to this network")
            body: Any = None
            if request.method == "POST":
                raw = await _bounded_body(request)
                if raw.strip():
                    try:
                        body = json.loads(raw)
                    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting too deep
                        raise KeyDeliveryError(400, "request body is not valid JSON (RFC 8259)") from None
                elif op == "dec_keys":
                    raise KeyDeliveryError(400, "request body is empty; a Key IDs object (Table 12) is required")
            elif request.method == "GET" and op == "enc_keys":
                body = _query_ints(request.url.query, ("number", "size"))
            elif request.method == "GET" and op == "dec_keys":
                q = _query_ints(request.url.query, ("key_ID",))
                if "key_ID" not in q:
                    raise KeyDeliveryError(400, "key_ID query parameter missing; GET dec_keys takes one key_ID")
                body = {"key_IDs": [{"key_ID": str(q["key_ID"])}]}
            elif request.url.query:
                raise KeyDeliveryError(400, "status takes no query parameters")
            with lock:
                if op == "status":
                    result = network.status(node, caller, sae_path)
                elif op == "enc_keys":
                    result = network.enc_keys(node, caller, sae_path, body)
                else:
                    result = network.dec_keys(node, caller, sae_path, body)
            return JSONResponse(result)
        except KeyDeliveryError as exc:
            log.info("%s %s: %d %s", request.method, op, exc.status, exc.message)
            return _error(exc.status, exc.message, exc.details)
        except Exception as exc:  # a fault of ours: 503, its type only (never its text)
            log.error("%s %s: internal fault (%s)", request.method, op, type(exc).__name__)
            return _error(503, f"internal fault ({type(exc).__name__})")

    async def keys_app(scope: Any, receive: Any, send: Any) -> None:
        # Every method and sub-path under the prefix lands here (no framework 404/405).
        response = await keys(Request(scope, receive))
        await response(scope, receive, send)

    async def openapi(request: Request) -> Response:
        from qverify.kms.openapi import openapi_document

        return JSONResponse(openapi_document(network.limits, sorted(network.saes)))

    routes = [
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    rest = Starlette(routes=routes, lifespan=lifespan)
    prefix = API.rstrip("/")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        # Anything under the key-delivery prefix, whatever its method or characters, goes to the key
        # endpoints (no framework 404/405/422 from them); the rest (lifespan, /openapi.json) to Starlette.
        if scope["type"] == "http" and (scope["path"] == prefix or scope["path"].startswith(API)):
            await keys_app(scope, receive, send)
        else:
            await rest(scope, receive, send)

    return app


# --- running it --------------------------------------------------------------------------------------
def bind_sockets(host: str, ports: list[int]) -> list[socket.socket]:
    """Listening TCP sockets on ``host``, one per port (0: an ephemeral port); a port in use is a
    :class:`~qverify.errors.QverifyError` naming it (the sockets opened so far are closed)."""
    socks: list[socket.socket] = []
    for port in ports:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto IPPROTO_TCP: asyncio then sets TCP_NODELAY on accepted connections (it checks the proto);
        # with 0, a response's header and body records wait for a delayed ACK (~40 ms each on Linux).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            for s in socks:
                s.close()
            raise QverifyError(f"listen address = {host}:{port} cannot be used ({exc.strerror})") from None
        sock.setblocking(False)
        socks.append(sock)
    return socks


class KmsServer:
    """``network``'s KMEs served on ``host``, node ``i`` on ``ports[i]`` (0: ephemeral) or on
    ``sockets[i]`` (already listening, from :func:`bind_sockets`), mutual TLS.

    :meth:`serve` runs until :meth:`stop`; :meth:`start_in_thread` runs it in a background thread
    (tests, notebooks). :attr:`addresses` maps each node to its ``https://host:port``.
    """

    def __init__(
        self,
        network: KeyNetwork,
        tls: TlsFiles,
        host: str = "127.0.0.1",
        ports: list[int] | None = None,
        time_scale: float | None = 1.0,
        log_level: str = "warning",
        sockets: list[socket.socket] | None = None,
    ) -> None:
        import uvicorn

        nodes = list(network.feed.nodes)
        ports = [0] * len(nodes) if ports is None else list(ports)
        if len(ports) != len(nodes):
            raise ParameterError("ports", ports, f"one port per node ({len(nodes)})")
        if sockets is not None and len(sockets) != len(nodes):
            raise ParameterError("sockets", len(sockets), f"one listening socket per node ({len(nodes)})")
        tls.check()
        self.network = network
        self.host = host
        self.sockets = sockets if sockets is not None else bind_sockets(host, ports)
        self.ports = {node: s.getsockname()[1] for node, s in zip(nodes, self.sockets, strict=True)}
        self.addresses = {node: f"https://{host}:{port}" for node, port in self.ports.items()}
        app = create_app(network, {p: n for n, p in self.ports.items()}, time_scale)
        config = uvicorn.Config(
            app,
            http=_tls_protocol_class(),
            loop="asyncio",
            lifespan="on",
            log_level=log_level,
            access_log=False,
            ssl_certfile=str(tls.cert),
            ssl_keyfile=str(tls.key),
            ssl_ca_certs=str(tls.ca),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
        )
        config.load()
        config.ssl = server_ssl_context(tls)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    async def serve(self) -> None:
        """Serve until :meth:`stop` (or SIGINT/SIGTERM in the main thread)."""
        await self._server.serve(sockets=self.sockets)

    def start_in_thread(self, timeout_s: float = 30.0) -> KmsServer:
        """Serve from a daemon thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=lambda: asyncio.run(self.serve()), daemon=True, name="kms-server")
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise QverifyError("the KMS server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving (and wait for the thread, if any)."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
        for s in self.sockets:
            s.close()
