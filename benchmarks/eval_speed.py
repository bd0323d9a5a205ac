"""Closed-loop evaluation speed: wall time of N trials in the target preset, policy inference included.

    .venv/bin/python benchmarks/eval_speed.py                         # scripted chunked policy, 200 trials
    .venv/bin/python benchmarks/eval_speed.py --checkpoint runs/x/checkpoints/final.pt
    .venv/bin/python benchmarks/eval_speed.py --trials 40 --configs 10x1 25x2
    .venv/bin/python benchmarks/eval_speed.py --checkpoint ... --configs 25x1 --inference-batch 0 32

Prints one row per (n_envs x workers, inference batch) configuration (inference batch K: a diffusion policy
is queried in padded batches of exactly K rows, which makes trials batch-invariant; 0 = the natural batch): wall seconds, trials per second, simulated seconds
per wall second (all cores together), success rate. Target (docs/results/speed.md): 200 trials of a state-based policy
in <= 5 minutes on the 2-core machine. Trials run their full length (75 s limit), as in `cotrain eval`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.metrics import summarize  # noqa: E402
from eval.rollouts import evaluate  # noqa: E402
from eval.scripted import ChunkedScriptedPolicy  # noqa: E402
from sim_envs.geometry import TASK  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="policy checkpoint (default: scripted policy)")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=100_000)
    parser.add_argument("--env", default="target")
    parser.add_argument("--configs", nargs="+", default=["25x2"], help="n_envs x workers, e.g. 10x1 25x2")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per trial (default 75)")
    parser.add_argument("--inference-batch", type=int, nargs="+", default=[0, 32],
                        help="inference batch sizes to time (default 0 32: the natural batch, and cotrain eval's)")
    args = parser.parse_args()
    policy = args.checkpoint or ChunkedScriptedPolicy()
    name = Path(args.checkpoint).name if args.checkpoint else "scripted (chunked)"
    max_steps = None if args.time_limit is None else int(round(args.time_limit * TASK.control_hz))
    print(f"policy {name}; env {args.env}; {args.trials} trials; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'n_envs x workers':>16} {'inf. batch':>10} {'wall s':>8} {'trials/s':>9} {'sim s / wall s':>15} "
          f"{'success':>22}")
    for item in args.configs:
        n_envs, workers = (int(x) for x in item.lower().split("x"))
        for k in args.inference_batch:
            started = time.perf_counter()
            records = evaluate(policy, args.env, range(args.seed, args.seed + args.trials), n_envs=n_envs,
                               workers=workers, progress=False, max_steps=max_steps, inference_batch=k)
            wall = time.perf_counter() - started
            sim_seconds = sum(r.steps for r in records) * TASK.control_dt
            s = summarize(records)
            print(f"{item:>16} {k:>10} {wall:8.1f} {len(records) / wall:9.2f} {sim_seconds / wall:15.1f} "
                  f"{s.success.fmt():>22}")
    print(f"load average {os.getloadavg()[0]:.1f} at end (other processes share the cores when > cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
