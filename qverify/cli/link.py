"""`qverify link` and `qverify bsm`: link physics and Bell-state-measurement circuits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from qverify import __version__
from qverify.cli.common import (
    BlockKind,
    Decoys,
    DoubleClick,
    MdiEstimator,
    Method,
    Preset,
    Protocol,
    Relay,
    _emit_json,
    app,
    finite_float,
    out,
)
from qverify.errors import ChoiceError, ParameterError, QverifyError


def _link_params(
    preset: str,
    loss_db_per_km: float | None,
    e_mis: float | None,
    eta_det: float | None,
    p_dark: float | None,
    f_ec: float | None,
    mu: float | None,
    nu: float | None,
    clock_hz: float | None,
    relay_fraction: float | None,
    sift_factor: float | None,
    double_click: str | None,
    dead_time_slots: int | None = None,
    p_afterpulse: float | None = None,
) -> Any:
    from qverify.physics import PRESETS

    if preset not in PRESETS:
        raise ChoiceError("preset", preset, sorted(PRESETS))
    changes = {
        k: v
        for k, v in {
            "loss_db_per_km": loss_db_per_km,
            "e_mis": e_mis,
            "eta_det": eta_det,
            "p_dark": p_dark,
            "f_ec": f_ec,
            "nu": nu,
            "clock_hz": clock_hz,
            "relay_fraction": relay_fraction,
            "sift_factor": sift_factor,
            "double_click": double_click,
            "dead_time_slots": dead_time_slots,
            "p_afterpulse": p_afterpulse,
        }.items()
        if v is not None
    }
    params = PRESETS[preset].replace(**changes)
    if mu is not None:
        params = replace(params, source=replace(params.source, mu=mu))
    return params


def _parse_sweep(text: str) -> np.ndarray:
    try:
        start, stop, step = (float(x) for x in text.split(":"))
    except ValueError:
        raise ParameterError("sweep_km", text, "START:STOP:STEP in km, e.g. 0:300:10") from None
    if step <= 0 or stop < start or start < 0:
        raise ParameterError("sweep_km", text, "0 ≤ START ≤ STOP, STEP > 0")
    return np.arange(start, stop + step / 2, step)


@app.command()
def link(
    distance_km: Annotated[float, typer.Option(parser=finite_float, help="Alice–Bob fibre length in km (≥ 0).")] = 50.0,
    protocol: Annotated[Protocol, typer.Option(help="mdi (MDI-QKD) or bb84 (decoy BB84).")] = Protocol.MDI,
    decoys: Annotated[Decoys, typer.Option(help="Decoy analysis.")] = Decoys.INFINITE,
    preset: Annotated[Preset, typer.Option(help="Parameter set.")] = Preset.LCQ2012,
    loss_db_per_km: Annotated[float | None, typer.Option(parser=finite_float, help="Fibre loss, dB/km.")] = None,
    e_mis: Annotated[float | None, typer.Option(parser=finite_float, help="Misalignment error, [0, 0.5].")] = None,
    eta_det: Annotated[float | None, typer.Option(parser=finite_float, help="Detector efficiency, (0, 1].")] = None,
    p_dark: Annotated[
        float | None, typer.Option(parser=finite_float, help="Dark counts per detector per pulse.")
    ] = None,
    f_ec: Annotated[float | None, typer.Option(parser=finite_float, help="Error-correction inefficiency ≥ 1.")] = None,
    mu: Annotated[
        float | None, typer.Option(parser=finite_float, help="Signal mean photon number (default: optimised).")
    ] = None,
    nu: Annotated[float | None, typer.Option(parser=finite_float, help="Weak-decoy mean photon number.")] = None,
    clock_hz: Annotated[float | None, typer.Option(parser=finite_float, help="Pulse rate in Hz for bit/s.")] = None,
    relay_fraction: Annotated[
        float | None, typer.Option(parser=finite_float, help="MDI relay position, [0, 1].")
    ] = None,
    sift_factor: Annotated[float | None, typer.Option(parser=finite_float, help="Sifting factor, (0, 1].")] = None,
    double_click: Annotated[
        DoubleClick | None,
        typer.Option(help="BB84 double clicks: squash (a random bit; what the proofs assume) or discard."),
    ] = None,
    dead_time_slots: Annotated[
        int | None,
        typer.Option(
            help="Detector dead time, slots each detector is blind after a click (integer 0–200 for BB84, "
            "0–10 for MDI-QKD: Charlie's four detectors)."
        ),
    ] = None,
    p_afterpulse: Annotated[
        float | None,
        typer.Option(
            parser=finite_float,
            help="BB84 after-pulse probability per detection, [0, 1) (Lim et al. 2014 model; not with dead time).",
        ),
    ] = None,
    block_size: Annotated[
        float | None,
        typer.Option(
            parser=finite_float,
            help="Finite key: block size ≥ 1 (e.g. 1e12), counted as --block. Adds the finite-key rate "
            "(BB84 after Lim et al. 2014, MDI after Curty et al. 2014) with every decoy setting optimised per distance.",
        ),
    ] = None,
    block: Annotated[
        BlockKind,
        typer.Option(help="What --block-size counts: pulses sent N (MDI: pairs) or n_x, the key-basis block (Lim)."),
    ] = BlockKind.PULSES,
    epsilon: Annotated[
        float, typer.Option("--epsilon", "--eps-sec", parser=finite_float, help="Finite key: ε_sec, in (0, 1).")
    ] = 1e-10,
    eps_cor: Annotated[
        float | None, typer.Option(parser=finite_float, help="Finite key: ε_cor, in (0, 1) (default: ε_sec).")
    ] = None,
    kappa: Annotated[
        float | None,
        typer.Option(parser=finite_float, help="Finite key: ε_sec = κ·ℓ (Lim et al. 2014), κ in (0, 1)."),
    ] = None,
    mdi_estimator: Annotated[
        MdiEstimator,
        typer.Option(help="Finite MDI key: analytic (vacuum + weak) or lp (linear programmes over the yields)."),
    ] = MdiEstimator.ANALYTIC,
    sweep_km: Annotated[str | None, typer.Option(help="Sweep START:STOP:STEP km, both protocols.")] = None,
    plot: Annotated[Path | None, typer.Option(help="With --sweep-km: write a PNG plot here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Secret-key rate, QBER and optimal μ of one link (closed forms, Ma–Razavi / GLLP)."""
    from qverify.physics import DECOYS, PROTOCOLS, link_rate, max_distance_km

    params = _link_params(
        preset, loss_db_per_km, e_mis, eta_det, p_dark, f_ec, mu, nu, clock_hz, relay_fraction,
        sift_factor, double_click, dead_time_slots, p_afterpulse,
    )  # fmt: skip
    if protocol not in PROTOCOLS:
        raise ChoiceError("protocol", protocol, PROTOCOLS)
    if decoys not in DECOYS:
        raise ChoiceError("decoys", decoys, DECOYS)
    options = _key_options(block_size, str(block), epsilon, eps_cor, kappa)
    if mdi_estimator == "lp" and (options.block != "pulses" or options.kappa is not None):
        raise ParameterError("mdi_estimator", str(mdi_estimator), "'analytic' with --block n_x or --kappa")
    finite = _finite_key(params, protocol if sweep_km is None else None, options, block_size, str(mdi_estimator))
    key = options if block_size is not None else None
    provenance = {"params": {**params.to_dict(), "decoys": decoys, **finite}, "qverify_version": __version__}
    if sweep_km is not None:
        if plot is not None and not plot.parent.exists():
            raise QverifyError(f"plot folder {str(plot.parent)!r} does not exist")
        d = _parse_sweep(sweep_km)
        protocols = [p for p in PROTOCOLS if not (p == "mdi" and params.detector.p_afterpulse > 0)]
        curves = {p: link_rate(d, params, p, decoys) for p in protocols}
        finite_curves = _finite_curves(d, params, key, protocols, str(mdi_estimator))
        if plot is not None:
            from qverify.experiments.link_report import plot_rates

            plotted = {f"{p}/{decoys}": {"key_rate": c.key_rate.tolist()} for p, c in curves.items()}
            for p, (c, _a) in finite_curves.items():
                plotted[f"{p}/finite {options.block}={block_size:.0e}"] = {"key_rate": c.key_rate.tolist()}
            plot_rates({"distances_km": d.tolist(), "curves": plotted}, plot)
        if as_json:
            _emit_json(
                {
                    **provenance,
                    "distances_km": d.tolist(),
                    **{p: {k: v.tolist() for k, v in c._asdict().items()} for p, c in curves.items()},
                    **{f"{p}_finite": _finite_json(c, a) for p, (c, a) in finite_curves.items()},
                    "plot": str(plot) if plot else None,
                }
            )
            return
        det = params.detector
        table = Table(
            title=f"Key rate vs distance ({decoys} decoys, preset {preset}; dead time {det.dead_time_slots} slots, "
            f"BB84 double clicks {det.double_click}, after-pulses {det.p_afterpulse:g}, "
            f"BB84 sifting {params.source.sift_for('bb84'):g})"
        )
        cols = ["km"]
        for p in protocols:
            cols += [f"{p.upper()} bit/pulse", f"{p.upper()} bit/s"]
        for p in finite_curves:
            cols += [f"{p.upper()} finite", f"{p.upper()} asymptotic, same model"]
        for col in cols:
            table.add_column(col, justify="right")
        for i, dist in enumerate(d):
            row = [f"{dist:g}"]
            for p in protocols:
                row += [f"{curves[p].key_rate[i]:.3e}", f"{curves[p].key_rate_bps[i]:.3e}"]
            for c, a in finite_curves.values():
                row += [f"{c.key_rate[i]:.3e}", f"{a.key_rate[i]:.3e}"]
            table.add_row(*row)
        out.print(table)
        if finite_curves:
            out.print(_finite_note(options), highlight=False)
        if "mdi" not in protocols:
            out.print("MDI-QKD left out: after-pulsing is modelled for BB84 only.", highlight=False)
        if plot is not None:
            out.print(f"plot written to {plot}")
        return
    r = link_rate(np.array(distance_km), params, protocol, decoys)
    res = {
        "distance_km": distance_km,
        "protocol": protocol,
        "key_rate_per_pulse": float(r.key_rate),
        "key_rate_bps": float(r.key_rate_bps),
        "qber": float(r.qber),
        "mu_opt": float(r.mu),
        "gain": float(r.gain),
        "sift_factor_used": params.source.sift_for(protocol),
        "max_distance_km": max_distance_km(params, protocol, decoys),
    }
    if block_size is not None:
        res["finite_key"] = _finite_point(distance_km, params, protocol, key, str(mdi_estimator))
    if as_json:
        _emit_json({**provenance, **res})
        return
    table = Table(title=f"{protocol.upper()} link, {distance_km:g} km, {decoys} decoys (preset {preset})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("key rate (bit/pulse)", f"{res['key_rate_per_pulse']:.4e}")
    table.add_row(f"key rate (bit/s at {params.source.clock_hz:.3g} Hz)", f"{res['key_rate_bps']:.4e}")
    table.add_row("QBER (signal)", f"{res['qber']:.4%}")
    table.add_row("μ (optimal)" if params.source.mu is None else "μ", f"{res['mu_opt']:.4f}")
    table.add_row("maximum distance (km)", f"{res['max_distance_km']:.1f}")
    sift = res["sift_factor_used"]
    kind = {0.5: "standard BB84", 1.0: "efficient, key basis w.p. → 1"}.get(sift, "user-set")
    table.add_row("sifting factor", f"{sift:g} ({kind})")
    if protocol == "bb84":
        table.add_row(
            "double clicks / dead time", f"{params.detector.double_click} / {params.detector.dead_time_slots} slots"
        )
    else:
        table.add_row("dead time (Charlie's 4 detectors)", f"{params.detector.dead_time_slots} slots")
    if block_size is not None:
        fk = res["finite_key"]
        table.add_row("finite key: block", f"{block_size:.3g} ({_block_words(options.block)})")
        table.add_row("finite key: pulses sent per block N", f"{fk['n_pulses']:.4e}")
        table.add_row("finite key: ε_sec / ε_cor", f"{fk['eps_sec']:.3g} / {options.epsilon_cor:.3g}")
        table.add_row("finite-key rate (bit/pulse)", f"{fk['key_rate']:.4e}")
        table.add_row("finite-key bits per block", f"{fk['key_bits']:.4e}")
        table.add_row("asymptotic rate, same model and optimiser (bit/pulse)", f"{fk['asymptotic_key_rate']:.4e}")
        table.add_row("finite-key settings (optimised)", ", ".join(f"{k} {v:.4g}" for k, v in fk["settings"].items()))
    out.print(table)
    if block_size is not None:
        out.print(_finite_note(options), highlight=False)


def _block_words(block: str) -> str:
    return "pulses sent N" if block == "pulses" else "post-processing block n_X"


def _key_options(block_size: float | None, block: str, epsilon: float, eps_cor: float | None,
                 kappa: float | None) -> Any:  # fmt: skip
    """The finite-key options, validated even without ``--block-size`` (then recorded, unused)."""
    from qverify.physics.finite_link import FiniteKey

    return FiniteKey(1e12 if block_size is None else block_size, epsilon, eps_cor, block, kappa)


def _finite_note(key: Any) -> str:
    return (
        f"Finite key: {key.describe()}; every decoy setting optimised per distance. The 'asymptotic, same model' "
        "column is the same decoy formula and optimiser with N → ∞ (its key basis is chosen with probability → 1); "
        "the closed-form columns use the sifting factor in the title."
    )


def _finite_key(
    params: Any, protocol: str | None, key: Any, block_size: float | None, estimator: str = "analytic"
) -> dict[str, Any]:
    """Record the finite-key options (validated even when unused); refuse a block too small for any key.

    "Any key" is at 0 km with every decoy setting optimised; the refusal says what the optimiser
    searched and its best block length.
    """
    from qverify.physics.finite_link import finite_link_rate, min_block_size

    options = {
        "block_size": block_size,
        "block": key.block,
        "epsilon": key.eps if key.kappa is None else None,
        "eps_cor": key.epsilon_cor,
        "kappa": key.kappa,
        "mdi_estimator": estimator,
    }
    if block_size is None:
        return options
    if protocol is None:
        protocols = ["bb84"] if params.detector.p_afterpulse > 0 else ["mdi", "bb84"]
    else:
        protocols = [protocol]
    kw = {"eps_cor": key.eps_cor, "block": key.block, "kappa": key.kappa}
    for p in protocols:
        est = estimator if p == "mdi" else "analytic"
        at_zero = finite_link_rate(np.array(0.0), params, p, block_size, key.eps, estimator=est, **kw)
        if at_zero.key_rate > 0:
            continue
        need = min_block_size(params, p, key.eps, **kw)
        raise ParameterError(
            "block_size",
            block_size,
            f"≥ {need:.3g} ({_block_words(key.block)}) for any {p} key at 0 km: no key at any settings the optimiser "
            f"found (its best block of this size has ℓ = {float(at_zero.best_length_bits):.0f} bits)",
        )
    return options


def _finite_json(c: Any, a: Any) -> dict[str, Any]:
    out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in c._asdict().items() if k != "settings"}
    out["settings"] = {k: v.tolist() for k, v in c.settings.items()}
    out["asymptotic_key_rate"] = a.key_rate.tolist()
    return out


