"""The scenario grid of ``qverify reproduce``: tasks, the task function, and trained DRA agents.

A :class:`Task` = topology × Byzantine fraction × behaviour set × fluctuation on/off × policy ×
seed (plus the ABFT learning rate and QBER threshold, varied by the sensitivity analysis). The task
function :func:`run_task` is pure in its inputs (same task, same row), so the local and the Ray
executors give identical results; :func:`run_seeds` runs tasks that differ only in seed as one
vmapped simulation, each row the one its task gives alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from qverify.errors import ChoiceError, ParameterError

POLICIES: tuple[str, ...] = ("baseline", "abft", "dra", "abft+dra")
BEHAVIOUR_SETS: dict[str, tuple[str, ...]] = {
    "inject-drop-lie": ("inject", "drop", "lie"),
    "inject-corrupt-slander": ("inject", "corrupt", "slander"),
    "listen-lie": ("lie",),
}
"""Byzantine behaviour sets (every Byzantine node performs all behaviours of its set).

``listen-lie`` nodes run their links honestly and forward relayed keys, so keys do pass through them
and they learn what they relay (the only way key is exposed); they report perfect fidelity. Sets that
inject, drop or corrupt make keys through Byzantine nodes fail, so they cannot expose key.
"""


@dataclass(frozen=True)
class GridConfig:
    """The sweep of a reproduce run.

    Attributes:
        topology: built-in topology name (or a GraphML / JSON path).
        fractions: Byzantine fractions; each must give a distinct node count on the topology
            (:meth:`counts`): on the 6-node SECOQC network 0, 0.2 and 0.4 are 0, 1 and 2 nodes.
        behaviours: names from :data:`BEHAVIOUR_SETS`.
        fluctuation: fluctuation settings to run (True = on).
        policies: names from :data:`POLICIES`.
        seeds: number of seeds (0 … seeds − 1).
        slots: slots per network run.
        demands, demand_bits: the fixed demand set (drawn once, ``demand_seed`` 0).
        dra_episodes: DQN training episodes per agent.
        alphas, thresholds: ABFT learning rates and QBER thresholds of the sensitivity analysis.
        convergence_seeds, convergence_episodes: DQN runs on the small enumerable instance.
        convergence_enumerate: enumerate its 4096 joint actions for the lower bound on the optimum
            (False: the greedy heuristics alone give it, a looser bound; the quick size).
        signatures: how the ABFT control plane signs its PBFT messages
            (:data:`qverify.consensus.signing.SCHEMES`). ``"ideal"`` (a keyed hash only the simulator
            can make and check) by default: as unforgeable for the replicas as Ed25519, which the
            grid does not test, and every row comes out the same under both (a run's outcomes never
            read signature bytes; ``tests/experiments/test_signatures.py``), while real Ed25519
            signing and verification took a quarter of a default run's processor time.
    """

    topology: str = "secoqc"
    fractions: tuple[float, ...] = (0.0, 0.2, 0.4)
    behaviours: tuple[str, ...] = ("inject-drop-lie", "inject-corrupt-slander")
    fluctuation: tuple[bool, ...] = (True, False)
    policies: tuple[str, ...] = POLICIES
    seeds: int = 10
    slots: int = 400
    demands: int = 3
    demand_bits: float = 5e3
    dra_episodes: int = 300
    alphas: tuple[float, ...] = (0.1, 0.3, 0.5, 0.9)
    thresholds: tuple[float, ...] = (0.05, 0.08, 0.11)
    convergence_seeds: int = 5
    convergence_episodes: int = 300
    convergence_enumerate: bool = True
    signatures: str = "ideal"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in self.fractions:
            if not 0 <= f < 1:
                raise ParameterError("fractions", f, "[0, 1)")
        for b in self.behaviours:
            if b not in BEHAVIOUR_SETS:
                raise ChoiceError("behaviours", b, sorted(BEHAVIOUR_SETS))
        for p in self.policies:
            if p not in POLICIES:
                raise ChoiceError("policies", p, POLICIES)
        from qverify.consensus.signing import SCHEMES

        if self.signatures not in SCHEMES:
            raise ChoiceError("signatures", self.signatures, SCHEMES)
        for name in ("seeds", "slots", "demands", "dra_episodes", "convergence_seeds", "convergence_episodes"):
            if getattr(self, name) < 1:
                raise ParameterError(name, getattr(self, name), "[1, inf)")

    def n_nodes(self) -> int:
        """Nodes of the grid's topology."""
        from qverify.network.topology import resolve

        return int(resolve(self.topology).number_of_nodes())

    def count(self, fraction: float) -> int:
        """Byzantine nodes ``fraction`` stands for on the topology (rounded half up)."""
        from qverify.network.adversary import byzantine_count

        return byzantine_count(self.n_nodes(), fraction)

    def counts(self) -> list[int]:
        """Byzantine node count per fraction on the topology; refuses fractions that coincide."""
        counts = [self.count(f) for f in self.fractions]
        if len(set(counts)) < len(counts):
            raise ParameterError(
                "fractions", self.fractions,
                f"fractions giving distinct Byzantine counts on {self.topology} ({self.n_nodes()} nodes; "
                f"these give {counts})",
            )  # fmt: skip
        return counts

    def claim_fraction(self) -> float:
        """The grid's fraction nearest the paper's 20 % (as a node count on the topology)."""
        n = self.n_nodes()
        return min(self.fractions, key=lambda f: (abs(self.count(f) / n - 0.2), f))

    def label(self, fraction: float) -> str:
        """``"1 of 6 nodes (17 %)"``: a fraction as the node count it is on the topology."""
        n, k = self.n_nodes(), self.count(fraction)
        return f"{k} of {n} nodes ({k / n:.0%})"

    @classmethod
    def quick(cls) -> GridConfig:
        """Small sizes for CI: two fractions, one behaviour set, three seeds (the fewest with an interval)."""
        return cls(
            fractions=(0.0, 0.2), behaviours=("inject-drop-lie",), fluctuation=(True,), seeds=3, slots=80,
            dra_episodes=20, alphas=(0.1, 0.5), thresholds=(0.11,), convergence_seeds=2, convergence_episodes=20,
            convergence_enumerate=False,
        )  # fmt: skip

    @classmethod
    def full(cls) -> GridConfig:
        """Larger scale: more seeds, longer runs, longer training."""
        return cls(seeds=20, slots=2000, dra_episodes=1000, convergence_seeds=10, convergence_episodes=1000)


