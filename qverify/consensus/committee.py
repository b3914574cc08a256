"""Committees for control planes too large to run every node as a replica.

A committee of ``size`` nodes is drawn uniformly without replacement per consensus instance, from a
seed the adversary can neither predict nor bias (the role of a verifiable random beacon, or of each
node's VRF in Algorand's cryptographic sortition: Gilad et al., SOSP 2017, §5). Inside it, PBFT runs
with equal weights and tolerates ``f_c = ⌊(size − 1)/3⌋`` Byzantine members.

Safety argument. Quorums of ``size − f_c`` members intersect in ``≥ f_c + 1`` members, hence in a
correct one whenever the committee holds at most ``f_c`` Byzantine nodes; then the instance is safe
(PBFT). The Byzantine nodes are fixed before the draw (a static adversary) and the draw is uniform,
so the number X of Byzantine members is hypergeometric and an instance is unsafe with probability
at most ``P(X > f_c)`` (:func:`capture_probability`, exact); over E instances at most E times that
(union bound). The figure is small only when the Byzantine fraction is well below 1/3: at 1000
nodes and a 64-member committee it is 2.8e-8 for 100 Byzantine nodes, 3.8e-3 for 200 and 0.26 for
300 (this module's examples), so near the f = ⌊(n − 1)/3⌋ that the weights
are built for no small committee is safe. The control plane reports the probability for the f it
assumes and for the simulator's true count, and its checker counts the violations that happen.

>>> round(capture_probability(1000, 100, 64), 10)
2.81e-08
>>> round(capture_probability(1000, 200, 64), 4)
0.0038
>>> round(capture_probability(1000, 300, 64), 2)
0.26
"""

from __future__ import annotations

import numpy as np
from scipy.stats import hypergeom

from qverify.errors import ParameterError


def tolerated(size: int) -> int:
    """Byzantine members a committee (or network) of ``size`` tolerates with equal weights: ⌊(size − 1)/3⌋.

    Also the f the control plane's weights are built for (:class:`~qverify.consensus.control.ABFTPolicy`
    and the network model's weight rule use this one function, so they agree)."""
    return max(0, (size - 1) // 3)


def sortition(n: int, size: int, seed: int | tuple[int, ...]) -> np.ndarray:
    """Sorted node indices of a uniformly drawn committee of ``size`` among ``n`` nodes.

    ``seed`` stands for the instance's beacon value (e.g. its epoch): every node computes the same
    committee from it.
    """
    if not 1 <= size <= n:
        raise ParameterError("size", size, f"[1, n = {n}]")
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def capture_probability(n: int, byzantine: int, size: int) -> float:
    """Probability that a uniformly drawn committee holds more Byzantine members than it tolerates.

    Exact: the hypergeometric tail ``P(X > f_c)``, X the Byzantine members among ``size`` drawn
    from ``n`` nodes of which ``byzantine`` are Byzantine.
    """
    if not 1 <= size <= n:
        raise ParameterError("size", size, f"[1, n = {n}]")
    if not 0 <= byzantine <= n:
        raise ParameterError("byzantine", byzantine, f"[0, n = {n}]")
    return float(hypergeom.sf(tolerated(size), n, byzantine, size))
