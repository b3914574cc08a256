"""Training and evaluation entry points used by the CLI, the notebooks and ``qverify reproduce``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np

from qverify.dra import baselines as B
from qverify.dra import dqn
from qverify.dra import env as E
from qverify.errors import ParameterError, QverifyError
from qverify.interrupts import check as check_interrupt
from qverify.xla import jit


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        eval_return: (seeds, episodes) greedy return on the fixed evaluation episodes.
        train_return: (seeds, episodes) ε-greedy training return (mean over parallel envs).
        loss: (seeds, episodes) mean TD loss.
        params: trained network parameters, one pytree per seed (leading axis = seed).
        seconds: wall-clock training time (compilation included).
    """

    eval_return: np.ndarray
    train_return: np.ndarray
    loss: np.ndarray
    params: Any
    seconds: float


def train(
    env_params: E.EnvParams,
    config: dqn.DQNConfig,
    episodes: int,
    seeds: int = 1,
    seed: int = 0,
    chunks: int = 10,
    progress: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train ``seeds`` agents in parallel (``vmap``) for ``episodes`` episodes.

    The loop runs as one jitted program per chunk of episodes (so a progress bar can move between
    chunks); ``progress(done_episodes)`` is called after each chunk.
    """
    import time

    if episodes < 1:
        raise ParameterError("episodes", episodes, "[1, inf)")
    if seeds < 1:
        raise ParameterError("seeds", seeds, "[1, inf)")
    E.check_params(env_params)
    t0 = time.perf_counter()
    init, run, evaluate = dqn.make_train(config, env_params)
    state = jax.vmap(init)(jax.random.split(jax.random.PRNGKey(seed), seeds))
    return _run_chunks(run, evaluate, state, episodes, chunks, config.eval_every, progress, t0)


def train_instances(
    instances: list[E.EnvParams],
    config: dqn.DQNConfig,
    episodes: int,
    seeds: list[int],
    chunks: int = 10,
    progress: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train one agent per instance, all in one vmapped program (instances must share shapes).

    Agent ``i`` trains on ``instances[i]`` from ``PRNGKey(seeds[i])`` and is exactly the agent that
    :func:`train` with ``seeds=1, seed=seeds[i]`` would produce on that instance alone; the results
    are stacked along the first axis in the order given.
    """
    import time

    if episodes < 1:
        raise ParameterError("episodes", episodes, "[1, inf)")
    if not instances or len(instances) != len(seeds):
        raise ParameterError("instances", len(instances), f"one per seed ({len(seeds)}), at least one")
    for p in instances:
        E.check_params(p)
    try:
        stacked = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *instances)
    except ValueError:
        raise ParameterError("instances", len(instances), "instances of one topology (same array shapes)") from None
    t0 = time.perf_counter()
    init, run, evaluate = dqn.make_train(config, instances[0])
    keys = jnp.stack([jax.random.split(jax.random.PRNGKey(s), 1)[0] for s in seeds])
    state = jax.vmap(init)(keys, stacked)
    return _run_chunks(run, evaluate, state, episodes, chunks, config.eval_every, progress, t0)


SNAPSHOT_BUDGET_BYTES = 256 * 2**20
"""Most bytes of per-episode parameter snapshots one chunk keeps for the evaluation (chunks shrink to fit)."""