def _finite_curves(d: np.ndarray, params: Any, key: Any, protocols: list[str], estimator: str) -> dict[str, Any]:
    from qverify.physics.finite_link import finite_link_rate

    if key is None:
        return {}
    kw = {"eps_cor": key.eps_cor, "block": key.block, "kappa": key.kappa}
    return {
        p: (
            finite_link_rate(
                d, params, p, key.block_size, key.eps, estimator=estimator if p == "mdi" else "analytic", **kw
            ),
            finite_link_rate(d, params, p, np.inf, key.eps, **kw),
        )
        for p in protocols
    }


def _finite_point(distance_km: float, params: Any, protocol: str, key: Any, estimator: str) -> dict[str, Any]:
    from qverify.physics.finite_link import finite_link_rate

    kw = {"eps_cor": key.eps_cor, "block": key.block, "kappa": key.kappa}
    est = estimator if protocol == "mdi" else "analytic"
    r = finite_link_rate(np.array(distance_km), params, protocol, key.block_size, key.eps, estimator=est, **kw)
    a = finite_link_rate(np.array(distance_km), params, protocol, np.inf, key.eps, **kw)
    res: dict[str, Any] = {k: float(v) for k, v in r._asdict().items() if k != "settings"}
    res["settings"] = {k: float(v) for k, v in r.settings.items()}
    res["asymptotic_key_rate"] = float(a.key_rate)
    res["block"] = key.block
    res["decoy_estimation"] = est
    return res


