"""A trained DQN as a control-plane policy of the network simulator (alone or with ABFT).

The agent decides inside the simulator's compiled scan, slot by slot (:func:`allocate`), on exactly
the observation it was trained on (:func:`qverify.network.model.observe`). With an
:class:`~qverify.consensus.control.ABFTPolicy` attached (ABFT+DRA), the host runs the weighted-PBFT
control plane at epoch boundaries: its usable-link set bounds the agent, its weights enter the
observation, and a route that crosses an unusable link or a suspect node is replaced by ABFT's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from qverify.dra import env as E
from qverify.dra.dqn import BranchingQ
from qverify.errors import QverifyError
from qverify.network import model as M
from qverify.network.policy import Context, Decision, Observation


def allocate(alloc_params: dict[str, Any], obs: jax.Array, host: M.Decision, params: M.NetParams) -> M.Decision:
    """The agent's greedy decision for one slot, bounded by the host's (jax, runs inside the scan).

    ``alloc_params``: ``q`` (network parameters) and ``avoid`` ((N,) nodes no route may cross).
    """
    q = alloc_params["q"]
    hidden = int(q["params"]["Dense_0"]["kernel"].shape[1])
    net = BranchingQ(E.branch_sizes(params), hidden)
    branches = jnp.argmax(cast(jax.Array, net.apply(q, obs)), axis=-1).astype(jnp.int32)
    dec = E.decision_of(E.action_from_branches(branches, params), params, usable=host.usable)
    d = jnp.arange(params.path_valid.shape[0])
    route = jnp.clip(dec.route, 0, params.path_valid.shape[1] - 1)
    lk = params.path_links[d, route]
    inner = params.path_inner[d, route]
    bad_link = jnp.where(lk >= 0, ~host.usable[jnp.where(lk >= 0, lk, 0)], False).any(axis=1)
    bad_node = jnp.where(inner >= 0, alloc_params["avoid"][jnp.where(inner >= 0, inner, 0)], False).any(axis=1)
    keep = ~(bad_link | bad_node | ~params.path_valid[d, route])
    return dataclasses.replace(dec, route=jnp.where(keep, route, host.route))


class DRAPolicy:
    """Greedy DQN allocation; ``abft`` (optional) adds the fidelity-weighted control plane."""

    allocator = staticmethod(allocate)

    def __init__(self, params: Any, env_params: E.EnvParams, hidden: int = 128, abft: Any = None) -> None:
        self.params = params
        self.env_params = env_params
        self.abft = abft
        self.hidden = hidden
        self.name = "abft+dra" if abft is not None else "dra"
        self.extras: dict[str, Any] = {}
        self.allocator_params: dict[str, Any] = {}

    def reset(self, ctx: Context) -> None:
        self.ctx = ctx
        e = ctx.links.n_links
        if e != self.env_params.length_km.shape[0] or len(ctx.demands) != self.env_params.path_valid.shape[0]:
            raise QverifyError("the DRA policy was trained for another network instance (links or demands differ)")
        if self.abft is not None:
            self.abft.reset(ctx)
        self._avoid = np.zeros(ctx.links.n_nodes, dtype=bool)

    def node_weights(self) -> np.ndarray | None:
        return None if self.abft is None else self.abft.node_weights()

    def decide(self, obs: Observation) -> Decision:
        e = self.ctx.links.n_links
        if self.abft is not None:
            base = self.abft.decide(obs)
            avoid = np.asarray(self.abft.suspect, dtype=bool)
            self.extras = dict(self.abft.extras)
        else:
            base = Decision(np.ones(e, dtype=bool), self.ctx.nominal_mu, self.ctx.links.is_mdi,
                            np.zeros(len(self.ctx.demands), dtype=np.int64))  # fmt: skip
            avoid = self._avoid
        self.allocator_params = {"q": self.params, "avoid": jnp.asarray(avoid)}
        return base
