"""Training throughput and inference latency of the diffusion policy's networks, side by side in one run.

    python benchmarks/train_speed.py [--device auto|cpu|cuda] [--batch 256] [--seconds 10] [--num-steps 8]
                                     [--archs mlp unet-small unet-published] [--fit mlp] [--bf16] [--compile]
    python benchmarks/train_speed.py --archs mlp+cnn mlp+resnet18 --batch 64 --fit   # image policies (96x96,
                                                                                      # crops of 84)

Per network, in one process:
  - step samples/s: `Trainer.train_step` through the real pipeline (in-memory pools -> windows ->
    sigma-first sampler -> objective -> AdamW + gradient clipping + EMA + run totals) on a synthetic store;
  - fit samples/s (--fit networks): the whole loop, `Trainer.fit`, with logging, validation, checkpoints;
  - bare samples/s: the same network's forward + backward + AdamW step on tensors already in memory, the
    most any trainer could get; `overhead` = 1 - fit (else step) / bare: what the pipeline costs;
  - one action chunk at batch 1: `policy.act` with the Heun sampler (--num-steps, 2N - 1 network calls),
    and 100 network calls at batch 1 (what diffusion_policy's DDPM-100 sampler costs per chunk).
Then the ratios against the published U-Net ([256, 512, 1024], measured at parity with diffusion_policy's
ConditionalUnet1D): training samples/s of each network / the published U-Net's, and each network's chunk
latency (its sampler) / the published U-Net's 100 calls. Runs unchanged on CUDA (bf16 autocast there).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic_stores import write_store  # noqa: E402

from harness.core.configs import from_dict  # noqa: E402
from harness.learning.model import build_model, count_parameters  # noqa: E402
from harness.learning.policy import ChunkSampler, DiffusionPolicy  # noqa: E402
from harness.learning.train_config import TrainConfig  # noqa: E402
from harness.learning.training import Trainer  # noqa: E402
from harness.learning.windows import WindowSpec  # noqa: E402

ARCHS = {   # name -> policy config
    "mlp": {"arch": "mlp"},                                        # the low-dim default (width 256, depth 4)
    "unet-small": {"down_dims": [64, 128, 256], "noise_dim": 64},  # the issue-10 ablation's U-Net
    "unet-published": {"down_dims": [256, 512, 1024]},             # diffusion_policy's widths
}
# Image policies: one 96x96 camera, random crops of 84 (diffusion_policy's PushT sizes), 64 features per image.
IMAGE = {"feature_dim": 64, "crop": [84, 84]}
# the pixel study's image settings (small CNN, its widths), read from its config: the row times what it trains
STUDY_IMAGE = yaml.safe_load((Path(__file__).resolve().parents[1] / "experiments" / "pixels.yaml")
                             .read_text())["train"]["policy"]["image"]
ARCHS.update({
    "mlp+cnn": {"arch": "mlp", "image": STUDY_IMAGE},                      # the pixel study's policy
    "mlp+resnet18": {"arch": "mlp", "image": {**IMAGE, "encoder": "resnet18"}},
    "unet+resnet18": {"down_dims": [256, 512, 1024], "image": {**IMAGE, "encoder": "resnet18"}},  # the published
})
IMAGE_HW = (96, 96)
REFERENCE = "unet-published"


def _has_image(name: str) -> bool:
    return "image" in ARCHS[name]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device, seconds: float, min_reps: int = 3) -> float:
    """Seconds per call of fn, repeated for at least `seconds` (and min_reps calls) after one warm-up."""
    fn()
    _sync(device)
    reps, t0 = 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - t0 < seconds:
        fn()
        reps += 1
    _sync(device)
    return (time.perf_counter() - t0) / reps


def _config(name: str, args, stores, tmp: Path) -> TrainConfig:
    return from_dict(TrainConfig, {
        "out_dir": str(tmp / name), "device": args.device, "seed": 0,
        "data": {"datasets": [{"path": str(s)} for s in stores[2:] if _has_image(name)] or
                              [{"path": str(stores[0])}, {"path": str(stores[1])}],
                 "val_fraction": 0.0, "use_image": _has_image(name)},
        "policy": ARCHS[name],
        "diffusion": {"num_steps": args.num_steps},
        "objective": {"method": "cotrain"},
        "optim": {"batch_size": args.batch},
        "run": {"steps": 10 ** 6, "progress": False, "bf16": args.bf16, "compile": args.compile},
    }, "benchmark")


def bare_step_fn(cfg: TrainConfig, sigma_data: float, device, autocast):
    """The network alone: EDM-weighted denoising loss, backward, AdamW; data already on the device."""
    torch.manual_seed(0)
    model, edm = build_model(cfg, sigma_data)
    model.to(device)
    net = torch.compile(model) if cfg.run.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr)
    b = cfg.optim.batch_size
    x0 = torch.randn(b, cfg.data.horizon, 2, device=device)           # (B, T, 2)
    obs = torch.randn(b, cfg.data.n_obs, 6, device=device)            # (B, n_obs, 6)
    sigma = torch.exp(-1.2 + 1.2 * torch.randn(b, device=device))     # (B,)
    noise = torch.randn_like(x0)
    images = {"image": torch.randint(0, 256, (b, cfg.data.n_obs, *IMAGE_HW, 3), dtype=torch.uint8, device=device)} \
        if cfg.data.use_image else None                                # {key: (B, n_obs, H, W, 3)}

    def step():
        with autocast:
            d = net(x0 + sigma[:, None, None] * noise, sigma, obs, images).float()
        loss = (edm.loss_weight(sigma) * (d - x0).pow(2).flatten(1).mean(1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def fit_seconds_per_step(name: str, args, stores, tmp: Path) -> float:
    """The whole training loop as a run uses it: `Trainer.fit` for --fit-steps steps with the reference
    study's logging (every 200 steps), a validation at the end and a checkpoint every 1000 steps, plus
    final.pt and the run summary; the Trainer's construction (loading the data) is not counted."""
    cfg = _config(name, args, stores, tmp / "fit")
    cfg.run.steps, cfg.run.log_every, cfg.run.val_every, cfg.run.checkpoint_every = args.fit_steps, 200, \
        args.fit_steps, 1000
    cfg.data.val_fraction = 0.1
    trainer = Trainer(cfg)
    t0 = time.perf_counter()
    trainer.fit()
    _sync(trainer.device)
    return (time.perf_counter() - t0) / args.fit_steps


