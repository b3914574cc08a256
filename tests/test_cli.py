"""The CLI: output, --json provenance, one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from qverify.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_link_json_has_params_and_rate():
    r = run("link", "--distance-km", "50", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["params"]["eta_det"] == 0.145
    assert data["key_rate_per_pulse"] > 0 and 0 < data["mu_opt"] < 1
    assert data["key_rate_bps"] == pytest.approx(data["key_rate_per_pulse"] * data["params"]["clock_hz"])


def test_link_finite_key_json_records_block_and_epsilon():
    r = run("link", "--protocol", "bb84", "--distance-km", "50", "--block-size", "1e11", "--epsilon", "1e-9", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["params"]["block_size"] == 1e11 and data["params"]["epsilon"] == 1e-9
    fk = data["finite_key"]
    assert 0 < fk["key_rate"] and fk["key_bits"] == pytest.approx(fk["key_rate"] * 1e11)
    # q_X² ≥ 1/4 of the pulses are key-basis pairs, so the finite key can beat the ½-sifted asymptotic
    # rate but never the efficient (q_X → 1) one.
    assert fk["key_rate"] < 2 * data["key_rate_per_pulse"]


def test_simulate_with_finite_key_blocks_records_them_and_starts_empty():
    # 1e10-pulse blocks at 1 GHz close after about ten one-second slots: nothing is delivered before.
    r = run("simulate", "--slots", "30", "--block-size", "1e10", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["params"]["block_pulses"] == [1e10] and data["params"]["key_epsilon"] == 1e-10
    assert data["summary"]["availability"] <= 1 - 8 / 30


def test_simulate_records_the_detector_conventions_it_ran_under():
    r = run("simulate", "--slots", "12", "--dead-time-slots", "5", "--double-click", "discard", "--json")
    assert r.returncode == 0, r.stderr
    link = json.loads(r.stdout)["params"]["link"]
    assert link["dead_time_slots"] == 5 and link["double_click"] == "discard"


def test_mdi_link_pays_for_relay_dead_time():
    rates = {}
    for dead in ("0", "2"):
        r = run("link", "--protocol", "mdi", "--distance-km", "10", "--dead-time-slots", dead, "--json")
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert data["params"]["dead_time_slots"] == int(dead)
        rates[dead] = data["key_rate_per_pulse"]
    assert 0 < rates["2"] < rates["0"]


def test_link_sweep_plot(tmp_path):
    png = tmp_path / "rates.png"
    r = run("link", "--sweep-km", "0:300:50", "--plot", str(png))
    assert r.returncode == 0, r.stderr
    assert png.stat().st_size > 1000
    assert "BB84" in r.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("link", "--distance-km", "-1"), "distance_km"),
        (("link", "--eta-det", "1.5"), "eta_det"),
        (("link", "--p-dark", "1"), "p_dark"),
        (("link", "--e-mis", "0.6"), "e_mis"),
        (("link", "--mu", "0"), "mu"),
        (("link", "--protocol", "b92"), "protocol"),
        (("link", "--sweep-km", "10:0:5"), "sweep_km"),
        (("link", "--block-size", "0"), "block_size"),
        (("link", "--block-size", "1e5"), "block_size"),  # too small for any MDI key at ε = 1e-10
        (("link", "--block-size", "1e12", "--epsilon", "1"), "epsilon"),
        (("link", "--block-size", "1e12", "--epsilon", "0"), "epsilon"),
        (("link", "--protocol", "bb84", "--dead-time-slots", "-1"), "dead_time_slots"),
        (("link", "--protocol", "mdi", "--dead-time-slots", "11"), "dead_time_slots"),  # relay model: ≤ 10
        (("simulate", "--block-size", "0"), "block_size"),
        (("simulate", "--block-size", "1e10", "--epsilon", "2"), "epsilon"),
        (("link", "--protocol", "bb84", "--double-click", "maybe"), "double_click"),
        (("simulate", "--dead-time-slots", "201", "--slots", "3"), "dead_time_slots"),
        (("simulate", "--double-click", "maybe", "--slots", "3"), "double_click"),
        (("simulate", "--seeds", "0", "--slots", "3"), "seeds"),
        (("simulate", "--dead-time-slots", "3", "--block-size", "1e10", "--slots", "3"), "dead_time_slots"),
        (("evaluate", "missing.msgpack", "--dead-time-slots", "-2"), "dead_time_slots"),
        (("train", "--test-levels", "0.5,x"), "test_levels"),
        (("train", "--test-levels", "1,0"), "test_levels"),
        (("evaluate", "missing.msgpack", "--test-levels", "1e-5"), "test_levels"),  # 0.1 rounds an epoch
        (("bsm", "--relay", "evil"), "relay"),
        (("bsm", "--confidence", "1.5"), "confidence"),
        (("bsm", "--method", "stim", "--amp-damping", "0.1"), "not a Pauli channel"),
        (("bsm", "--method", "stim", "--relay", "inject"), "not a Clifford gate"),
    ],
)
def test_bad_input_one_line_exit_2(args, needle):
    r = run(*args)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_bsm_json():
    r = run("bsm", "--relay", "intercept_resend", "--e-mis", "0", "--shots", "500", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["e_z"]["exact"] == pytest.approx(0.25)
    assert data["params"]["relay"] == "intercept_resend"


def test_bsm_on_stim_reports_its_method():
    # Stim samples the Clifford relays' circuits; the intercept-resend error rate is 1/4 (run_bsm docs).
    r = run("bsm", "--relay", "intercept_resend", "--e-mis", "0", "--shots", "20000", "--method", "stim", "--json")
    assert r.returncode == 0, r.stderr
    e_z = json.loads(r.stdout)["e_z"]
    assert e_z["method"] == "stim" and e_z["exact"] is None and e_z["low"] <= 0.25 <= e_z["high"]


def test_network_list_and_show(tmp_path):
    r = run("network", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert {t["name"] for t in json.loads(r.stdout)["topologies"]} >= {"secoqc", "tokyo", "cambridge"}
    png = tmp_path / "net.png"
    r = run("network", "show", "secoqc", "--plot", str(png))
    assert r.returncode == 0 and png.stat().st_size > 1000


def test_simulate_several_seeds_reports_each_and_their_mean():
    r = run("simulate", "--slots", "30", "--byzantine", "0.2", "--seeds", "3", "--seed", "4", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["seeds"] == [4, 5, 6] and [s["slots"] for s in data["per_seed"]] == [30, 30, 30]
    for key, fig in data["over_seeds"].items():
        values = [s[key] for s in data["per_seed"]]
        assert fig["per_seed"] == values
        finite = [v for v in values if v is not None]
        if finite:
            assert fig["mean"] == pytest.approx(sum(finite) / len(finite))
    # Seed 5 of the batch is seed 5 alone (one vmapped program, each seed as if alone).
    alone = json.loads(run("simulate", "--slots", "30", "--byzantine", "0.2", "--seed", "5", "--json").stdout)
    assert data["per_seed"][1] == alone["summary"]


def test_simulate_json_and_errors():
    r = run("simulate", "--topology", "secoqc", "--slots", "50", "--byzantine", "0.2", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["params"]["adversary"]["fraction"] == 0.2 and "availability" in data["summary"]
    for args, needle in (
        (("simulate", "--topology", "arpanet"), "secoqc"),
        (("simulate", "--byzantine", "1.0"), "byzantine fraction"),
        (("simulate", "--behaviours", "inject,teleport"), "behaviour"),
    ):
        r = run(*args)
        assert r.returncode == 2 and needle in r.stderr, r.stderr


def test_consensus_cli():
    r = run("consensus", "--nodes", "7", "--faulty", "2", "--scenario", "sleeper", "--rounds", "20", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["summary"]["violations"] == 0 and data["summary"]["decided"] == 20
    r = run("consensus", "--nodes", "6", "--faulty", "2")
    assert r.returncode == 2 and "faulty" in r.stderr


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("verify", "circuits/ghz/ghz_5.qasm", "--protocol", "ghz", "--shots", "2000", "--json"), "pass_probability"),
        (("verify", "circuits/sharing/qss35_encode.qasm", "--protocol", "qss", "--json"), "max_unauthorised_distance"),
        (("verify", "circuits/mdi/honest/mdi_X01_honest.qasm", "--protocol", "bsm", "--json"), "herald_rate"),
        (("verify", "circuits/signatures/qds_Z1_Z.qasm", "--protocol", "qds", "--json"), "estimate"),
    ],
)
def test_verify_cli(args, key):
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    r = subprocess.run(
        [sys.executable, "-c", "from qverify.cli import main; main()", *args],
        capture_output=True, text=True, check=False, cwd=root,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["accepted"] is True and key in data and "interval" in data["estimate"]) or "low" in data["estimate"]


def test_verify_cli_bad_input(tmp_path):
    bad = tmp_path / "x.qasm"
    bad.write_text("hello")
    for args, needle in (
        (("verify", str(bad)), "not OpenQASM"),
        (("verify", str(bad), "--protocol", "zkp"), "protocol"),
        (("verify", str(bad), "--confidence", "0"), "confidence"),
    ):
        r = run(*args)
        assert r.returncode == 2 and needle in r.stderr, r.stderr


def test_export_circuits_json(tmp_path):
    r = run("export-circuits", str(tmp_path / "c"), "--json")
    assert r.returncode == 0, r.stderr
    from qverify.protocols.export import canonical_circuits

    files = json.loads(r.stdout)["files"]
    assert len(files) == len(canonical_circuits()) and all(f.endswith(".qasm") for f in files)
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = run("export-circuits", str(blocker / "c"))
    assert r.returncode == 2 and "cannot write circuits" in r.stderr


def test_choice_lists_equal_the_library():
    from qverify import cli
    from qverify.consensus.scenarios import SCENARIOS, WEIGHTINGS
    from qverify.physics import DECOYS, PRESETS, PROTOCOLS
    from qverify.verify.bsm import RUN_RELAYS

    assert {m.value for m in cli.Scenario} == set(SCENARIOS)
    assert {m.value for m in cli.Weighting} == set(WEIGHTINGS)
    assert {m.value for m in cli.Preset} == set(PRESETS)
    assert {m.value for m in cli.Relay} == set(RUN_RELAYS)
    assert {m.value for m in cli.Protocol} == set(PROTOCOLS)
    assert {m.value for m in cli.Decoys} == set(DECOYS)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("link", "--distance-km", "inf"), "distance_km"),
        (("link", "--mu", "nan"), "mu"),
        (("bsm", "--e-mis", "-inf"), "e_mis"),
        (("simulate", "--byzantine", "nan", "--slots", "3"), "byzantine"),
        (("link", "--protocol", "qkd"), "protocol"),
        (("reproduce", "--run", "../../etc", "--quick"), "run"),
        (("reproduce", "--topology", "cambridge", "--run", "c"), "fractions"),  # 3 nodes: 20 % and 40 % are both 1
        (("reproduce", "--topology", "arpanet", "--run", "c"), "topology"),
        (("reproduce", "--signatures", "rsa", "--run", "c"), "signatures"),
        (("evaluate", "README.md"), "README.md"),
    ],
)
def test_non_finite_and_bad_paths_one_line_exit_2(args, field, tmp_path):
    r = run(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_help_lists_choices_and_verbosity_flags():
    r = run("link", "--help")
    assert "mdi|bb84" in r.stdout.replace(" ", "")
    r = run("--help")
    assert "--verbose" in r.stdout and "--quiet" in r.stdout


def test_json_records_the_environment():
    data = json.loads(run("link", "--json").stdout)
    env = data["environment"]
    assert env["python"].count(".") == 2 and env["packages"]["qiskit"] and env["packages"]["jax"]


def test_verbosity_flags_use_logging():
    r = run("-vv", "bsm", "--method", "sampled", "--shots", "20")
    assert r.returncode == 0 and "sampling" in r.stderr, r.stderr
    r = run("-q", "bsm", "--method", "sampled", "--shots", "20")
    assert r.returncode == 0 and "sampling" not in r.stderr and r.stderr.strip() == "", r.stderr


def test_attack_command_fuzz_and_twins():
    # Within the fault model the fuzzer finds nothing; with f + 1 twinned identities at n = 4 the
    # Twins search must find forks (bench_twins: 1222 of 3510 two-phase cases fork).
    r = run("attack", "--nodes", "4", "--cases", "8", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["summary"]
    assert s["cases"] == 8 and s["unsafe"] == 0 and s["not_live"] == 0
    r = run("attack", "--method", "twins", "--nodes", "4", "--attackers", "2", "--cases", "60", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["unsafe"] > 0
    for bad, field in ((("--nodes", "3"), "nodes"), (("--attackers", "4"), "attackers"), (("--cases", "0"), "cases")):
        r = run("attack", *bad)
        assert r.returncode == 2 and field in r.stderr and "Traceback" not in r.stderr


def test_qds_command_measures_and_refuses_bad_input():
    # Honest signatures verify, t − 1 holders cannot sign, a corrupted share is caught (qverify.verify.qds).
    r = run("qds", "--trials", "6", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["result"]
    assert res["honest_acceptance"]["value"] == 1.0
    assert res["threshold_t_minus_1_accepts"]["value"] == 0.0
    assert res["corrupted_share_detected"]["value"] == 1.0
    assert res["params"]["length"] == 5053  # chosen from the bounds for ε = 1e-4 (qverify.verify.qds.length_for)
    assert res["bounds"]["honest_abort"] <= 1e-4 and res["repudiation_parameter_estimation_abort"]["value"] == 1.0
    for bad, field in ((("--t", "6"), "t"), (("--trials", "0"), "trials"), (("--length", "4"), "length"),
                       (("--length", "2000"), "5053"), (("--epsilon", "0"), "epsilon"),
                       (("--p-depol", "1.5"), "p_depol")):  # fmt: skip
        r = run("qds", *bad)
        assert r.returncode == 2 and field in r.stderr and "Traceback" not in r.stderr


def test_json_output_is_strict_json_with_null_for_unmeasured_figures():
    # No node checks: the node-check mean is not a number; strict JSON has no NaN, so it is null.
    r = run("simulate", "--slots", "20", "--node-rounds", "0", "--json")
    assert r.returncode == 0, r.stderr

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON constant {token}")

    d = json.loads(r.stdout, parse_constant=refuse)
    assert d["summary"]["measured_mean_node_check_qber"] is None
    assert d["params"]["node_rounds"] == 0
