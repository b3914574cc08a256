"""The observation must not carry the truth: a flexible regressor tries to recover every link's true
QBER from it and must do no better than it does from the plain measurables (DESIGN.md, "Only what a
network could measure").

Data: many random states of a small network with fades, drifts and randomly placed injecting
Byzantine nodes, under random settings (μ, protocol) held for an epoch; after every epoch the
observation (:func:`qverify.network.model.observe`) and, per link, the epoch's true mean QBER, the
quantity the epoch's test rounds estimate. A scikit-learn ``HistGradientBoostingRegressor`` is fitted
from the whole observation to one link's truth and scored on held-out (later) states.

The criterion. The measurement alone has the binomial error ``sqrt(q(1 − q)/n)`` (n heralded Z/X
test rounds). A network also knows the settings it chose, and on these links the true QBER is
mostly a function of them (μ, protocol, and an injector the counts reveal), so a regressor beats the
binomial error from honest measurables alone (the reference below: 0.0051 against a binomial
0.0127 on link 3, 2026-12-07), and a crisp flag made of the counts (the abort) helps a tree model
classify an injected link, so only measurables can serve as the yardstick. The test compares with a
reference regressor fitted to every link's settings, loss monitor and test counts with what is
computed from them alone (``REFERENCE_FIELDS``): the rest of the observation (pools, weights,
node checks, backlog, phase) must not bring the held-out RMSE below ``MARGIN`` × the reference's.

A second test (``test_observation_does_no_better_than_the_binomial_error``, below) applies the
binomial criterion itself, on a network built so that the measurables other than the test counts
carry next to nothing, and checks that the criterion rejects the old observation.

Limit of the first test, measured 2026-12-07: this regressor does *not* flag the latent fields the observation had
before (drift factors, exact loss, noise-free key rate): added to the reference they changed its
held-out RMSE by a few per cent only (ratios 0.90–1.03 on 20 km links, max 0.99 on 60 km), although
an exact inversion of the physics recovers the true QBER from them to 1.9e-9. Those fields are kept
out by ``tests/network/test_model.py::test_observation_never_reads_the_truth``, which perturbs every
latent field of the state and requires the observation to stay bit-identical. The detector is weak:
even the true QBER itself (1e-5 reading error) added as a field brought the ratio only to 0.79 on
the worst of the three links (the same day), so this test guards against gross leaks only.
"""

from __future__ import annotations

from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from qverify.network import model as M
from qverify.network.adversary import Adversary
from qverify.network.estimation import zx_counts
from qverify.network.sim import Fluctuation, SimConfig, build_params
from qverify.network.topology import grid

MARGIN = 0.8
"""The observation's held-out RMSE must be at least this fraction of the reference regressor's."""
REFERENCE_FIELDS = tuple(f".{f}" for f in M.OBS_LINK_FIELDS if f != "pool")
"""Per-link fields the reference regressor reads: the settings, the loss monitor and the epoch's test
counts with everything computed from them alone (estimate, bound, rounds, Y errors, reports, abort)."""
SEEDS, EPOCHS = 32, 32


def old_observation(state: M.NetState, params: M.NetParams) -> jax.Array:
    """The per-link fields the observation carried before it was limited to measurables."""
    return jnp.stack(
        [jnp.exp(state.log_src), jnp.exp(state.log_eta), state.mu, state.loss_db / 20.0,
         state.reported[:, 0], state.reported[:, 1], jnp.log10(1.0 + state.rate_bps) / 6.0],
        axis=1,
    ).ravel()  # fmt: skip


def _epoch_arrays(new: M.NetState, out: M.SlotOut, p: M.NetParams) -> tuple[jax.Array, ...]:
    """(observation, old observation, true epoch QBER, binomial variance of its estimate), per seed."""
    obs = jax.vmap(M.observe, in_axes=(0, None))(new, p)
    old = jax.vmap(old_observation, in_axes=(0, None))(new, p)
    _k, n = zx_counts(new.counts)
    truth = out.qber.mean(axis=1)
    return obs, old, truth, truth * (1 - truth) / jnp.maximum(n, 1)


