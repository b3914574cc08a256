"""Branching Double DQN with prioritised replay, trained as one ``jax.jit`` program.

* Q-network (Flax): shared MLP torso, a state value and one advantage head per action branch
  (Tavakoli et al., "Action Branching Architectures for Deep RL", AAAI 2018), so the output grows
  linearly with the number of decisions instead of exponentially.
* Double DQN targets (van Hasselt et al. 2016) averaged over branches, a target network copied every
  ``target_every`` updates, Adam (lr 1e-3) and γ = 0.99 as in the paper, ε-greedy with a linear
  schedule, proportional prioritised replay with β annealed to 1 (:mod:`qverify.dra.replay`).
* ``make_train(config, env_params)`` returns ``(init, run, evaluate)``; ``run(state, n_episodes)`` is
  a ``lax.scan`` over episodes of ``lax.scan`` over steps — jit it, and ``vmap`` it over seeds;
  ``evaluate`` is the greedy evaluation of an episode's parameters, a program of its own.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization, struct

from qverify.dra import env as E
from qverify.dra import replay
from qverify.errors import ParameterError, QverifyError
from qverify.network import model as M
from qverify.network.model import OBS_LINK_FIELDS


@dataclass(frozen=True)
class DQNConfig:
    """Hyper-parameters (paper: Adam lr 1e-3, γ 0.99, prioritised replay).

    Attributes:
        lr: Adam learning rate.
        gamma: discount factor.
        hidden: width of the two hidden layers.
        n_envs: environments stepped in parallel per seed.
        buffer_size: replay capacity (transitions).
        batch_size: transitions per update.
        warmup: transitions stored before learning starts.
        target_every: updates between target-network copies.
        eps_start, eps_end, eps_decay_steps: linear ε schedule (in environment steps).
        per_alpha: priority exponent α; per_beta0: initial importance exponent, annealed to 1.
        train_every: environment steps (each of ``n_envs`` transitions) between gradient updates.
        eval_every: episodes between greedy evaluations (``eval_return`` repeats the last value).
        eval_episodes: episodes of each greedy evaluation, on the fixed keys of :func:`eval_keys`.
    """

    lr: float = 1e-3
    gamma: float = 0.99
    hidden: int = 128
    n_envs: int = 4
    buffer_size: int = 20_000
    batch_size: int = 64
    warmup: int = 500
    target_every: int = 200
    eps_start: float = 1.0
    eps_end: float = 0.02
    eps_decay_steps: int = 5_000
    per_alpha: float = 0.6
    per_beta0: float = 0.4
    anneal_steps: int = 50_000
    train_every: int = 1
    eval_every: int = 1
    eval_episodes: int = 4

    def __post_init__(self) -> None:
        if not 0 < self.lr < 1:
            raise ParameterError("lr", self.lr, "(0, 1)")
        if not 0 <= self.gamma < 1:
            raise ParameterError("gamma", self.gamma, "[0, 1)")
        for name in ("hidden", "n_envs", "buffer_size", "batch_size", "target_every", "eps_decay_steps",
                     "train_every", "eval_every", "eval_episodes"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ParameterError(name, getattr(self, name), "[1, inf)")
        if self.batch_size > self.buffer_size:
            raise ParameterError("batch_size", self.batch_size, f"[1, buffer_size = {self.buffer_size}]")


class BranchingQ(nn.Module):
    """Dueling branching Q-network: Q_b(s, a) = V(s) + A_b(s, a) − mean_a A_b(s, a)."""

    branch_sizes: tuple[int, ...]
    hidden: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        n_b, n_a = len(self.branch_sizes), max(self.branch_sizes)
        h = nn.relu(nn.Dense(self.hidden)(x))
        h = nn.relu(nn.Dense(self.hidden)(h))
        value = nn.Dense(1)(h)
        adv = nn.Dense(n_b * n_a)(nn.relu(nn.Dense(self.hidden)(h))).reshape(*x.shape[:-1], n_b, n_a)
        mask = branch_mask(self.branch_sizes)
        mean_adv = jnp.sum(jnp.where(mask, adv, 0.0), axis=-1, keepdims=True) / mask.sum(axis=-1, keepdims=True)
        q = value[..., None] + adv - mean_adv
        return jnp.where(mask, q, -1e9)


def branch_mask(branch_sizes: tuple[int, ...]) -> jax.Array:
    """(B, A_max) mask of the options that exist in each branch."""
    n_a = max(branch_sizes)
    return jnp.arange(n_a)[None, :] < jnp.asarray(branch_sizes)[:, None]


@struct.dataclass
class TrainState:
    params: Any
    target: Any
    opt_state: Any
    buffer: Any  # flashbax prioritised item buffer state (qverify.dra.replay)
    env_state: E.EnvState
    obs: jax.Array
    key: jax.Array
    steps: jax.Array
    updates: jax.Array
    env_params: E.EnvParams


def make_train(
    config: DQNConfig, env_params: E.EnvParams
) -> tuple[
    Callable[..., TrainState],
    Callable[[TrainState, int], tuple[TrainState, dict[str, Any]]],
    Callable[[Any, E.EnvParams], jax.Array],
]:
    """``init(key[, env_params]) -> TrainState``, ``run(state, n_episodes) -> (state, metrics)`` and
    ``evaluate(params, env_params) -> mean greedy return``.

    ``env_params`` given here is the template (action branches, observation size, episode length);
    ``init`` may take another instance of the same shapes, which then travels inside the state, so
    one compiled program trains agents on many instances at once (``vmap`` over stacked params).

    ``metrics`` holds per-episode arrays: ``train_return`` (mean over the parallel environments,
    ε-greedy), ``loss``, and ``params``, the network parameters at the episode's end.
    ``evaluate`` is the greedy evaluation on the fixed episodes of :func:`eval_keys`;
    :func:`qverify.dra.train.train` applies it to the snapshots of the episodes due for evaluation
    (every ``eval_every``-th, from the first). It is a program of its own rather than a step of
    ``run``: inside ``run`` it would compile a second copy of the environment's step into the
    training program (about a third of its compile time), while apart it compiles once and serves
    every chunk; the figures are the same.
    """
    sizes = E.branch_sizes(env_params)
    net = BranchingQ(sizes, config.hidden)
    tx = optax.adam(config.lr)

    def qv(params: Any, x: jax.Array) -> jax.Array:
        return cast(jax.Array, net.apply(params, x))

    n_b = len(sizes)
    sizes_arr = jnp.asarray(sizes)
    obs_dim = E.obs_size(env_params)
    steps_per_ep = env_params.max_steps
    spec = replay.Replay(config.buffer_size, config.batch_size, config.per_alpha)

    def init(key: jax.Array, instance: E.EnvParams | None = None) -> TrainState:
        inst = env_params if instance is None else instance
        k_net, k_env, key = jax.random.split(key, 3)
        params = net.init(k_net, jnp.zeros((obs_dim,)))
        obs, st = jax.vmap(E.reset, in_axes=(0, None))(jax.random.split(k_env, config.n_envs), inst)
        return TrainState(
            params=params,
            target=params,
            opt_state=tx.init(params),
            buffer=replay.init(spec, obs_dim, n_b),
            env_state=st,
            obs=obs,
            key=key,
            steps=jnp.array(0, jnp.int32),
            updates=jnp.array(0, jnp.int32),
            env_params=inst,
        )

    def greedy(params: Any, obs: jax.Array) -> jax.Array:
        return jnp.argmax(qv(params, obs), axis=-1).astype(jnp.int32)

    def targets(params: Any, target: Any, batch: tuple[jax.Array, ...]) -> jax.Array:
        """Double-DQN target, averaged over branches: r + γ (1 − d) mean_b Q'_b(s', argmax Q_b(s'))."""
        _obs, _act, rew, nxt, done = batch
        a_star = jnp.argmax(qv(params, nxt), axis=-1)
        q_next = jnp.take_along_axis(qv(target, nxt), a_star[..., None], axis=-1)[..., 0]
        return rew + config.gamma * (1 - done) * q_next.mean(axis=-1)

    def loss_fn(
        params: Any, y: jax.Array, batch: tuple[jax.Array, ...], weights: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        obs, act, *_ = batch
        q = qv(params, obs)  # (N, B, A)
        q_taken = jnp.take_along_axis(q, act[..., None], axis=-1)[..., 0]  # (N, B)
        td = q_taken - y[:, None]
        loss = jnp.mean(weights[:, None] * td**2)
        return loss, jnp.abs(td).mean(axis=-1)

    def env_step(ts: TrainState, i: jax.Array) -> tuple[TrainState, tuple[jax.Array, jax.Array]]:
        key, k_eps, k_rand, k_env, k_sample = jax.random.split(ts.key, 5)
        frac = jnp.clip(ts.steps / config.eps_decay_steps, 0.0, 1.0)
        eps = config.eps_start + frac * (config.eps_end - config.eps_start)
        a_greedy = greedy(ts.params, ts.obs)  # (n_envs, B)
        a_rand = jax.random.randint(k_rand, a_greedy.shape, 0, sizes_arr[None, :])
        explore = jax.random.uniform(k_eps, (config.n_envs, 1)) < eps
        act = jnp.where(explore, a_rand, a_greedy)
        ep = ts.env_params
        actions = jax.vmap(lambda a: E.action_from_branches(a, ep))(act)
        nobs, nst, rew, done, _info = jax.vmap(E.step, in_axes=(0, 0, 0, None, None))(
            jax.random.split(k_env, config.n_envs), ts.env_state, actions, ep, M.epoch_end(i, ep)
        )
        buf = replay.add(spec, ts.buffer, (ts.obs, act, rew, nobs, done))
        learn = (replay.size(buf, spec) >= config.warmup) & ((ts.steps // config.n_envs) % config.train_every == 0)

        def do_learn(operand: tuple[Any, Any, Any]) -> tuple[Any, Any, Any, jax.Array]:
            params, opt_state, b = operand
            beta = config.per_beta0 + (1 - config.per_beta0) * jnp.clip(ts.steps / config.anneal_steps, 0.0, 1.0)
            batch, idx, w = replay.sample(spec, b, k_sample, beta)
            y = targets(params, ts.target, batch)
            (loss, td), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, y, batch, w)
            upd, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, upd), opt_state, replay.update(spec, b, idx, td), loss

        def skip(operand: tuple[Any, Any, Any]) -> tuple[Any, Any, Any, jax.Array]:
            params, opt_state, b = operand
            return params, opt_state, b, jnp.array(jnp.nan, jnp.float32)

        params, opt_state, buf, loss = jax.lax.cond(learn, do_learn, skip, (ts.params, ts.opt_state, buf))
        updates = ts.updates + learn.astype(jnp.int32)
        copy = learn & (updates % config.target_every == 0)
        target = jax.tree.map(lambda t, p: jnp.where(copy, p, t), ts.target, params)
        ts = dataclasses.replace(
            ts,
            params=params, target=target, opt_state=opt_state, buffer=buf, env_state=nst, obs=nobs, key=key,
            steps=ts.steps + config.n_envs, updates=updates,
        )  # fmt: skip
        return ts, (rew.mean(), loss)

    def evaluate_one(params: Any, ep: E.EnvParams, key: jax.Array) -> jax.Array:
        obs, st = E.reset(jax.random.split(key)[0], ep)

        def body(
            carry: tuple[jax.Array, E.EnvState, jax.Array], xs: tuple[jax.Array, jax.Array]
        ) -> tuple[Any, jax.Array]:
            o, s, _ = carry
            k, i = xs
            a = E.action_from_branches(greedy(params, o), ep)
            # Same key use as qverify.dra.baselines.rollout, so baselines see the same episodes.
            o2, s2, r, _d, _i = E.step(jax.random.split(k)[1], s, a, ep, M.epoch_end(i, ep))
            return (o2, s2, r), r

        _, rews = jax.lax.scan(
            body,
            (obs, st, jnp.array(0.0)),
            (jax.random.split(jax.random.split(key)[1], steps_per_ep), jnp.arange(steps_per_ep)),
        )
        return rews.sum()

    def evaluate(params: Any, ep: E.EnvParams) -> jax.Array:
        return jax.vmap(lambda k: evaluate_one(params, ep, k))(eval_keys(config)).mean()

    def episode(ts: TrainState, _: Any) -> tuple[TrainState, dict[str, Any]]:
        key, k_reset = jax.random.split(ts.key)
        obs, st = jax.vmap(E.reset, in_axes=(0, None))(jax.random.split(k_reset, config.n_envs), ts.env_params)
        ts = dataclasses.replace(ts, env_state=st, obs=obs, key=key)
        ts, (rews, losses) = jax.lax.scan(env_step, ts, jnp.arange(steps_per_ep))
        return ts, {"train_return": rews.sum(), "loss": jnp.nanmean(losses), "params": ts.params}

    def run(ts: TrainState, n_episodes: int) -> tuple[TrainState, dict[str, Any]]:
        return jax.lax.scan(episode, ts, None, length=n_episodes)

    return init, run, evaluate


def eval_keys(config: DQNConfig) -> jax.Array:
    """The fixed episode keys of the greedy evaluations (use them for baselines too)."""
    return jax.random.split(jax.random.PRNGKey(12345), config.eval_episodes)


def greedy_policy(params: Any, env_params: E.EnvParams, hidden: int = 128) -> Callable[[jax.Array, Any], jax.Array]:
    """``policy(obs, state) -> branch choices`` of a trained network (state unused)."""
    net = BranchingQ(E.branch_sizes(env_params), hidden)

    def policy(obs: jax.Array, _state: Any) -> jax.Array:
        return jnp.argmax(cast(jax.Array, net.apply(params, obs)), axis=-1).astype(jnp.int32)

    return policy


def save_policy(
    path: str | Path, params: Any, env_params: E.EnvParams, config: DQNConfig, meta: dict[str, Any]
) -> None:
    """Write ``<path>`` (Flax msgpack) and ``<path>.json`` (topology signature, config, metadata)."""
    p = Path(path)
    p.write_bytes(serialization.to_bytes(params))
    signature = _signature(env_params)
    p.with_suffix(p.suffix + ".json").write_text(
        json.dumps({"signature": signature, "config": asdict(config), **meta}, indent=2)
    )


def _signature(env_params: E.EnvParams) -> dict[str, Any]:
    """What a policy file records of its instance, and what loading it checks: the action and
    observation layout, the fibre lengths, and the test levels when the agent chooses them."""
    sig: dict[str, Any] = {
        "branch_sizes": list(E.branch_sizes(env_params)),
        "obs_size": E.obs_size(env_params),
        "obs_link_fields": list(OBS_LINK_FIELDS),
        "length_km": np.asarray(env_params.length_km).round(3).tolist(),
    }
    if env_params.test_levels is not None:
        sig["test_levels"] = np.asarray(env_params.test_levels, np.float64).round(6).tolist()
    return sig


def load_policy(path: str | Path, env_params: E.EnvParams) -> tuple[Any, DQNConfig, dict[str, Any]]:
    """Read a saved policy; raise ``QverifyError`` if it was trained for another topology."""
    p = Path(path)
    meta_path = p.with_suffix(p.suffix + ".json")
    if not p.is_file():
        raise QverifyError(f"policy file {str(p)!r} does not exist")
    if not meta_path.is_file():
        raise QverifyError(
            f"{str(p)!r} is not a qverify policy: its metadata file {str(meta_path)!r} is missing "
            "(policies are written by `qverify train` as NAME.msgpack + NAME.msgpack.json)"
        )
    try:
        meta = json.loads(meta_path.read_text())
        sig = meta["signature"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise QverifyError(f"policy metadata {str(meta_path)!r} is truncated or corrupt") from None
    here = _signature(env_params)
    if sig != here:
        keys = [*here, *(k for k in sig if k not in here)]
        differ = ", ".join(f"{k}: policy {sig.get(k)} vs here {here.get(k)}" for k in keys if sig.get(k) != here.get(k))
        raise QverifyError(f"policy {str(p)!r} was trained on another observation/action layout ({differ})")
    config = DQNConfig(**meta["config"])
    net = BranchingQ(E.branch_sizes(env_params), config.hidden)
    template = net.init(jax.random.PRNGKey(0), jnp.zeros((E.obs_size(env_params),)))
    try:
        params = serialization.from_bytes(template, p.read_bytes())
    except Exception:  # msgpack raises several unrelated types on truncated input
        raise QverifyError(f"policy file {str(p)!r} is truncated or corrupt") from None
    return params, config, meta
