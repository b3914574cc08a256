"""Benchmark: DRA environment steps/s under vmap(256) with random actions, side by side with gymnax
CartPole and with this environment as it was at an earlier commit; then DQN training speed.

Every environment runs in the same harness, in this one run: 256 environments ``vmap``-ped, 1000
steps in one ``lax.scan`` under ``jit``, a fresh uniformly random action per environment and step,
compiled first and timed on a second call. The rollout's result depends on every observation (as an
agent's actions do), so XLA cannot compile the measurement path away.

* ``qverify``: the network environment (SECOQC, 20 % Byzantine nodes, 50-slot episodes);
* ``gymnax CartPole-v1``: the reference JAX environment (``gymnax.make``);
* ``qverify @ REV``: the same environment code at git revision ``--baseline REV`` (default: the
  commit before the measured-only observation and the endpoint aborts were merged), checked out in
  a temporary worktree and run in a subprocess, so the cost of measuring only what a network can
  measure is read off directly.

Then 500 DQN training episodes on the small instance (:func:`qverify.dra.train.small_instance`, one
seed, compilation included; target ≤ 60 s on 2 idle cores).

Run: python bench/bench_dra.py [--episodes 500] [--baseline REV | --baseline none]
State the machine's load (printed) next to any figure you quote.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_ENVS, STEPS = 256, 1000
BASELINE = "d4f24b0^1"
"""The commit before issue #30's merge (endpoint aborts, measured-only observation)."""

# Runs in this process and, for the baseline, in a subprocess against the older code; only APIs
# both versions share (env.from_network/reset/step/branch_sizes/action_from_branches, model.epoch_end).
QVERIFY_ENV = """
import time, jax, jax.numpy as jnp
from qverify.dra import env as E
from qverify.network import model as M
from qverify.network.adversary import Adversary
from qverify.network.sim import SimConfig
from qverify.network.topology import load_builtin

def qverify_steps_per_s(n, steps):
    p = E.from_network(load_builtin("secoqc"), SimConfig(adversary=Adversary(fraction=0.2)), seed=1, max_steps=50)
    sizes = jnp.asarray(E.branch_sizes(p))
    _, st = jax.vmap(E.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), n), p)

    def body(s, xs):
        k, i = xs
        k_act, k_env = jax.random.split(k)
        branches = jax.random.randint(k_act, (n, sizes.shape[0]), 0, sizes[None, :])
        act = jax.vmap(lambda b: E.action_from_branches(b, p))(branches)
        # The scan index gives the epoch phase without the batch: verification sampled at epoch ends.
        o, s, r, _d, _i = jax.vmap(E.step, in_axes=(0, 0, 0, None, None))(
            jax.random.split(k_env, n), s, act, p, M.epoch_end(i, p))
        return s, r.mean() + o.mean()

    roll = jax.jit(lambda s, k: jax.lax.scan(body, s, (jax.random.split(k, steps), jnp.arange(steps))))
    jax.block_until_ready(roll(st, jax.random.PRNGKey(1)))
    t0 = time.perf_counter()
    jax.block_until_ready(roll(st, jax.random.PRNGKey(2)))
    return n * steps / (time.perf_counter() - t0)
"""


def cartpole_steps_per_s(n: int, steps: int) -> float:
    """gymnax CartPole-v1 in the same harness (random actions, auto-reset as gymnax does)."""
    import gymnax
    import jax

    env, params = gymnax.make("CartPole-v1")
    _, st = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), n), params)

    def body(s, k):
        k_act, k_env = jax.random.split(k)
        act = jax.random.randint(k_act, (n,), 0, 2)
        out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(k_env, n), s, act, params)
        return out[1], out[2].mean() + out[0].mean()

    roll = jax.jit(lambda s, k: jax.lax.scan(body, s, jax.random.split(k, steps)))
    jax.block_until_ready(roll(st, jax.random.PRNGKey(1)))
    t0 = time.perf_counter()
    jax.block_until_ready(roll(st, jax.random.PRNGKey(2)))
    return n * steps / (time.perf_counter() - t0)


def baseline_steps_per_s(rev: str, n: int, steps: int) -> float | None:
    """The environment at git revision ``rev``, in a temporary worktree and a subprocess."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="bench-dra-") as tmp:
        tree = Path(tmp) / "tree"
        r = subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tree), rev],
                           capture_output=True, text=True, check=False)  # fmt: skip
        if r.returncode != 0:
            print(f"  (baseline {rev} not measured: {r.stderr.strip()[:200]})")
            return None
        try:
            code = QVERIFY_ENV + f"\nprint(qverify_steps_per_s({n}, {steps}))\n"
            env = {**os.environ, "PYTHONPATH": str(tree)}
            env.pop("JAX_COMPILATION_CACHE_DIR", None)
            out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True,
                                 check=False)  # fmt: skip
            if out.returncode != 0:
                print(f"  (baseline {rev} failed: {out.stderr.strip()[-300:]})")
                return None
            return float(out.stdout.split()[-1])
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)],
                           capture_output=True, check=False)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=500, help="DQN training episodes (small instance).")
    parser.add_argument("--baseline", default=BASELINE, help="Git revision to compare the environment with, or 'none'.")
    args = parser.parse_args()
    import jax

    from qverify.dra import dqn
    from qverify.dra import train as T

    print(f"JAX {jax.__version__}, devices {jax.devices()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}; Python {platform.python_version()}, {platform.platform()}")  # fmt: skip
    scope: dict = {}
    exec(QVERIFY_ENV, scope)  # the same source the baseline subprocess runs
    ours = scope["qverify_steps_per_s"](N_ENVS, STEPS)
    cart = cartpole_steps_per_s(N_ENVS, STEPS)
    print(f"environment steps/s, vmap({N_ENVS}), random actions, {STEPS} steps per call:")
    print(f"  qverify               {ours:12.3e}")
    print(f"  gymnax CartPole-v1    {cart:12.3e}   CartPole / qverify = {cart / ours:.1f}")
    if args.baseline != "none":
        base = baseline_steps_per_s(args.baseline, N_ENVS, STEPS)
        if base is not None:
            print(f"  qverify @ {args.baseline:<11} {base:12.3e}   then / now = {base / ours:.2f} (target ≤ 2)"
                  f"; CartPole / then = {cart / base:.1f}")  # fmt: skip

    p = T.small_instance()
    cfg = dqn.DQNConfig()
    t0 = time.perf_counter()
    res = T.train(p, cfg, args.episodes, seeds=1)
    wall = time.perf_counter() - t0
    transitions = args.episodes * p.max_steps * cfg.n_envs
    print(f"training on the small instance: {args.episodes} episodes x {p.max_steps} slots x {cfg.n_envs} envs in "
          f"{wall:.1f} s wall (compilation included; target ≤ 60 s on 2 idle cores); "
          f"{transitions / wall:.3e} transitions/s; load average at end {os.getloadavg()[0]:.2f}")  # fmt: skip
    del res


if __name__ == "__main__":
    main()
