"""Noise as users mean it, and circuits the simulators cannot hold, refused before any allocation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit

from qverify.backends import check_sampled_size
from qverify.errors import BackendError, CircuitError
from qverify.protocols.ghz import ghz_state
from qverify.verify.ghz import verify_ghz
from qverify.verify.qasm import load_qasm

ROOT = Path(__file__).resolve().parents[2]


@settings(max_examples=10, deadline=None)
@given(st.integers(3, 6), st.floats(0.0, 1.0))
def test_exact_pass_rates_follow_the_closed_forms(n, p):
    # Local: each qubit depolarised with probability p leaves the GHZ parity intact with
    # probability (1 − p)^n, else the test passes half the time: 1/2 + (1 − p)^n / 2.
    # Global: ρ → (1 − p) ρ + p I/2^n passes with 1 − p/2.
    local = verify_ghz(n, p_depol=p, rounds=10, noise="local").pass_probability.exact
    glob = verify_ghz(n, p_depol=p, rounds=10, noise="global").pass_probability.exact
    assert local == pytest.approx(0.5 + (1 - p) ** n / 2, abs=1e-9)
    assert glob == pytest.approx(1 - p / 2, abs=1e-9)


@pytest.mark.parametrize("noise", ["local", "global"])
def test_sampled_mode_agrees_with_exact_within_its_interval(noise):
    r = verify_ghz(5, p_depol=0.3, rounds=4000, seed=3, method="sampled", noise=noise, confidence=0.999)
    expect = 0.5 + 0.7**5 / 2 if noise == "local" else 1 - 0.15
    assert r.pass_probability.contains(expect)


def test_noise_reaches_a_loaded_qasm_file():
    # Issue: the loader turned `id` into U(0, 0, 0), so --p-depol 0.2 on ghz_5.qasm still passed 1.0.
    qc = load_qasm(ROOT / "circuits" / "ghz" / "ghz_5.qasm")
    r = verify_ghz(5, p_depol=0.2, rounds=10, state=qc)
    assert r.pass_probability.exact == pytest.approx(0.5 + 0.8**5 / 2, abs=1e-9)


def test_mid_circuit_measurement_is_refused():
    qc = QuantumCircuit(3, 1)
    qc.h(0)
    qc.measure(0, 0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    with pytest.raises(CircuitError, match="'measure' at instruction 1"):
        verify_ghz(3, rounds=10, state=qc)


def test_large_circuits_are_refused_before_allocation():
    # 40 measured qubits need a 2^40-entry outcome table: refused with the limit of this memory.
    qc = ghz_state(40)
    qc.measure_all()
    with pytest.raises(BackendError, match=r"40 measured bits; sampled mode here holds at most 29 measured bits"):
        check_sampled_size([qc], memory=8 * 2**30)
    small = ghz_state(10)
    small.measure_all()
    check_sampled_size([small], memory=8 * 2**30)


def test_cli_refuses_flags_that_do_not_apply():
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-c", "from qverify.cli import main; main()", *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)

    bsm = "circuits/mdi/honest/mdi_X01_honest.qasm"
    r = run("verify", bsm, "--protocol", "bsm", "--p-depol", "0.1")
    assert r.returncode == 2 and "p_depol" in r.stderr
    r = run("verify", "circuits/sharing/qss35_encode.qasm", "--protocol", "qss", "--noise", "global")
    assert r.returncode == 2 and "noise" in r.stderr
    r = run("verify", "circuits/ghz/ghz_5.qasm", "--p-depol", "0.2", "--noise", "global", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["params"]["noise"] == "global"