def _collect(epoch, state, epochs: int, first_key: int, seeds: int) -> tuple[np.ndarray, ...]:
    """Run ``epochs`` epochs; (observations, old observations, truth, variance, epoch index), stacked."""
    rows = []
    for i in range(epochs):
        state, *arrays = epoch(jax.random.PRNGKey(first_key + i), state)
        rows.append([np.asarray(a) for a in arrays])
    obs, old, truth, var = (np.concatenate([r[j] for r in rows]) for j in range(4))
    return obs, old, truth, var, np.repeat(np.arange(epochs), seeds)


CONFIG = SimConfig(
    n_demands=2, epoch_slots=2, verify_rounds=900, node_rounds=300,
    adversary=Adversary(fraction=0.2, behaviours=("inject", "lie")),
    fluctuation=Fluctuation(loss_sigma_db=2.0, fade_rate=0.05, fade_db=8.0, fade_slots=4, eta_sigma=0.2,
                            source_sigma=0.2, drift_theta=0.1),
)  # fmt: skip


@cache
def instance() -> M.NetParams:
    # 60 km links: dark counts make the QBER depend on the loss and the drifts, the latent truth.
    return build_params(grid(2, 3, spacing_km=60.0), CONFIG, seed=0, max_steps=10_000, random_byzantine=True)


@cache
def dataset() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(observations, old observations, true epoch QBER (S·T, E), binomial variance (S·T, E), epoch index)."""
    p = instance()
    e = p.n_links
    keys = jax.random.split(jax.random.PRNGKey(7), SEEDS)
    state = jax.vmap(M.init, in_axes=(0, None))(keys, p)

    @jax.jit
    def epoch(key, state):
        k_dec, k_run = jax.random.split(key)
        kd = jax.random.split(k_dec, 3)
        mu = p.mu_levels[jax.random.randint(kd[0], (SEEDS, e), 0, p.mu_levels.shape[0])]
        dec = M.Decision(
            jnp.ones((SEEDS, e), bool), mu, jax.random.uniform(kd[1], (SEEDS, e)) < 0.5,
            jax.random.randint(kd[2], (SEEDS, p.n_demands), 0, p.path_valid.shape[1]),
        )  # fmt: skip
        run = jax.vmap(lambda k, s, d: M.run(k, s, d, p, p.epoch_slots, aligned=True))
        new, out = run(jax.random.split(k_run, SEEDS), state, dec)
        return new, *_epoch_arrays(new, out, p)

    return _collect(epoch, state, EPOCHS, 100, SEEDS)


def held_out_rmse(features: np.ndarray, link: int) -> float:
    """Held-out RMSE of the regressor for one link's true epoch QBER (the last quarter of epochs held out)."""
    _obs, _old, truth, _var, which = dataset()
    train, test = which < EPOCHS * 3 // 4, which >= EPOCHS * 3 // 4
    reg = HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1, random_state=0)
    with threadpool_limits(1):  # one thread: a loaded machine's cores make the OpenMP fit crawl
        reg.fit(features[train], truth[train, link])
        pred = reg.predict(features[test])
    return float(np.sqrt(np.mean((pred - truth[test, link]) ** 2)))


def reference_features() -> np.ndarray:
    names = M.obs_fields(instance())
    cols = [i for i, f in enumerate(names) if f.startswith("link") and f.endswith(REFERENCE_FIELDS)]
    return dataset()[0][:, cols]


LINKS = (0, 3, 6)