@app.command()
def bsm(
    e_mis: Annotated[float, typer.Option(parser=finite_float, help="Misalignment on Alice's input, [0, 0.5].")] = 0.015,
    gate_error: Annotated[
        float, typer.Option(parser=finite_float, help="Depolarising error of Charlie's gates.")
    ] = 0.0,
    amp_damping: Annotated[float, typer.Option(parser=finite_float, help="Amplitude damping γ on both inputs.")] = 0.0,
    relay: Annotated[Relay, typer.Option(help="Charlie's behaviour.")] = Relay.HONEST,
    inject_prob: Annotated[
        float, typer.Option(parser=finite_float, help="Injection probability for relay=inject.")
    ] = 1.0,
    shots: Annotated[int, typer.Option(help="Shots per round setting (12 settings).")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the multinomial draws.")] = 0,
    confidence: Annotated[
        float, typer.Option(parser=finite_float, help="Confidence level of intervals, (0, 1).")
    ] = 0.95,
    method: Annotated[
        Method,
        typer.Option(
            help="auto: exact distributions (Aer density matrix) for these small circuits; stim: Stim's "
            "sampler (Clifford relays, Pauli noise: no --amp-damping, not the inject relay); sampled: Aer."
        ),
    ] = Method.AUTO,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Simulate Charlie's Bell-state measurement in Aer: e11 per basis, ψ± split, Bell fidelity."""
    from qverify.protocols.mdi import BSMNoise
    from qverify.verify.bsm import run_bsm

    if shots < 1:
        raise ParameterError("shots", shots, "[1, inf)")
    res = run_bsm(BSMNoise(e_mis, gate_error, amp_damping), relay, shots, seed, confidence, inject_prob, method)
    if as_json:
        _emit_json({**res.to_dict(), "qverify_version": __version__})
        return
    table = Table(title=f"MDI BSM, relay={relay}, {shots} shots × 12 settings, {confidence:.0%} CI")
    for col in ("quantity", "estimate", "interval", "exact"):
        table.add_column(col, justify="right")
    for name in ("e_z", "e_x", "e_y", "psi_minus_fraction", "success", "fidelity"):
        e = getattr(res, name)
        exact = "" if e.exact is None else f"{e.exact:.6f}"
        table.add_row(name, f"{e.value:.5f}", f"[{e.low:.5f}, {e.high:.5f}]", exact)
    out.print(table)
