"""The README's examples run as written and give meaningful, non-degenerate results."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from qverify.cli import main; main()", *args],
        capture_output=True, text=True, check=False, cwd=cwd,
    )  # fmt: skip


def _command_lines() -> list[str]:
    block = re.search(r"## Command line.*?```bash\n(.*?)```", README, re.S)
    assert block, "README lost its command-line block"
    out = []
    for line in block.group(1).splitlines():
        for part in line.split("#")[0].split(";"):
            if part.strip():
                out.append(part.strip())
    return out


def test_python_api_block_runs_and_prints_what_it_says(tmp_path):
    code = re.search(r"## Python API\n\n```python\n(.*?)```", README, re.S)
    assert code
    r = subprocess.run([sys.executable, "-c", code.group(1)], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert "False" in lines  # the wrong-basis cheater is caught
    assert any(line.startswith("Estimate(value=0.25") for line in lines)  # intercept-resend: e_x ≈ 1/4
    assert any("adopted=True" in line for line in lines)
    qber = next(line for line in lines if line.startswith("QBER true"))
    true, measured = (float(x) for x in re.findall(r"\d+\.\d+", qber))
    assert abs(true - measured) < 0.01  # 10⁴ test rounds per link and epoch estimate the true QBER
    assert any(line.startswith("[[") for line in lines)
    assert lines[-3] == "a None" and "kind='weak'" in lines[-2] and "kind='quorum'" in lines[-1]


# Each README command (as written, plus --json where the check reads numbers) and the property that
# makes its result meaningful. train / evaluate / reproduce have their own tests (longer runs).
CHECKS = {
    "qverify link --distance-km 50": lambda d: d["key_rate_bps"] > 0 and 0 < d["qber"] < 0.11,
    "qverify bsm --e-mis 0.015 --relay intercept_resend": lambda d: abs(d["e_x"]["value"] - 0.25) < 0.02,
    "qverify verify circuits/ghz/ghz_8.qasm --protocol ghz --confidence 0.99": lambda d: d["accepted"],
    "qverify verify circuits/sharing/qss35_encode.qasm --protocol qss": lambda d: d["accepted"],
    "qverify network list": lambda d: len(d["topologies"]) >= 4,
    # At the default length (5053 positions, chosen from the bounds for ε = 1e-4) the measured attacks fail.
    "qverify qds --trials 200": lambda d: (
        d["result"]["honest_acceptance"]["value"] == 1.0
        and d["result"]["intercept_forgery_success"]["high"] < 0.05
        and d["result"]["threshold_t_minus_1_accepts"]["value"] == 0.0
        and d["result"]["corrupted_share_detected"]["value"] == 1.0
    ),
    "qverify simulate --topology grid:4x4 --byzantine 0.2 --slots 2000 --policy abft": (
        lambda d: d["summary"]["availability"] > 0.5 and d["summary"]["delivered_bits_per_slot"] > 0
    ),
    "qverify simulate --byzantine 0.2 --policy abft --seeds 10": (
        lambda d: (
            len(d["per_seed"]) == 10
            and d["over_seeds"]["availability"]["low"]
            <= d["over_seeds"]["availability"]["mean"]
            <= d["over_seeds"]["availability"]["high"]
            and len({s["byzantine_nodes"][0] for s in d["per_seed"]}) > 1
        )  # the seeds draw their own Byzantine node
    ),
    "qverify simulate --dead-time-slots 20 --double-click discard": (
        lambda d: d["params"]["link"]["dead_time_slots"] == 20 and d["summary"]["delivered_bits_per_slot"] > 0
    ),
    "qverify consensus --nodes 10 --faulty 3 --scenario sleeper --rounds 1000": (
        lambda d: d["summary"]["violations"] == 0 and d["summary"]["decided"] > 0
    ),
    "qverify attack --nodes 7 --cases 20": (
        lambda d: d["summary"]["cases"] == 20 and d["summary"]["unsafe"] == 0 and d["summary"]["not_live"] == 0
    ),
}


@pytest.mark.parametrize("line", sorted(CHECKS))
def test_readme_command_is_meaningful(line):
    assert line in _command_lines(), f"README no longer shows {line!r}"
    r = _cli(*shlex.split(line)[1:], "--json")
    assert r.returncode == 0, r.stderr
    assert CHECKS[line](json.loads(r.stdout)), r.stdout[:2000]


def test_readme_plot_and_export_commands(tmp_path):
    lines = _command_lines()
    assert "qverify link --sweep-km 0:300:10 --plot rates.png" in lines
    r = _cli("link", "--sweep-km", "0:300:10", "--plot", "rates.png", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "rates.png").stat().st_size > 5000, r.stderr
    assert "qverify network show secoqc --plot net.png" in lines
    r = _cli("network", "show", "secoqc", "--plot", "net.png", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "net.png").stat().st_size > 5000, r.stderr
    assert "qverify export-circuits circuits/" in lines
    r = _cli("export-circuits", "circuits/", "--json", cwd=tmp_path)
    assert r.returncode == 0 and len(json.loads(r.stdout)["files"]) > 50, r.stderr


def test_train_then_evaluate_a_policy(tmp_path):
    r = _cli("train", "--topology", "cambridge", "--episodes", "4", "--seeds", "1", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    policy = json.loads(r.stdout)["summary"]["policy"]
    r = _cli("evaluate", policy, "--topology", "cambridge", "--episodes", "2", "--json")
    assert r.returncode == 0, r.stderr
    r = _cli("evaluate", policy, "--topology", "cambridge", "--episodes", "0")
    assert r.returncode == 2 and "episodes = 0" in r.stderr
    Path(policy).write_bytes(Path(policy).read_bytes()[:20])
    r = _cli("evaluate", policy, "--topology", "cambridge")
    assert r.returncode == 2 and "truncated or corrupt" in r.stderr


def test_readme_section_is_generated_from_metrics(tmp_path):
    from qverify.errors import QverifyError
    from qverify.experiments.readme import BEGIN, END, update_readme

    run = tmp_path / "run"
    run.mkdir()
    metrics = {
        "command": "qverify reproduce --run r",
        "run_seconds": 123.4,
        "workers": 2,
        "environment": {"python": "3.11.7", "platform": "Linux"},
        "link": {
            "claims": {
                "qber_below_1pct": {"paper": "QBER < 1 %", "measured_min_qber": 0.0151, "holds": False, "why": "e_mis"}
            }
        },
        "claims": [
            {"claim": "availability", "measured": "0.9 [0.8, 1.0]", "holds": "inconclusive", "why": "few seeds"}
        ],
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{BEGIN}\nold figures\n{END}\n\ntail\n")
    assert update_readme(readme, run)
    text = readme.read_text()
    assert "old figures" not in text and "**123 s**" in text and "1.51%" in text and text.endswith("tail\n")
    assert "of 2 claims: row 1 does not hold; row 2 is inconclusive" in text
    assert not update_readme(readme, run)  # idempotent
    readme.write_text("no markers")
    with pytest.raises(QverifyError, match="generated section"):
        update_readme(readme, run)
    assert readme.read_text() == "no markers"
    assert README.count(BEGIN) == 1 and README.count(END) == 1
