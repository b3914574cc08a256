"""``qverify reproduce``: the paper's experiment end to end, and the claim-by-claim report.

Steps: link study (physics + circuits) → DRA agents trained per grid cell (and one on the oracle
observation) → DQN convergence on the small enumerable instance → the scenario grid (local or Ray
executor, results stored per task), the price-of-realism runs (:mod:`~qverify.experiments.realism`),
the study across networks and the claims map → aggregation with 95 % intervals over seeds →
``report.md``, ``report.html``, figures, ``metrics.json``. The run folder carries a ``RUNNING``
marker until the report is complete.

Every run that needs no trained agent (the across-networks study, the claims map, the grid's
baseline and ABFT runs) is handed to the worker pool first and runs while the main process trains
the agents; the DRA runs follow once their agents exist.

The jobs live in their own modules: :mod:`~qverify.experiments.stages` (run folder, agents,
convergence), :mod:`~qverify.experiments.claims` (aggregates and verdicts),
:mod:`~qverify.experiments.report` (figures, Markdown, HTML), :mod:`~qverify.experiments.stats`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qverify import __version__
from qverify.experiments.claims import aggregate, claims, paired_comparisons
from qverify.experiments.grid import GridConfig, build_tasks, sim_config
from qverify.experiments.link_report import LinkStudyConfig, render_markdown, run_link_study
from qverify.experiments.networks import (
    MapConfig,
    NetworkStudyConfig,
    map_markdown,
    map_tasks,
    plot_map,
    plot_study,
    study_markdown,
    study_tasks,
    summarise_map,
    summarise_study,
)
from qverify.experiments.realism import measurement_quality, price_of_realism, realism_markdown, realism_tasks
from qverify.experiments.report import environment_markdown, network_markdown, plot_grid, render_html
from qverify.experiments.runner import ResultStore, TaskPool, check_ray_address
from qverify.experiments.stages import (
    convergence_study,
    prepare_run_dir,
    run_settings,
    train_agents,
    train_oracle_agent,
)
from qverify.experiments.stats import bootstrap_ci
from qverify.interrupts import check as check_interrupt

Progress = Callable[[str, int, int], None]
log = logging.getLogger(__name__)


__all__ = ["bootstrap_ci", "prepare_run_dir", "reproduce", "run_settings"]


def reproduce(
    config: GridConfig,
    run_dir: Path,
    link_config: LinkStudyConfig,
    executor: str = "local",
    workers: int = 2,
    address: str | None = None,
    command: str = "qverify reproduce",
    progress: Progress | None = None,
    study: NetworkStudyConfig | None = None,
    claims_map: MapConfig | None = None,
) -> dict[str, Any]:
    """Run everything into ``run_dir`` (prepared by :func:`prepare_run_dir`); returns metrics.

    ``study`` and ``claims_map`` add the across-networks study and the claims map (``None``: skipped).
    """
    if executor == "ray":
        check_ray_address(address)
    config.counts()  # fractions that coincide on the topology are refused before any work
    started = time.perf_counter()
    tick = progress or (lambda *_a: None)
    stage_seconds: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stage_seconds[stage] = now - mark
        mark = now
        log.info("stage %s finished in %.1f s", stage, stage_seconds[stage])

    link = run_link_study(link_config, lambda _msg, done, total: tick("link study", done, total))
    lap("link study")
    store = ResultStore(run_dir / "results.sqlite")
    early = [t for t in build_tasks(config, {}) if "dra" not in t.policy]
    early += realism_tasks(config, None)  # the oracle-abort runs of the price of realism
    s_tasks = study_tasks(study, config.signatures) if study is not None else []
    m_tasks = map_tasks(claims_map, config.signatures) if claims_map is not None else []
    with TaskPool(
        store, executor, workers, address, lambda d, t: tick("scenario runs", d, t), caller_busy=True
    ) as pool:
        pool.submit(early + s_tasks + m_tasks)
        # The convergence study runs in a thread beside the agents' training: both spend most of
        # their time compiling and running XLA programs, which release the GIL. A daemon thread,
        # so an interrupt does not wait for it.
        conv_box: dict[str, Any] = {}

        def converge() -> None:
            try:
                conv_box["result"] = convergence_study(config, progress)
            except BaseException as exc:  # re-raised in the main thread below
                conv_box["error"] = exc

        conv_thread = threading.Thread(target=converge, name="convergence", daemon=True)
        conv_thread.start()
        agents = train_agents(config, run_dir, progress)
        lap("DRA agents (convergence study and scenario runs in parallel)")
        oracle_agent = train_oracle_agent(config, run_dir, progress)
        lap("oracle-observation DRA agent, price of realism (the same in parallel)")
        while conv_thread.is_alive():
            conv_thread.join(0.2)
            check_interrupt()
        if "error" in conv_box:
            raise conv_box["error"]
        conv = conv_box["result"]
        lap("rest of the DQN convergence study (scenario runs in parallel)")
        tasks = build_tasks(config, agents["agents"])
        r_tasks = realism_tasks(config, oracle_agent["agent"])
        pool.submit([t for t in tasks + r_tasks if "dra" in t.policy])
        pool.wait()
    lap("remaining scenario runs")
    wanted = {t.key for t in tasks}
    all_rows = store.rows()
    rows = [r for r in all_rows if r["key"] in wanted]
    by_key = {r["key"]: r for r in all_rows}
    study_summary = summarise_study(study, [by_key[t.key] for t in s_tasks]) if study is not None else None
    map_summary = summarise_map(claims_map, [by_key[t.key] for t in m_tasks]) if claims_map is not None else None
    agg = aggregate(config, rows)
    claim_rows = claims(config, rows, conv)
    pairs = paired_comparisons(config, rows)
    price = price_of_realism(config, rows + [by_key[t.key] for t in r_tasks])
    quality = measurement_quality(config, rows, sim_config(tasks[0]).pe_confidence)
    curves = dict(agents["curves"])
    if oracle_agent["agent"] is not None:
        curves["oracle observation"] = oracle_agent["curve"]
    figs = plot_grid(config, rows, agg, conv, {**agents, "curves": curves}, run_dir)
    from qverify.experiments.link_report import plot_rates

    plot_rates(link, run_dir / "rates.png")
    extra_md = ""
    if study is not None and study_summary is not None:
        plot_study(study_summary, run_dir / "networks.png")
        extra_md += study_markdown(study, study_summary, "networks.png")
    if claims_map is not None and map_summary is not None:
        plot_map(map_summary, run_dir / "claims_map.png")
        extra_md += map_markdown(claims_map, map_summary, "claims_map.png")
    from qverify.provenance import environment

    env = environment()
    run_seconds = time.perf_counter() - started
    md = (
        render_markdown(link)
        + "\n"
        + network_markdown(config, agg, claim_rows, conv, figs, len(tasks), command, pairs)
        + realism_markdown(config, price, quality)
        + extra_md
        + environment_markdown(env, run_seconds, stage_seconds, workers, executor)
    )
    metrics = {
        "qverify_version": __version__,
        "environment": env,
        "run_seconds": run_seconds,
        "stage_seconds": stage_seconds,
        "workers": workers,
        "executor": executor,
        "command": command,
        "params": {
            "grid": {k: v for k, v in asdict(config).items() if k != "extra"},
            "link": link["params"],
            "networks": None if study is None else asdict(study),
            "claims_map": None if claims_map is None else asdict(claims_map),
        },
        "seed": link["seed"],
        "link": link,
        "convergence": conv,
        "aggregate": agg,
        "claims": [{k: v for k, v in c.items()} for c in claim_rows],
        "paired": [
            {**c, "availability": asdict(c["availability"]), "key_bits_per_slot": asdict(c["key_bits_per_slot"])}
            for c in pairs
        ],
        "price_of_realism": price,
        "measurement_quality": quality,
        "agents": {**agents["agents"], "oracle observation": oracle_agent["agent"]},
        "tasks": len(tasks) + len(r_tasks) + len(s_tasks) + len(m_tasks),
        "networks": study_summary,
        "claims_map": map_summary,
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
    (run_dir / "report.html").write_text(render_html(md))
    tmp = run_dir / ".report.md.tmp"
    tmp.write_text(md)
    tmp.replace(run_dir / "report.md")
    (run_dir / "RUNNING").unlink(missing_ok=True)
    return metrics
