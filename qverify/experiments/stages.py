"""Stages of ``qverify reproduce``: the run folder and its settings, the DRA agents, the DQN convergence study."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qverify import __version__
from qverify.errors import QverifyError
from qverify.experiments.grid import GridConfig, Task, agent_key, dra_fluctuation, sim_config
from qverify.experiments.link_report import LinkStudyConfig

Progress = Callable[[str, int, int], None]
log = logging.getLogger(__name__)


def run_settings(config: GridConfig, link_config: LinkStudyConfig, study: Any = None,
                 claims_map: Any = None) -> dict[str, Any]:  # fmt: skip
    """Everything that decides a run's numbers, as recorded in ``grid.json`` and checked on resume.

    ``study`` and ``claims_map``: the :class:`~qverify.experiments.networks.NetworkStudyConfig` and
    :class:`~qverify.experiments.networks.MapConfig` of the run (``None`` when skipped).
    """
    from qverify.dra.dqn import DQNConfig

    link = {k: v for k, v in asdict(link_config).items() if k != "params"}
    return json.loads(
        json.dumps(
            {
                "grid": {k: v for k, v in asdict(config).items() if k != "extra"},
                "link": {**link, "params": link_config.params.to_dict()},
                "dqn": asdict(DQNConfig()),
                "networks": None if study is None else asdict(study),
                "claims_map": None if claims_map is None else asdict(claims_map),
            },
            default=str,
        )
    )


def prepare_run_dir(out_dir: Path, run: str, resume: bool, settings: dict[str, Any] | None = None) -> Path:
    """Create (or, with ``resume``, reopen) the run folder; errors before any work starts.

    ``settings`` (see :func:`run_settings`) is written to ``grid.json`` in a new folder; resuming
    with different settings is refused, naming the first fields that differ, and changes nothing.
    """
    if not run or run in (".", "..") or Path(run).name != run or "\\" in run:
        raise QverifyError(f"run = {run!r} is outside the allowed range: a plain folder name inside {str(out_dir)!r}")
    target = out_dir / run
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QverifyError(f"output folder {str(out_dir)!r} cannot be created: {exc.strerror}") from None
    probe = out_dir / f".qverify-write-test-{run}"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise QverifyError(f"output folder {str(out_dir)!r} is not writable: {exc.strerror}") from None
    if target.exists() and not resume:
        raise QverifyError(f"run folder {str(target)!r} exists already; use --resume or another --run name")
    recorded = target / "grid.json"
    if resume and not (recorded.exists() or (target / "results.sqlite").exists()):
        raise QverifyError(f"nothing to resume in {str(target)!r} (no grid.json, no results.sqlite)")
    if resume and settings is not None and recorded.exists():
        before = json.loads(recorded.read_text())
        if before != settings:
            diffs = _differences(before, settings)
            raise QverifyError(
                f"--resume: run folder {str(target)!r} was started with other settings ({'; '.join(diffs[:3])}); "
                "resume it with the same options or start another --run"
            )
    target.mkdir(parents=True, exist_ok=True)
    if settings is not None and not recorded.exists():
        recorded.write_text(json.dumps(settings, indent=1))
    (target / "RUNNING").write_text("this run has not finished; its report is incomplete\n")
    return target


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Human-readable differences between two JSON values (``field: old → new``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _differences(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        return out
    return [] if a == b else [f"{path}: {a!r} → {b!r}"]


def train_agents(config: GridConfig, run_dir: Path, progress: Progress | None) -> dict[str, Any]:
    """Train one DQN per (fraction, behaviours, fluctuation) cell that DRA policies need.

    DRA policies run with fluctuation on only (that is what the agent is for); a grid without
    fluctuation trains its agents on calm channels.
    """
    from qverify.dra import dqn
    from qverify.dra import env as E
    from qverify.dra import train as T
    from qverify.network.topology import resolve

    if not any("dra" in p for p in config.policies):
        return {"agents": {}, "curves": {}}
    g = resolve(config.topology)
    cells = _agent_cells(config)
    agents, curves = {}, {}
    (run_dir / "agents").mkdir(exist_ok=True)
    dcfg = dqn.DQNConfig()
    digest = _training_digest(config, dcfg)
    keys = [agent_key(config.topology, f, b, fl) for f, b, fl in cells]
    paths = {key: run_dir / "agents" / f"{key}-{digest}.msgpack" for key in keys}
    todo = []  # (cell index, key, path, env params) of the agents not yet on disk
    for i, ((f, b, fl), key) in enumerate(zip(cells, keys, strict=True)):
        path = paths[key]
        if not (path.exists() and path.with_suffix(".curve.json").exists()):
            task = Task(config.topology, f, b, fl, "dra", 0, config.slots, config.demands, config.demand_bits)
            env_params = E.from_network(g, sim_config(task), seed=0, max_steps=50, random_byzantine=True)
            todo.append((i, key, path, env_params))
    if todo:
        # Every cell of one topology has the same shapes: one compiled program trains them all.
        def moved(done: int) -> None:
            if progress:
                progress("training DRA agents", done, config.dra_episodes)

        res = T.train_instances(
            [t[3] for t in todo], dcfg, config.dra_episodes, seeds=[t[0] for t in todo], progress=moved
        )
        for j, (_i, key, path, env_params) in enumerate(todo):
            dqn.save_policy(path, T.params_of_seed(res.params, j), env_params, dcfg,
                            {"cell": key, "qverify_version": __version__})  # fmt: skip
            path.with_suffix(".curve.json").write_text(json.dumps(res.eval_return[j].tolist()))
    for key, path in paths.items():
        agents[key] = str(path)
        curves[key] = json.loads(path.with_suffix(".curve.json").read_text())
    if progress:
        progress("training DRA agents", config.dra_episodes, config.dra_episodes)
    return {"agents": agents, "curves": curves}


def _training_digest(config: GridConfig, dcfg: Any) -> str:
    """Agent files carry a digest of every training setting, so no run reuses an agent trained otherwise."""
    import hashlib

    training = json.dumps([asdict(dcfg), config.dra_episodes, config.slots, config.demands, config.demand_bits])
    return hashlib.sha256(training.encode()).hexdigest()[:10]


def train_oracle_agent(config: GridConfig, run_dir: Path, progress: Progress | None) -> dict[str, Any]:
    """The DQN of the price-of-realism comparison: trained like :func:`train_agents`' agent of the
    realism cell (:func:`qverify.experiments.realism.realism_cell`), same seed, same episodes, but on
    the **oracle observation** (the measured one plus the true per-link QBER and the Byzantine mask,
    ``SimConfig(observation="oracle")``). Returns ``{"agent": path or None, "curve": [...]}``;
    ``None`` when the grid runs no ``dra`` policy.

    Its observation is longer, so it trains in a program of its own (one more compilation).
    """
    from qverify.dra import dqn
    from qverify.dra import env as E
    from qverify.dra import train as T
    from qverify.experiments.realism import realism_cell
    from qverify.network.topology import resolve

    if "dra" not in config.policies:
        return {"agent": None, "curve": []}
    f, b, fl = realism_cell(config)
    key = agent_key(config.topology, f, b, fl)
    dcfg = dqn.DQNConfig()
    (run_dir / "agents").mkdir(exist_ok=True)
    path = run_dir / "agents" / f"{key}-oracle-{_training_digest(config, dcfg)}.msgpack"
    curve_path = path.with_suffix(".curve.json")
    if not (path.exists() and curve_path.exists()):
        task = Task(config.topology, f, b, fl, "dra", 0, config.slots, config.demands, config.demand_bits,
                    observation="oracle")  # fmt: skip
        env_params = E.from_network(resolve(config.topology), sim_config(task), seed=0, max_steps=50,
                                    random_byzantine=True)  # fmt: skip
        # The seed train_agents gives this cell's measured agent: the two agents differ in their input only.
        seed = _cell_index(config, (f, b, fl))

        def moved(done: int) -> None:
            if progress:
                progress("training the oracle-observation DRA agent", done, config.dra_episodes)

        res = T.train_instances([env_params], dcfg, config.dra_episodes, seeds=[seed], progress=moved)
        dqn.save_policy(path, T.params_of_seed(res.params, 0), env_params, dcfg,
                        {"cell": key, "observation": "oracle", "qverify_version": __version__})  # fmt: skip
        curve_path.write_text(json.dumps(res.eval_return[0].tolist()))
    return {"agent": str(path), "curve": json.loads(curve_path.read_text())}


def _agent_cells(config: GridConfig) -> list[tuple[float, str, bool]]:
    """The (fraction, behaviours, fluctuation) cells that get an agent, one per distinct
    :func:`~qverify.experiments.grid.agent_key`, in training order (cell ``i`` trains from seed ``i``)."""
    cells: list[tuple[float, str, bool]] = []
    seen = set()
    for f in config.fractions:
        for b in config.behaviours:
            for fl in dra_fluctuation(config):
                if agent_key(config.topology, f, b, fl) not in seen:
                    seen.add(agent_key(config.topology, f, b, fl))
                    cells.append((f, b, fl))
    return cells


def _cell_index(config: GridConfig, cell: tuple[float, str, bool]) -> int:
    """The training seed :func:`train_agents` gives the agent of ``cell``."""
    want = agent_key(config.topology, *cell)
    return next(i for i, c in enumerate(_agent_cells(config)) if agent_key(config.topology, *c) == want)


def convergence_study(config: GridConfig, progress: Progress | None) -> dict[str, Any]:
    """Episodes for the DQN to reach 95 % of the enumerated optimum on the small instance."""
    import jax

    from qverify.dra import baselines as B
    from qverify.dra import dqn
    from qverify.dra import train as T

    params = T.small_instance()
    dcfg = dqn.DQNConfig()
    refs = T.reference_returns(params, dqn.eval_keys(dcfg), config.convergence_enumerate)
    steps = config.convergence_episodes + 1

    def moved(done: int) -> None:
        if progress:
            progress("DQN convergence", done, steps)

    res = T.train(params, dcfg, config.convergence_episodes, seeds=config.convergence_seeds, seed=1, progress=moved)
    target = 0.95 * refs["optimum"]
    eps = [T.episodes_to_reach(c, target) for c in res.eval_return]
    keys = jax.random.split(jax.random.PRNGKey(2024), 16)
    agent = T.dqn_policy(T.params_of_seed(res.params, 0), params, dcfg.hidden)
    both = B.evaluate_many({"dqn": agent, "static": B.static_policy(params)}, params, keys)
    var_dqn, var_static = both["dqn"]["qber_var"], both["static"]["qber_var"]
    if progress:
        progress("DQN convergence", steps, steps)
    return {
        "references": refs,
        "episodes_to_95pct": eps,
        "curves": res.eval_return.tolist(),
        "train_seconds": res.seconds,
        "qber_var_dqn": var_dqn.tolist(),
        "qber_var_static": var_static.tolist(),
        "instance": "Cambridge fibres as MDI-QKD links, 3 demands of 3e6 bit/slot, fades on, 50 slots, "
        "4096 joint actions",
    }