@dataclass(frozen=True)
class Task:
    """One run of the grid.

    ``demand_seed`` fixes the demands for every seed (``None``: drawn per seed among honest nodes);
    ``e_mis`` overrides the links' misalignment (``None``: the link preset's). ``aborts`` and
    ``observation`` are :class:`~qverify.network.sim.SimConfig`'s ``abort_rule`` and
    ``observation``: ``"oracle"`` only in the price-of-realism runs, which read the truth.
    ``signatures``: how the ABFT control plane's PBFT messages are signed
    (:data:`qverify.consensus.signing.SCHEMES`; see :class:`GridConfig`).
    """

    topology: str
    fraction: float
    behaviours: str
    fluctuation: bool
    policy: str
    seed: int
    slots: int
    demands: int
    demand_bits: float
    alpha: float = 0.5
    threshold: float = 0.11
    agent: str | None = None
    demand_seed: int | None = 0
    e_mis: float | None = None
    aborts: str = "measured"
    observation: str = "measured"
    signatures: str = "ideal"

    @property
    def key(self) -> str:
        """Stable identifier (what the result store is keyed by).

        The realism fields enter only when they are not the default, so the keys of a store written
        before they existed stay valid.
        """
        d = asdict(self)
        d.pop("agent")
        for name in ("aborts", "observation"):
            if d[name] == "measured":
                d.pop(name)
        if d["signatures"] == "ideal":  # outcomes do not depend on it (tests/experiments/test_signatures.py)
            d.pop("signatures")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:20]


def program_key(task: Task) -> tuple[Any, ...]:
    """What decides the compiled program a task runs: tasks with equal keys share one compilation.

    The network's array shapes (topology, demands), the scan length (slots) and whether a DQN
    allocator runs inside the scan, and on which observation (its length); fractions, seeds,
    behaviours and the abort rule are traced values.
    """
    dra = "dra" in task.policy
    return (task.topology, task.demands, task.slots, dra, task.observation if dra else None)


