"""Sweep runner: store, interruption and resume, Ray executor, bad input."""

from __future__ import annotations

from dataclasses import replace

import pytest

import qverify.experiments.runner as runner
from qverify.errors import ChoiceError, ParameterError, QverifyError
from qverify.experiments.grid import GridConfig, Task, build_tasks, run_seeds, run_task
from qverify.experiments.reproduce import bootstrap_ci, prepare_run_dir
from qverify.experiments.runner import ResultStore, run_tasks


def small_tasks(n: int = 5) -> list[Task]:
    return [Task("cambridge", 0.0, "inject-drop-lie", False, "baseline", s, 20, 2, 1e3) for s in range(n)]


def test_interrupted_sweep_resumes_without_loss_or_repeat(tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "r.sqlite")
    calls: list[str] = []
    real = runner.run_seeds

    def counting(unit):
        calls.extend(t.key for t in unit)
        return real(unit)

    monkeypatch.setattr(runner, "run_seeds", counting)
    # Units of 1, 1, 1 and 2 tasks (tasks that differ only in seed run together).
    tasks = [replace(t, demand_bits=2e3 * (i + 1)) for i, t in enumerate(small_tasks(3))] + small_tasks(2)

    def stop_after_three(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_tasks(tasks, store, workers=1, progress=stop_after_three)
    assert len(store.keys()) == 3
    first = {r["key"]: r for r in store.rows()}
    ran = run_tasks(tasks, store, workers=1)
    assert ran == 2
    assert sorted(calls) == sorted(t.key for t in tasks)  # every task ran exactly once
    assert store.keys() == {t.key for t in tasks}
    for r in store.rows():
        if r["key"] in first:
            assert r == first[r["key"]]


def test_seeds_run_together_give_the_rows_they_give_alone():
    for policy in ("baseline", "abft"):
        tasks = [replace(t, policy=policy, fraction=0.25) for t in small_tasks(3)]
        together = run_seeds(tasks)
        assert [r["key"] for r in together] == [t.key for t in tasks]
        for t, row in zip(tasks, together, strict=True):
            assert row == run_task(t)
    with pytest.raises(ParameterError, match="tasks"):
        run_seeds([small_tasks(1)[0], replace(small_tasks(1)[0], slots=30)])


def test_task_function_is_deterministic():
    t = small_tasks(1)[0]
    assert run_task(t) == run_task(t)


def test_ray_executor_gives_identical_rows(tmp_path):
    import ray  # in the ``test`` extra as well as the optional ``ray`` one

    tasks = small_tasks(3)
    local = ResultStore(tmp_path / "local.sqlite")
    run_tasks(tasks, local, workers=1)
    remote = ResultStore(tmp_path / "ray.sqlite")
    try:
        run_tasks(tasks, remote, executor="ray")
    finally:
        ray.shutdown()
    assert local.rows() == remote.rows()


def test_unreachable_ray_address_fails_before_work(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(QverifyError, match="cannot be reached"):
        run_tasks(small_tasks(1), store, executor="ray", address="127.0.0.1:1")
    assert store.keys() == set()


def test_bad_grid_and_output(tmp_path):
    with pytest.raises(ChoiceError, match="policies"):
        GridConfig(policies=("baseline", "oracle"))
    with pytest.raises(ParameterError, match="fractions"):
        GridConfig(fractions=(0.2, 1.0))
    with pytest.raises(ChoiceError, match="executor"):
        run_tasks([], ResultStore(tmp_path / "x.sqlite"), executor="slurm")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(QverifyError, match="cannot be created"):
        prepare_run_dir(blocker / "out", "r", resume=False)
    prepare_run_dir(tmp_path, "r", resume=False)
    with pytest.raises(QverifyError, match="exists already"):
        prepare_run_dir(tmp_path, "r", resume=False)
    with pytest.raises(QverifyError, match="nothing to resume"):
        prepare_run_dir(tmp_path, "r2", resume=True)


def test_grid_has_every_cell_and_sensitivity():
    cfg = GridConfig.quick()
    tasks = build_tasks(cfg, {})
    cells = {(t.fraction, t.policy) for t in tasks}
    assert {(f, p) for f in cfg.fractions for p in cfg.policies} <= cells
    assert {t.alpha for t in tasks} >= set(cfg.alphas)
    assert len({t.key for t in tasks}) == len(tasks)


def test_bootstrap_interval_covers_mean():
    lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 4.0])
    assert lo <= 2.5 <= hi


