"""The control plane's signature scheme changes no outcome: ``qverify reproduce`` signs with ideal
signatures by default (qverify.experiments.grid.GridConfig), and that is sound only if every row
is the one real Ed25519 gives."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace

import numpy as np
import pytest

from qverify.consensus.control import ABFTPolicy
from qverify.errors import ChoiceError
from qverify.experiments.grid import GridConfig, Task, build_tasks
from qverify.experiments.networks import MapConfig, NetworkStudyConfig, map_tasks, study_tasks
from qverify.network.adversary import Adversary
from qverify.network.sim import SimConfig, simulate
from qverify.network.topology import load_builtin


def _without_scheme(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "control_signatures"}


def test_ideal_and_ed25519_signatures_give_the_same_run() -> None:
    # Byzantine nodes that inject, lie and slander are also faulty control-plane replicas (they
    # equivocate and forget their logs), so view changes and rejected messages happen; the run
    # (SECOQC, seed 0, 45 slots) is the one test_simulate_seeds runs alone, so its program is shared.
    g = load_builtin("secoqc")
    cfg = SimConfig(adversary=Adversary(fraction=0.2, behaviours=("inject", "lie", "slander")))
    ideal = simulate(g, cfg, 45, 0, ABFTPolicy(signatures="ideal"))
    real = simulate(g, cfg, 45, 0, ABFTPolicy(signatures="ed25519"))
    assert ideal.summary()["control_signatures"] == "ideal" and real.summary()["control_signatures"] == "ed25519"
    assert _without_scheme(ideal.summary()) == _without_scheme(real.summary())
    for name, value in vars(ideal).items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, getattr(real, name), equal_nan=True), name
    assert ideal.summary()["control_faulty"] > 0 and ideal.summary()["control_instances"] > 0


def test_the_scheme_is_a_setting_of_the_grid() -> None:
    tasks = build_tasks(GridConfig.quick(), {})
    assert {t.signatures for t in tasks} == {"ideal"}
    real = build_tasks(replace(GridConfig.quick(), signatures="ed25519"), {})
    assert {t.signatures for t in real} == {"ed25519"}
    assert {t.signatures for t in study_tasks(NetworkStudyConfig.quick(), "ed25519")} == {"ed25519"}
    assert {t.signatures for t in map_tasks(MapConfig.quick(), "ed25519")} == {"ed25519"}
    # A store written before the field existed (keys without it) stays valid for ideal-signature
    # tasks, whose rows are the same; an Ed25519 task has a key of its own.
    t = Task("secoqc", 0.2, "inject-drop-lie", True, "abft", 0, 80, 3, 5e3)
    fields = {k: v for k, v in asdict(t).items() if k not in ("agent", "aborts", "observation", "signatures")}
    assert t.key == hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]
    assert replace(t, signatures="ed25519").key != t.key
    with pytest.raises(ChoiceError, match="signatures"):
        GridConfig(signatures="rsa")
