"""`qverify verify` and `qverify export-circuits`: protocol verification and canonical circuits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from qverify import __version__
from qverify.cli.common import (
    NoiseModelName,
    VerifyProtocol,
    _emit_json,
    app,
    finite_float,
    out,
)
from qverify.errors import ChoiceError, ParameterError, QverifyError


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
    trust: Annotated[
        str,
        typer.Option(help="ghz: bound the verdict uses: dishonest (parties may collude with the source) or honest."),
    ] = "dishonest",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Verify a protocol circuit: estimate, confidence interval, the test that produced it, verdict.

    ghz: the file prepares an n-party state; the X/Y test of Pappa et al. (2012) gives the pass rate
    and a fidelity bound: by default the dishonest-party bound of qverify.verify.dishonest (parties
    may collude with the source; F ≥ 0.9 needs P ≥ 0.9707), or with --trust honest the honest-party
    bound 2P − 1; both are in the JSON, named. qss: the file is a 5-qubit ((3,5)) encoder (secret on qubit 0);
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
                       state=qc, noise=str(noise), trust=trust)  # fmt: skip
        assert r.honest_fidelity_bound is not None and r.dishonest_fidelity_bound is not None
        result = {"test": "GHZ X/Y test (Pappa et al., PRL 108, 260502, 2012)", "estimate": r.fidelity_bound.to_dict(),
                  "bound": r.bound, "honest_fidelity_bound": r.honest_fidelity_bound.to_dict(),
                  "dishonest_fidelity_bound": r.dishonest_fidelity_bound.to_dict(),
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
    if "bound" in result:
        table.add_row("bound", str(result["bound"]))
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


QDS_ROWS = (
    ("honest_acceptance", "honest signature accepted by both recipients"),
    ("forgery_success", "forgery by a recipient who guesses the other's positions"),
    ("intercept_forgery_success", "forgery by intercept-resend on the insecure channel (best fraction)"),
    ("repudiation_success", "repudiation by the signer"),
    ("threshold_t_accepts", "t key holders sign (accepted)"),
    ("threshold_t_minus_1_accepts", "t − 1 key holders sign (accepted)"),
    ("corrupted_share_detected", "a corrupted key share is detected (Feldman VSS)"),
    ("threshold_with_corrupted_share_accepts", "t + 1 holders, one share corrupted: signature made"),
)


@app.command()
def qds(
    holders: Annotated[int, typer.Option(help="Key holders of the threshold signer, ≥ 1.")] = 5,
    t: Annotated[int, typer.Option(help="Holders needed to sign, in [1, holders].")] = 3,
    length: Annotated[
        int | None,
        typer.Option(help="Signature positions per recipient string; default: what the bounds need for --epsilon."),
    ] = None,
    epsilon: Annotated[
        float,
        typer.Option(parser=finite_float, help="Target for the honest-abort, repudiation and forgery bounds, (0, 1)."),
    ] = 1e-4,
    p_depol: Annotated[
        float, typer.Option(parser=finite_float, help="Depolarising probability of each state's channel, [0, 1].")
    ] = 0.02,
    trials: Annotated[int, typer.Option(help="Protocol runs per measured probability, ≥ 1.")] = 200,
    confidence: Annotated[float, typer.Option(parser=finite_float, help="Clopper–Pearson confidence, (0, 1).")] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed of every classical and sampling choice.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Threshold quantum digital signatures over insecure channels: measured acceptance, forgery
    (guessing and intercept-resend), repudiation and the threshold layer's behaviour, each with a
    Clopper–Pearson interval over --trials runs.

    The scheme is the BB84-state QDS of Amiri, Wallden, Kent and Andersson (PRA 93, 032325, 2016)
    with parameter estimation (20 % of each string revealed, abort above 8 % errors); the signer's
    key is AES-256-GCM-encrypted and the key shared among the holders with Feldman verifiable secret
    sharing. The position count is chosen from Hoeffding bounds for --epsilon (qverify.verify.qds:
    5053 positions for 1e-4 at the defaults); a --length below that is refused with the length needed.
    The bounds are printed beside the measured rates.
    """
    from qverify.verify.qds import run_qds

    res = run_qds(holders, t, length, p_depol, trials=trials, confidence=confidence, seed=seed, epsilon=epsilon)
    length = res.params["length"]
    if as_json:
        _emit_json({"result": res.to_dict(), "qverify_version": __version__})
        return
    table = Table(title=f"QDS: {holders} holders, t = {t}, {length} positions, p = {p_depol:g}, {trials} runs each")
    table.add_column("measured probability")
    table.add_column("value", justify="right")
    table.add_column(f"{confidence:.0%} interval", justify="right")
    for name, label in QDS_ROWS:
        est = getattr(res, name)
        table.add_row(label, f"{est.value:.4f}", f"[{est.low:.4f}, {est.high:.4f}]")
    for frac, est in res.intercept_forgery_by_fraction:
        table.add_row(f"  intercept fraction {frac:g}", f"{est.value:.4f}", f"[{est.low:.4f}, {est.high:.4f}]")
    for name, label in (
        ("honest_parameter_estimation_abort", "honest distribution aborted by parameter estimation"),
        ("repudiation_parameter_estimation_abort", "repudiating signer aborted by parameter estimation"),
        ("repudiation_past_parameter_estimation", "repudiation with parameter estimation ignored"),
    ):
        est = getattr(res, name)
        table.add_row(label, f"{est.value:.4f}", f"[{est.low:.4f}, {est.high:.4f}]")
    if res.bounds is not None:
        b = res.bounds
        table.add_row(f"bound (L = {b.paper_length:g}): honest abort", f"{b.honest_abort:.2e}", "Hoeffding")
        table.add_row("bound: repudiation", f"{b.repudiation:.2e}", "Hoeffding")
        table.add_row(f"bound: forgery (C_min = {b.c_min:g})", f"{b.forgery:.2e}", "Hoeffding")
    out.print(table)
