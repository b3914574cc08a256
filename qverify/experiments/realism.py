"""What measuring costs: the grid's policies with oracle knowledge beside the measured versions, and
how good the measurements were (``qverify reproduce``'s "price of realism" section).

Every decision of the grid is made on measurements: links abort on their endpoints' parameter
estimation (a Clopper–Pearson upper bound of the epoch's test errors, :mod:`qverify.network.estimation`)
and the DQN observes measurables only (:func:`qverify.network.model.observe`). Two oracles, labelled
as such wherever they appear, show what that realism costs, on the same seeds (same Byzantine nodes,
demands and fluctuations) as the measured runs:

* **oracle aborts** (baseline and ABFT): a link aborts in exactly the slots whose true QBER exceeds
  the threshold (``SimConfig(abort_rule="oracle")``), as the model did before aborts were measured;
* **oracle observation** (DQN): an agent trained and run on the measured observation plus the true
  per-link QBER and the Byzantine mask (``SimConfig(observation="oracle")``); aborts stay measured,
  so the pair isolates what the agent's input costs.

Both run on one cell only (:func:`realism_cell`: the claims' Byzantine fraction, first behaviour set,
fluctuation on), with the grid's seeds. Oracle runs never enter a claim: :func:`qverify.experiments.claims.select_rows`
keeps measured runs unless asked otherwise.

The second half, :func:`measurement_quality`, pools the grid's measured runs (simulator-only
bookkeeping): how often the intervals of the epochs' Z/X test counts contained the epoch's true
QBER, beside their nominal level, and the false and missed abort rates.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import numpy as np

from qverify.experiments.claims import metric_values, select_rows
from qverify.experiments.grid import GridConfig, Task, dra_fluctuation
from qverify.experiments.stats import paired_difference

ORACLES: tuple[tuple[str, str, str], ...] = (
    ("baseline", "aborts", "oracle aborts (true QBER)"),
    ("abft", "aborts", "oracle aborts (true QBER)"),
    ("dra", "observation", "oracle observation (true QBER, Byzantine set)"),
)
"""(policy, Task field set to ``"oracle"``, label) of each price-of-realism pair."""

METRICS: tuple[tuple[str, str], ...] = (("availability", "+.2%"), ("key_bits_per_slot", "+.3g"))
"""Metrics compared, with the format their differences are written in."""

COVERAGE_CONFIDENCE = 0.95
"""Level of the two-sided Clopper–Pearson intervals whose coverage is reported (as ``qverify
simulate --json`` reports them)."""


def realism_cell(config: GridConfig) -> tuple[float, str, bool]:
    """The (fraction, behaviours, fluctuation) cell of the oracle runs: the claims' fraction (nearest
    20 %), the first behaviour set, fluctuation on when the grid has it (where the DQN runs)."""
    return config.claim_fraction(), config.behaviours[0], dra_fluctuation(config)[0]


def realism_tasks(config: GridConfig, oracle_agent: str | None) -> list[Task]:
    """The oracle runs, one per seed and pair of :data:`ORACLES` whose policy the grid runs (the
    DQN pair only with ``oracle_agent``, the policy file trained on the oracle observation).

    Each differs from a task of :func:`qverify.experiments.grid.build_tasks` in its oracle field only.
    """
    f, b, fl = realism_cell(config)
    base = Task(config.topology, f, b, fl, "baseline", 0, config.slots, config.demands, config.demand_bits,
                signatures=config.signatures)  # fmt: skip
    out = []
    for policy, field, _label in ORACLES:
        if policy not in config.policies or (policy == "dra" and oracle_agent is None):
            continue
        cell = replace(base, policy=policy, agent=oracle_agent if policy == "dra" else None)
        cell = replace(cell, aborts="oracle") if field == "aborts" else replace(cell, observation="oracle")
        out += [replace(cell, seed=s) for s in range(config.seeds)]
    return out


def price_of_realism(config: GridConfig, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per pair of :data:`ORACLES` present in ``rows``: oracle − measured on the same seeds.

    Record: ``policy``, ``oracle`` (what the oracle knows), ``field``, ``fraction``, ``seeds``, the
    mean of each metric of :data:`METRICS` under both (``measured``, ``oracle_value``), their paired
    difference (``difference``: a :class:`~qverify.experiments.stats.Difference` as a dict, BCa
    interval over seeds), and the false / missed abort rates of both runs, pooled over seeds
    (simulator-only; the oracle's are 0 by construction).
    """
    f, b, fl = realism_cell(config)
    out = []
    for policy, field, label in ORACLES:
        where = {"fraction": f, "behaviours": b, "fluctuation": fl, "policy": policy, "alpha": 0.5, "threshold": 0.11}
        measured = select_rows(rows, **where)
        oracle = select_rows(rows, **where, **{field: "oracle"})
        seeds = sorted(r["task"]["seed"] for r in oracle)
        if not oracle or sorted(r["task"]["seed"] for r in measured) != seeds:
            continue
        out.append({
            "policy": policy, "oracle": label, "field": field, "fraction": f, "seeds": len(seeds),
            "measured": {m: float(np.mean(metric_values(measured, m))) for m, _ in METRICS},
            "oracle_value": {m: float(np.mean(metric_values(oracle, m))) for m, _ in METRICS},
            "difference": {m: asdict(paired_difference(metric_values(oracle, m), metric_values(measured, m)))
                           for m, _ in METRICS},
            "aborts_measured": abort_rates(pooled(measured)),
            "aborts_oracle": abort_rates(pooled(oracle)),
        })  # fmt: skip
    return out