def spread_programs(items: Sequence[Any], task_of: Callable[[Any], Task] | None = None) -> list[Any]:
    """The items (tasks, or units of tasks with ``task_of`` naming the task that decides a unit's
    program) reordered so that the first item of every distinct program comes first.

    With several workers and a cold compilation cache, workers then compile *different* programs
    side by side, and the later items of each program load it from the persistent cache instead of
    compiling it again in every worker. The order within a program is kept.

    Examples:
        >>> a = Task("secoqc", 0.0, "x", True, "baseline", 0, 10, 1, 1.0)
        >>> b = replace(a, topology="grid:2x2")
        >>> [t.topology for t in spread_programs([a, replace(a, seed=1), b])]
        ['secoqc', 'grid:2x2', 'secoqc']
    """
    first: dict[tuple[Any, ...], int] = {}
    for i, item in enumerate(items):
        first.setdefault(program_key(item if task_of is None else task_of(item)), i)
    leaders = set(first.values())
    return [items[i] for i in first.values()] + [x for i, x in enumerate(items) if i not in leaders]


def sim_config(task: Task) -> Any:
    """The :class:`~qverify.network.sim.SimConfig` of a task."""
    from qverify.network.adversary import Adversary
    from qverify.network.sim import Fluctuation, SimConfig

    extra: dict[str, Any] = {}
    if task.e_mis is not None:
        from qverify.physics.params import LCQ_2012

        extra["link"] = replace(LCQ_2012, channel=replace(LCQ_2012.channel, e_mis=task.e_mis))
    return SimConfig(
        n_demands=task.demands,
        demand_bits=task.demand_bits,
        qber_threshold=task.threshold,
        fluctuation=Fluctuation() if task.fluctuation else Fluctuation.off(),
        adversary=Adversary(fraction=task.fraction, behaviours=BEHAVIOUR_SETS[task.behaviours]),
        demand_seed=task.demand_seed,
        abort_rule=task.aborts,
        observation=task.observation,
        **extra,
    )


def agent_key(topology: str, fraction: float, behaviours: str, fluctuation: bool) -> str:
    """Agents are shared by behaviour sets whose environments coincide (both inject and drop keys)."""
    drops = any(b in BEHAVIOUR_SETS[behaviours] for b in ("drop", "corrupt"))
    inject = "inject" in BEHAVIOUR_SETS[behaviours]
    return f"{Path(topology).stem}_{fraction:.2f}_{'i' if inject else ''}{'d' if drops else ''}_{'fl' if fluctuation else 'calm'}"


MAX_SEED_BATCH = 16
"""Most seeds one unit of work runs vmapped (:func:`seed_batches`)."""


def seed_batches(tasks: list[Task], size: int = MAX_SEED_BATCH) -> list[tuple[Task, ...]]:
    """The tasks grouped into units that differ only in seed, at most ``size`` each, in the order
    of their first task; each unit runs as one :func:`run_seeds` call.

    Examples:
        >>> a = Task("secoqc", 0.0, "x", True, "baseline", 0, 10, 1, 1.0)
        >>> b = replace(a, policy="abft")
        >>> [[t.seed for t in u] for u in seed_batches([a, b, replace(a, seed=1), replace(a, seed=2)], size=2)]
        [[0, 1], [2], [0]]
    """
    if size < 1:
        raise ParameterError("size", size, "[1, inf)")
    groups: dict[Task, list[Task]] = {}
    for t in tasks:
        groups.setdefault(replace(t, seed=0), []).append(t)
    return [tuple(g[i : i + size]) for g in groups.values() for i in range(0, len(g), size)]


def _policy(task: Task, g: Any, cfg: Any) -> Any:
    """The task's policy, built for its seed."""
    from qverify.consensus.control import ABFTPolicy
    from qverify.network.policy import BaselinePolicy

    if task.policy == "abft":
        return ABFTPolicy(alpha=task.alpha, signatures=task.signatures)
    if task.policy in ("dra", "abft+dra"):
        from qverify.dra import dqn
        from qverify.dra import env as E
        from qverify.dra.policy import DRAPolicy

        if task.agent is None:
            raise ParameterError("agent", None, "a trained DRA policy file for DRA tasks")
        env_params = E.from_network(g, cfg, seed=task.seed, max_steps=50, random_byzantine=True)
        params, dcfg, _meta = dqn.load_policy(task.agent, env_params)
        return DRAPolicy(
            params,
            env_params,
            dcfg.hidden,
            ABFTPolicy(alpha=task.alpha, signatures=task.signatures) if task.policy == "abft+dra" else None,
        )
    return BaselinePolicy()


