"""Cold compile time of every program the CLI's commands build, per command and per program.

Each command runs in a fresh process with an empty compilation cache (``QVERIFY_CACHE_DIR`` in a new
temporary folder), so every program is traced, lowered and compiled as on a new machine. A
``sitecustomize`` module placed on ``PYTHONPATH`` registers a ``jax.monitoring`` listener in every
Python process the command starts (process-pool workers included) and appends each program's
trace, lowering and XLA-compile seconds to a file, so nothing is estimated from wall time.

    python bench/bench_compile.py                 # simulate, train, evaluate, reproduce --quick
    python bench/bench_compile.py --only simulate --top 5

Prints, per command: wall seconds, compile seconds summed over programs, and the slowest programs
(trace + lower + compile, in seconds; same-named programs kept apart); then the slowest program of all against the 15 s target.
State the machine's load next to any figure you quote: compile time grows with contention.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

SITECUSTOMIZE = """
import os
_out = os.environ.get("QVERIFY_BENCH_COMPILE_OUT")
if _out:
    import json
    import jax.monitoring

    def _listener(event, seconds, **kwargs):
        if event.startswith("/jax/core/compile/"):
            stage = event.rsplit("/", 1)[-1].removesuffix("_duration")
            with open(os.path.join(_out, f"{os.getpid()}.jsonl"), "a") as fh:
                fh.write(json.dumps([stage, str(kwargs.get("fun_name", "?")), seconds]) + "\\n")

    jax.monitoring.register_event_duration_secs_listener(_listener)
"""

TARGET_S = 15.0


def commands(work: Path) -> dict[str, list[str]]:
    """The CLI invocations measured, each as argv after ``qverify`` (small sizes: compile cost does
    not depend on the number of slots or episodes, only on shapes)."""
    policy = work / "policies" / "dqn_secoqc_seed0.msgpack"
    return {
        "simulate": ["simulate", "--slots", "400"],
        "simulate --policy abft": ["simulate", "--slots", "400", "--policy", "abft", "--byzantine", "0.2"],
        "train": ["train", "--episodes", "20", "--seeds", "2", "--out", str(work / "policies")],
        "evaluate": ["evaluate", str(policy), "--episodes", "4"],
        "reproduce --quick": ["reproduce", "--quick", "--run", "bench", "--out", str(work / "results")],
    }


def run_one(name: str, argv: list[str], work: Path, site: Path) -> dict:
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    events = Path(tempfile.mkdtemp(prefix="events-", dir=work))
    env = {**os.environ, "QVERIFY_CACHE_DIR": str(cache), "QVERIFY_BENCH_COMPILE_OUT": str(events),
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "MPLBACKEND": "Agg"}  # fmt: skip
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", "from qverify.cli import main; main()", "-q", *argv], cwd=work, env=env, capture_output=True,
                       text=True, check=False)  # fmt: skip
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{name}: exit {r.returncode}\n{r.stderr[-2000:]}")
    # Events arrive per process in order: a function's trace, then each program's lowering and XLA
    # compile. Programs that share a name (every ``jax.jit(lambda ...)``) are kept apart, numbered in
    # the order they compiled, so a figure is one program's, never a sum over same-named ones.
    programs: dict[str, dict[str, float]] = {}
    seen: dict[str, int] = defaultdict(int)
    for f in sorted(events.glob("*.jsonl")):
        pending: dict[str, float] = defaultdict(float)
        for line in f.read_text().splitlines():
            stage, fun, secs = json.loads(line)
            if stage == "jaxpr_trace":
                # Tracing is reported under the function's own name: charged to the next program
                # compiled from it (``jit(name)``).
                pending[f"jit({fun})"] += secs
            elif stage == "jaxpr_to_mlir_module":
                pending[f"lower:{fun}"] += secs
            else:
                seen[fun] += 1
                key = fun if seen[fun] == 1 else f"{fun} #{seen[fun]}"
                stages = {"jaxpr_trace": pending.pop(fun, 0.0), "jaxpr_to_mlir_module": pending.pop(f"lower:{fun}", 0.0),
                          "backend_compile": secs}  # fmt: skip
                programs[key] = {**stages, "total": sum(stages.values())}
    return {"wall_s": wall, "programs": programs, "alarm_text_on_stderr": "slow_operation_alarm" in r.stderr,
            "stderr_lines": len(r.stderr.splitlines())}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", help="Measure only this command (repeatable).")
    ap.add_argument("--top", type=int, default=3, help="Slowest programs printed per command.")
    ap.add_argument("--json", type=Path, help="Also write every figure to this file.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-compile-") as tmp:
        work = Path(tmp)
        site = work / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        load = os.getloadavg()[0]
        print(f"cold compiles, {os.cpu_count()} cores, load average {load:.2f} at start; "
              f"Python {platform.python_version()}, {platform.platform()}")  # fmt: skip
        results = {}
        for name, argv in commands(work).items():
            if args.only and name not in args.only and name.split()[0] not in args.only:
                continue
            res = run_one(name, argv, work, site)
            results[name] = res
            progs = sorted(res["programs"].items(), key=lambda kv: -kv[1]["total"])
            total = sum(p["total"] for p in res["programs"].values())
            print(f"\n{name}: wall {res['wall_s']:.1f} s, compile {total:.1f} s over {len(progs)} programs, "
                  f"XLA alarm on stderr: {res['alarm_text_on_stderr']}, stderr lines: {res['stderr_lines']}")  # fmt: skip
            for fun, p in progs[: args.top]:
                print(f"  {p['total']:7.2f} s  {fun}  (trace {p.get('jaxpr_trace', 0):.2f}, lower "
                      f"{p.get('jaxpr_to_mlir_module', 0):.2f}, XLA {p.get('backend_compile', 0):.2f})")  # fmt: skip
        worst = max(((n, f, p["total"]) for n, r in results.items() for f, p in r["programs"].items()),
                    key=lambda t: t[2], default=None)  # fmt: skip
        if worst:
            ok = "within" if worst[2] <= TARGET_S else "ABOVE"
            print(f"\nslowest program: {worst[1]} in `{worst[0]}`: {worst[2]:.1f} s ({ok} the {TARGET_S:.0f} s target); "
                  f"load average at end {os.getloadavg()[0]:.2f}")  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps({"load_start": load, "results": results}, indent=1))


if __name__ == "__main__":
    main()
