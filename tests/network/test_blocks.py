"""Finite-key blocks in the network model: key only when a block closes, at the block's finite-key
cost; restarts lose the open block; conservation still holds; the DRA chooses the block size."""

from __future__ import annotations

from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qverify.dra import baselines as B
from qverify.dra import env as E
from qverify.errors import ParameterError
from qverify.network import model as M
from qverify.network.adversary import Adversary
from qverify.network.blocks import with_finite_blocks
from qverify.network.sim import SimConfig, build_params
from qverify.network.topology import load_builtin
from qverify.physics import LCQ_2012

SIZES = (1e9, 1e10, 1e11)


@cache
def blocked() -> M.NetParams:
    cfg = SimConfig(n_demands=3, demand_bits=1e4, adversary=Adversary(fraction=0.0), epoch_slots=5, verify_rounds=300)
    return with_finite_blocks(build_params(load_builtin("secoqc"), cfg, seed=0), LCQ_2012, SIZES)


def _decision(p: M.NetParams, level: int, mdi: bool) -> M.Decision:
    e = p.n_links
    return M.Decision(jnp.ones(e, bool), p.nominal_mu, jnp.full(e, mdi), jnp.zeros(p.n_demands, jnp.int32),
                      jnp.full(e, level, jnp.int32))  # fmt: skip


def test_keep_is_a_fraction_growing_with_block_size():
    keep = np.asarray(blocked().block_keep)
    assert keep.shape == (blocked().n_links, 2, len(SIZES))
    assert np.all((keep >= 0) & (keep <= 1))
    # More pulses never give less key per pulse (Lim et al. 2014; tests/physics/test_finite.py).
    assert np.all(np.diff(keep, axis=2) >= -1e-6)
    # MDI-QKD keeps nothing from 1e9 pulse pairs (below its smallest block with any key).
    assert np.all(keep[:, 0, 0] == 0)


def test_key_reaches_the_pool_only_when_a_block_closes():
    p = blocked()
    key = jax.random.PRNGKey(3)
    level = 1  # 1e10 pulses: about ten one-second slots at 1 GHz
    _state, out = jax.jit(M.run, static_argnums=4)(key, M.init(key, p), _decision(p, level, False), p, 35)
    gen, lost = np.asarray(out.generated, np.float64), np.asarray(out.block_lost, np.float64)
    aborted = np.asarray(out.aborted)
    closes = gen > 0
    assert closes.any()
    # Blocks close every ⌈1e10 / (clock × drift)⌉ slots: never in the first eight slots.
    assert not closes[:8].any()
    keep = np.asarray(p.block_keep)[:, 1, level]
    np.testing.assert_allclose(gen[closes] / (gen + lost)[closes], np.broadcast_to(keep, gen.shape)[closes], rtol=1e-5)
    # Between closes nothing is distilled and nothing is lost unless the link aborted.
    quiet = ~closes & ~aborted
    assert np.all(gen[quiet] == 0) and np.all(lost[quiet] == 0)
    # Conservation with blocks: distilled = Δpool + consumed + discarded.
    pool = np.asarray(out.pool, np.float64)
    before = np.concatenate([np.zeros((1, p.n_links)), pool[:-1]])
    cons, disc = np.asarray(out.consumed, np.float64), np.asarray(out.discarded, np.float64)
    assert np.all(np.abs(gen - (pool - before) - cons - disc) <= 1e-5 * (gen + before + 1.0))


def test_switching_protocol_or_size_loses_the_open_block():
    p = blocked()
    key = jax.random.PRNGKey(4)
    step = jax.jit(M.step)
    state = M.init(key, p)
    for i in range(4):
        state, _ = step(jax.random.fold_in(key, i), state, _decision(p, 2, False), p)
    open_bits = np.asarray(state.block_bits)
    assert open_bits.sum() > 0
    for change in (_decision(p, 1, False), _decision(p, 2, True)):
        _s, out = step(jax.random.fold_in(key, 9), state, change, p)
        np.testing.assert_allclose(np.asarray(out.block_lost), open_bits, rtol=1e-6)
        assert np.all(np.asarray(out.generated) == 0)


@pytest.mark.parametrize(
    ("sizes", "field"), [((), "block_pulses"), ((1e10, 1e9), "block_pulses"), ((0.5,), "block_size"),
                         ((np.inf,), "block_pulses")],
)  # fmt: skip
def test_bad_block_sizes_name_the_field(sizes, field):
    cfg = SimConfig(n_demands=2, adversary=Adversary(fraction=0.0))
    p = build_params(load_builtin("secoqc"), cfg, seed=0)
    with pytest.raises(ParameterError, match=field):
        with_finite_blocks(p, LCQ_2012, sizes)
    with pytest.raises(ParameterError, match="epsilon"):
        with_finite_blocks(p, LCQ_2012, (1e10,), eps=1.5)


def test_the_agent_chooses_the_block_size_and_sees_its_blocks():
    p = E.strongly_typed(blocked())
    obs, state = E.reset(jax.random.PRNGKey(1), p)
    assert obs.shape == (M.obs_size(p),) and len(M.obs_fields(p)) == M.obs_size(p)
    state, out = jax.jit(M.step)(jax.random.PRNGKey(2), state, _decision(p, 1, False), p)
    fill = np.asarray(M.observe(state, p))[np.array([f.endswith(".block_fill") for f in M.obs_fields(p)])]
    live = ~np.asarray(out.aborted)  # an aborted link's block ends
    assert live.any() and np.all((fill[live] > 0.05) & (fill[live] < 0.2))  # one slot of about ten
    sizes = E.branch_sizes(p)
    assert sizes[-p.n_links :] == (len(SIZES),) * p.n_links
    key = jax.random.PRNGKey(0)
    obs, state = E.reset(key, p)
    for make in (B.static_policy, B.greedy_policy, B.random_policy):
        action = E.action_from_branches(make(p)(key, obs, state), p)
        E.validate_action(action, p)
        assert action.block is not None and action.block.shape == (p.n_links,)
    # The greedy heuristic never picks a block that cannot close before the episode ends.
    action = E.action_from_branches(B.greedy_policy(p)(key, obs, state), p)
    slots = np.asarray(p.block_pulses)[np.asarray(action.block)] / float(p.clock_hz * p.slot_s)
    assert np.all(slots < p.max_steps)
    with pytest.raises(ParameterError, match=r"action\.block"):
        E.validate_action(E.static_action(p).replace(block=None), p)
