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


def _quick(out, run, *extra):
    return subprocess.run(
        [sys.executable, "-c", "from qverify.cli import main; main()", "reproduce", "--quick",
         "--out", str(out), "--run", run, "--json", *extra],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.after_notebooks  # notebook 06 compiles the programs of `reproduce --quick`
def test_reproduce_quick_writes_report_and_repeats_its_numbers(tmp_path):
    # One test, so the second run finds the first one's compiled programs in the session's cache
    # (the two could otherwise land on different workers and both compile cold).
    r = _quick(tmp_path, "ci")
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
    # Claims and aggregates read the measured runs only: 3 seeds per cell, no oracle run among them.
    assert all(cell["availability"]["n"] == 3 for cell in metrics["aggregate"].values())
    # The price of realism: oracle − measured on the same 3 seeds, one pair per policy, with intervals.
    price = {r["policy"]: r for r in metrics["price_of_realism"]}
    assert set(price) == {"baseline", "abft", "dra"}
    assert "oracle observation" in price["dra"]["oracle"] and "oracle aborts" in price["baseline"]["oracle"]
    for r in price.values():
        assert r["seeds"] == 3 and r["fraction"] == 0.2
        for d in r["difference"].values():
            assert d["n"] == 3 and d["method"] in ("bca", "degenerate") and d["low"] <= d["mean"] <= d["high"]
    for policy in ("baseline", "abft"):  # oracle aborts are never false nor missed
        assert price[policy]["aborts_oracle"]["false_abort_rate"] == 0
    assert metrics["agents"]["oracle observation"].endswith(".msgpack")
    assert "## The price of realism (oracles, simulator-only)" in report
    # The intervals' coverage of the true QBER beside its nominal level, and the abort rates.
    quality = metrics["measurement_quality"]
    assert quality["nominal"] == {"coverage": 0.95, "upper_coverage": 0.95}
    assert quality["overall"]["intervals"] > 0 and 0 <= quality["overall"]["coverage"] <= 1
    assert {(c["fraction"], c["policy"]) for c in quality["cells"]} == {(f, p) for f in (0.0, 0.2) for p in
                                                                         ("baseline", "abft", "dra", "abft+dra")}  # fmt: skip
    assert "### How good the measurements were (simulator-only)" in report
    # Same seed, same numbers: run again from scratch in another folder, in one process instead of a
    # pool of two. Every figure of metrics.json must be equal (as numbers, via ==, never as text),
    # which is what makes two machines comparable.
    again = _quick(tmp_path, "again", "--workers", "1")
    assert again.returncode == 0, again.stderr
    second = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert _strip_run_specific(second) == _strip_run_specific(metrics)
    env = metrics["environment"]
    assert env["packages"]["numpy"] and env["packages"]["qiskit-aer"] and env["platform"]


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


def _strip_run_specific(metrics: dict) -> dict:
    """Drop what legitimately differs between two runs: timings, folders, worker count, the environment record."""
    skip = ("run_seconds", "stage_seconds", "environment", "agents", "command", "workers")
    out = {k: v for k, v in metrics.items() if k not in skip}
    out["convergence"] = {k: v for k, v in metrics["convergence"].items() if k != "train_seconds"}
    return out


def test_resume_with_another_grid_is_refused_and_changes_nothing(tmp_path):
    from dataclasses import replace

    from qverify.experiments.reproduce import run_settings

    link = LinkStudyConfig()
    quick = run_settings(GridConfig.quick(), link)
    run_dir = prepare_run_dir(tmp_path, "r", resume=False, settings=quick)
    (run_dir / "RUNNING").unlink()
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    other = run_settings(replace(GridConfig.quick(), seeds=4), link)
    with pytest.raises(QverifyError, match=r"other settings \(grid\.seeds: 3 → 4\)"):
        prepare_run_dir(tmp_path, "r", resume=True, settings=other)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
    assert prepare_run_dir(tmp_path, "r", resume=True, settings=quick) == run_dir


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc; Linux)."""
    from pathlib import Path

    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parent[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    out, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, p in parent.items() if p in frontier} - out
        out |= frontier
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.after_notebooks  # the DQN programs it waits on are then in the cache (notebook 06 built them)
def test_sigterm_leaves_no_worker_behind(tmp_path):
    import os
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-c", "from qverify.cli import main; main()", "reproduce", "--quick",
         "--out", str(tmp_path), "--run", "killed"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen: set[int] = set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        kids = _descendants(proc.pid)
        seen |= kids
        # The run's pool has workers − 1 = 1 process while the main process trains, plus the
        # multiprocessing resource tracker.
        if len(kids) >= 2 and (tmp_path / "killed" / "results.sqlite").exists():
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before its worker pool started"
    os.kill(proc.pid, signal.SIGTERM)
    # The signal takes effect when the main thread next runs Python: at the latest when the agents'
    # training program in progress (compilation included) returns, which on 2 busy cores can take minutes.
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "--resume" in stderr
    time.sleep(1.0)
    alive = {p for p in seen if os.path.exists(f"/proc/{p}") and "zombie" not in open(f"/proc/{p}/status").read()}
    assert not alive, f"workers outlived the run: {alive}"
    assert (tmp_path / "killed" / "RUNNING").exists()
