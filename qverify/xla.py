"""The project's ``jax.jit`` for its top-level programs: XLA backend optimisation level 2.

The programs the CLI builds (the simulator's stretch, the DQN's training and evaluation, the
baselines' rollouts, the policy bound) are compiled with :func:`jit`. The building blocks they call
(``model.run``/``step``/``init``, ``env.step``/``reset``, ``measure``, ``binomial``) keep ``jax.jit``:
JAX refuses compiler options on a jit nested in another, and inside a program they are compiled with
its options anyway.

XLA's default level is 3. On the CPU backend, level 2 compiled the DQN training program 35 % faster
(``python bench/bench_compile.py --only train``, 2 idle cores: its XLA stage 15.4 s → 10.0 s) and ran
the environment and the training loop as fast (``python bench/bench_dra.py``: steps/s within run-to-run
noise, 500 training episodes 52 s → 46 s including compilation). No level enables fast-math
(``xla_cpu_enable_fast_math`` stays off), so results agree to float32 rounding: 7 training episodes
× 2 seeds gave the same returns and weights bit for bit, and mean losses differing in the last bit
(≤ 6e-8), where a reduction was vectorised in another order (``tests/test_xla.py`` compares the
baselines' rollouts compiled both ways).

A level the user sets in ``XLA_FLAGS`` (``--xla_backend_optimization_level=N``) is left to apply.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

import jax

OPT_LEVEL = 2
"""XLA backend optimisation level of qverify's programs (XLA's default: 3)."""

F = TypeVar("F", bound=Callable[..., Any])


def compiler_options() -> dict[str, Any]:
    """The XLA options qverify's programs compile with ({} when ``XLA_FLAGS`` sets the level)."""
    if "xla_backend_optimization_level" in os.environ.get("XLA_FLAGS", ""):
        return {}
    return {"xla_backend_optimization_level": OPT_LEVEL}


def jit(fun: F, **kwargs: Any) -> F:
    """``jax.jit(fun, **kwargs)`` with :func:`compiler_options`; use as ``@jit`` or
    ``@partial(jit, static_argnames=...)``.

    >>> import jax.numpy as jnp
    >>> float(jit(lambda x: 2.0 * x)(jnp.float32(1.5)))
    3.0
    """
    return cast(F, jax.jit(fun, compiler_options=compiler_options(), **kwargs))