def _run_chunks(
    run: Callable[[dqn.TrainState, int], tuple[dqn.TrainState, dict[str, Any]]],
    evaluate: Callable[[Any, E.EnvParams], jax.Array],
    state: dqn.TrainState,
    episodes: int,
    chunks: int,
    eval_every: int,
    progress: Callable[[int], None] | None,
    t0: float,
) -> TrainResult:
    """Train chunk by chunk (one program), then evaluate the chunk's episodes that are due (another
    program, on the snapshots the chunk returned): episode ``e`` (1-based) is evaluated when
    ``(e − 1) % eval_every == 0``, and the others repeat the last evaluation."""
    import time

    chunk = max(1, -(-episodes // max(chunks, 1)))
    snapshot_bytes = sum(x.nbytes for x in jax.tree.leaves(state.params))
    chunk = max(1, min(chunk, SNAPSHOT_BUDGET_BYTES // max(snapshot_bytes, 1)))
    # XLA's fusion emitters kept for training alone (qverify.xla): the elemental emitter rounds some
    # fused multiply-adds differently, and training turns those last bits into other agents.
    run_v = jit(jax.vmap(run, in_axes=(0, None)), static_argnums=1, fusion_emitters=True)
    # (seeds, due episodes) snapshots, each seed on its own instance; a fixed number of due slots per
    # chunk (padded by repeating the last), so the program compiles once.
    eval_v = jit(jax.vmap(jax.vmap(evaluate, in_axes=(0, None)), in_axes=(0, 0)))
    width = -(-chunk // eval_every)
    parts: list[dict[str, np.ndarray]] = []
    last_eval = np.full(state.steps.shape[0], np.nan, np.float32)
    done = 0
    while done < episodes:
        n = min(chunk, episodes - done)
        state, metrics = run_v(state, n)
        snapshots = metrics.pop("params")
        due = [i for i in range(n) if (done + i) % eval_every == 0]
        values = np.empty((last_eval.shape[0], 0), np.float32)
        if due:
            pick = jnp.asarray(due + [due[-1]] * (width - len(due)))
            picked = jax.tree.map(partial(jnp.take, indices=pick, axis=1), snapshots)
            values = np.asarray(eval_v(picked, state.env_params))
        evals = np.empty((last_eval.shape[0], n), np.float32)
        for i in range(n):
            if i in due:
                last_eval = values[:, due.index(i)]
            evals[:, i] = last_eval
        metrics = jax.tree.map(np.asarray, metrics)
        metrics["eval_return"] = evals
        parts.append(metrics)
        done += n
        if progress is not None:
            progress(done)
        # A termination request that landed where Python drops exceptions is raised here, a chunk
        # later, instead of after the whole training (qverify.interrupts).
        check_interrupt()
    cat = {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    return TrainResult(cat["eval_return"], cat["train_return"], cat["loss"], state.params, time.perf_counter() - t0)


def episodes_to_reach(curve: np.ndarray, target: float) -> int | None:
    """First episode (1-based) from which the running best of ``curve`` reaches ``target``."""
    hit = np.flatnonzero(np.maximum.accumulate(curve) >= target)
    return int(hit[0]) + 1 if hit.size else None


def reference_returns(env_params: E.EnvParams, keys: jax.Array, enumerate_optimum: bool = True) -> dict[str, Any]:
    """Mean returns of the baselines on ``keys`` (and the enumerated optima when small enough).

    ``optimum`` is the best of the enumerated references and the greedy heuristics; with
    ``enumerate_optimum=False`` (a cheaper run) it is the best of the greedy heuristics alone,
    a looser lower bound, and ``lower_bound_from`` says which.

    ``greedy_oracle``, ``oracle_per_step`` and ``best_static`` read the truth (the Byzantine set or
    the next slot's randomness): references for learning, not policies a network could run.
    ``optimum`` (the best of them) is a lower bound on the optimal return and ``upper_bound`` (the
    LP relaxation of the clairvoyant plan, :mod:`qverify.dra.bound`) an upper bound.
    """
    policies = {
        "static": B.static_policy(env_params),
        "random": B.random_policy(env_params),
        "greedy": B.greedy_policy(env_params),
        "greedy_oracle": B.greedy_oracle_policy(env_params),
    }
    out: dict[str, Any] = {
        name: float(r["returns"].mean()) for name, r in B.evaluate_many(policies, env_params, keys).items()
    }
    out["optimum"] = max(out["greedy"], out["greedy_oracle"])
    out["lower_bound_from"] = "greedy heuristics"
    if enumerate_optimum:
        try:
            out["oracle_per_step"] = float(B.evaluate(None, env_params, keys, oracle=True)["returns"].mean())
            out["best_static"] = B.best_static(env_params, keys)[1]
        except QverifyError as exc:  # too many joint actions: no enumerated reference
            if "joint actions" not in str(exc):
                raise
        else:
            out["optimum"] = max(out["optimum"], out["oracle_per_step"], out["best_static"])
            out["lower_bound_from"] = "enumeration and greedy heuristics"
    if env_params.relay == "single":
        from qverify.dra.bound import upper_bound

        out["upper_bound"] = float(upper_bound(env_params, keys)["upper_bound"])
    return out


def params_of_seed(params: Any, i: int) -> Any:
    """The parameters of seed ``i`` from a seed-batched pytree."""
    return jax.tree.map(lambda x: x[i], params)


def dqn_policy(params: Any, env_params: E.EnvParams, hidden: int) -> B.PolicyFn:
    """A trained network as a baseline-style policy ``(key, obs, state) -> branches``."""
    net = dqn.greedy_policy(params, env_params, hidden)
    return lambda key, obs, state: net(obs, state)


def small_instance(g: nx.Graph | None = None, seed: int = 0, **sim_kwargs: Any) -> E.EnvParams:
    """The default small DRA instance: Cambridge's three fibres run as MDI-QKD links, 3 demands near
    capacity, fades on.

    4 μ levels × 2 protocols per link and 2 paths per demand: 4096 joint actions, so the optimum
    references can be enumerated. The deployed Cambridge network ran decoy BB84 (Dynes et al. 2019);
    with BB84 links of 4–11 km the nominal static setting is already within 3 % of the optimum, so
    no allocator has anything to learn there. Starting every link as MDI-QKD (the slower protocol)
    makes the μ and protocol choices matter: an instance for learning, not a model of that network.
    """
    import networkx as nx

    from qverify.network.sim import Fluctuation, SimConfig
    from qverify.network.topology import load_builtin

    if g is None:
        g = load_builtin("cambridge")
        nx.set_edge_attributes(g, "mdi", "protocol")
    cfg = SimConfig(**{"n_demands": 3, "demand_bits": 3e6, "fluctuation": Fluctuation(fade_rate=0.02), **sim_kwargs})
    return E.from_network(g, cfg, seed=seed, max_steps=50)
