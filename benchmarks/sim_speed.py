"""Real-time factor of closed-loop, state-based rollouts for every physics preset (and design variants).

Each row runs the scripted pushing policy for full episodes (75 s simulated unless the T reaches the
goal or leaves the workspace) in one process on one core; the policy's time is included. Two real-time
factors: simulated seconds per wall-clock second (what you wait), and per CPU second of this process
(what one core delivers when it is not shared; the honest figure on a busy machine). A second pass
over one episode checks that the physics stays credible: deepest pusher/slider overlap, how far the
slider's base sinks into the table, and its largest tilt.

    .venv/bin/python benchmarks/sim_speed.py                 # every preset, 3 episodes each
    .venv/bin/python benchmarks/sim_speed.py --design        # also the step/solver/contact variants tried
    .venv/bin/python benchmarks/sim_speed.py --vector        # also VectorEnv throughput
    .venv/bin/python benchmarks/sim_speed.py --convergence   # time-step convergence of the target preset
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from sim_envs.config import load_preset, preset_names  # noqa: E402
from sim_envs.env import PushTEnv  # noqa: E402
from sim_envs.geometry import T_SLIDER, pusher_slider_distance  # noqa: E402
from sim_envs.rollout import run_episode  # noqa: E402
from sim_envs.scripted import ScriptedPusher  # noqa: E402

DESIGN_VARIANTS = [
    ("target, time_step 1 ms", "target", ["time_step=0.001"]),
    ("target, time_step 2 ms", "target", ["time_step=0.002"]),
    ("target, time_step 10 ms", "target", ["time_step=0.01"]),
    ("target, SAP solver", "target", ["contact_approximation=sap"]),
    ("target, similar solver", "target", ["contact_approximation=similar"]),
    ("target, 16 base contacts", "target", ["base_contacts=16"]),
    ("target, hydroelastic", "target", ["contact_model=hydroelastic", "hydroelastic_modulus=1e7"]),
]


def speed(config, seeds, image_size=None) -> tuple[float, float, float, list[str]]:
    """(real-time factor by wall clock, by CPU time, env build seconds, outcomes) over all episodes."""
    t0 = time.perf_counter()
    env = PushTEnv(config, image_size=image_size)
    build = time.perf_counter() - t0
    results = [run_episode(env, s) for s in seeds]
    env.close()
    sim = sum(r.sim_time for r in results)
    wall = sum(r.wall_time for r in results)
    cpu = sum(r.cpu_time for r in results)
    return sim / wall, sim / cpu, build, [r.outcome for r in results]


def credibility(config, seed: int) -> tuple[float, float, float]:
    """(deepest pusher-slider overlap mm, deepest base sink below rest mm, largest tilt deg) over one episode."""
    env = PushTEnv(config)
    policy = ScriptedPusher()
    obs = env.reset(seed)
    overlap = sink = tilt = 0.0
    info = {"outcome": "running"}
    while info["outcome"] == "running":
        obs, info = env.step(policy.act(obs))
        slider, pusher = env.true_state()
        overlap = max(overlap, -pusher_slider_distance(pusher, slider))
        z, angle = env.slider_height()
        sink = max(sink, T_SLIDER.height / 2 - z)
        tilt = max(tilt, angle)
    env.close()
    return overlap * 1000, sink * 1000, math.degrees(tilt)


def row(label, config, seeds, image_size=None) -> str:
    rtf, rtf_cpu, build, outcomes = speed(config, seeds, image_size)
    overlap, sink, tilt = credibility(config, seeds[0])
    model = f"{config.contact_model}/{config.contact_approximation}"
    return (f"| {label:<28} | {model:<19} | {config.time_step * 1000:>5.1f} | {rtf:>7.1f}x | {rtf_cpu:>7.1f}x | "
            f"{build:>6.2f} | "
            f"{overlap:>6.2f} | {sink:>6.3f} | {tilt:>5.2f} | {_count(outcomes)} |")


def vector_rows(n_envs: int, steps: int) -> list[str]:
    from sim_envs.vector_env import VectorEnv
    lines = []
    for workers in (1, 2):
        with VectorEnv(n_envs, "target", workers=workers) as vec:
            policies = [ScriptedPusher() for _ in range(n_envs)]
            obs = vec.reset(list(range(n_envs)))
            start = time.perf_counter()
            for _ in range(steps):
                actions = np.stack([p.act({k: v[i] for k, v in obs.items()}) for i, p in enumerate(policies)])
                obs, _ = vec.step(actions)
            wall = time.perf_counter() - start
        sim = n_envs * steps * 0.1
        lines.append(f"| VectorEnv K={n_envs}, workers={workers} | {steps} lockstep steps | {sim / wall:>7.1f}x "
                     f"aggregate | {n_envs * steps / wall:>7.0f} env steps/s |")
    return lines


def convergence_rows(seeds, steps: int = 300) -> list[str]:
    """Replay one action sequence at several time steps: how far the final slider pose drifts from 1 ms."""
    quiet = ["obs_noise_xy=0", "obs_noise_theta=0"]
    lines = ["| seed | dt ms | final xy vs 1 ms (mm) | final theta vs 1 ms (deg) |", "| ---: | ---: | ---: | ---: |"]
    for seed in seeds:
        env = PushTEnv(load_preset("target", quiet))
        policy, obs, actions = ScriptedPusher(), env.reset(seed), []
        for _ in range(steps):
            actions.append(policy.act(obs))
            obs, _ = env.step(actions[-1])
        reference = None
        for dt in (0.001, 0.002, 0.005, 0.01):
            env = PushTEnv(load_preset("target", quiet + [f"time_step={dt}"]))
            env.reset(seed)
            for action in actions:
                env.step(action)
            pose = env.true_state()[0]
            reference = pose if reference is None else reference
            dxy = np.hypot(*(pose[:2] - reference[:2])) * 1000
            dth = math.degrees(abs(math.remainder(pose[2] - reference[2], 2 * math.pi)))
            lines.append(f"| {seed} | {dt * 1000:.0f} | {dxy:.2f} | {dth:.2f} |")
    return lines


def _count(outcomes) -> str:
    return ", ".join(f"{outcomes.count(o)} {o}" for o in sorted(set(outcomes)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3, help="episodes per row (seeds 0..N-1)")
    parser.add_argument("--presets", nargs="*", default=None, help="presets to time (default: all)")
    parser.add_argument("--design", action="store_true", help="also time the design variants")
    parser.add_argument("--vector", action="store_true", help="also time VectorEnv (8 envs, 1 and 2 workers)")
    parser.add_argument("--convergence", action="store_true", help="also replay 30 s of actions at 1-10 ms steps")
    parser.add_argument("--image", action="store_true", help="also time the target preset with 96x96 images")
    args = parser.parse_args()
    seeds = list(range(args.episodes))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"closed-loop scripted rollouts, {args.episodes} episodes per row, one process "
          f"({os.cpu_count()} cores, load average {load:.1f} at start)\n")
    print("| preset | contact / solver | dt ms | x real time (wall) | x real time (CPU) | build s | overlap mm "
          "| sink mm | tilt deg | outcomes |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name in args.presets or preset_names():
        print(row(name, load_preset(name), seeds), flush=True)
    if args.image:
        print(row("target + 96x96 image", load_preset("target"), seeds, image_size=(96, 96)), flush=True)
    if args.design:
        for label, base, overrides in DESIGN_VARIANTS:
            print(row(label, load_preset(base, overrides), seeds), flush=True)
    if args.vector:
        print()
        print("\n".join(vector_rows(8, 100)))
    if args.convergence:
        print()
        print("\n".join(convergence_rows(seeds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
