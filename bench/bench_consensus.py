"""Benchmark: weighted PBFT decided instances per second (wall clock) and latency per scenario.

Prints, for n = 4, 16, 64, 128 replicas (f = (n - 1) // 3, ABFT weights), side by side in one run:
the instances decided per wall-clock second and messages per instance of the fault-free run and of
an adversarial one (f equivocating Byzantine replicas, the view-0 leader among them), each timed on
its own, with Ed25519 signatures on every message and with ideal signatures (a keyed hash only the
simulator checks); then both Ed25519 rates on 2 cores (two independent runs of half the instances
each, in two processes, wall clock of both); then, for n = 16, the requests executed by
every correct replica, the mean rounds to decision and the latency relative to the fault-free run
for every adversary scenario.

"Decided" counts a request once every correct replica has executed it (the checker's
``executed_by_all``); the rate divides that count by the wall time of the simulation alone.

Targets (issue: weighted PBFT at scale): ≥ 200 instances/s at n = 16 and ≥ 20 at n = 64 on 2 cores.

Slow leaders (issue 31): for n = 4 and 7, the *simulated-time* throughput (requests executed by
every correct replica per time unit, up to the last decision) of the fault-free run and of runs
whose view-0 leader is Byzantine and paces one proposal every 13 units under a 20-unit timeout
(``slow_leader``), churns no-ops (``null_churn``), censors one request (``censor``), or floods
junk (``flood``), each as a ratio to fault-free; with the leader monitor on and off. Then the
fault-free wall-clock rate of this code next to the code of ``--baseline-rev`` (default: the
commit before issue 31's changes), both timed in this one run, alternating, best of ``--repeats``.
The machine is shared and loaded: compare only the ratios printed side by side.

Run: python bench/bench_consensus.py [--instances 200] [--seeds 3] [--only slow-leader]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from qverify.consensus.checker import check, history_of
from qverify.consensus.pbft import simulate
from qverify.consensus.scenarios import SCENARIOS, build, run_scenario

ADVERSARIAL = "equivocating_leader"


def _run(scenario: str, n: int, instances: int, signatures: str, seed: int = 0) -> tuple[float, int, int, int]:
    """(wall seconds, messages, executed by all correct, safety violations) of one run."""
    f = (n - 1) // 3
    schedule, requests, byzantine, net = build(scenario, n, f, seed=seed, rounds=instances)
    t0 = time.perf_counter()
    res = simulate(schedule, requests, byzantine, net, seed=seed, until=5_000.0, signatures=signatures)
    dt = time.perf_counter() - t0
    verdict = check(history_of(res.executed, res.byzantine, [v for _t, v in requests]))
    return dt, res.messages, verdict.executed_by_all, verdict.violations


def _throughput(scenario: str, n: int, instances: int, signatures: str) -> tuple[float, float, int, int]:
    """(decided instances/s, messages/instance, executed by all correct, safety violations)."""
    dt, messages, done, bad = _run(scenario, n, instances, signatures)
    return done / dt, messages / max(done, 1), done, bad


def _two_cores(scenario: str, n: int, instances: int) -> float:
    """Ed25519 instances/s over two processes, each running half the instances (seeds 0 and 1)."""
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_run, ["fault_free"] * 2, [4] * 2, [4] * 2, ["ed25519"] * 2))  # start the workers
        t0 = time.perf_counter()
        runs = list(pool.map(_run, [scenario] * 2, [n] * 2, [instances // 2] * 2, ["ed25519"] * 2, [0, 1]))
        dt = time.perf_counter() - t0
    return sum(r[2] for r in runs) / dt


def _sim_rate(scenario: str, n: int, instances: int, monitor: bool = True, seed: int = 0) -> tuple[float, int]:
    """(requests executed by every correct replica per simulated time unit, safety violations)."""
    f = (n - 1) // 3
    schedule, requests, byzantine, net = build(scenario, n, f, seed=seed, rounds=instances)
    if not monitor:
        net = dataclasses.replace(net, monitor=None)
    res = simulate(schedule, requests, byzantine, net, seed=seed, until=5_000.0, signatures="ideal")
    verdict = check(history_of(res.executed, res.byzantine, [v for _t, v in requests]))
    last = max(res.decide_time.values(), default=float("inf"))
    return verdict.executed_by_all / last, verdict.violations


_WALL = """
import sys, time
from qverify.consensus.scenarios import build
from qverify.consensus.pbft import simulate
n, k = int(sys.argv[1]), int(sys.argv[2])
schedule, requests, byz, net = build("fault_free", n, (n - 1) // 3, seed=0, rounds=k)
t0 = time.perf_counter()
res = simulate(schedule, requests, byz, net, seed=0, until=5_000.0, signatures="ed25519")
print(len(res.decide_time) / (time.perf_counter() - t0))
"""


def _wall_rate(path: str, n: int, instances: int) -> float:
    """Fault-free wall-clock instances/s of the qverify package found under ``path``, in a subprocess."""
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run(
        [sys.executable, "-c", _WALL, str(n), str(instances)], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def slow_leader(instances: int, baseline_rev: str, repeats: int) -> None:
    """The slow-leader table and the fault-free wall-clock comparison with ``baseline_rev``."""
    attacks = ("slow_leader", "null_churn", "censor", "flood")
    print("Simulated-time throughput relative to fault-free (executed by all correct / time of last decision)")
    print("  n  monitor  fault-free/unit | " + " | ".join(f"{a:>11s}" for a in attacks))
    for n in (4, 7):
        for monitor in (True, False):
            base, bad = _sim_rate("fault_free", n, instances, monitor)
            cells = []
            for a in attacks:
                rate, v = _sim_rate(a, n, instances, monitor)
                bad += v
                cells.append(f"x{rate / base:10.3f}")
            print(
                f"  {n:d}  {'on ' if monitor else 'off'}      {base:14.3f}  | "
                + " | ".join(cells)
                + f"   ({bad} unsafe)"
            )
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", here, "archive", baseline_rev, "qverify"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        print(f"Fault-free wall clock, ed25519, {instances} instances, best of {repeats}: this code | {baseline_rev}")
        for n in (4, 7):
            mine = old = 0.0
            for _ in range(repeats):
                mine = max(mine, _wall_rate(here, n, instances))
                old = max(old, _wall_rate(tmp, n, instances))
            print(f"  n={n}: {mine:8.1f} inst/s | {old:8.1f} inst/s   ratio x{mine / old:5.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", choices=["all", "slow-leader"], default="all")
    parser.add_argument("--baseline-rev", default="7b9f313")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    slow_leader(args.instances, args.baseline_rev, args.repeats)
    if args.only == "slow-leader":
        return
    sizes = [
        (n, args.instances if n < 64 else max(10, args.instances // (5 if n == 64 else 10))) for n in (4, 16, 64, 128)
    ]
    for signatures in ("ed25519", "ideal"):
        print(f"Throughput, {signatures} signatures (simulated network, 1 core): fault-free | {ADVERSARIAL}")
        for n, instances in sizes:
            cells = []
            for sc in ("fault_free", ADVERSARIAL):
                rate, per, done, bad = _throughput(sc, n, instances, signatures)
                cells.append(f"{rate:8.1f} inst/s {per:7.0f} msg/inst {done:4d}/{instances} by all, {bad} unsafe")
            print(f"  n={n:3d} f={(n - 1) // 3:2d}: " + " | ".join(cells))
    print(
        f"Throughput, ed25519 signatures, 2 cores (two independent runs in two processes): fault-free | {ADVERSARIAL}"
    )
    for n, instances in sizes:
        rates = [_two_cores(sc, n, instances) for sc in ("fault_free", ADVERSARIAL)]
        print(f"  n={n:3d}: {rates[0]:8.1f} inst/s | {rates[1]:8.1f} inst/s")
    n, f = 16, 5
    print(f"Latency relative to fault-free, n={n}, f={f}, {args.seeds} seeds x {args.instances // 2} instances")
    for sc in SCENARIOS:
        rs = [run_scenario(sc, n, f, seed=s, rounds=args.instances // 2) for s in range(args.seeds)]
        print(
            f"  {sc:20s} violations {sum(r.violations for r in rs):4d}  "
            f"executed by all correct {sum(r.executed_by_all for r in rs):4d}/{sum(r.requests for r in rs):4d}  "
            f"rounds {np.mean([r.rounds_to_decision for r in rs]):7.2f}  "
            f"latency x{np.mean([r.latency_ratio for r in rs]):6.2f}"
        )


if __name__ == "__main__":
    main()
