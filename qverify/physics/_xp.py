"""Pick numpy or jax.numpy from the arguments, so one formula serves both.

numpy inputs give float64 numpy results (SciPy's special functions); any ``jax`` array or tracer
among the inputs gives ``jax.numpy`` results, which can be ``jit``-ed and ``vmap``-ped. jax is
imported only when a jax array is actually passed.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any


def _is_jax(x: Any) -> bool:
    return type(x).__module__.startswith(("jax", "jaxlib"))


def namespace(*args: Any) -> tuple[ModuleType, Callable[[Any], Any]]:
    """Return ``(xp, i0e)``: the array module and the exponentially scaled Bessel I0 for it."""
    if any(_is_jax(a) for a in args):
        import jax.numpy as jnp
        import jax.scipy.special as jss

        return jnp, jss.i0e
    import numpy as np
    import scipy.special as ss

    return np, ss.i0e


def binary_entropy(x: Any, xp: ModuleType) -> Any:
    """Shannon binary entropy h(x) in bits; x is clipped to [0, 1/2] (h is maximal at 1/2).

    Clipping keeps h defined for bounds that exceed 1/2, where the key rate is 0 anyway.
    """
    x = xp.clip(x, 0.0, 0.5)
    safe = xp.where(x > 0, x, 0.5)
    h = -safe * xp.log2(safe) - (1 - safe) * xp.log2(1 - safe)
    return xp.where(x > 0, h, 0.0)


def repeat(xp: ModuleType, start: int, stop: int, body: Callable[[Any, Any], Any], carry: Any) -> Any:
    """``for i in range(start, stop): carry = body(i, carry)``; one ``lax.fori_loop`` under jax.

    Under jax the loop body is compiled once instead of being unrolled ``stop − start`` times.

    >>> import numpy as np
    >>> repeat(np, 0, 4, lambda i, c: c + i, 0)
    6
    """
    if xp.__name__ == "numpy":
        for i in range(start, stop):
            carry = body(i, carry)
        return carry
    from jax import lax

    return lax.fori_loop(start, stop, body, carry)
