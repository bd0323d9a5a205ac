"""The one training loop for every method: `train(cfg) -> checkpoint path`.

Per step: the source sampler draws sigma, then a valid source per sample (sources.py); the batch is gathered
from the in-memory pools (training_data.py); the method gives per-sample losses (methods.py); AdamW with
warm-up + cosine schedule, gradient clipping, EMA weights.

Run folder (cfg.out_dir): config.yaml (resolved: the run's identity), metrics.csv, train_summary.json (the
realised clean fraction overall and per sigma band, the fraction of clipped steps, the natural alpha of this
run's training episodes and the alpha it aimed at), tensorboard/,
checkpoints/latest.pt (every run.checkpoint_every steps, on Ctrl-C, at the end), checkpoints/final.pt, and
`done` when finished. With run.snapshot_every = N > 0 also checkpoints/step_<k>.pt, the EMA policy after
every k = N, 2N, ... < run.steps (the last step's policy is final.pt); each is written before latest.pt can
pass its step, so a resume neither loses one nor writes one twice. A checkpoint holds model, EMA, optimizer, scheduler, the sampler's numpy Generator
state and the torch noise Generator state of every rank, so a resumed run draws exactly the batches and
noise the uninterrupted run would have drawn: on CPU the loss curve continues bit for bit. A run folder is
resumed (or, when done, returned) only by a config with the same identity (harness/core/identity.py).

Distributed: launched by `torchrun --nproc_per_node N cotrain train ...`, every rank draws its own
batch_size / N samples from its own seeded generators; DDP averages gradients (gloo on CPU, nccl on CUDA).
"""
from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import json
import math
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from harness.learning.checkpoint import read_checkpoint, snapshot_name, write_checkpoint
from harness.core.atomic import atomic_write_text
from harness.core.configs import free_keys, to_dict
from harness.core.errors import ConfigError, UserError
from harness.core.identity import check_same_identity, claim_output, hold_output
from harness.learning.device import limit_threads, resolve_device
from harness.learning.held_out import held_out_losses
from harness.learning.methods import LossBatch
from harness.learning.model import build_model
from harness.learning.sources import SourceSampler
from harness.learning.train_config import TrainConfig
from harness.learning.training_data import TrainingData, build

# Config keys that may change between sessions of one run without changing its result: those declared free
# in train_config.py, and out_dir (the record sits inside the run folder, so a moved folder resumes).
RESUME_FREE_KEYS = free_keys(TrainConfig)
IDENTITY_FILE = "config.yaml"
SUMMARY_FILE = "train_summary.json"   # realised clean fraction (overall, per sigma band), clipped steps,
                                      # the natural and the targeted alpha (TrainingData.mixing_summary)


# ---------------------------------------------------------------- small pieces
def derived_config(cfg: TrainConfig, data: TrainingData) -> TrainConfig:
    """cfg plus what the data fix when the run starts: the config a checkpoint records and a policy loads.

    Under DDPM with clip_sample that is diffusion.clip_sample_range: null becomes the largest |normalized
    action| of every training source rounded up to 0.1 (at least diffusion_policy's 1), so the sampler's clip
    never cuts off what the data teach; a value below it is refused. config.yaml keeps the value as given
    (the run's identity); checkpoints hold the derived one.
    """
    d = cfg.diffusion
    if d.kind != "ddpm" or not d.clip_sample:
        return cfg
    reach = data.max_abs_action
    if d.clip_sample_range is not None:
        if d.clip_sample_range < reach:
            raise ConfigError("config", "diffusion.clip_sample_range",
                              f"{d.clip_sample_range:g} is below the largest |normalized action| of the training "
                              f"data ({reach:.3f}), so the sampler could never emit those actions; "
                              f"use a value >= {reach:.3f}, or null to derive it")
        return cfg
    derived = max(1.0, math.ceil(reach * 10 - 1e-6) / 10)   # 1e-6: a limits fit's 1.0000001 stays 1.0
    return dataclasses.replace(cfg, diffusion=dataclasses.replace(d, clip_sample_range=derived))


