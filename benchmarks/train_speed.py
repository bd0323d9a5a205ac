"""Training throughput and inference latency of the diffusion policy, tiny and published network sizes.

    python benchmarks/train_speed.py [--device auto|cpu|cuda] [--steps 20] [--batch 64]

Trains through the real pipeline (store -> windows -> sigma-first sampler -> ambient objective -> AdamW
+ EMA) on a small synthetic store, then times `policy.act` (Heun sampler, diffusion.num_steps steps =
2 * steps - 1 network calls) per action chunk for batch 1 and batch 64. Runs unchanged on CUDA (bf16
autocast there). Prints one table row per size.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic_stores import write_store  # noqa: E402

from harness.data.configs import from_dict  # noqa: E402
from harness.diffusion import karras_schedule  # noqa: E402
from harness.windows import WindowSpec  # noqa: E402
from harness.model import count_parameters  # noqa: E402
from harness.policy import DiffusionPolicy  # noqa: E402
from harness.train_config import TrainConfig  # noqa: E402
from harness.training import Trainer  # noqa: E402

SIZES = {"tiny": [32, 64], "published": [256, 512, 1024]}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(name: str, dims, args, stores, tmp: Path) -> dict:
    cfg = from_dict(TrainConfig, {
        "out_dir": str(tmp / name), "device": args.device, "seed": 0,
        "data": {"datasets": [{"path": str(stores[0])}, {"path": str(stores[1])}], "val_fraction": 0.0},
        "policy": {"down_dims": dims, "noise_dim": 128 if name == "published" else 32},
        "diffusion": {"num_steps": args.num_steps},
        "objective": {"method": "ambient", "sigma_n": 0.1},
        "optim": {"batch_size": args.batch},
        "run": {"steps": 10 ** 6, "progress": False},
    }, "benchmark")
    trainer = Trainer(cfg)
    dev = trainer.device
    for _ in range(args.warmup):
        trainer.train_step()
    _sync(dev)
    t = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    _sync(dev)
    train_sps = args.steps * args.batch / (time.perf_counter() - t)

    d = cfg.diffusion
    schedule = karras_schedule(args.num_steps, d.sampler_sigma_min, d.sampler_sigma_max, d.rho)
    policy = DiffusionPolicy(trainer.ema, trainer.data.normalizer, WindowSpec(2, 16, 8), schedule, dev)
    latency = {}
    for b in (1, 64):
        obs = {"agent_pos": np.random.rand(b, 2, 2).astype(np.float32) * 0.2 + 0.4,
               "slider_pose": np.random.rand(b, 2, 3).astype(np.float32)}
        policy.act(obs, seeds=range(b))  # warm-up
        reps = args.reps if b == 1 else max(1, args.reps // 4)
        _sync(dev)
        t = time.perf_counter()
        for _ in range(reps):
            policy.act(obs, seeds=range(b))
        _sync(dev)
        latency[b] = (time.perf_counter() - t) / reps * 1000
    return {"size": name, "params": count_parameters(trainer.model), "device": str(dev),
            "train_sps": train_sps, "lat1": latency[1], "lat64": latency[64]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--steps", type=int, default=20, help="timed training steps per size")
    p.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    p.add_argument("--batch", type=int, default=64, help="training batch size")
    p.add_argument("--num-steps", type=int, default=16, help="Heun steps per action chunk")
    p.add_argument("--reps", type=int, default=8, help="timed act() calls at batch 1 (batch 64: reps / 4)")
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        stores = (write_store(d / "target.zarr", "target", 8, length=40, seed=1),
                  write_store(d / "sim.zarr", "sim", 16, length=40, wiggle=0.01, seed=2))
        rows = [measure(name, SIZES[name], args, stores, d) for name in args.sizes]
    print(f"threads {torch.get_num_threads()}  batch {args.batch}  Heun steps {args.num_steps} "
          f"({2 * args.num_steps - 1} network calls per chunk)")
    print(f"{'size':<10} {'params':>10} {'device':>7} {'train samples/s':>16} {'act b=1 ms':>11} "
          f"{'act b=64 ms':>12} {'b=64 ms/chunk':>14}")
    for r in rows:
        print(f"{r['size']:<10} {r['params']:>10,} {r['device']:>7} {r['train_sps']:>16.0f} {r['lat1']:>11.1f} "
              f"{r['lat64']:>12.1f} {r['lat64'] / 64:>14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
