"""The project's ``jax.jit`` for its top-level programs: XLA backend optimisation level 2, and (the
evaluations and rollouts) without the CPU backend's MLIR fusion emitters.

The programs the CLI builds (the simulator's stretch, the DQN's training and evaluation, the
baselines' rollouts, the policy bound) are compiled with :func:`jit`. The building blocks they call
(``model.run``/``step``/``init``, ``env.step``/``reset``, ``measure``, ``binomial``) keep ``jax.jit``:
JAX refuses compiler options on a jit nested in another, and inside a program they are compiled with
its options anyway.

XLA's default level is 3. On the CPU backend, level 2 compiled the DQN training program 35 % faster
(``python bench/bench_compile.py --only train``, 2 idle cores: its XLA stage 15.4 s → 10.0 s) and ran
the environment and the training loop as fast (``python bench/bench_dra.py``: steps/s within run-to-run
noise, 500 training episodes 52 s → 46 s including compilation).

XLA's CPU backend emits each fusion through its MLIR fusion emitters by default
(``xla_cpu_use_fusion_emitters``); the older elemental emitter it falls back to without them
compiles the network model's programs about a third faster: ``python bench/bench_compile.py --only
simulate --only train`` measured, side by side on one machine, the simulator's stretch's XLA stage
7.6 s → 4.9 s, the greedy evaluation's 10.0 s → 7.4 s and the reference rollouts' 8.4 s → 6.1 s. But
the code it emits runs slower: the stretch at 256 seeds × 1000 slots took 1.38 s instead of 1.05 s
(level 2, ``bench/bench_network.py``'s program, both options side by side, two runs each). So the
default (``FUSION_EMITTERS = False``) serves the programs that run briefly per compile — the DQN's
greedy evaluations and the baselines' rollouts — and the two that run long keep the emitters: the
simulator's stretch (:data:`qverify.network.sim.STRETCH_FUSION_EMITTERS`) and the DQN's training
program. Neither option enables fast-math (``xla_cpu_enable_fast_math`` stays off), and each op alone
gives the same bits either way; fused into larger kernels, a few multiply-adds round differently
(the greedy rollouts' per-slot QBER of the links in use moved by float32 ulps; delivered key, rewards
and returns did not). Training would feed those last bits back through thousands of gradient steps
(6 episodes × 2 seeds gave other weights in every layer without the emitters), a second reason its
program keeps them (``jit(..., fusion_emitters=True)``): trained agents, and every figure that reads
them, stay what they were; every figure of ``qverify reproduce``'s ``metrics.json`` came out equal.
Level 2 alone changed no bit: 7 training episodes × 2 seeds gave the same returns and weights, and
mean losses differing in the last bit (≤ 6e-8), where a reduction was vectorised in another order
(``tests/test_xla.py`` compares the baselines' rollouts compiled both ways).

An option the user sets in ``XLA_FLAGS`` (``--xla_backend_optimization_level=N``,
``--xla_cpu_use_fusion_emitters=true``) is left to apply.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

import jax

OPT_LEVEL = 2
"""XLA backend optimisation level of qverify's programs (XLA's default: 3)."""

FUSION_EMITTERS = False
"""Whether XLA's CPU backend compiles fusions with its MLIR fusion emitters (XLA's default: on)."""

F = TypeVar("F", bound=Callable[..., Any])


def compiler_options(fusion_emitters: bool = FUSION_EMITTERS) -> dict[str, Any]:
    """The XLA options a qverify program compiles with (each one ``XLA_FLAGS`` sets is left out).

    ``fusion_emitters``: whether the CPU backend's MLIR fusion emitters compile it (see the module
    docstring for which program keeps them)."""
    flags = os.environ.get("XLA_FLAGS", "")
    options: dict[str, Any] = {}
    if "xla_backend_optimization_level" not in flags:
        options["xla_backend_optimization_level"] = OPT_LEVEL
    if "xla_cpu_use_fusion_emitters" not in flags:
        options["xla_cpu_use_fusion_emitters"] = fusion_emitters
    return options


def jit(fun: F, *, fusion_emitters: bool = FUSION_EMITTERS, **kwargs: Any) -> F:
    """``jax.jit(fun, **kwargs)`` with :func:`compiler_options`; use as ``@jit`` or
    ``@partial(jit, static_argnames=...)``.

    >>> import jax.numpy as jnp
    >>> float(jit(lambda x: 2.0 * x)(jnp.float32(1.5)))
    3.0
    """
    return cast(F, jax.jit(fun, compiler_options=compiler_options(fusion_emitters), **kwargs))
