"""``qverify reproduce``: the paper's experiment end to end, and the claim-by-claim report.

Steps: link study (physics + circuits) → DRA agents trained per grid cell → DQN convergence on the
small enumerable instance → the scenario grid (local or Ray executor, results stored per task) →
aggregation with bootstrap 95 % intervals over seeds → ``report.md``, ``report.html``, figures,
``metrics.json``. The run folder carries a ``RUNNING`` marker until the report is complete.

The jobs live in their own modules: :mod:`~qverify.experiments.stages` (run folder, agents,
convergence), :mod:`~qverify.experiments.claims` (aggregates and verdicts),
:mod:`~qverify.experiments.report` (figures, Markdown, HTML), :mod:`~qverify.experiments.stats`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qverify import __version__
from qverify.experiments.claims import aggregate, claims
from qverify.experiments.grid import GridConfig, build_tasks
from qverify.experiments.link_report import LinkStudyConfig, render_markdown, run_link_study
from qverify.experiments.report import _environment_markdown, _network_markdown, _plots, render_html
from qverify.experiments.runner import ResultStore, check_ray_address, run_tasks
from qverify.experiments.stages import convergence_study, prepare_run_dir, run_settings, train_agents
from qverify.experiments.stats import bootstrap_ci

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
) -> dict[str, Any]:
    """Run everything into ``run_dir`` (prepared by :func:`prepare_run_dir`); returns metrics."""
    if executor == "ray":
        check_ray_address(address)
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
    agents = train_agents(config, run_dir, progress)
    lap("DRA agents")
    conv = convergence_study(config, progress)
    lap("DQN convergence")
    tasks = build_tasks(config, agents["agents"])
    store = ResultStore(run_dir / "results.sqlite")
    run_tasks(tasks, store, executor, workers, address, lambda d, t: tick("scenario grid", d, t))
    lap("scenario grid")
    wanted = {t.key for t in tasks}
    rows = [r for r in store.rows() if r["key"] in wanted]
    agg = aggregate(config, rows)
    claim_rows = claims(config, rows, conv)
    figs = _plots(config, rows, agg, conv, agents, run_dir)
    from qverify.experiments.link_report import plot_rates

    plot_rates(link, run_dir / "rates.png")
    from qverify.provenance import environment

    env = environment()
    run_seconds = time.perf_counter() - started
    md = (
        render_markdown(link)
        + "\n"
        + _network_markdown(config, agg, claim_rows, conv, figs, len(tasks), command)
        + _environment_markdown(env, run_seconds, stage_seconds, workers, executor)
    )
    metrics = {
        "qverify_version": __version__,
        "environment": env,
        "run_seconds": run_seconds,
        "stage_seconds": stage_seconds,
        "workers": workers,
        "executor": executor,
        "command": command,
        "params": {"grid": {k: v for k, v in asdict(config).items() if k != "extra"}, "link": link["params"]},
        "seed": link["seed"],
        "link": link,
        "convergence": conv,
        "aggregate": agg,
        "claims": [{k: v for k, v in c.items()} for c in claim_rows],
        "agents": agents["agents"],
        "tasks": len(tasks),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
    (run_dir / "report.html").write_text(render_html(md))
    tmp = run_dir / ".report.md.tmp"
    tmp.write_text(md)
    tmp.replace(run_dir / "report.md")
    (run_dir / "RUNNING").unlink(missing_ok=True)
    return metrics