def test_task_pool_runs_batches_while_the_caller_works_and_stores_each(tmp_path):
    # Two batches into a two-process pool, the second submitted after the first started; every row
    # equals the task function's own (the pool changes where a task runs, never its result).
    from qverify.experiments.runner import TaskPool

    store = ResultStore(tmp_path / "r.sqlite")
    tasks = small_tasks(4)
    seen: list[tuple[int, int]] = []
    with TaskPool(store, workers=2, progress=lambda d, t: seen.append((d, t))) as pool:
        pool.submit(tasks[:2])
        pool.submit(tasks[2:] + tasks[:1])  # a task submitted twice runs once
        pool.wait()
    rows = {r["key"]: r for r in store.rows()}
    assert set(rows) == {t.key for t in tasks}
    assert rows[tasks[3].key] == run_task(tasks[3])
    assert max(d for d, _t in seen) == 4 and seen[-1][1] == 4


def test_task_pool_reraises_a_failing_task(tmp_path):
    from qverify.experiments.runner import TaskPool

    bad = Task("cambridge", 0.0, "inject-drop-lie", False, "dra", 0, 20, 2, 1e3)  # a DRA task without an agent
    store = ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(ParameterError, match="agent"), TaskPool(store, workers=2) as pool:
        pool.submit([bad])
        pool.wait()
    assert store.keys() == set()


def test_busy_caller_gets_a_late_worker_for_a_long_backlog(tmp_path, monkeypatch):
    # With caller_busy the pool starts one process short; at wait() a backlog of at least
    # LATE_WORKER_MIN_TASKS brings in a second process, and every task is stored exactly once.
    from qverify.experiments.runner import TaskPool

    monkeypatch.setattr(TaskPool, "LATE_WORKER_MIN_TASKS", 3)
    store = ResultStore(tmp_path / "r.sqlite")
    tasks = [replace(t, demand_bits=1e3 + i) for i, t in enumerate(small_tasks(8))]  # eight units of one task
    with TaskPool(store, workers=2, caller_busy=True) as pool:
        assert pool.sizes == [1]
        pool.submit(tasks)
        pool.wait()
        assert pool.sizes == [1, 1]
    assert store.keys() == {t.key for t in tasks}
    assert {r["key"]: r for r in store.rows()}[tasks[5].key] == run_task(tasks[5])


def test_one_worker_runs_the_units_a_pool_would(tmp_path, monkeypatch):
    # Without worker processes (workers=1) the pool runs its submits at wait(), each submit as its own
    # seed batches, as the pool's workers would: the same vmapped units, so the same compiled
    # programs (a run with --workers 1 finds every program of a two-worker run in the cache).
    from qverify.experiments.grid import seed_batches
    from qverify.experiments.runner import TaskPool

    units: list[tuple[int, ...]] = []

    def recording(unit):
        units.append(tuple(t.seed for t in unit))
        return [{"seed": t.seed} for t in unit]

    monkeypatch.setattr(runner, "run_seeds", recording)
    tasks = small_tasks(5)
    store = ResultStore(tmp_path / "r.sqlite")
    with TaskPool(store, workers=1) as pool:
        pool.submit(tasks[:2])
        pool.submit(tasks[2:])
        pool.wait()
    expected = [tuple(t.seed for t in u) for part in (tasks[:2], tasks[2:]) for u in seed_batches(part)]
    assert units == expected == [(0, 1), (2, 3, 4)]
    assert store.keys() == {t.key for t in tasks}