class RunTotals:
    """What a run really trained on, summed over every step (and rank) for its train_summary.json.

    Methods differ in how much clean data they see: sigma-first sampling with truncation fills every sigma
    where no corrupt window is valid with clean samples. So each run reports its realised clean fraction,
    overall and per sigma band, and the fraction of steps whose gradient norm was clipped (a rescaled
    ambient loss can hand single samples huge weights, and clipping then shrinks every other sample's
    gradient). Counting changes nothing in training: no random draw, no arithmetic of the step.
    """
    BANDS = (0.0, 0.05, 0.2, 0.8, 3.2, float("inf"))   # sigma bands, normalized action units

    def __init__(self, counts=None):
        # rows: clean samples per band, all samples per band; then [clipped steps, steps]
        self.counts = np.zeros(2 * (len(self.BANDS) - 1) + 2, np.int64) if counts is None \
            else np.asarray(counts, np.int64)

    def add(self, sigma: np.ndarray, corrupt: np.ndarray, clipped: bool) -> None:
        n_bands = len(self.BANDS) - 1
        band = np.clip(np.searchsorted(self.BANDS, sigma, side="right") - 1, 0, n_bands - 1)   # (B,)
        self.counts[:n_bands] += np.bincount(band[~corrupt], minlength=n_bands)
        self.counts[n_bands: 2 * n_bands] += np.bincount(band, minlength=n_bands)
        self.counts[-2] += int(clipped)
        self.counts[-1] += 1

    def summary(self) -> dict:
        n_bands = len(self.BANDS) - 1
        clean, total = self.counts[:n_bands], self.counts[n_bands: 2 * n_bands]
        bands = {f"{lo:g}-{hi:g}": (round(float(c / t), 6) if t else None)
                 for lo, hi, c, t in zip(self.BANDS[:-1], self.BANDS[1:], clean, total)}
        return {"clean_fraction": round(float(clean.sum() / max(total.sum(), 1)), 6),
                "clean_fraction_by_sigma": bands, "samples_by_sigma": dict(zip(bands, total.tolist())),
                "clipped_fraction": round(float(self.counts[-2] / max(self.counts[-1], 1)), 6),
                "steps": int(self.counts[-1])}


