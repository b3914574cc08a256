"""`qverify reproduce --quick`: the report, its files and the bad-input paths."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from qverify.errors import QverifyError
from qverify.experiments.grid import GridConfig
from qverify.experiments.link_report import LinkStudyConfig
from qverify.experiments.reproduce import prepare_run_dir


def test_reproduce_quick_writes_report(tmp_path):
    r = subprocess.run(
        [sys.executable, "-c", "from qverify.cli import main; main()", "reproduce", "--quick",
         "--out", str(tmp_path), "--run", "ci", "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    run = tmp_path / "ci"
    names = {p.name for p in run.iterdir()}
    assert {"report.md", "report.html", "metrics.json", "rates.png", "results.sqlite"} <= names
    assert {"key_rate_vs_byzantine.png", "availability_vs_byzantine.png", "learning_curves.png"} <= names
    assert "RUNNING" not in names
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["params"]["link"]["p_dark"] == 3e-6 and metrics["seed"] == 0
    report = (run / "report.md").read_text()
    assert "| paper's claim | measured (95 % interval) | holds? | why |" in report
    # The exact-mode circuit e11 equals the closed form (Ma–Razavi (A10) at p_d = 0).
    for row in metrics["link"]["circuit_cross_check"]:
        assert row["circuit_e_z"]["exact"] == pytest.approx(row["closed_form_e11"], abs=1e-9)
    # The link-level claim row is computed: with e_mis = 1.5 % a 1 % QBER threshold cannot hold.
    assert metrics["link"]["claims"]["qber_below_1pct"]["holds"] is False
    claims = {c["claim"]: c for c in json.loads(r.stdout)["claims"]}
    assert len(claims) == 5 and all(c["holds"] in ("yes", "no", "inconclusive") for c in claims.values())
    # the weighted-PBFT control plane never forked
    assert all(cell["control_violations"]["mean"] == 0 for cell in metrics["aggregate"].values())


def test_existing_run_folder_is_refused_and_untouched(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("keep")
    with pytest.raises(QverifyError, match="exists already"):
        prepare_run_dir(tmp_path, "x", resume=False)
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["keep.txt"]


def test_unwritable_output_is_refused_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = subprocess.run(
        [sys.executable, "-c", "from qverify.cli import main; main()", "reproduce", "--quick",
         "--out", str(blocker / "sub")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 2 and "cannot be created" in r.stderr


def test_interrupted_run_never_looks_complete(tmp_path, monkeypatch):
    import qverify.experiments.reproduce as rp

    def boom(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(rp, "train_agents", boom)
    run_dir = prepare_run_dir(tmp_path, "run", resume=False)
    small = LinkStudyConfig(distances_km=(0.0, 50.0), e_mis_values=(0.0,), shots=100)
    with pytest.raises(KeyboardInterrupt):
        rp.reproduce(GridConfig.quick(), run_dir, small, workers=1)
    names = {p.name for p in run_dir.iterdir()}
    assert "RUNNING" in names and "report.md" not in names and "metrics.json" not in names
