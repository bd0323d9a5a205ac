"""What the policy costs in closed-loop evaluation: the same episodes with the policy and with a zero-cost one.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eval_overhead.py CHECKPOINT [--trials 200] [--num-steps N]

Each of --workers processes (one per core) takes its share of the trial seeds and runs them twice, in waves
of --n-envs environments as `cotrain eval` does:
  1. with the policy, recording every chunk it returns;
  2. with a zero-cost policy that hands back the recorded chunks in the same order.
The simulation is deterministic, so pass 2 replays exactly the episodes of pass 1 (checked: same outcome
and step count for every trial) and costs only the physics. Policy overhead = pass 1 / pass 2 wall time
(target: <= 1.25 on 2 cores, issue 11).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class Recorder:
    """Wraps a policy and keeps every chunk it returns, in call order."""

    def __init__(self, policy):
        self.policy, self.chunks = policy, []
        self.n_obs, self.n_action, self.horizon = policy.n_obs, policy.n_action, policy.horizon
        self.image_size = getattr(policy, "image_size", None)

    def act(self, obs_history, noise=None):
        chunk = self.policy.act(obs_history, noise=noise)
        self.chunks.append(chunk)
        return chunk


class Replay:
    """The zero-cost policy: the recorded chunks, in the order they were returned."""

    def __init__(self, recorder: Recorder):
        self.n_obs, self.n_action, self.horizon = recorder.n_obs, recorder.n_action, recorder.horizon
        self.image_size = recorder.image_size
        self._chunks = iter(recorder.chunks)

    def act(self, obs_history, noise=None):
        return next(self._chunks)


def _share(job) -> tuple[float, float, list]:
    checkpoint, num_steps, env, seeds, n_envs = job
    from eval.rollouts import evaluate
    from harness.learning.device import limit_threads
    from harness.learning.policy import load_policy
    limit_threads(1)
    recorder = Recorder(load_policy(checkpoint, num_steps=num_steps))
    t0 = time.perf_counter()
    with_policy = evaluate(recorder, env, seeds, n_envs=n_envs, workers=1, progress=False)
    t1 = time.perf_counter()
    replayed = evaluate(Replay(recorder), env, seeds, n_envs=n_envs, workers=1, progress=False)
    t2 = time.perf_counter()
    same = [(r.outcome, r.steps) for r in with_policy] == [(r.outcome, r.steps) for r in replayed]
    if not same:
        raise RuntimeError("the replayed episodes differ from the recorded ones: the simulation is not deterministic")
    return t1 - t0, t2 - t1, with_policy


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="policy checkpoint (.pt)")
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--seed", type=int, default=100_000)
    p.add_argument("--env", default="target")
    p.add_argument("--n-envs", type=int, default=25)
    p.add_argument("--workers", type=int, default=2, help="processes, one per core")
    p.add_argument("--num-steps", type=int, default=None, help="Heun steps (default: the checkpoint's)")
    args = p.parse_args()
    from eval.metrics import summarize
    from sim_envs.geometry import TASK

    seeds = list(range(args.seed, args.seed + args.trials))
    shares = [seeds[i::args.workers] for i in range(args.workers)]
    jobs = [(args.checkpoint, args.num_steps, args.env, share, args.n_envs) for share in shares]
    started = time.perf_counter()
    with mp.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(_share, jobs)
    wall = time.perf_counter() - started
    t_policy = sum(r[0] for r in results)
    t_zero = sum(r[1] for r in results)
    records = [rec for r in results for rec in r[2]]
    sim_s = sum(r.steps for r in records) * TASK.control_dt
    print(f"checkpoint {args.checkpoint}; env {args.env}; {args.trials} trials; {args.workers} workers x "
          f"{args.n_envs} envs; {os.cpu_count()} cores; success {summarize(records).success.fmt()}")
    print(f"{'pass':<22} {'worker-s':>9} {'sim s / worker-s':>17}")
    print(f"{'with the policy':<22} {t_policy:9.1f} {sim_s / t_policy:17.1f}")
    print(f"{'zero-cost (replay)':<22} {t_zero:9.1f} {sim_s / t_zero:17.1f}")
    print(f"policy overhead: {t_policy / t_zero:.2f}x the zero-cost time (target <= 1.25); "
          f"wall {wall:.0f} s for both passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
