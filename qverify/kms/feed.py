"""Where the KMEs' key comes from: per slot, the key bits the network model delivered to each node pair.

A feed names its node pairs (the network's demands: direct links and relayed demands alike) and
gives, for slot ``t``, the bits each pair received in that slot. :class:`SimulatedFeed` runs the JAX
network model of :mod:`qverify.network.sim` (fluctuating loss, Byzantine relays, aborts, the chosen
key relay) and reads its per-slot ``delivered_bits``; :class:`TableFeed` replays a given table
(tests, notebooks, or a run saved earlier).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from qverify.errors import ParameterError

if TYPE_CHECKING:
    import networkx as nx

    from qverify.network.policy import Policy
    from qverify.network.sim import SimConfig, SimResult


class Feed(Protocol):
    """Per-slot key delivered to each node pair.

    Attributes:
        nodes: every node of the network (each has a KME).
        pairs: the node pairs that receive key, as (node, node) names.
        slot_s: slot length, seconds of simulated time.
    """

    @property
    def nodes(self) -> tuple[str, ...]: ...

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def slot_s(self) -> float: ...

    def bits(self, slot: int) -> np.ndarray:
        """Key bits (≥ 0) delivered to each pair in ``slot`` (≥ 0), shape ``(len(pairs),)``."""
        ...


@dataclass(frozen=True)
class TableFeed:
    """A feed replaying ``table`` (slots × pairs, bits), cyclically past its end.

    Attributes:
        nodes: every node.
        pairs: node pairs, one per column of ``table``.
        table: (T, len(pairs)) bits per slot, finite and ≥ 0.
        slot_s: slot length in seconds (> 0).
    """

    nodes: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    table: np.ndarray = field(repr=False)
    slot_s: float = 1.0

    def __post_init__(self) -> None:
        t = np.asarray(self.table, dtype=float)
        if t.ndim != 2 or t.shape[1] != len(self.pairs) or t.shape[0] < 1:
            raise ParameterError("table", t.shape, f"(slots ≥ 1, {len(self.pairs)}) to match pairs")
        if not np.isfinite(t).all() or (t < 0).any():
            raise ParameterError("table", "entries", "finite and ≥ 0 bits")
        if not self.slot_s > 0:
            raise ParameterError("slot_s", self.slot_s, "(0, inf)")
        for a, b in self.pairs:
            if a not in self.nodes or b not in self.nodes or a == b:
                raise ParameterError("pairs", (a, b), f"two distinct nodes of {list(self.nodes)}")
        object.__setattr__(self, "table", t)

    def bits(self, slot: int) -> np.ndarray:
        if slot < 0:
            raise ParameterError("slot", slot, "[0, inf)")
        return self.table[slot % self.table.shape[0]]


class SimulatedFeed(TableFeed):
    """The network model's delivered key per demand and slot, for ``horizon_slots`` slots (then
    replayed from the start, which the caller can avoid by choosing the horizon).

    One :func:`qverify.network.sim.simulate` run of ``horizon_slots`` slots on ``g`` under ``config``,
    ``seed`` and ``policy``; pair ``d`` is demand ``d`` and receives ``delivered_bits[t, d]`` in slot
    ``t``, so outages, attacks and aborts show up as less key. :attr:`result` keeps the run.
    """

    result: SimResult

    def __init__(
        self,
        g: nx.Graph,
        config: SimConfig,
        horizon_slots: int = 600,
        seed: int = 0,
        policy: Policy | None = None,
    ) -> None:
        from qverify.network.sim import simulate

        if horizon_slots < 1:
            raise ParameterError("horizon_slots", horizon_slots, "[1, inf)")
        res = simulate(g, config, horizon_slots, seed=seed, policy=policy)
        pairs = tuple((res.nodes[int(a)], res.nodes[int(b)]) for a, b in res.demands)
        super().__init__(res.nodes, pairs, np.asarray(res.delivered_bits, dtype=float), config.slot_s)
        object.__setattr__(self, "result", res)
