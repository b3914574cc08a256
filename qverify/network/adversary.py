"""Byzantine nodes: which ones (by seed), what they do, and the QBER their injected states cause."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from qverify.errors import ChoiceError, ParameterError

BEHAVIOURS: tuple[str, ...] = ("inject", "drop", "corrupt", "lie", "slander")
"""``inject``: send corrupted quantum states (raises the QBER of the node's links, calibrated from
the misbehaving-relay circuit); ``drop``: withhold relayed keys; ``corrupt``: alter relayed keys
(detected at key confirmation, the key is lost); ``lie``: report perfect fidelity for its links;
``slander``: report QBER 0.5 for links to honest neighbours."""


@dataclass(frozen=True)
class Adversary:
    """Byzantine nodes of a run.

    Attributes:
        fraction: fraction of nodes that are Byzantine, in [0, 1).
        behaviours: subset of :data:`BEHAVIOURS` every Byzantine node performs.
        inject_prob: probability a Byzantine node replaces a photon by a maximally mixed state, in
            [0, 1]; the resulting bit error is measured on the ``inject`` relay circuit.
        onset_slot: slot from which they misbehave (before: honest); ≥ 0.
        collude: whether Byzantine nodes pool what they learn (for multi-path exposure).
    """

    fraction: float = 0.0
    behaviours: tuple[str, ...] = ("inject", "drop", "lie")
    inject_prob: float = 0.3
    onset_slot: int = 0
    collude: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.fraction < 1:
            raise ParameterError("byzantine fraction", self.fraction, "[0, 1)")
        for b in self.behaviours:
            if b not in BEHAVIOURS:
                raise ChoiceError("behaviour", b, BEHAVIOURS)
        if not 0 <= self.inject_prob <= 1:
            raise ParameterError("inject_prob", self.inject_prob, "[0, 1]")
        if self.onset_slot < 0:
            raise ParameterError("onset_slot", self.onset_slot, "[0, inf)")

    def does(self, behaviour: str) -> bool:
        return behaviour in self.behaviours


def byzantine_count(n_nodes: int, fraction: float) -> int:
    """``fraction·n`` rounded half up (10 % of 5 nodes → 1), never more than n − 1.

    Rounding half up rather than to even keeps "10 % Byzantine" from meaning no Byzantine node at
    all on the five-node SECOQC network.
    """
    return min(int(np.floor(fraction * n_nodes + 0.5)), max(n_nodes - 1, 0))


def choose_byzantine(n_nodes: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of :func:`byzantine_count` Byzantine nodes drawn by ``rng``."""
    k = byzantine_count(n_nodes, fraction)
    mask = np.zeros(n_nodes, dtype=bool)
    if k:
        mask[rng.choice(n_nodes, size=k, replace=False)] = True
    return mask


@cache
def injected_error(inject_prob: float) -> float:
    """Bit-error probability added by injecting maximally mixed states with ``inject_prob``.

    Measured (exact density-matrix mode) on the ``inject`` relay circuit of
    :mod:`qverify.protocols.mdi`; equals ``inject_prob / 2`` (Z and X bases agree).
    """
    if inject_prob == 0:
        return 0.0
    from qverify.protocols.mdi import BSMNoise
    from qverify.verify.bsm import run_bsm

    res = run_bsm(BSMNoise(), relay="inject", inject_prob=inject_prob, shots=1, seed=0)
    assert res.e_x.exact is not None and res.e_z.exact is not None
    return 0.5 * (res.e_x.exact + res.e_z.exact)