def warmup_cosine(warmup: int, total: int):
    """lr factor: linear from 0 to 1 over `warmup` steps, then cosine down to 0 at `total`."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return factor


def ema_decay(step: int, cap: float, power: float | None) -> float:
    """The EMA decay at optimizer step `step` (0 for the first update), with a warm-up so early weights
    fade fast: min(cap, (1 + k) / (10 + k)), or with `power` diffusers/diffusion_policy's EMAModel rule
    min(cap, 1 - (1 + k')^-power), k' = k - 1 (decay 0, a plain copy, for the first two updates)."""
    if power is None:
        return min(cap, (1 + step) / (10 + step))
    k = step - 1
    return 0.0 if k <= 0 else min(cap, 1 - (1 + k) ** -power)


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameters; buffers copied."""
    # one fused call over all tensors instead of a Python loop over every parameter tensor: for a small
    # network the per-tensor calls are a visible share of the step (benchmarks/train_speed.py)
    torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def batch_tensors(data: TrainingData, draw, device) -> dict[str, torch.Tensor]:
    """Gather the drawn windows from the pools into one batch: obs (B, n_obs, 6), action (B, T, 2), ..."""
    b = len(draw.sigma)
    spec = data.spec
    obs = np.empty((b, spec.n_obs, 6), np.float32)
    act = np.empty((b, spec.horizon, 2), np.float32)
    sigma_n = np.zeros(b)                                                        # (B,) 0 for clean samples
    img = {key: np.empty((b, spec.n_obs, *shape), np.uint8) for key, shape in data.image_shapes.items()}
    for role, mask in (("clean", ~draw.corrupt), ("corrupt", draw.corrupt)):
        if not mask.any():
            continue
        pool = data.pools[role]
        got = pool.gather(pool.train_rows[draw.index[mask]])
        obs[mask], act[mask] = got["obs"], got["action"]
        sigma_n[mask] = pool.sigma_n[draw.index[mask]]
        for key, frames in got["images"].items():
            img[key][mask] = frames
    out = {
        "obs": torch.from_numpy(obs).to(device),
        "action": torch.from_numpy(act).to(device),
        "sigma": torch.from_numpy(draw.sigma.astype(np.float32)).to(device),
        "corrupt": torch.from_numpy(draw.corrupt).to(device),
        "sigma_n": torch.from_numpy(sigma_n.astype(np.float32)).to(device),
    }
    # {key: (B, n_obs, H, W, 3)}
    out["images"] = {key: torch.from_numpy(frames).to(device) for key, frames in img.items()}
    return out


class _StopFlag:
    """Ctrl-C / SIGTERM set a flag that the loop checks between steps, so a checkpoint is never taken
    in the middle of an optimizer update."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:  # second Ctrl-C: give up at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------- the trainer
class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = resolve_device(cfg.device)
        limit_threads(cfg.run.threads)
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend)
        if cfg.optim.batch_size % self.world:
            raise ConfigError("config", "optim.batch_size", f"must be divisible by the {self.world} ranks")
        self.local_batch = cfg.optim.batch_size // self.world
        self.is_main = self.rank == 0

        self.data = build(cfg)
        self.policy_cfg = derived_config(cfg, self.data)   # what checkpoints record (DDPM: the clip range)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank and every run
        self.model, self.diffusion = build_model(self.policy_cfg, self.data.sigma_data)   # EDM or DDPM
        self.model.to(self.device)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.method = self.data.method
        o = cfg.optim
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=o.lr, betas=tuple(o.betas),
                                     weight_decay=o.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, warmup_cosine(o.warmup_steps, cfg.run.steps))
        self.rng = np.random.default_rng([cfg.seed, self.rank, 0x5A])
        self.gen = torch.Generator().manual_seed(cfg.seed * 7919 + self.rank)
        self.step = 0
        self.totals = RunTotals()
        self.accum = {"loss": 0.0, "loss_clean": 0.0, "n_clean": 0, "loss_corrupt": 0.0, "n_corrupt": 0,
                      "n_ambient": 0, "n": 0, "steps": 0}

        self.train_model = self.model
        if self.world > 1:
            self.train_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if cfg.run.compile:
            self.train_model = torch.compile(self.train_model)
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                         if self.device.type == "cuda" and cfg.run.bf16 else contextlib.nullcontext())

    # ---- paths
    @property
    def latest(self) -> Path:
        return self.out / "checkpoints" / "latest.pt"

    @property
    def final(self) -> Path:
        return self.out / "checkpoints" / "final.pt"

    def snapshot(self, step: int) -> Path:
        return self.out / "checkpoints" / snapshot_name(step)

    def _snapshot_due(self) -> bool:
        """A policy snapshot after this step? Every run.snapshot_every steps, except the last (final.pt)."""
        every = self.cfg.run.snapshot_every
        return every > 0 and self.step % every == 0 and self.step < self.cfg.run.steps

    def _check_snapshots(self) -> None:
        """On resume: every snapshot before the resumed step must be there, since none can be made again
        (each is written before latest.pt passes its step, so only a deleted file can be missing)."""
        every = self.cfg.run.snapshot_every
        if not self.is_main or every == 0:
            return
        for step in range(every, min(self.step, self.cfg.run.steps - 1) + 1, every):
            if not self.snapshot(step).is_file():
                raise UserError(f"{self.snapshot(step)}: missing, and a resumed run cannot make it again; "
                                "delete the run folder to start over")

    # ---- one optimizer step
    def train_step(self) -> dict:
        draw = self.data.sampler.sample(self.local_batch, self.rng)
        b = batch_tensors(self.data, draw, self.device)
        model = self.train_model

        def denoise(x_t, sigma):
            return model(x_t, sigma, b["obs"], b["images"])

        with self.autocast:
            batch = LossBatch(b["action"], b["sigma"], b["corrupt"], b["sigma_n"])
            out = self.method.loss(denoise, batch, self.diffusion, self.gen)
        loss = out.loss.float().mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg.optim.grad_clip
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), clip if clip > 0 else float("inf"))
        norm = float(grad_norm)
        if not math.isfinite(norm):   # the same on every rank (gradients are averaged first)
            raise UserError(f"step {self.step + 1}: the loss or its gradient is not finite (loss {loss.item():.4g}, "
                            f"gradient norm {norm:.4g}); the run stops before the weights are spoiled "
                            "(check diffusion.P_mean / P_std / sigma_data, optim.lr and the data)")
        self.totals.add(draw.sigma, draw.corrupt, clipped=clip > 0 and norm > clip)
        self.opt.step()
        self.sched.step()
        ema_update(self.ema, self.model, ema_decay(self.step, self.cfg.optim.ema_decay, self.cfg.optim.ema_power))
        self.step += 1
        per = out.loss.detach().float()
        corrupt = b["corrupt"]
        return {"loss": loss.item(), "loss_clean": float(per[~corrupt].sum()), "n_clean": int((~corrupt).sum()),
                "loss_corrupt": float(per[corrupt].sum()), "n_corrupt": int(corrupt.sum()),
                "n_ambient": int(out.ambient.sum()), "n": len(per), "grad_norm": norm}

    # ---- validation: the plain loss of the EMA model on held-out windows, at fixed sigmas and noise
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        sigmas = self.diffusion.validation_sigmas()
        result = {}
        for name, (role, rows) in self.data.val.items():
            losses = held_out_losses(self.ema, self.diffusion, self.data.gather(role, rows), sigmas,
                                     self.cfg.seed + 1, self.device, self.autocast)
            result[f"val_{name}"] = sum(losses) / len(sigmas)
        return result

    # ---- checkpoints
    def _gather_rng(self) -> tuple[list, list]:
        mine = (SourceSampler.rng_state(self.rng), self.gen.get_state())
        if self.world == 1:
            return [mine[0]], [mine[1]]
        everyone = [None] * self.world
        torch.distributed.all_gather_object(everyone, mine)
        return [e[0] for e in everyone], [e[1] for e in everyone]

    def state(self) -> dict:
        np_states, torch_states = self._gather_rng()
        return {
            **self.state_for_policy(),
            "world_size": self.world,
            "cpu_threads": torch.get_num_threads(),   # a CPU run's float round-off depends on it (load)
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "rng_numpy": np_states,
            "rng_torch": torch_states,
            "accum": dict(self.accum),
            "totals": self.totals.counts.tolist(),     # this rank's (summed over ranks for the summary)
        }

    def save(self, path: Path) -> None:
        state = self.state()  # collective when distributed: every rank calls it
        if self.is_main:
            write_checkpoint(path, state)
        if self.world > 1:
            torch.distributed.barrier()

    def load(self, path: Path) -> None:
        ckpt = read_checkpoint(path, map_location=self.device)
        check_same_identity(ckpt["config"], to_dict(self.policy_cfg), RESUME_FREE_KEYS, path)
        if ckpt["world_size"] != self.world:
            raise ConfigError(path, "world_size", f"saved with {ckpt['world_size']} ranks, resumed with "
                              f"{self.world}; resume with the same number")
        saved, now = ckpt.get("cpu_threads"), torch.get_num_threads()   # (checkpoints before 2026-12-03: None)
        if self.device.type == "cpu" and saved is not None and saved != now:
            raise ConfigError(path, "run.threads", f"trained so far with {saved} CPU threads, resumed with {now}; "
                              "on a CPU the thread count changes float round-off, so resume with "
                              f"run.threads={saved} (in a study: executor.threads {saved}) for the same result")
        self.model.load_state_dict(ckpt["model"])
        self.ema.load_state_dict(ckpt["ema"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        self.rng = SourceSampler.restore_rng(ckpt["rng_numpy"][self.rank])
        self.gen.set_state(ckpt["rng_torch"][self.rank].cpu())
        self.accum = dict(ckpt["accum"])
        self.totals = RunTotals(ckpt["totals"]) if "totals" in ckpt else RunTotals()
        self.step = int(ckpt["step"])

    def _summed_totals(self) -> RunTotals:
        if self.world == 1:
            return self.totals
        t = torch.tensor(self.totals.counts, dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return RunTotals(t.round().long().numpy())

    # ---- logs
    def _columns(self) -> list[str]:
        return ["step", "lr", "loss", "loss_clean", "loss_corrupt", "frac_corrupt", "frac_ambient",
                "grad_norm", "samples_per_s", *[f"val_{n}" for n in self.data.val]]

    def _open_csv(self):
        path = self.out / "metrics.csv"
        rows = []
        if path.exists():  # keep the rows up to the checkpoint we resume from
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= self.step]
        cols = self._columns()
        text = ",".join(cols) + "\n" + "".join(",".join(str(r.get(c, "")) for c in cols) + "\n" for r in rows)
        atomic_write_text(path, text)
        return open(path, "a", newline="")

    # ---- main loop
    def fit(self, stop_after: int | None = None) -> Path:
        """Train to run.steps (resuming from latest.pt), holding the run folder so no other process writes it."""
        held = hold_output(self.cfg.out_dir, IDENTITY_FILE, to_dict(self.cfg), RESUME_FREE_KEYS,
                           kind="training run folder") if self.is_main else contextlib.nullcontext()
        with held:
            return self._fit(stop_after)

    def _fit(self, stop_after: int | None) -> Path:
        cfg = self.cfg
        if self.latest.exists():
            self.load(self.latest)
            self._check_snapshots()
        csv_file = writer = tb = None
        if self.is_main:
            csv_file = self._open_csv()
            writer = csv.DictWriter(csv_file, fieldnames=self._columns())
            from torch.utils.tensorboard import SummaryWriter
            tb = SummaryWriter(str(self.out / "tensorboard"), purge_step=self.step)
        bar = None
        if self.is_main and cfg.run.progress:
            from tqdm import tqdm
            for line in self.data.describe():
                tqdm.write(line)
            d = self.policy_cfg.diffusion
            if d.kind == "ddpm" and d.clip_sample:
                tqdm.write(f"DDPM clip range +-{d.clip_sample_range:g} (largest |normalized action| of the "
                           f"training data: {self.data.max_abs_action:.3f})")
            bar = tqdm(total=cfg.run.steps, initial=self.step, desc=f"train {cfg.objective.method}",
                       dynamic_ncols=True)
        t_last, steps_last = time.perf_counter(), self.step
        try:
            with _StopFlag() as stop:
                while self.step < cfg.run.steps:
                    stats = self.train_step()
                    for k in self.accum:
                        self.accum[k] += stats.get(k, 0) if k != "steps" else 1
                    if bar is not None:
                        bar.update(1)
                    last = self.step == cfg.run.steps
                    row = {}
                    if self.step % cfg.run.log_every == 0 or last:  # every rank: sums over ranks
                        now = time.perf_counter()
                        row.update(self._log_row(stats, (self.step - steps_last) * cfg.optim.batch_size
                                                 / max(now - t_last, 1e-9)))
                        t_last, steps_last = now, self.step
                        if bar is not None:   # not every step: a postfix redraws the bar
                            bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
                    if self.data.val and (self.step % cfg.run.val_every == 0 or last) and self.is_main:
                        row.update(self.validate())
                    if row and self.is_main:
                        self._write_row(row, writer, csv_file, tb)
                    if self.is_main and self._snapshot_due():   # before latest.pt can move past this step
                        write_checkpoint(self.snapshot(self.step), self.state_for_policy())
                    stopping = stop.requested or (stop_after is not None and self.step >= stop_after)
                    if self.step % cfg.run.checkpoint_every == 0 or stopping:
                        self.save(self.latest)
                    if stop.requested:
                        raise KeyboardInterrupt
                    if stopping:
                        return self.latest
            self.save(self.latest)
            summary = {**self._summed_totals().summary(), **self.data.mixing_summary()}
            if self.is_main:
                write_checkpoint(self.final, self.state_for_policy())
                atomic_write_text(self.out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
                atomic_write_text(self.out / "done", f"{self.final}\n")
            return self.final
        finally:
            if bar is not None:
                bar.close()
            if csv_file is not None:
                csv_file.close()
            if tb is not None:
                tb.close()

    def _write_row(self, row: dict, writer, csv_file, tb) -> None:
        """One metrics.csv row (flushed, so a crash keeps it) and the same scalars in TensorBoard."""
        row.setdefault("step", self.step)
        writer.writerow(row)
        csv_file.flush()
        for k, v in row.items():
            if k != "step" and v != "":
                tb.add_scalar(k, float(v), self.step)

    def _log_row(self, stats: dict, samples_per_s: float) -> dict:
        a = self.accum
        if self.world > 1:  # sum the window's statistics over ranks
            keys = ["loss", "loss_clean", "n_clean", "loss_corrupt", "n_corrupt", "n_ambient", "n"]
            t = torch.tensor([float(a[k]) for k in keys], dtype=torch.float64)
            torch.distributed.all_reduce(t)
            a = dict(zip(keys, t.tolist()), steps=a["steps"] * self.world)
        row = {
            "step": self.step,
            "lr": self.sched.get_last_lr()[0],
            "loss": a["loss"] / max(a["steps"], 1),
            "loss_clean": a["loss_clean"] / a["n_clean"] if a["n_clean"] else "",
            "loss_corrupt": a["loss_corrupt"] / a["n_corrupt"] if a["n_corrupt"] else "",
            "frac_corrupt": a["n_corrupt"] / max(a["n"], 1),
            "frac_ambient": a["n_ambient"] / max(a["n"], 1),
            "grad_norm": stats["grad_norm"],
            "samples_per_s": samples_per_s,
        }
        for k in self.accum:
            self.accum[k] = 0 if isinstance(self.accum[k], int) else 0.0
        return row

    def state_for_policy(self) -> dict:
        """What load_policy needs (EMA weights, normalizer, config); no optimizer or RNG state."""
        return {
            "config": to_dict(self.policy_cfg), "step": self.step,
            "ema": self.ema.state_dict(), "normalizer": self.data.normalizer.state(),
            "sigma_data": self.data.sigma_data,
            "image_shape": {key: list(shape) for key, shape in self.data.image_shapes.items()} or None,
            "visual": self.data.visual,
        }


def training_done(out_dir) -> bool:
    """Has the run in out_dir finished (its `done` marker, written after final.pt)?"""
    return (Path(out_dir) / "done").exists()


def train(cfg: TrainConfig, stop_after: int | None = None) -> Path:
    """Train (or resume, or skip when `done` exists) one run; returns the checkpoint path.

    `stop_after`: stop once this many steps are done, leaving a resumable latest.pt (tests use it to
    interrupt a run at a chosen step).
    """
    out = Path(cfg.out_dir)
    if training_done(out):
        claim_run_folder(cfg)   # a finished run is returned only to a config with its identity
        final = out / "checkpoints" / "final.pt"
        if not final.is_file():   # the run says it is finished, but its policy was deleted
            raise UserError(f"{final}: missing, though {out / 'done'} says the run finished; delete the run "
                            "folder (or its `done`) and re-run to make it again")
        return final
    return Trainer(cfg).fit(stop_after=stop_after)


def claim_run_folder(cfg: TrainConfig) -> None:
    """Check that a finished run folder was made by this config (Trainer.fit claims and locks new ones)."""
    claim_output(cfg.out_dir, IDENTITY_FILE, to_dict(cfg), RESUME_FREE_KEYS, kind="training run folder")
