"""A trained DQN as a control-plane policy of the network simulator (alone or with ABFT).

The simulator's :class:`~qverify.network.policy.Observation` is turned into exactly the observation
vector of :func:`qverify.dra.env.observe`; the greedy branch choices become μ, protocol and route
per link and demand. With an :class:`~qverify.consensus.control.ABFTPolicy` attached (ABFT+DRA),
the usable-link set comes from the weighted-PBFT control plane, the node weights enter the
observation, and a route that crosses an unusable link or a suspect node is replaced by ABFT's.
"""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from qverify.dra import env as E
from qverify.dra.dqn import BranchingQ
from qverify.network.policy import Context, Decision, Observation


class DRAPolicy:
    """Greedy DQN allocation; ``abft`` (optional) adds the fidelity-weighted control plane."""

    def __init__(self, params: Any, env_params: E.EnvParams, hidden: int = 128, abft: Any = None) -> None:
        self.params = params
        self.env_params = env_params
        self.abft = abft
        self.name = "abft+dra" if abft is not None else "dra"
        net = BranchingQ(E.branch_sizes(env_params), hidden)
        self._q = jax.jit(lambda p, x: jnp.argmax(cast(jax.Array, net.apply(p, x)), axis=-1))
        self.extras: dict[str, Any] = {}

    def reset(self, ctx: Context) -> None:
        self.ctx = ctx
        e = ctx.links.n_links
        if e != self.env_params.length_km.shape[0] or len(ctx.demands) != self.env_params.path_valid.shape[0]:
            from qverify.errors import QverifyError

            raise QverifyError("the DRA policy was trained for another network instance (links or demands differ)")
        if self.abft is not None:
            self.abft.reset(ctx)

    def _obs(self, obs: Observation, qber: np.ndarray, weights: np.ndarray) -> jax.Array:
        p = self.env_params
        if obs.source_scale is None or obs.mu is None or obs.eta_scale is None or obs.backlog_bits is None:
            from qverify.errors import QverifyError

            raise QverifyError("the DRA policy needs the monitored link observables (loss, drifts, μ, backlog)")
        per_link = np.stack(
            [
                obs.source_scale,
                obs.mu,
                obs.eta_scale,
                np.asarray(obs.loss_db) / 20.0,
                qber / float(p.qber_threshold),
                obs.pool_bits / float(p.pool_cap_bits),
                np.log10(1.0 + obs.key_rate_bps) / 6.0,
            ],
            axis=1,
        ).ravel()
        t = obs.slot % int(p.max_steps)
        x = np.concatenate([per_link, weights, np.asarray(obs.backlog_bits) / float(p.demand_bits), [t / p.max_steps]])
        return jnp.asarray(x, dtype=jnp.float32)

    def decide(self, obs: Observation) -> Decision:
        p = self.env_params
        n = self.ctx.links.n_nodes
        if self.abft is not None:
            base = self.abft.decide(obs)
            qber = obs.reported_qber.max(axis=1)
            w = np.asarray(self.abft.voting.weights().weights, dtype=float)
            weights = w / w.max()
        else:
            base = None
            qber = obs.reported_qber.mean(axis=1)
            weights = np.ones(n)
        branches = np.asarray(self._q(self.params, self._obs(obs, qber, weights)))
        e = self.ctx.links.n_links
        mu = np.asarray(p.mu_levels)[branches[:e]]
        use_mdi = branches[e : 2 * e] == 0
        route = branches[2 * e :].astype(np.int64)
        usable = np.ones(e, dtype=bool)
        if base is not None:
            usable = base.usable
            paths = self.ctx.paths
            d = np.arange(len(route))
            lk = paths.links[d, route]
            inner = paths.inner[d, route]
            bad_link = np.where(lk >= 0, ~usable[np.where(lk >= 0, lk, 0)], False).any(axis=1)
            bad_node = np.where(inner >= 0, self.abft.suspect[np.where(inner >= 0, inner, 0)], False).any(axis=1)
            route = np.where(bad_link | bad_node | ~paths.valid[d, route], base.route, route)
            self.extras = dict(self.abft.extras)
        return Decision(usable, mu, use_mdi, route)
