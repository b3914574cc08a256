"""`qverify link` finite-key options: optimised settings, ε conventions, block conventions, after-pulsing."""

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


def test_finite_and_asymptotic_rows_share_one_model_and_record_conventions():
    # The case: BB84, N = 1e12, 50 km printed a finite rate above the (½-sifted) asymptotic one.
    r = run("link", "--protocol", "bb84", "--block-size", "1e12", "--distance-km", "50", "--eps-cor", "1e-15", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    fk = data["finite_key"]
    assert 0 < fk["key_rate"] < fk["asymptotic_key_rate"]
    assert fk["block"] == "pulses" and fk["n_pulses"] == 1e12 and fk["eps_sec"] == 1e-10
    assert data["params"]["eps_cor"] == 1e-15 and data["params"]["epsilon"] == 1e-10
    assert set(fk["settings"]) == {"mu1", "mu2", "mu3", "p1", "p2", "p3", "q_x"}


def test_lim_preset_with_nx_block_and_kappa():
    # Lim et al. 2014 (PRA 89, 022307) parameters, n_X = 1e6, ε_sec = κ·ℓ with κ = 1e-15.
    args = ("link", "--preset", "lim2014", "--protocol", "bb84", "--distance-km", "50", "--block-size", "1e6")
    r = run(*args, "--block", "n_x", "--kappa", "1e-15", "--eps-cor", "1e-15", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    fk = data["finite_key"]
    assert data["params"]["p_afterpulse"] == 0.04 and data["params"]["kappa"] == 1e-15
    assert data["params"]["epsilon"] is None  # ε_sec is solved, not given
    assert fk["block"] == "n_x" and fk["n_pulses"] > 1e6
    assert 0 < fk["eps_sec"] <= 1e-15 * fk["key_bits"] * (1 + 1e-12)
    text = run(*args, "--block", "n_x").stdout
    assert "post-processing block n_X" in text


def test_epsilon_without_block_is_recorded():
    data = json.loads(run("link", "--epsilon", "1e-6", "--json").stdout)
    assert data["params"]["epsilon"] == 1e-6 and data["params"]["block_size"] is None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--p-afterpulse", "1"), "p_afterpulse"),
        (("--p-afterpulse", "-0.1"), "p_afterpulse"),
        (("--protocol", "bb84", "--p-afterpulse", "0.04", "--dead-time-slots", "2"), "dead-time chain"),
        (("--protocol", "mdi", "--p-afterpulse", "0.04"), "p_afterpulse"),
        (("--epsilon", "1"), "epsilon"),
        (("--epsilon", "0"), "epsilon"),
        (("--eps-cor", "0"), "eps_cor"),
        (("--kappa", "0", "--block-size", "1e12"), "kappa"),
        (("--kappa", "-1"), "kappa"),
        (("--protocol", "bb84", "--block-size", "1e4"), "no key at any settings the optimiser found"),
        (("--sweep-km", "-10:100:10"), "-10:100:10"),  # not an emoji
    ],
)
def test_bad_finite_input_one_line_exit_2(args, needle):
    r = run("link", *args)
    assert r.returncode == 2, r.stdout
    lines = [ln for ln in r.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_mdi_lp_estimator_is_recorded_and_not_below_the_analytical():
    args = ("link", "--block-size", "1e12", "--distance-km", "90", "--json")
    ana = json.loads(run(*args).stdout)["finite_key"]
    r = run(*args, "--mdi-estimator", "lp")
    assert r.returncode == 0, r.stderr
    lp = json.loads(r.stdout)
    assert lp["params"]["mdi_estimator"] == "lp" and lp["finite_key"]["decoy_estimation"] == "lp"
    assert lp["finite_key"]["key_rate"] >= ana["key_rate"] * (1 - 1e-6)