def run_task(task: Task) -> dict[str, Any]:
    """Run one task; returns a JSON-ready row (summary metrics plus per-slot series we plot)."""
    return run_seeds([task])[0]


def run_seeds(tasks: Sequence[Task]) -> list[dict[str, Any]]:
    """Run tasks that differ only in seed as one vmapped simulation
    (:func:`qverify.network.sim.simulate_seeds`); row ``i`` equals ``run_task(tasks[i])``."""
    from qverify.network.sim import simulate_seeds
    from qverify.network.topology import resolve

    if not tasks:
        return []
    first = tasks[0]
    if any(replace(t, seed=first.seed) != first for t in tasks):
        raise ParameterError("tasks", [t.key for t in tasks], "tasks that differ only in seed")
    g = resolve(first.topology)
    cfg = sim_config(first)
    policies = [_policy(t, g, cfg) for t in tasks]
    results = simulate_seeds(g, cfg, first.slots, [t.seed for t in tasks], policies)
    return [_row(t, res, pol) for t, res, pol in zip(tasks, results, policies, strict=True)]


def _row(task: Task, res: Any, policy: Any) -> dict[str, Any]:
    """The JSON-ready row of a finished task (summary metrics plus per-slot series we plot)."""
    s = res.summary()
    in_use = res.qber_series if res.qber_series is not None else None
    row: dict[str, Any] = {
        "task": asdict(task),
        "key": task.key,
        "availability": s["availability"],
        "key_bits_per_slot": s["delivered_bits_per_slot"],
        "exposed_fraction": s["exposed_fraction"],
        "mean_link_qber": s["mean_link_qber"],
        "measured_link_qber": s["measured_mean_link_qber"],
        "measured_qber_in_use": s["measured_qber_in_use"],
        "qber_var": float(np.mean(res.qber_var)),
        "byzantine_nodes": s["byzantine_nodes"],
        "control_violations": s.get("control_violations", 0),
        "control_committed": s.get("control_committed", 0),
        "control_instances": s.get("control_instances", 0),
        "control_f": s.get("control_f", 0),
        "control_faulty": s.get("control_faulty", 0),
        "demand_nodes": [[res.nodes[int(a)], res.nodes[int(b)]] for a, b in res.demands],
        "availability_series": np.round(res.availability, 4).tolist(),
        "qber_sample": [] if in_use is None else np.round(in_use[:: max(1, len(in_use) // 50)].ravel(), 5).tolist(),
        # Simulator-only: the intervals' coverage of the true QBER and the false/missed aborts, as counts.
        "realism": res.realism_counts(),
    }
    weights = getattr(policy, "weights_history", None) or getattr(
        getattr(policy, "abft", None), "weights_history", None
    )
    if weights is not None:
        row["weights_history"] = [list(w) for w in weights]
    return row


def dra_fluctuation(config: GridConfig) -> tuple[bool, ...]:
    """Fluctuation settings the DRA policies run on: on only, unless the grid has no fluctuating cell."""
    return (True,) if True in config.fluctuation else config.fluctuation


def build_tasks(config: GridConfig, agents: dict[str, str]) -> list[Task]:
    """Every task of the grid, then the sensitivity tasks (ABFT at 20 % Byzantine, fluctuating)."""
    tasks = []
    for fraction in config.fractions:
        for beh in config.behaviours:
            for fl in config.fluctuation:
                for policy in config.policies:
                    if "dra" in policy and fl not in dra_fluctuation(config):
                        continue
                    for seed in range(config.seeds):
                        agent = agents.get(agent_key(config.topology, fraction, beh, fl)) if "dra" in policy else None
                        tasks.append(Task(config.topology, fraction, beh, fl, policy, seed, config.slots,
                                          config.demands, config.demand_bits, agent=agent,
                                          signatures=config.signatures))  # fmt: skip
    base = Task(
        config.topology,
        config.claim_fraction(),
        config.behaviours[0],
        True,
        "abft",
        0,
        config.slots,
        config.demands,
        config.demand_bits,
        signatures=config.signatures,
    )
    for alpha in config.alphas:
        for thr in config.thresholds:
            for seed in range(config.seeds):
                t = replace(base, alpha=alpha, threshold=thr, seed=seed)
                if t not in tasks:
                    tasks.append(t)
    for thr in config.thresholds:
        for seed in range(config.seeds):
            t = replace(base, policy="baseline", threshold=thr, seed=seed)
            if t not in tasks:
                tasks.append(t)
    return tasks
