"""Finite-key blocks for the network model: block sizes and what each block keeps, per link.

:func:`with_finite_blocks` fills ``NetParams.block_pulses`` and ``NetParams.block_keep``. A link
distils key only when its block of N pulses (MDI-QKD: pulse pairs) closes
(:func:`qverify.network.model._blocks`), and keeps the fraction

    keep = R_N / R_∞

of the asymptotic key the network model accumulated over the block, where R_N is the finite-key
rate of :func:`qverify.physics.finite_link.finite_link_rate` (every decoy setting optimised per link)
at the link's *nominal* loss and R_∞ the same with N → ∞. So the finite-size cost is evaluated at
nominal conditions and applied to the key the block actually accumulated under the slot-by-slot
fluctuations (an approximation the docs state; the exact cost would redo the decoy estimates on
the block's own counts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from qverify.errors import ParameterError
from qverify.network.model import NetParams
from qverify.physics.finite import DEFAULT_EPSILON
from qverify.physics.finite_link import FiniteKey, finite_link_rate
from qverify.physics.params import LinkParams


def check_block_sizes(block_pulses: Sequence[float], eps: float) -> list[float]:
    """The block sizes as floats, or ``ParameterError`` naming the field: at least one, each a finite
    ``block_size`` ≥ 1, ascending; ``epsilon`` in (0, 1)."""
    sizes = [float(n) for n in block_pulses]
    if not sizes:
        raise ParameterError("block_pulses", block_pulses, "at least one block size")
    for n in sizes:
        FiniteKey(n, eps)  # names the field on a bad size or ε
        if not np.isfinite(n):
            raise ParameterError("block_pulses", n, "finite sizes (omit blocks for the asymptotic model)")
    if sizes != sorted(sizes):
        raise ParameterError("block_pulses", block_pulses, "ascending sizes")
    return sizes


def block_keep(
    length_km: np.ndarray, relay_fraction: np.ndarray, link: LinkParams, block_pulses: Sequence[float], eps: float
) -> np.ndarray:
    """(E, 2, B) fraction of the asymptotic key a block keeps, per link, protocol (MDI, BB84) and size.

    0 where no key survives the block (or the link has no key at all).
    """
    length_km = np.asarray(length_km, dtype=float)
    relay_fraction = np.asarray(relay_fraction, dtype=float)
    out = np.zeros((length_km.size, 2, len(block_pulses)))
    for frac in np.unique(relay_fraction):
        sel = relay_fraction == frac
        params = link.replace(relay_fraction=float(frac))
        for j, protocol in enumerate(("mdi", "bb84")):
            asym = finite_link_rate(length_km[sel], params, protocol, np.inf, eps).key_rate
            for b, n in enumerate(block_pulses):
                fin = finite_link_rate(length_km[sel], params, protocol, n, eps).key_rate
                out[sel, j, b] = np.where(asym > 0, np.minimum(fin / np.where(asym > 0, asym, 1.0), 1.0), 0.0)
    return out


def with_finite_blocks(
    params: NetParams, link: LinkParams, block_pulses: Sequence[float] = (1e9, 1e10, 1e11), eps: float = DEFAULT_EPSILON
) -> NetParams:
    """``params`` with finite-key blocks of the given sizes (pulses; pulse pairs for MDI-QKD).

    ``link`` is the physics the network was built with (loss, detector, misalignment, f_EC).
    The decision's ``block`` picks a size per link (index into ``block_pulses``, ascending).
    """
    sizes = check_block_sizes(block_pulses, eps)
    keep = block_keep(np.asarray(params.length_km), np.asarray(params.relay_fraction), link, sizes, eps)
    return dataclasses.replace(
        params, block_pulses=jnp.asarray(sizes, jnp.float32), block_keep=jnp.asarray(keep, jnp.float32)
    )
