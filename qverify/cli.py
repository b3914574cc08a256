"""Command-line interface: a thin shell over the library (parse, call, print)."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from qverify import __version__
from qverify.errors import ChoiceError, ParameterError, QverifyError

app = typer.Typer(
    help="qverify: verify QKD protocol circuits and reproduce the ABFT-DRA experiment.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)
log = logging.getLogger("qverify")


def finite_float(text: str) -> float:
    """Option parser: a finite float; ``inf`` and ``nan`` are refused (main() names the option)."""
    try:
        x = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{text!r} is outside the allowed range: a finite number")
    return x


# Choices are spelled out here so that `--help` and shell completion need no heavy import (tests/test_cli.py
# checks each against the library's own tuple). As StrEnums, typer lists them in --help and completes them
# in the shell, and their members are plain strings to the library.


class Protocol(StrEnum):
    MDI = "mdi"
    BB84 = "bb84"


class Decoys(StrEnum):
    INFINITE = "infinite"
    VACUUM_WEAK = "vacuum+weak"


class Preset(StrEnum):
    LCQ2012 = "lcq2012"
    GYS2004 = "gys2004"


class DoubleClick(StrEnum):
    SQUASH = "squash"
    DISCARD = "discard"


class Method(StrEnum):
    AUTO = "auto"
    EXACT = "exact"
    SAMPLED = "sampled"


class VerifyProtocol(StrEnum):
    GHZ = "ghz"
    QSS = "qss"
    BSM = "bsm"
    QDS = "qds"


class NoiseModelName(StrEnum):
    LOCAL = "local"
    GLOBAL = "global"


class Executor(StrEnum):
    LOCAL = "local"
    RAY = "ray"


class Weighting(StrEnum):
    ABFT = "abft"
    EQUAL = "equal"


class Relay(StrEnum):
    INTERCEPT_RESEND = "intercept_resend"
    HONEST = "honest"
    INTERCEPT_RESEND_Z = "intercept_resend_z"
    INTERCEPT_RESEND_X = "intercept_resend_x"
    Z_MEASURE = "z_measure"
    INJECT = "inject"


class KeyRelay(StrEnum):
    SINGLE = "single"
    XOR = "xor"
    SHAMIR = "shamir"


class Scenario(StrEnum):
    FAULT_FREE = "fault_free"
    EQUIVOCATING_LEADER = "equivocating_leader"
    SILENT_HEAVY = "silent_heavy"
    LIARS = "liars"
    SLANDERERS = "slanderers"
    SLEEPER = "sleeper"
    VOTE_DELAY = "vote_delay"
    AMNESIA = "amnesia"
    WEIGHT_RACE = "weight_race"
    DUPLICATE_VOTES = "duplicate_votes"
    PARTITION = "partition"
    DROPS = "drops"
    F_PLUS_ONE = "f_plus_one"


class PolicyName(StrEnum):
    BASELINE = "baseline"
    PBFT_EQUAL = "pbft_equal"
    ABFT = "abft"


def _progress(unit: str = "", transient: bool = True) -> Progress:
    """The progress bar every long command shows (on stderr, so --json output stays clean)."""
    counter = "{task.completed}/{task.total}" + (f" {unit}" if unit else "")
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn(counter), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), console=err, transient=transient,
    )  # fmt: skip


def _jax_cache() -> None:
    from qverify.jax_cache import enable_compilation_cache

    folder = enable_compilation_cache()
    log.info("JAX compilation cache: %s", folder)


def _emit_json(payload: dict[str, Any]) -> None:
    from qverify.provenance import environment

    payload = {**payload, "environment": environment()}
    sys.stdout.write(json.dumps(payload, indent=2, default=float) + "\n")


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
        int | None, typer.Option(help="BB84 detector dead time, slots blind after each click (integer 0–200).")
    ] = None,
    sweep_km: Annotated[str | None, typer.Option(help="Sweep START:STOP:STEP km, both protocols.")] = None,
    plot: Annotated[Path | None, typer.Option(help="With --sweep-km: write a PNG plot here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Secret-key rate, QBER and optimal μ of one link (closed forms, Ma–Razavi / GLLP)."""
    from qverify.physics import DECOYS, PROTOCOLS, link_rate, max_distance_km

    params = _link_params(
        preset, loss_db_per_km, e_mis, eta_det, p_dark, f_ec, mu, nu, clock_hz, relay_fraction,
        sift_factor, double_click, dead_time_slots,
    )  # fmt: skip
    if protocol not in PROTOCOLS:
        raise ChoiceError("protocol", protocol, PROTOCOLS)
    if decoys not in DECOYS:
        raise ChoiceError("decoys", decoys, DECOYS)
    provenance = {"params": {**params.to_dict(), "decoys": decoys}, "qverify_version": __version__}
    if sweep_km is not None:
        if plot is not None and not plot.parent.exists():
            raise QverifyError(f"plot folder {str(plot.parent)!r} does not exist")
        d = _parse_sweep(sweep_km)
        curves = {p: link_rate(d, params, p, decoys) for p in PROTOCOLS}
        if plot is not None:
            from qverify.experiments.link_report import plot_rates

            plot_rates(
                {
                    "distances_km": d.tolist(),
                    "curves": {f"{p}/{decoys}": {"key_rate": c.key_rate.tolist()} for p, c in curves.items()},
                },
                plot,
            )
        if as_json:
            _emit_json(
                {
                    **provenance,
                    "distances_km": d.tolist(),
                    **{p: {k: v.tolist() for k, v in c._asdict().items()} for p, c in curves.items()},
                    "plot": str(plot) if plot else None,
                }
            )
            return
        table = Table(title=f"Key rate vs distance ({decoys} decoys, preset {preset})")
        for col in ("km", "MDI bit/pulse", "MDI bit/s", "BB84 bit/pulse", "BB84 bit/s"):
            table.add_column(col, justify="right")
        for i, dist in enumerate(d):
            m, b = curves["mdi"], curves["bb84"]
            table.add_row(
                f"{dist:g}",
                f"{m.key_rate[i]:.3e}",
                f"{m.key_rate_bps[i]:.3e}",
                f"{b.key_rate[i]:.3e}",
                f"{b.key_rate_bps[i]:.3e}",
            )
        out.print(table)
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
    out.print(table)


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
    method: Annotated[Method, typer.Option(help="Simulation method.")] = Method.AUTO,
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


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="OpenQASM 2 or 3 file (see circuits/).")],
    protocol: Annotated[VerifyProtocol, typer.Option(help="Protocol the circuit implements.")] = VerifyProtocol.GHZ,
    shots: Annotated[int, typer.Option(help="Rounds / shots of the test.")] = 10_000,
    confidence: Annotated[
        float, typer.Option(parser=finite_float, help="Confidence level of the interval, (0, 1).")
    ] = 0.99,
    threshold: Annotated[
        float, typer.Option(parser=finite_float, help="Fidelity (ghz) or 1 − error (bsm, qds) required.")
    ] = 0.9,
    p_depol: Annotated[
        float, typer.Option(parser=finite_float, help="Depolarising noise probability, [0, 1] (see --noise).")
    ] = 0.0,
    noise: Annotated[
        NoiseModelName,
        typer.Option(help="ghz: local (p on every qubit) or global (whole state mixed with probability p)."),
    ] = NoiseModelName.LOCAL,
    seed: Annotated[int, typer.Option(help="Seed of the sampled rounds.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Verify a protocol circuit: estimate, confidence interval, the test that produced it, verdict.

    ghz: the file prepares an n-party state; the X/Y test of Pappa et al. (2012) gives the pass rate
    and the fidelity bound 2P − 1. qss: the file is a 5-qubit ((3,5)) encoder (secret on qubit 0);
    every 3-share set must reconstruct, every pair must carry no information. bsm: an MDI round
    circuit named mdi_<basis><a><b>_*.qasm; reports the herald rate and error rate. qds: a
    signature position circuit qds_<basis><bit>_<basis>.qasm; reports the error rate.
    """
    import re

    from qverify.errors import CircuitError
    from qverify.physics._validate import check_range
    from qverify.verify.qasm import load_qasm

    protocols = ("ghz", "qss", "bsm", "qds")
    if protocol not in protocols:
        raise ChoiceError("protocol", protocol, protocols)
    check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    check_range("threshold", threshold, 0.0, 1.0)
    if shots < 1:
        raise ParameterError("shots", shots, "[1, inf)")
    qc = load_qasm(file)
    if noise == "global" and protocol != "ghz":
        raise ParameterError("noise", str(noise), f"'local' for --protocol {protocol} (global noise applies to ghz)")
    if protocol in ("bsm", "qds") and p_depol != 0:
        raise ParameterError("p_depol", p_depol, f"0 for --protocol {protocol} (the round circuit is run as written)")
    result: dict[str, Any]
    if protocol == "ghz":
        from qverify.verify.ghz import verify_ghz

        n = qc.num_qubits
        if not 3 <= n <= 64:
            raise CircuitError(f"{file}: the GHZ test needs 3 to 64 parties (qubits); the circuit has {n}")
        r = verify_ghz(n, p_depol=p_depol, rounds=shots, seed=seed, confidence=confidence, threshold=threshold,
                       state=qc, noise=str(noise))  # fmt: skip
        result = {"test": "GHZ X/Y test (Pappa et al., PRL 108, 260502, 2012)", "estimate": r.fidelity_bound.to_dict(),
                  "pass_probability": r.pass_probability.to_dict(), "exact_fidelity": r.fidelity,
                  "accepted": r.accepted, "params": r.params}  # fmt: skip
    elif protocol == "qss":
        from qverify.verify.sharing import verify_qss

        if qc.num_qubits != 5:
            raise CircuitError(f"{file}: a ((3,5)) encoder acts on 5 qubits; the circuit has {qc.num_qubits}")
        r2 = verify_qss(secrets=4, seed=seed, p_depol=p_depol, encoder=qc)
        result = {"test": "((3,5)) threshold sharing: all 10 authorised sets, all 10 pairs (exact)",
                  "estimate": {"value": r2.min_fidelity, "low": r2.min_fidelity, "high": r2.min_fidelity,
                               "method": "exact", "confidence": 1.0, "trials": r2.secrets},
                  "max_unauthorised_distance": r2.max_unauthorised_distance, "accepted": r2.accepted,
                  "params": r2.params}  # fmt: skip
    else:
        from qverify.backends import sample_counts
        from qverify.verify.stats import Estimate

        stem = file.stem
        m = (
            re.match(r"mdi_([ZXY])([01])([01])_", stem)
            if protocol == "bsm"
            else re.match(r"qds_([ZX])([01])_([ZX])", stem)
        )
        if m is None:
            pattern = "mdi_<Z|X|Y><0|1><0|1>_<relay>.qasm" if protocol == "bsm" else "qds_<Z|X><0|1>_<Z|X>.qasm"
            raise CircuitError(f"{file}: cannot tell the round's setting; expected a name like {pattern}")
        if qc.num_clbits != (2 if protocol == "bsm" else 1):
            raise CircuitError(f"{file}: a {protocol} circuit has {2 if protocol == 'bsm' else 1} classical bits")
        counts = sample_counts([qc], shots, np.random.default_rng(seed))
        c = counts.counts[0]
        p = None if counts.probabilities is None else counts.probabilities[0]
        if protocol == "bsm":
            basis, a, b = m.group(1), int(m.group(2)), int(m.group(3))
            herald = c[2] + c[3]
            if basis == "Z":
                errors = herald if a == b else 0
                ex = (p[2] + p[3]) if (p is not None and a == b) else 0.0
            else:
                wrong_minus = a == b  # ψ− with equal bits, or ψ+ with different bits, is an error
                errors = c[3] if wrong_minus else c[2]
                ex = None if p is None else float(p[3] if wrong_minus else p[2])
            ex_err = None if p is None or (p[2] + p[3]) == 0 else float(ex / (p[2] + p[3]))
            est = Estimate.binomial(int(errors), int(herald), confidence, counts.method, ex_err)
            result = {"test": f"MDI BSM round ({basis} basis, bits {a}{b}): error rate among heralds",
                      "estimate": est.to_dict(), "herald_rate": float(herald / shots),
                      "accepted": bool(est.high <= 1 - threshold), "params": {"shots": shots, "seed": seed}}  # fmt: skip
        else:
            sb, bit, mb = m.group(1), int(m.group(2)), m.group(3)
            if sb != mb:
                raise CircuitError(f"{file}: bases differ ({sb} vs {mb}); the outcome carries no check")
            errors = int(c[1 - bit])
            est = Estimate.binomial(errors, shots, confidence, counts.method, None if p is None else float(p[1 - bit]))
            result = {"test": "QDS position: error rate in the matching basis", "estimate": est.to_dict(),
                      "accepted": bool(est.high <= 1 - threshold), "params": {"shots": shots, "seed": seed}}  # fmt: skip
    result["protocol"] = protocol
    result["file"] = str(file)
    result["qverify_version"] = __version__
    if as_json:
        _emit_json(result)
        return
    e = result["estimate"]
    table = Table(title=f"{protocol}: {file.name}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("test", result["test"])
    table.add_row("estimate", f"{e['value']:.6f}")
    table.add_row(f"interval ({e.get('confidence', confidence):.0%})", f"[{e['low']:.6f}, {e['high']:.6f}]")
    table.add_row("method", str(e.get("method")))
    for key in ("exact_fidelity", "max_unauthorised_distance", "herald_rate"):
        if key in result and result[key] is not None:
            table.add_row(key.replace("_", " "), f"{result[key]:.3g}")
    table.add_row("verdict", "ACCEPTED" if result["accepted"] else "REJECTED")
    out.print(table)


@app.command("export-circuits")
def export_circuits_cmd(
    directory: Annotated[Path, typer.Argument(help="Folder to write the .qasm files into.")] = Path("circuits"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Write the canonical protocol circuits as OpenQASM 3 files.

    A file that already holds an equivalent circuit (same operator up to a global phase, same
    measurements) is left untouched, so exporting onto a clean checkout changes nothing.
    """
    from qverify.protocols.export import export_circuits

    try:
        res = export_circuits(directory)
    except OSError as exc:
        raise QverifyError(f"cannot write circuits under {str(directory)!r}: {exc.strerror}") from None
    if as_json:
        _emit_json(
            {
                "directory": str(directory),
                "files": [str(p) for p in res.written],
                "unchanged": [str(p) for p in res.unchanged],
                "qverify_version": __version__,
            }
        )
        return
    out.print(f"wrote {len(res.written)} circuits under {directory} ({len(res.unchanged)} already up to date)")


@app.command()
def reproduce(
    out_dir: Annotated[Path, typer.Option("--out", help="Parent folder of the run folder.")] = Path("results"),
    run: Annotated[str | None, typer.Option(help="Run folder name (default: a timestamp).")] = None,
    quick: Annotated[bool, typer.Option(help="Small sizes, for CI and smoke tests.")] = False,
    full: Annotated[bool, typer.Option(help="Larger scale: 20 seeds, longer runs and training.")] = False,
    topology: Annotated[str | None, typer.Option(help="Topology (default: the embedded SECOQC network).")] = None,
    executor: Annotated[Executor, typer.Option(help="local (process pool) or ray.")] = Executor.LOCAL,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: start a local one).")] = None,
    workers: Annotated[int, typer.Option(help="Local worker processes.")] = 2,
    resume: Annotated[bool, typer.Option(help="Continue the run folder --run, skipping finished tasks.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the link-level draws.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the claims as JSON too.")] = False,
) -> None:
    """Run the paper's experiment end to end and write results/<run>/report.md, report.html, figures, metrics.json.

    Link level (key rates, anchors, Aer BSM circuits), DRA agents, DQN convergence on an enumerable
    instance, and the scenario grid: Byzantine fraction 0/10/20/30 %, two behaviour sets, fluctuation
    on/off, policies baseline / abft / dra / abft+dra, 5 seeds, plus the ABFT sensitivity analysis.
    """
    _jax_cache()
    import sys as _sys

    from qverify.experiments.grid import GridConfig
    from qverify.experiments.link_report import LinkStudyConfig
    from qverify.experiments.reproduce import prepare_run_dir
    from qverify.experiments.reproduce import reproduce as run_reproduce
    from qverify.experiments.runner import EXECUTORS, check_ray_address

    if quick and full:
        raise QverifyError("--quick and --full exclude each other")
    if executor not in EXECUTORS:
        raise ChoiceError("executor", executor, EXECUTORS)
    if workers < 1:
        raise ParameterError("workers", workers, "[1, inf)")
    if resume and run is None:
        raise QverifyError("--resume needs --run NAME (the run folder to continue)")
    config = GridConfig.quick() if quick else (GridConfig.full() if full else GridConfig())
    if topology is not None:
        from qverify.network.topology import resolve

        resolve(topology)
        config = replace(config, topology=topology)
    if executor == "ray":
        check_ray_address(address)
    link_cfg = LinkStudyConfig(seed=seed)
    if quick:
        link_cfg = replace(link_cfg, distances_km=tuple(float(d) for d in range(0, 301, 20)), shots=2000)
    name = run or time.strftime("%Y%m%d-%H%M%S")
    from qverify.experiments.reproduce import run_settings

    target = prepare_run_dir(out_dir, name, resume, run_settings(config, link_cfg))
    command = "qverify " + " ".join(_sys.argv[1:])
    with _progress(transient=as_json) as bar:
        ids: dict[str, Any] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in ids:
                ids[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(ids[stage], completed=done if total else 1, total=max(total, 1))

        try:
            metrics = run_reproduce(config, target, link_cfg, executor, workers, address, command, tick)
        except (KeyboardInterrupt, SystemExit):
            err.print(
                f"interrupted: finished work is kept in {target}; continue with "
                f"`qverify reproduce --run {name} --resume` and the same options",
                highlight=False, markup=False,
            )  # fmt: skip
            raise
    if as_json:
        _emit_json({"run": str(target), "claims": metrics["claims"], "qverify_version": __version__})
    else:
        figures = sorted(target.glob("*.png"))
        out.print(f"run time  {metrics['run_seconds']:.0f} s", highlight=False)
        out.print(f"report    {target / 'report.html'}", highlight=False)
        out.print(f"          {target / 'report.md'}", highlight=False)
        out.print(f"figures   {target}/*.png ({len(figures)} files)", highlight=False)
        out.print(f"metrics   {target / 'metrics.json'}", highlight=False)


@app.command()
def readme(
    run_dir: Annotated[Path, typer.Argument(help="A finished reproduce run folder (holds metrics.json).")],
    readme_path: Annotated[Path, typer.Option("--readme", help="The README to update.")] = Path("README.md"),
) -> None:
    """Regenerate the README's claim section from a run's metrics.json (figures never pasted by hand)."""
    from qverify.experiments.readme import update_readme

    changed = update_readme(readme_path, run_dir)
    out.print(f"{readme_path}: claim section {'updated' if changed else 'already up to date'} from {run_dir}")


@app.command()
def consensus(
    nodes: Annotated[int, typer.Option(help="Number of replicas n (≥ 3f + 1).")] = 10,
    faulty: Annotated[int, typer.Option(help="Byzantine replicas f tolerated (and injected).")] = 3,
    scenario: Annotated[Scenario, typer.Option(help="Adversary scenario.")] = Scenario.SLEEPER,
    rounds: Annotated[int, typer.Option(help="Consensus instances (client requests) per run.")] = 200,
    seeds: Annotated[int, typer.Option(help="Independent runs (seeds 0..K-1).")] = 1,
    weighting: Annotated[
        Weighting, typer.Option(help="abft (fidelity-weighted) or equal (plain PBFT).")
    ] = Weighting.ABFT,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Run weighted PBFT under an adversary: agreement violations, decisions, latency vs fault-free.

    Scenarios: fault_free, equivocating_leader, silent_heavy, liars, slanderers, sleeper, vote_delay,
    amnesia, weight_race, duplicate_votes, partition, drops, f_plus_one (f + 1 faults: the checker
    must report the fork).
    """
    from qverify.consensus.scenarios import SCENARIOS, WEIGHTINGS, run_scenario

    if scenario not in SCENARIOS:
        raise ChoiceError("scenario", scenario, SCENARIOS)
    if weighting not in WEIGHTINGS:
        raise ChoiceError("weighting", weighting, WEIGHTINGS)
    if nodes < 1:
        raise ParameterError("nodes", nodes, "[1, inf)")
    if faulty < 0 or nodes < 3 * faulty + 1:
        raise ParameterError("faulty", faulty, f"[0, {(nodes - 1) // 3}] for {nodes} nodes (n ≥ 3f + 1)")
    if rounds < 1:
        raise ParameterError("rounds", rounds, "[1, inf)")
    if seeds < 1:
        raise ParameterError("seeds", seeds, "[1, inf)")
    results = []
    with _progress("seeds") as bar:
        task = bar.add_task(f"{scenario} n={nodes} f={faulty}", total=seeds)
        for seed in range(seeds):
            results.append(run_scenario(scenario, nodes, faulty, seed, rounds, weighting))
            bar.update(task, advance=1)
    summary = {
        "violations": sum(r.violations for r in results),
        "decided": sum(r.decided for r in results),
        "requests": sum(r.requests for r in results),
        "rounds_to_decision": float(np.mean([r.rounds_to_decision for r in results])),
        "latency_ratio": float(np.mean([r.latency_ratio for r in results])),
    }
    params = {"nodes": nodes, "faulty": faulty, "scenario": scenario, "rounds": rounds, "seeds": seeds,
              "weighting": weighting}  # fmt: skip
    if as_json:
        _emit_json({"params": params, "qverify_version": __version__, "summary": summary,
                    "runs": [r.to_dict() for r in results]})  # fmt: skip
        return
    table = Table(title=f"Weighted PBFT, scenario {scenario}, n={nodes}, f={faulty}, {seeds} seed(s)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("agreement violations", str(summary["violations"]))
    table.add_row("decided / requests", f"{summary['decided']} / {summary['requests']}")
    table.add_row("rounds to decision (mean)", f"{summary['rounds_to_decision']:.2f}")
    table.add_row("latency relative to fault-free", f"{summary['latency_ratio']:.2f}x")
    table.add_row("final weights (seed 0)", " ".join(map(str, results[0].weights[-1])))
    out.print(table)


network_app = typer.Typer(help="Built-in QKD network topologies.", no_args_is_help=True)
app.add_typer(network_app, name="network")


@network_app.command("list")
def network_list(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List the built-in topologies with their sources."""
    from qverify.network.topology import BUILTIN, describe, load_builtin

    rows = [describe(load_builtin(name)) for name in sorted(BUILTIN)]
    if as_json:
        _emit_json({"topologies": rows, "qverify_version": __version__})
        return
    table = Table(title="Built-in topologies")
    for col in ("name", "nodes", "links", "fibre (km)", "source"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], str(r["nodes"]), str(r["links"]), f"{r['fibre_km']:g}", r["source"])
    out.print(table)


@network_app.command("show")
def network_show(
    topology: Annotated[str, typer.Argument(help="Built-in name or a .graphml / .json file.")],
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of the graph with link rates.")] = None,
    preset: Annotated[Preset, typer.Option(help="Link physics preset.")] = Preset.LCQ2012,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show a topology's links with their fibre lengths and nominal key rates."""
    from qverify.network.plot import link_rates_bps, plot_topology
    from qverify.network.topology import describe, resolve
    from qverify.physics import PRESETS

    if preset not in PRESETS:
        raise ChoiceError("preset", preset, sorted(PRESETS))
    if plot is not None and not plot.parent.exists():
        raise QverifyError(f"plot folder {str(plot.parent)!r} does not exist")
    g = resolve(topology)
    params = PRESETS[preset]
    rates = link_rates_bps(g, params)
    rows = [
        {"a": str(u), "b": str(v), "length_km": d["length_km"], "protocol": d["protocol"], "key_rate_bps": float(r)}
        for (u, v, d), r in zip(g.edges(data=True), rates, strict=True)
    ]
    if plot is not None:
        plot_topology(g, params, plot)
    if as_json:
        _emit_json({**describe(g), "links_detail": rows, "params": params.to_dict(), "qverify_version": __version__})
        return
    info = describe(g)
    table = Table(title=f"{info['name']} — {info['source']}")
    for col in ("link", "length (km)", "protocol", "key rate (bit/s)"):
        table.add_column(col)
    for r in rows:
        table.add_row(f"{r['a']}–{r['b']}", f"{r['length_km']:g}", r["protocol"], f"{r['key_rate_bps']:.3e}")
    out.print(table)
    if plot is not None:
        out.print(f"plot written to {plot}")


@app.command()
def simulate(
    topology: Annotated[str, typer.Option(help="Built-in name or a .graphml / .json file.")] = "secoqc",
    byzantine: Annotated[float, typer.Option(parser=finite_float, help="Fraction of Byzantine nodes, [0, 1).")] = 0.0,
    behaviours: Annotated[str, typer.Option(help="Comma list: inject,drop,corrupt,lie,slander.")] = "inject,drop,lie",
    slots: Annotated[int, typer.Option(help="Number of time slots.")] = 1000,
    slot_s: Annotated[float, typer.Option(parser=finite_float, help="Slot length in seconds.")] = 1.0,
    demands: Annotated[int, typer.Option(help="Number of node pairs requesting key.")] = 4,
    demand_bits: Annotated[
        float, typer.Option(parser=finite_float, help="Key bits requested per demand per slot.")
    ] = 2000.0,
    relay: Annotated[KeyRelay, typer.Option(help="Key relay over trusted nodes.")] = KeyRelay.SINGLE,
    policy: Annotated[
        PolicyName, typer.Option(help="baseline (trust all reports), pbft_equal, or abft (fidelity-weighted PBFT).")
    ] = PolicyName.BASELINE,
    fluctuation: Annotated[bool, typer.Option(help="Fluctuating loss and drifts on/off.")] = True,
    epoch_slots: Annotated[int, typer.Option(help="Slots per control-plane epoch (reports, weights, decisions).")] = 10,
    verify_rounds: Annotated[
        int, typer.Option(help="BSM test rounds per link and epoch, sampled from the protocol circuits (>= 3).")
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Simulate the network slot by slot (one jit-compiled JAX model; the control plane runs between
    epochs): availability, delivered key, true and measured QBER, exposed key bits."""
    from qverify.network.adversary import Adversary
    from qverify.network.sim import Fluctuation, SimConfig
    from qverify.network.sim import simulate as run_sim
    from qverify.network.topology import resolve

    g = resolve(topology)
    adv = Adversary(fraction=byzantine, behaviours=tuple(b for b in behaviours.split(",") if b))
    config = SimConfig(
        slot_s=slot_s, n_demands=demands, demand_bits=demand_bits, relay=relay, adversary=adv,
        fluctuation=Fluctuation() if fluctuation else Fluctuation.off(), epoch_slots=epoch_slots,
        verify_rounds=verify_rounds,
    )  # fmt: skip
    pol = _make_policy(policy)
    if slots < 1:
        raise ParameterError("slots", slots, "[1, inf)")
    with _progress("slots") as bar:
        task = bar.add_task("simulating", total=slots)
        res = run_sim(g, config, slots, seed, pol, lambda k: bar.update(task, completed=k))
    summary = res.summary()
    if as_json:
        _emit_json({"params": res.params, "summary": summary, "qverify_version": __version__})
        return
    table = Table(title=f"{topology}: {slots} slots, {byzantine:.0%} Byzantine, policy {policy}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("availability", f"{summary['availability']:.4%}")
    table.add_row("delivered key (bit/slot)", f"{summary['delivered_bits_per_slot']:.4g}")
    table.add_row("exposed key fraction", f"{summary['exposed_fraction']:.4%}")
    table.add_row("mean link QBER (true, simulator only)", f"{summary['mean_link_qber']:.4%}")
    table.add_row("mean link QBER (measured by the verification rounds)", f"{summary['measured_mean_link_qber']:.4%}")
    table.add_row("worst link QBER (true, mean over slots)", f"{summary['max_link_qber']:.4%}")
    table.add_row("unservable demands", str(summary["unservable_demands"]))
    table.add_row("Byzantine nodes", ", ".join(summary["byzantine_nodes"]) or "none")
    out.print(table)


def _dra_env(topology: str, byzantine: float, demands: int, demand_bits: float, steps: int, seed: int) -> Any:
    from qverify.dra import env as E
    from qverify.network.adversary import Adversary
    from qverify.network.sim import Fluctuation, SimConfig
    from qverify.network.topology import resolve

    if steps < 1:
        raise ParameterError("steps", steps, "[1, inf)")
    cfg = SimConfig(n_demands=demands, demand_bits=demand_bits, fluctuation=Fluctuation(fade_rate=0.02),
                    adversary=Adversary(fraction=byzantine))  # fmt: skip
    return E.from_network(resolve(topology), cfg, seed=seed, max_steps=steps)


@app.command()
def train(
    topology: Annotated[str, typer.Option(help="Built-in name or a .graphml / .json file.")] = "secoqc",
    episodes: Annotated[int, typer.Option(help="Training episodes per seed.")] = 500,
    seeds: Annotated[int, typer.Option(help="Agents trained in parallel (vmap over seeds).")] = 4,
    byzantine: Annotated[float, typer.Option(parser=finite_float, help="Fraction of Byzantine nodes, [0, 1).")] = 0.0,
    demands: Annotated[int, typer.Option(help="Node pairs requesting key.")] = 3,
    demand_bits: Annotated[float, typer.Option(parser=finite_float, help="Key bits per demand per slot.")] = 3e6,
    steps: Annotated[int, typer.Option(help="Slots per episode.")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the instance and of training.")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for policy and learning curve.")] = Path("policies"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Train the branching DQN (prioritised replay, Adam 1e-3, γ 0.99): policy file + learning-curve PNG."""
    _jax_cache()
    from qverify.dra import dqn
    from qverify.dra import train as T

    env_params = _dra_env(topology, byzantine, demands, demand_bits, steps, seed)
    config = dqn.DQNConfig()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QverifyError(f"output folder {str(out_dir)!r} cannot be created: {exc.strerror}") from None
    with _progress("episodes") as bar:
        task = bar.add_task("training", total=episodes)
        res = T.train(env_params, config, episodes, seeds, seed, progress=lambda k: bar.update(task, completed=k))
    refs = T.reference_returns(env_params, dqn.eval_keys(config))
    best = int(np.argmax(res.eval_return[:, -1]))
    stem = out_dir / f"dqn_{topology.replace('/', '_')}_seed{seed}"
    meta = {"topology": topology, "byzantine": byzantine, "demands": demands, "demand_bits": demand_bits,
            "steps": steps, "seed": seed, "episodes": episodes, "qverify_version": __version__}  # fmt: skip
    dqn.save_policy(stem.with_suffix(".msgpack"), T.params_of_seed(res.params, best), env_params, config, meta)
    png = stem.with_suffix(".png")
    _plot_curves(res.eval_return, refs, png)
    summary: dict[str, Any] = {
        "final_eval_return_mean": float(res.eval_return[:, -1].mean()),
        "references": refs,
        "seconds": res.seconds,
        "policy": str(stem.with_suffix(".msgpack")),
        "curve_png": str(png),
    }
    if "optimum" in refs:
        summary["episodes_to_95pct_optimum"] = [T.episodes_to_reach(c, 0.95 * refs["optimum"]) for c in res.eval_return]
    if as_json:
        _emit_json({"params": meta, "summary": summary, "eval_return": res.eval_return.tolist()})
        return
    table = Table(title=f"DQN on {topology}: {episodes} episodes x {seeds} seeds ({res.seconds:.0f} s)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("final greedy return (mean over seeds)", f"{summary['final_eval_return_mean']:.2f}")
    for k, v in refs.items():
        table.add_row(f"reference: {k}", f"{v:.2f}")
    if "episodes_to_95pct_optimum" in summary:
        table.add_row("episodes to 95 % of optimum", str(summary["episodes_to_95pct_optimum"]))
    table.add_row("policy", summary["policy"])
    table.add_row("learning curve", summary["curve_png"])
    out.print(table)


def _plot_curves(curves: np.ndarray, refs: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    x = np.arange(1, curves.shape[1] + 1)
    for i, c in enumerate(curves):
        ax.plot(x, c, lw=1, alpha=0.8, label=f"DQN seed {i}")
    for name, v in refs.items():
        if name in ("static", "greedy", "optimum", "random"):
            colour = {"static": "gray", "greedy": "orange", "optimum": "k", "random": "red"}[name]
            ax.axhline(v, ls="--", lw=1, color=colour, label=name)
    ax.set_xlabel("episode")
    ax.set_ylabel("greedy return (fixed evaluation episodes)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@app.command()
def evaluate(
    policy: Annotated[Path, typer.Argument(help="A .msgpack policy written by `qverify train`.")],
    topology: Annotated[str, typer.Option(help="Topology the policy is evaluated on.")] = "secoqc",
    byzantine: Annotated[float, typer.Option(parser=finite_float, help="Fraction of Byzantine nodes, [0, 1).")] = 0.0,
    demands: Annotated[int, typer.Option(help="Node pairs requesting key.")] = 3,
    demand_bits: Annotated[float, typer.Option(parser=finite_float, help="Key bits per demand per slot.")] = 3e6,
    steps: Annotated[int, typer.Option(help="Slots per episode.")] = 50,
    episodes: Annotated[int, typer.Option(help="Evaluation episodes.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the instance and the episodes.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Evaluate a trained policy against static, random and greedy baselines (same episodes)."""
    _jax_cache()
    import jax

    from qverify.dra import baselines as B
    from qverify.dra import dqn
    from qverify.dra import train as T

    if episodes < 1:
        raise ParameterError("episodes", episodes, "[1, inf)")
    env_params = _dra_env(topology, byzantine, demands, demand_bits, steps, seed)
    params, config, _meta = dqn.load_policy(policy, env_params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1000), episodes)
    rows: dict[str, dict[str, float]] = {}
    for name, pol in (
        ("dqn", T.dqn_policy(params, env_params, config.hidden)),
        ("static", B.static_policy(env_params)),
        ("random", B.random_policy(env_params)),
        ("greedy", B.greedy_policy(env_params)),
    ):
        ev = B.evaluate(pol, env_params, keys)
        rows[name] = {
            "return": float(ev["returns"].mean()),
            "return_std": float(ev["returns"].std(ddof=1)) if episodes > 1 else 0.0,
            "delivered_bits": float(ev["delivered_bits"].mean()),
            "served": float(ev["served"].mean()),
            "qber_var": float(np.nanmean(ev["qber_var"])),
            "violations": float(ev["violations"].mean()),
        }
    if as_json:
        _emit_json({"params": {"topology": topology, "byzantine": byzantine, "episodes": episodes, "seed": seed},
                    "results": rows, "qverify_version": __version__})  # fmt: skip
        return
    table = Table(title=f"Policy evaluation on {topology}, {episodes} episodes")
    for col in ("policy", "return", "delivered (bit/episode)", "served", "QBER variance", "violations"):
        table.add_column(col, justify="right")
    for name, r in rows.items():
        table.add_row(name, f"{r['return']:.2f} ± {r['return_std']:.2f}", f"{r['delivered_bits']:.3e}",
                      f"{r['served']:.3f}", f"{r['qber_var']:.3e}", f"{r['violations']:.2f}")  # fmt: skip
    out.print(table)


def _make_policy(name: str) -> Any:
    from qverify.network.policy import BaselinePolicy

    if name == "baseline":
        return BaselinePolicy()
    from qverify.consensus.control import ABFTPolicy, equal_weight_pbft

    if name == "abft":
        return ABFTPolicy()
    if name == "pbft_equal":
        return equal_weight_pbft()
    raise ChoiceError("policy", name, ("baseline", "pbft_equal", "abft"))


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Errors only: no progress bars or info.")] = False,
) -> None:
    """qverify: verify QKD protocol circuits and reproduce the ABFT-DRA experiment."""
    if version:
        out.print(f"qverify {__version__}")
        raise typer.Exit()
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    setup_logging(level)
    err.quiet = quiet


def setup_logging(level: int) -> None:
    """Log records of ``qverify.*`` to stderr through rich, at ``level``."""
    from rich.logging import RichHandler

    root = logging.getLogger("qverify")
    root.handlers[:] = [RichHandler(console=err, show_path=False, show_time=False)]
    root.setLevel(level)
    root.propagate = False


# typer may vendor its own click: take the exception classes from typer's BadParameter.
_USAGE_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _usage_message(exc: Exception) -> str:
    """One line naming the option and the value, for a click/typer usage error."""
    param = getattr(exc, "param", None)
    message = str(getattr(exc, "message", exc)).removeprefix("Value error, ").rstrip(".")
    if isinstance(exc, typer.BadParameter) and param is not None and getattr(param, "name", None):
        return f"{param.name} = {message}" if message.startswith("'") else f"{param.name}: {message}"
    return str(exc.format_message()) if hasattr(exc, "format_message") else message


def _terminate(signum: int, _frame: Any) -> None:
    # SIGTERM unwinds like Ctrl-C: finally blocks stop worker processes and keep what has finished.
    raise SystemExit(128 + signum)


def main() -> None:
    """Console entry point: bad input prints one line and exits with status 2."""
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    try:
        rv = app(standalone_mode=False)
    except QverifyError as exc:
        err.quiet = False
        err.print(f"error: {exc}", highlight=False, soft_wrap=True, markup=False)
        raise SystemExit(2) from None
    except _USAGE_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            ctx = getattr(exc, "ctx", None)
            out.print(ctx.get_help() if ctx else "", markup=False, highlight=False)
            raise SystemExit(0) from None
        err.quiet = False
        err.print(f"error: {_usage_message(exc)}", highlight=False, soft_wrap=True, markup=False)
        raise SystemExit(2) from None
    except typer.Abort:
        err.quiet = False
        err.print("aborted", highlight=False)
        raise SystemExit(130) from None
    raise SystemExit(rv if isinstance(rv, int) else 0)
