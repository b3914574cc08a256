"""`qverify serve`: the network's KMEs as ETSI GS QKD 014 key-delivery servers over mutual TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from qverify import __version__
from qverify.cli.common import KeyRelay, PolicyName, _emit_json, _jax_cache, app, err, finite_float, out
from qverify.errors import ParameterError, QverifyError


@app.command()
def serve(
    topology: Annotated[str, typer.Option(help="Built-in name or a .graphml / .json file.")] = "secoqc",
    byzantine: Annotated[float, typer.Option(parser=finite_float, help="Fraction of Byzantine nodes, [0, 1).")] = 0.0,
    behaviours: Annotated[str, typer.Option(help="Comma list: inject,drop,corrupt,lie,slander.")] = "inject,drop,lie",
    demands: Annotated[int, typer.Option(help="Node pairs that receive key (the network's demands).")] = 4,
    demand_bits: Annotated[
        float, typer.Option(parser=finite_float, help="Key bits requested per demand per slot.")
    ] = 2000.0,
    relay: Annotated[KeyRelay, typer.Option(help="Key relay over trusted nodes.")] = KeyRelay.SINGLE,
    policy: Annotated[PolicyName, typer.Option(help="Control-plane policy of the network model.")] = (
        PolicyName.BASELINE
    ),
    fluctuation: Annotated[bool, typer.Option(help="Fluctuating loss and drifts on/off.")] = True,
    slot_s: Annotated[float, typer.Option(parser=finite_float, help="Slot length, simulated seconds.")] = 1.0,
    verify_rounds: Annotated[int, typer.Option(help="BSM test rounds per link and epoch (>= 3).")] = 10_000,
    node_rounds: Annotated[int, typer.Option(help="GHZ node-check rounds per node and epoch (>= 0; 0: none).")] = 3_000,
    horizon_slots: Annotated[
        int, typer.Option(help="Slots the network model runs before serving; replayed from the start after.")
    ] = 600,
    seed: Annotated[int, typer.Option(help="Seed of the network model.")] = 0,
    time_scale: Annotated[
        float, typer.Option(parser=finite_float, help="Simulated seconds per wall-clock second (> 0).")
    ] = 1.0,
    host: Annotated[str, typer.Option(help="Listen address (loopback by default).")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port of the first node's KME; node i listens on port + i (0: any).")
    ] = 8443,
    store: Annotated[Path, typer.Option(help="Folder of the key stores (created 0700; reused: keys persist).")] = Path(
        "qverify-kms"
    ),
    tls_cert: Annotated[Path | None, typer.Option(help="Server certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Server private key (PEM).")] = None,
    tls_ca: Annotated[Path | None, typer.Option(help="CA that signed the SAE certificates (PEM).")] = None,
    dev_pki: Annotated[
        Path | None,
        typer.Option(help="Write a throw-away CA, server and SAE certificates into this folder and use them."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the KMEs as JSON (then serve).")] = False,
) -> None:
    """Serve ETSI GS QKD 014 key delivery from every node's KME over mutual TLS, the stores filling at
    the rate the network model delivers key (runs until Ctrl-C)."""
    import asyncio

    from qverify.kms.server import TlsFiles, bind_sockets

    if not (time_scale > 0):
        raise ParameterError("time_scale", time_scale, "(0, inf) simulated seconds per wall second")
    if not 0 <= port <= 65535:
        raise ParameterError("port", port, "[0, 65535]")
    tls_given = [x is not None for x in (tls_cert, tls_key, tls_ca)]
    if dev_pki is not None and any(tls_given):
        raise QverifyError("tls: give either --dev-pki or --tls-cert/--tls-key/--tls-ca, not both")
    if dev_pki is None and not all(tls_given):
        raise QverifyError(
            "tls: give --tls-cert, --tls-key and --tls-ca (or --dev-pki DIR for throw-away certificates)"
        )
    if dev_pki is None:
        assert tls_cert is not None and tls_key is not None and tls_ca is not None
        TlsFiles(tls_cert, tls_key, tls_ca).check()

    from qverify.network.topology import resolve

    g = resolve(topology)
    nodes = [str(n) for n in g.nodes]
    ports = [0] * len(nodes) if port == 0 else [port + i for i in range(len(nodes))]
    if ports and ports[-1] > 65535:
        raise ParameterError("port", port, f"[0, {65535 - len(nodes) + 1}] ({len(nodes)} KMEs on consecutive ports)")
    import ipaddress

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        err.print(f"warning: listening on {host}, not the loopback: the keys are not secret", highlight=False)
    sockets = bind_sockets(host, ports)  # a port in use fails now, before the model runs
    try:
        from qverify.network.adversary import Adversary
        from qverify.network.sim import Fluctuation, SimConfig

        adv = Adversary(fraction=byzantine, behaviours=tuple(b for b in behaviours.split(",") if b))
        config = SimConfig(slot_s=slot_s, n_demands=demands, demand_bits=demand_bits, relay=relay, adversary=adv,
                           fluctuation=Fluctuation() if fluctuation else Fluctuation.off(),
                           verify_rounds=verify_rounds, node_rounds=node_rounds)  # fmt: skip
        from qverify.consensus.control import make_policy
        from qverify.kms.feed import SimulatedFeed
        from qverify.kms.kme import KeyNetwork, default_saes, kme_id
        from qverify.kms.server import KmsServer

        if dev_pki is not None:
            from qverify.kms.pki import write_dev_pki

            tls = write_dev_pki(dev_pki, default_saes(tuple(nodes)))
            err.print(f"dev PKI (throw-away, for local use only) written to {dev_pki}", highlight=False)
        else:
            assert tls_cert is not None and tls_key is not None and tls_ca is not None
            tls = TlsFiles(tls_cert, tls_key, tls_ca)
        _jax_cache()
        err.print(f"running the network model for {horizon_slots} slots …", highlight=False)
        feed = SimulatedFeed(g, config, horizon_slots=horizon_slots, seed=seed, policy=make_policy(policy))
        network = KeyNetwork(feed, store)
        server = KmsServer(network, tls, host=host, time_scale=time_scale, sockets=sockets)
    except BaseException:
        for s in sockets:
            s.close()
        raise
    by_node: dict[str, list[str]] = {}
    for sae, node in network.saes.items():
        by_node.setdefault(node, []).append(sae)
    pairs = [f"{kme_id(a)}–{kme_id(b)}" for a, b in feed.pairs]
    if as_json:
        _emit_json({
            "kmes": [{"node": n, "kme_id": kme_id(n), "address": server.addresses[n], "saes": by_node.get(n, [])}
                     for n in nodes],
            "pairs": [list(p) for p in feed.pairs], "store": str(store), "time_scale": time_scale,
            "qverify_version": __version__,
        })  # fmt: skip
    else:
        table = Table(title=f"{topology}: ETSI GS QKD 014 KMEs (mutual TLS), {time_scale:g} simulated s per s")
        for col in ("node", "KME", "address", "SAEs"):
            table.add_column(col)
        for n in nodes:
            table.add_row(n, kme_id(n), server.addresses[n], ", ".join(by_node.get(n, [])))
        out.print(table)
        out.print(f"pairs receiving key: {', '.join(pairs)}", highlight=False)
        out.print(f"stores: {store}", highlight=False)
    try:
        asyncio.run(server.serve())
    finally:
        network.close()
