"""The price-of-realism bookkeeping of `qverify reproduce` on hand-made rows (no simulation): which
runs are oracles, how they pair with the measured runs, that no claim reads them, and the pooled
coverage and abort rates. The quick reproduce test runs it end to end."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pytest

from qverify.experiments.claims import aggregate, paired_comparisons, select_rows
from qverify.experiments.grid import GridConfig, Task, build_tasks
from qverify.experiments.realism import measurement_quality, price_of_realism, realism_cell, realism_tasks

CONFIG = replace(GridConfig.quick(), policies=("baseline", "abft", "dra"))


def row(task: Task, availability: float, key_bits: float, **realism: int) -> dict:
    counts = {"intervals": 10, "covered": 9, "upper_covered": 10, "good": 100, "false_aborts": 2, "bad": 20,
              "missed_aborts": 5, **realism}  # fmt: skip
    return {"task": asdict(task), "key": task.key, "availability": availability, "key_bits_per_slot": key_bits,
            "mean_link_qber": 0.03, "measured_qber_in_use": 0.03, "qber_var": 0.0, "exposed_fraction": 0.0,
            "control_violations": 0, "realism": counts}  # fmt: skip


def test_store_keys_of_measured_tasks_are_unchanged():
    # Reference keys: Task.key of these tasks before the realism fields existed (same code, commit 9a3ebd5),
    # so a results store written then resumes without rerunning anything.
    assert Task("secoqc", 0.2, "inject-drop-lie", True, "abft", 2, 80, 3, 5e3).key == "bf49adac0a586a068464"
    t = Task("secoqc", 0.2, "inject-drop-lie", True, "dra", 1, 80, 3, 5e3, agent="x")
    assert t.key == "436fedca3351a9c77629"
    assert replace(t, observation="oracle").key != t.key != replace(t, aborts="oracle").key


def test_oracle_tasks_differ_from_measured_ones_in_their_oracle_field_only():
    measured = {replace(t, agent=None) for t in build_tasks(CONFIG, {})}
    oracle = realism_tasks(CONFIG, "oracle.msgpack")
    f, _b, fl = realism_cell(CONFIG)
    assert f == 0.2 and fl is True
    assert sorted({(t.policy, t.aborts, t.observation) for t in oracle}) == [
        ("abft", "oracle", "measured"), ("baseline", "oracle", "measured"), ("dra", "measured", "oracle")]  # fmt: skip
    assert len(oracle) == 3 * CONFIG.seeds
    for t in oracle:
        assert replace(t, aborts="measured", observation="measured", agent=None) in measured
        assert (t.agent == "oracle.msgpack") == (t.policy == "dra")
    assert [t.policy for t in realism_tasks(CONFIG, None)] == ["baseline"] * 3 + ["abft"] * 3


def grid_rows() -> list[dict]:
    """Measured rows of every grid task (availability 0.9 + seed / 100) and oracle rows that add
    (seed + 1) / 100 to availability and 10 bit/slot to key."""
    rows = [row(t, 0.9 + t.seed / 100, 100.0 + t.seed) for t in build_tasks(CONFIG, {"x": "y"})]
    for t in realism_tasks(CONFIG, "oracle.msgpack"):
        rows.append(row(t, 0.9 + (2 * t.seed + 1) / 100, 110.0 + t.seed, false_aborts=0, missed_aborts=0))
    return rows


def test_price_pairs_each_oracle_with_its_measured_runs():
    price = {r["policy"]: r for r in price_of_realism(CONFIG, grid_rows())}
    assert set(price) == {"baseline", "abft", "dra"}
    for r in price.values():
        assert r["seeds"] == 3 and r["fraction"] == 0.2
        # Per-seed differences (seed + 1) / 100 for seeds 0, 1, 2: mean 0.02 with a BCa interval.
        d = r["difference"]["availability"]
        assert d["mean"] == pytest.approx(0.02) and d["method"] == "bca" and d["low"] <= 0.02 <= d["high"]
        assert r["difference"]["key_bits_per_slot"]["method"] == "degenerate"  # every seed +10
        assert r["difference"]["key_bits_per_slot"]["mean"] == pytest.approx(10.0)
        assert r["aborts_oracle"] == {"false_abort_rate": 0.0, "missed_abort_rate": 0.0}
        assert r["aborts_measured"]["false_abort_rate"] == pytest.approx(6 / 300)  # 2 of 100, three seeds
    assert "oracle observation" in price["dra"]["oracle"] and "oracle aborts" in price["abft"]["oracle"]


def test_no_claim_aggregate_or_pair_reads_an_oracle_run():
    rows = grid_rows()
    measured = [r for r in rows if r["task"]["aborts"] == r["task"]["observation"] == "measured"]
    assert len(measured) < len(rows)
    assert aggregate(CONFIG, rows) == aggregate(CONFIG, measured)
    for with_oracle, alone in zip(paired_comparisons(CONFIG, rows), paired_comparisons(CONFIG, measured),
                                  strict=True):  # fmt: skip
        assert with_oracle == alone
    cell = {"fraction": 0.2, "policy": "abft", "alpha": 0.5, "threshold": 0.11}
    assert len(select_rows(rows, **cell)) == 3 and len(select_rows(rows, **cell, aborts="oracle")) == 3
    # A row stored before the realism fields existed counts as measured.
    old = [{**r, "task": {k: v for k, v in r["task"].items() if k not in ("aborts", "observation")}} for r in measured]
    assert len(select_rows(old, **cell)) == 3


def test_measurement_quality_pools_counts_over_runs():
    rows = grid_rows()
    q = measurement_quality(CONFIG, rows, 0.95)
    assert q["nominal"] == {"coverage": 0.95, "upper_coverage": 0.95}
    n_measured = len(select_rows(rows))
    overall = q["overall"]
    assert overall["runs"] == n_measured and overall["intervals"] == 10 * n_measured
    assert overall["coverage"] == pytest.approx(0.9) and overall["upper_coverage"] == 1.0
    assert overall["false_abort_rate"] == pytest.approx(0.02) and overall["missed_abort_rate"] == pytest.approx(0.25)
    cells = {(c["fraction"], c["policy"]) for c in q["cells"]}
    assert cells == {(f, p) for f in CONFIG.fractions for p in CONFIG.policies}
    # No simulator-only counts at all (rows stored before they existed): nothing to report, no error.
    bare = [{k: v for k, v in r.items() if k != "realism"} for r in rows]
    assert measurement_quality(CONFIG, bare, 0.95)["overall"] is None
    assert np.isnan(price_of_realism(CONFIG, bare)[0]["aborts_measured"]["false_abort_rate"])
