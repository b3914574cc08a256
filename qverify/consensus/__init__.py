"""Fidelity-weighted Byzantine fault tolerance that stays safe (ABFT).

The paper's rule ``w_i ← w_i (1 − α |err_i|)`` is kept as a *score*; safety never depends on it.
Scores are projected to integer weights that satisfy ``W ≥ 3·T_f + 1`` (``T_f`` = sum of the f
largest weights), quorums are ``Q = W − T_f`` and ``T_f + 1`` replaces PBFT's ``f + 1``.
"""

from qverify.consensus.voting import Certificate, FidelityWeightedVoting, Vote, VoteRejected
from qverify.consensus.weights import Quorum, WeightVector, check_weights, naive_weights

__all__ = [
    "Certificate",
    "FidelityWeightedVoting",
    "Quorum",
    "Vote",
    "VoteRejected",
    "WeightVector",
    "check_weights",
    "naive_weights",
]
