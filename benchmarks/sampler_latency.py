"""Chunk latency at batch 1 for every sampler, on the low-dim MLP and the published U-Net, in one run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sampler_latency.py [--device auto|cpu|cuda] [--seconds 3]
                                                                     [--archs mlp unet-published]

One `policy.act` call at batch 1 (normalize, sample one action chunk, un-normalize), what a closed-loop
controller pays per query, for EDM Heun-8 (15 network calls, the reference study's sampler), EDM
heun_churn-8, and diffusion_policy's DDPM-100 (100 calls), DDIM-10 and DDIM-16 (the published
deployment samplers). The weights are the network's initial ones: latency does not depend on their values.
The last column is each row's latency / DDPM-100's of the same network.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.core.configs import from_dict  # noqa: E402
from harness.learning.device import resolve_device  # noqa: E402
from harness.learning.model import build_model, count_parameters  # noqa: E402
from harness.learning.normalizer import fit_normalizer  # noqa: E402
from harness.learning.policy import ChunkSampler, DiffusionPolicy  # noqa: E402
from harness.learning.train_config import TrainConfig  # noqa: E402
from harness.learning.windows import WindowSpec  # noqa: E402

ARCHS = {"mlp": {"arch": "mlp"}, "unet-published": {"down_dims": [256, 512, 1024]}}
SAMPLERS = [   # (label, diffusion settings)
    ("Heun-8", {"kind": "edm", "sampler": "heun", "num_steps": 8}),
    ("heun_churn-8", {"kind": "edm", "sampler": "heun_churn", "num_steps": 8}),
    ("DDPM-100", {"kind": "ddpm", "sampler": "ddpm", "num_steps": 100}),
    ("DDIM-10", {"kind": "ddpm", "sampler": "ddim", "num_steps": 10}),
    ("DDIM-16", {"kind": "ddpm", "sampler": "ddim", "num_steps": 16}),
]
CALLS = {"heun": lambda n: 2 * n - 1, "heun_churn": lambda n: 2 * n - 1, "ddpm": lambda n: n, "ddim": lambda n: n}


def _policy(arch: str, diffusion: dict, device) -> DiffusionPolicy:
    cfg = from_dict(TrainConfig, {"policy": ARCHS[arch], "diffusion": diffusion}, "benchmark")
    torch.manual_seed(0)
    net, formulation = build_model(cfg, sigma_data=0.4)
    rng = np.random.default_rng(0)
    normalizer = fit_normalizer(rng.random((100, 6)), rng.random((100, 2)), rng.random((100, 2)))
    sampler = ChunkSampler.from_config(cfg.diffusion, formulation)
    return DiffusionPolicy(net, normalizer, WindowSpec(2, 16, 8), sampler, device)


def _seconds_per_call(fn, device, seconds: float) -> float:
    """Median seconds per call over repeated calls for at least `seconds`, after one warm-up."""
    fn()
    times, t_end = [], time.perf_counter() + seconds
    while len(times) < 3 or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per row")
    p.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    args = p.parse_args()
    device = resolve_device(args.device)
    obs = {"agent_pos": np.full((1, 2, 2), 0.5, np.float32), "slider_pose": np.full((1, 2, 3), 0.1, np.float32)}
    print(f"device {device}  threads {torch.get_num_threads()}  batch 1")
    print(f"{'network':<15} {'params':>10} {'sampler':<13} {'net calls':>9} {'chunk ms':>10} {'/ DDPM-100':>11}")
    for arch in args.archs:
        rows = []
        for label, diffusion in SAMPLERS:
            policy = _policy(arch, diffusion, device)
            ms = 1000 * _seconds_per_call(lambda: policy.act(obs, seeds=[0]), device, args.seconds)
            rows.append((label, CALLS[diffusion["sampler"]](diffusion["num_steps"]), ms,
                         count_parameters(policy.net)))
        ddpm = next(ms for label, _, ms, _ in rows if label == "DDPM-100")
        for label, calls, ms, params in rows:
            print(f"{arch:<15} {params:>10,} {label:<13} {calls:>9} {ms:>10.1f} {ms / ddpm:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
