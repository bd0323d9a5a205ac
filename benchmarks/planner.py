"""Benchmark the GCS planner on seeded start poses: success rate, solve-time median / p90, failures.

    .venv/bin/python benchmarks/planner.py                 # seeds 0..99, default config
    .venv/bin/python benchmarks/planner.py --seeds 20 interval_deg=20 subsegments=3

Runs single-threaded (one core), so the times are per-core times. Every returned plan has passed the
verifier (gcs_planner.verify); a seed counts as solved only then.
"""
from __future__ import annotations

import argparse
import collections
import logging
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gcs_planner.config import PlannerConfig  # noqa: E402
from gcs_planner.planner import Planner  # noqa: E402
from harness.core.configs import load_config  # noqa: E402
from sim_envs.initial_states import sample_initial_pose  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="benchmark seeds 0..N-1 (default 100)")
    parser.add_argument("--first", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--config", default=None, help="planner config YAML")
    parser.add_argument("--verbose", action="store_true", help="one line per seed")
    parser.add_argument("overrides", nargs="*", help="planner config overrides key=value")
    args = parser.parse_args()
    logging.getLogger("drake").setLevel(logging.WARNING)
    cfg = load_config(PlannerConfig, args.config, args.overrides)
    planner = Planner(cfg)
    planner.plan(sample_initial_pose(10_000))   # warm-up: imports, solver start-up, caches
    times, solved, failures, attempts, durations = [], 0, collections.Counter(), collections.Counter(), []
    ratios, residuals = [], []
    t_all = time.perf_counter()
    for seed in range(args.first, args.first + args.seeds):
        result = planner.plan(sample_initial_pose(seed), {"seed": seed})
        times.append(result.solve_time)
        if result.ok:
            solved += 1
            attempts[result.plan.info["attempt"]] += 1
            durations.append(result.plan.duration)
            ratios.append(result.verdict.metrics["max_friction_ratio"])
            residuals.append(result.verdict.metrics["max_residual"])
        else:
            failures[result.failure] += 1
        if args.verbose:
            print(f"seed {seed:4d}  {'ok  ' if result.ok else 'FAIL'}  {result.solve_time:6.2f} s  "
                  f"{' | '.join(result.attempts)}", flush=True)
    t = np.array(times)
    n = len(t)
    print()
    print(f"GCS planner benchmark: seeds {args.first}..{args.first + n - 1}, one process, "
          f"solver {cfg.solver}, overrides {args.overrides or 'none'}")
    rows = [
        ("solved (verified)", f"{solved}/{n} ({solved / n:.1%})", ">= 95%"),
        ("solve time median", f"{np.median(t):.2f} s", "<= 2 s"),
        ("solve time p90", f"{np.percentile(t, 90):.2f} s", ""),
        ("solve time max", f"{t.max():.2f} s", ""),
        ("solved on attempt 0/1/2/3/4", "/".join(str(attempts[i]) for i in range(5)), ""),
        ("plan duration median", f"{np.median(durations):.1f} s" if durations else "-", "<= 75 s"),
        ("max friction ratio", f"{max(ratios):.3f} (mu {cfg.mu})" if ratios else "-", ""),
        ("max quasi-static residual", f"{max(residuals):.2e}" if residuals else "-", f"<= {cfg.tol_residual}"),
        ("wall time", f"{time.perf_counter() - t_all:.1f} s", ""),
    ]
    print(f"| {'metric':<26} | {'value':<24} | {'target':<8} |")
    print(f"|{'-' * 28}|{'-' * 26}|{'-' * 10}|")
    for name, value, target in rows:
        print(f"| {name:<26} | {value:<24} | {target:<8} |")
    if failures:
        print("failures:", dict(failures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