def measure(name: str, args, stores, tmp: Path) -> dict:
    cfg = _config(name, args, stores, tmp)
    trainer = Trainer(cfg)
    dev = trainer.device
    train_s = _timed(trainer.train_step, dev, args.seconds)
    bare_s = _timed(bare_step_fn(cfg, trainer.data.sigma_data, dev, trainer.autocast), dev, args.seconds)
    fit_s = fit_seconds_per_step(name, args, stores, tmp) if name in args.fit else None

    sampler = ChunkSampler.from_config(cfg.diffusion, trainer.diffusion)
    policy = DiffusionPolicy(trainer.ema, trainer.data.normalizer, WindowSpec(2, 16, 8), sampler, dev,
                             image_shapes=trainer.data.image_shapes)
    obs = {"agent_pos": np.random.rand(1, 2, 2).astype(np.float32) * 0.2 + 0.4,
           "slider_pose": np.random.rand(1, 2, 3).astype(np.float32)}
    if cfg.data.use_image:
        obs["image"] = np.random.randint(0, 256, (1, 2, *IMAGE_HW, 3), dtype=np.uint8)
    chunk_s = _timed(lambda: policy.act(obs, seeds=[0]), dev, args.seconds / 4)
    x = torch.randn(1, 16, 2, device=dev)
    per_step = 6 + (IMAGE["feature_dim"] if cfg.data.use_image else 0)     # low-dim + image features per step
    cond = torch.randn(1, cfg.data.n_obs * per_step, device=dev)
    one = torch.ones(1, device=dev)

    @torch.no_grad()
    def hundred_calls():
        for _ in range(100):
            trainer.ema.denoiser(x, one, cond)
    ddpm100_s = _timed(hundred_calls, dev, args.seconds / 4, min_reps=1)
    return {"arch": name, "params": count_parameters(trainer.model), "device": str(dev),
            "train_sps": args.batch / train_s, "bare_sps": args.batch / bare_s,
            "fit_sps": args.batch / fit_s if fit_s else None,
            "chunk_ms": chunk_s * 1000, "ddpm100_ms": ddpm100_s * 1000}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch", type=int, default=256, help="training batch size")
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds per training measurement")
    p.add_argument("--num-steps", type=int, default=8, help="Heun steps per action chunk (the reference: 8)")
    p.add_argument("--archs", nargs="+", default=[a for a in ARCHS if not _has_image(a)], choices=list(ARCHS),
                   help="networks to time (default: the state ones; image ones: mlp+cnn mlp+resnet18 unet+resnet18)")
    p.add_argument("--fit", nargs="*", default=["mlp"], choices=list(ARCHS),
                   help="networks whose whole training loop (Trainer.fit) is also timed (default mlp)")
    p.add_argument("--fit-steps", type=int, default=1000, help="steps of the timed Trainer.fit")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA only)")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        stores = (write_store(d / "target.zarr", "target", 8, length=40, seed=1),
                  write_store(d / "sim.zarr", "sim", 16, length=40, wiggle=0.01, seed=2))
        if any(_has_image(a) for a in args.archs):
            stores += (write_store(d / "target_img.zarr", "target", 8, length=40, seed=1, image_hw=IMAGE_HW),
                       write_store(d / "sim_img.zarr", "sim", 16, length=40, wiggle=0.01, seed=2, image_hw=IMAGE_HW))
        rows = [measure(name, args, stores, d) for name in args.archs]
    ref = next((r for r in rows if r["arch"] == REFERENCE), None)
    print(f"threads {torch.get_num_threads()}  batch {args.batch}  Heun steps {args.num_steps} "
          f"({2 * args.num_steps - 1} network calls per chunk)  bf16 {args.bf16}  compile {args.compile}")
    print(f"{'network':<15} {'params':>10} {'device':>7} {'bare smp/s':>11} {'step smp/s':>11} {'fit smp/s':>10} "
          f"{'overhead':>9} {'chunk b=1 ms':>13} {'100 calls ms':>13} {'train x':>8} {'latency /':>10}")
    for r in rows:
        ratio_train = f"{r['train_sps'] / ref['train_sps']:.1f}" if ref else "-"
        ratio_lat = f"1/{ref['ddpm100_ms'] / r['chunk_ms']:.0f}" if ref else "-"
        fit = f"{r['fit_sps']:.0f}" if r["fit_sps"] else "-"
        overhead = 1 - (r["fit_sps"] or r["train_sps"]) / r["bare_sps"]
        print(f"{r['arch']:<15} {r['params']:>10,} {r['device']:>7} {r['bare_sps']:>11.0f} {r['train_sps']:>11.0f} "
              f"{fit:>10} {overhead:>9.1%} {r['chunk_ms']:>13.1f} {r['ddpm100_ms']:>13.0f} {ratio_train:>8} "
              f"{ratio_lat:>10}")
    print("bare: network forward + backward + AdamW on tensors in memory; step: Trainer.train_step (sampler, "
          "batch gather, objective, clipping, EMA, run totals); fit: the whole loop (Trainer.fit: logging, "
          "validation, checkpoints); overhead: 1 - fit (else step) / bare")
    if ref:
        print(f"train x: step samples/s / {REFERENCE}'s; latency /: chunk at batch 1 (Heun, "
              f"{args.num_steps} steps) / {REFERENCE}'s 100 calls at batch 1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
