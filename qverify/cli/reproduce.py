"""`qverify reproduce` and `qverify readme`: the paper's experiment and the README claim section."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from qverify import __version__
from qverify.cli.common import (
    Executor,
    _emit_json,
    _jax_cache,
    _progress,
    app,
    err,
    out,
)
from qverify.errors import ChoiceError, ParameterError, QverifyError


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
    signatures: Annotated[
        str,
        typer.Option(
            help="How the ABFT control plane signs its PBFT messages: ideal (a keyed hash only the simulator can "
            "make and check; as unforgeable for the replicas, the same outcomes, a quarter less processor time) "
            "or ed25519."
        ),
    ] = "ideal",
) -> None:
    """Run the paper's experiment end to end and write results/<run>/report.md, report.html, figures, metrics.json.

    Link level (key rates, anchors, Aer BSM circuits); DRA agents; DQN convergence on an enumerable
    instance; the paper's scenario grid on SECOQC as deployed (0, 1 and 2 Byzantine nodes of 6, two
    behaviour sets, fluctuation on/off, policies baseline / abft / dra / abft+dra, 10 seeds, plus
    the ABFT sensitivity analysis); ABFT against the baseline on three networks (SECOQC,
    Beijing–Shanghai, a 4×4 mesh) at 0, 1, n/5, f and f + 1 Byzantine nodes, 10 paired seeds; and
    the map of where each claim would hold (path diversity × Byzantine count × misalignment).
    """
    _jax_cache()
    import sys as _sys

    from qverify.experiments.grid import GridConfig
    from qverify.experiments.link_report import LinkStudyConfig
    from qverify.experiments.networks import MapConfig, NetworkStudyConfig
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
    config = replace(config, signatures=signatures)  # checked against the schemes here, before any work
    config.counts()  # distinct Byzantine counts, or a one-line error before any work
    if quick:
        study, claims_map = NetworkStudyConfig.quick(), MapConfig.quick()
    elif full:
        study, claims_map = NetworkStudyConfig(seeds=20, slots=400), MapConfig(seeds=20, slots=400)
    else:
        study, claims_map = NetworkStudyConfig(), MapConfig()
    if executor == "ray":
        check_ray_address(address)
    link_cfg = LinkStudyConfig(seed=seed)
    if quick:
        link_cfg = replace(link_cfg, distances_km=tuple(float(d) for d in range(0, 301, 20)), shots=2000)
    name = run or time.strftime("%Y%m%d-%H%M%S")
    from qverify.experiments.reproduce import run_settings

    target = prepare_run_dir(out_dir, name, resume, run_settings(config, link_cfg, study, claims_map))
    command = "qverify " + " ".join(_sys.argv[1:])
    from qverify.interrupts import check as check_interrupt

    with _progress(transient=as_json) as bar:
        ids: dict[str, Any] = {}

        def tick(stage: str, done: int, total: int) -> None:
            check_interrupt()  # a SIGTERM lost in a gc callback is raised here (main thread only)
            if stage not in ids:
                ids[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(ids[stage], completed=done if total else 1, total=max(total, 1))

        try:
            metrics = run_reproduce(config, target, link_cfg, executor, workers, address, command, tick,
                                    study, claims_map)  # fmt: skip
        except (KeyboardInterrupt, SystemExit) as exc:
            err.print(
                f"interrupted: finished work is kept in {target}; continue with "
                f"`qverify reproduce --run {name} --resume` and the same options",
                highlight=False, markup=False,
            )  # fmt: skip
            bar.stop()
            # The workers are stopped and every finished task is stored. A background thread may still
            # be inside an XLA compilation; tearing the interpreter down around it aborts the process
            # (SIGABRT), so leave without finalisation.
            import os

            _sys.stdout.flush()
            _sys.stderr.flush()
            os._exit(exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130)
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