def test_observation_does_not_reveal_the_true_qber():
    obs, _old, _truth, var, which = dataset()
    ref = reference_features()
    ratios = [held_out_rmse(obs, k) / held_out_rmse(ref, k) for k in LINKS]
    assert min(ratios) >= MARGIN, ratios
    # Stated for the record: the measurement's own binomial error is far above both (see module doc).
    binomial = [float(np.sqrt(var[which >= EPOCHS * 3 // 4, k].mean())) for k in LINKS]
    assert all(b > 0 for b in binomial)


# --- The binomial criterion, where the measurables carry nothing but the test rounds ----------------
#
# A second dataset in which every honest measurable other than the epoch's test counts says next to
# nothing about the true QBER, so that no regressor made of measurables can beat the binomial error
# of the counts by much: BB84 at a fixed μ on 150 km links (where dark counts make the QBER depend
# on the detectors' efficiency), the per-slot variation coming from the detector-efficiency drift
# alone (no fibre-loss fluctuation, so the loss monitor reads a constant), one-slot epochs (the
# epoch's truth is the slot's), honest nodes, no node checks, and a 1-bit pool cap (a pool shows
# only whether some key was distilled). Best possible measurables-only estimate: the counts shrunk
# towards the prior mean, whose RMSE is B·S/√(S² + B²) for binomial error B and true spread S; with
# S ≈ 2–3 B here that is ≥ 0.9 B, so BINOMIAL_MARGIN = 0.7 leaves room for a lucky fit. The latent
# fields the observation carried before (drift factors, exact loss, noise-free rate) determine the
# true QBER exactly, and a regressor reading them must fall far below the binomial error: the test
# checks that it does, so the criterion is shown to catch the leak it is meant for. Measured
# 2026-12-07 (links 0, 3, 6; true QBER sd 0.022–0.024 around 0.056, binomial error 0.009): held-out
# RMSE / binomial error 0.98, 0.83, 0.92 from the observation; 0.32, 0.21, 0.45 with the old fields
# added.

BINOMIAL_MARGIN = 0.7
"""The observation's held-out RMSE must be at least this fraction of the binomial error."""
FLAT = SimConfig(
    n_demands=1, epoch_slots=1, verify_rounds=1_000, node_rounds=0, pool_cap_bits=1.0,
    adversary=Adversary(fraction=0.0),
    fluctuation=Fluctuation(loss_sigma_db=0.0, fade_rate=0.0, eta_sigma=0.6, source_sigma=0.0, drift_theta=0.5),
)  # fmt: skip
FLAT_SEEDS, FLAT_EPOCHS = 48, 32


@cache
def flat_dataset() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(observations, old observations, true QBER (S·T, E), binomial variance (S·T, E), epoch index)."""
    p = build_params(grid(2, 3, spacing_km=150.0), FLAT, seed=0, max_steps=10_000)
    e = p.n_links
    state = jax.vmap(M.init, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(3), FLAT_SEEDS), p)
    dec = M.Decision(jnp.ones(e, bool), jnp.full(e, 0.5, jnp.float32), jnp.zeros(e, bool),
                     jnp.zeros(p.n_demands, jnp.int32))  # fmt: skip

    @jax.jit
    def epoch(key, state):
        run = jax.vmap(lambda k, s: M.run(k, s, dec, p, p.epoch_slots, aligned=True))
        new, out = run(jax.random.split(key, FLAT_SEEDS), state)
        return new, *_epoch_arrays(new, out, p)

    return _collect(epoch, state, FLAT_EPOCHS, 500, FLAT_SEEDS)


def flat_rmse(features: np.ndarray, link: int) -> tuple[float, float]:
    """(held-out RMSE of the regressor, held-out RMS binomial error) for one link (last quarter held out)."""
    _obs, _old, truth, var, which = flat_dataset()
    train, test = which < FLAT_EPOCHS * 3 // 4, which >= FLAT_EPOCHS * 3 // 4
    reg = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.1, random_state=0)
    with threadpool_limits(1):
        reg.fit(features[train], truth[train, link])
        pred = reg.predict(features[test])
    return float(np.sqrt(np.mean((pred - truth[test, link]) ** 2))), float(np.sqrt(var[test, link].mean()))


FLAT_LINKS = (0, 3, 6)


def test_observation_does_no_better_than_the_binomial_error():
    obs, old, truth, _var, _which = flat_dataset()
    for k in FLAT_LINKS:
        assert truth[:, k].std() > 0  # the truth varies, so there is something to leak
        rmse, binomial = flat_rmse(obs, k)
        assert rmse >= BINOMIAL_MARGIN * binomial, (k, rmse, binomial)
        # The criterion catches the latent fields the observation carried before.
        rmse_old, _ = flat_rmse(np.concatenate([obs, old], axis=1), k)
        assert rmse_old < BINOMIAL_MARGIN * binomial, (k, rmse_old, binomial)