def pooled(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The rows' simulator-only counts (:meth:`qverify.network.sim.SimResult.realism_counts`) summed;
    rows stored before those counts existed add nothing."""
    total: dict[str, int] = {}
    for r in rows:
        for k, v in r.get("realism", {}).items():
            total[k] = total.get(k, 0) + int(v)
    return total


def abort_rates(c: dict[str, int]) -> dict[str, float]:
    """False aborts over truly good link-slots and missed aborts over truly bad ones (NaN without any)."""
    nan = float("nan")
    return {
        "false_abort_rate": c["false_aborts"] / c["good"] if c.get("good") else nan,
        "missed_abort_rate": c["missed_aborts"] / c["bad"] if c.get("bad") else nan,
    }


def coverage(c: dict[str, int]) -> dict[str, float]:
    """Fraction of intervals (two-sided) and of upper bounds (one-sided) containing the truth."""
    n = c.get("intervals", 0)
    nan = float("nan")
    return {"coverage": c["covered"] / n if n else nan, "upper_coverage": c["upper_covered"] / n if n else nan}


def measurement_quality(config: GridConfig, rows: list[dict[str, Any]], pe_confidence: float) -> dict[str, Any]:
    """Coverage of the true QBER by the measured intervals and the false / missed abort rates of the
    grid's measured runs (simulator-only), per (Byzantine fraction, policy) and over every run.

    Counts are pooled over the cell's behaviour sets, fluctuation settings and seeds (the (epoch,
    link) intervals for coverage, the link-slots for aborts). ``nominal``: the two-sided intervals'
    level (:data:`COVERAGE_CONFIDENCE`) and the one-sided bound's (``pe_confidence``, the one the
    abort rule reads). Intervals of one run share a link and its drifts, so they are not independent:
    the pooled fractions carry no interval of their own.
    """
    measured = select_rows(rows)
    cells = []
    for f in config.fractions:
        for p in config.policies:
            sel = select_rows(measured, fraction=f, policy=p, alpha=0.5, threshold=0.11)
            c = pooled(sel)
            if not c:
                continue
            cells.append({"fraction": f, "policy": p, "runs": len(sel), **c, **coverage(c), **abort_rates(c)})
    c = pooled(measured)
    overall = {"runs": len(measured), **c, **coverage(c), **abort_rates(c)} if c else None
    return {
        "nominal": {"coverage": COVERAGE_CONFIDENCE, "upper_coverage": pe_confidence},
        "cells": cells,
        "overall": overall,
    }


def realism_markdown(config: GridConfig, price: list[dict[str, Any]], quality: dict[str, Any]) -> str:
    """The report section: the price of realism, then the measurements' coverage and abort rates."""
    from qverify.experiments.stats import Difference

    f, b, fl = realism_cell(config)
    lines = [
        "## The price of realism (oracles, simulator-only)",
        "",
        "Every policy of the grid decides on measurements: links abort when their endpoints' parameter estimation "
        "(the one-sided Clopper–Pearson bound of the epoch's Z/X test errors) exceeds the threshold, and the DQN "
        "observes measurables only. Here the same seeds run again with knowledge no network has, **labelled oracle**: "
        "baseline and ABFT with *oracle aborts* (a link aborts exactly in the slots whose true QBER is above the "
        "threshold), and a DQN trained and run on an *oracle observation* (the measured one plus the true per-link "
        "QBER and the Byzantine set; its aborts stay measured). The difference, oracle − measured on the same seeds, "
        "is what realism costs. Every claim above is decided on the measured runs only.",
        "",
        f"Cell: {config.label(f)} Byzantine, {b}, fluctuation {'on' if fl else 'off'}; {config.seeds} seeds × "
        f"{config.slots} slots.",
        "",
    ]
    if price:
        lines += ["| policy | oracle | seeds | availability: measured → oracle | oracle − measured | "
                  "key (bit/slot): measured → oracle | oracle − measured | false / missed aborts (measured) |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in price:
            diff = {m: Difference(**r["difference"][m]) for m, _ in METRICS}
            ab = r["aborts_measured"]
            lines.append(
                f"| {r['policy']} | {r['oracle']} | {r['seeds']} | "
                f"{r['measured']['availability']:.2%} → {r['oracle_value']['availability']:.2%} | "
                f"{diff['availability'].text('+.2%')} | "
                f"{r['measured']['key_bits_per_slot']:.3g} → {r['oracle_value']['key_bits_per_slot']:.3g} | "
                f"{diff['key_bits_per_slot'].text('+.3g')} | "
                f"{_pct(ab['false_abort_rate'])} / {_pct(ab['missed_abort_rate'])} |"
            )
        lines += ["", "Intervals: BCa bootstrap 95 % of the per-seed differences (paired: same Byzantine nodes, "
                  "demands and fluctuations)."]  # fmt: skip
    else:
        lines.append("No oracle run in this grid (it needs the baseline, ABFT or DRA policy).")
    nom = quality["nominal"]
    lines += [
        "",
        "### How good the measurements were (simulator-only)",
        "",
        f"Coverage: the fraction of (epoch, link) Clopper–Pearson intervals from the epoch's Z/X test counts that "
        f"contain the epoch's mean true QBER (two-sided, nominal {nom['coverage']:.0%}), and the fraction of one-sided "
        f"upper bounds at or above it (nominal {nom['upper_coverage']:.0%}: the bound the abort rule reads). False "
        "aborts: link-slots aborted although their true QBER was at or below the threshold, over all such "
        "link-slots; missed aborts: link-slots distilling although it was above, over all such. Pooled over every "
        "measured run of the grid's cells (behaviour sets, fluctuation settings, seeds); the intervals of one run "
        "are not independent, so no interval is given for these fractions.",
        "",
        "| Byzantine | policy | runs | intervals | coverage (two-sided) | coverage (upper bound) | "
        "false aborts, of link-slots at or below threshold | missed aborts, of link-slots above |",
        "|---|---|---|---|---|---|---|---|",
    ]
    counts = dict(zip(config.fractions, config.counts(), strict=True))
    rows = [(f"{counts[c['fraction']]} ({c['fraction']:.0%})", c["policy"], c) for c in quality["cells"]]
    if quality["overall"] is not None:
        rows.append(("all", "all (measured runs)", quality["overall"]))
    for who, policy, c in rows:
        lines.append(f"| {who} | {policy} | {c['runs']} | {c.get('intervals', 0)} | {_pct(c['coverage'])} | "
                     f"{_pct(c['upper_coverage'])} | {_pct(c['false_abort_rate'])} of {c.get('good', 0)} | "
                     f"{_pct(c['missed_abort_rate'])} of {c.get('bad', 0)} |")  # fmt: skip
    lines.append("")
    return "\n".join(lines)


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.2%}"
