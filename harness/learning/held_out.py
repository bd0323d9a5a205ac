"""The held-out loss of a denoiser at each noise level: where in sigma a trained row is good or bad.

The trainer's validation loss is one number, the mean over 8 noise levels. Rows that learn from different
data at different noise levels differ *where* in sigma: below sigma_n the ambient and truncated rows see the
clean demos alone, above it every demo; cotraining on noisy demos learns their noise at the lowest sigmas;
a few clean demos alone overfit at every sigma. The loss at each sigma on the run's own held-out clean
windows tells these apart (`cotrain curve loss`), which a success rate alone cannot: it is how a row's
shortfall is traced to a band of noise levels, and so to the data that band was given.

    held_out_losses   the loss of one network at each sigma, fixed noise draws (the trainer's validation)
    losses_by_sigma   the same for a finished run folder, on each of its sources' held-out windows
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from harness.core.configs import load_config
from harness.core.errors import UserError
from harness.learning.methods import weighted_mse
from harness.learning.policy import load_denoiser
from harness.learning.train_config import TrainConfig
from harness.learning.training_data import build


def held_out_losses(model, diffusion, got: dict, sigmas, seed: int, device,
                    autocast=contextlib.nullcontext()) -> list[float]:
    """lambda(sigma) * ||D(x0 + sigma z; sigma) - x0||^2, mean over the windows `got`, at each sigma.

    z is drawn from a generator seeded with `seed`, one draw per sigma in order: the same weights give the
    same numbers on every call (under DDPM each sigma is read as its nearest timestep's).
    """
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.from_numpy(got["action"]).to(device)                                   # (N, T, 2)
    obs = torch.from_numpy(got["obs"]).to(device)                                     # (N, n_obs, 6)
    img = {key: torch.from_numpy(frames).to(device) for key, frames in got["images"].items()}
    losses = []
    for s in sigmas:
        z = torch.randn(x0.shape, generator=gen).to(device)
        sigma = torch.full((len(x0),), float(s), device=device)                       # (N,)
        with autocast:
            h = model(x0 + s * z, sigma, obs, img).float()
        losses.append(float(weighted_mse(h, x0, sigma, diffusion).mean()))
    return losses


def run_train_dir(folder) -> Path:
    """The training folder of a run: `folder` itself (config.yaml, checkpoints/final.pt) or its train/."""
    folder = Path(folder)
    for candidate in (folder, folder / "train"):
        if (candidate / "config.yaml").is_file() and (candidate / "checkpoints" / "final.pt").is_file():
            return candidate
    raise UserError(f"{folder}: not a finished training run (no config.yaml and checkpoints/final.pt, "
                    "nor a train/ folder holding them)")


@torch.no_grad()
def losses_by_sigma(folder, sigmas) -> dict[str, list[float]]:
    """{source name: loss at each sigma} of a finished run's EMA weights on each source's held-out windows.

    The windows are the run's own validation split (the same seed, so the same episodes as its training
    held out); the noise draws are the trainer's validation seed, cfg.seed + 1.
    """
    train_dir = run_train_dir(folder)
    cfg = load_config(TrainConfig, train_dir / "config.yaml")
    data = build(cfg)
    if not data.val:
        raise UserError(f"{train_dir / 'config.yaml'}: data.val_fraction: 0, so the run held out no windows")
    net, diffusion, _ = load_denoiser(train_dir / "checkpoints" / "final.pt")
    net.eval()
    return {name: held_out_losses(net, diffusion, data.gather(role, rows), sigmas, cfg.seed + 1, "cpu")
            for name, (role, rows) in data.val.items()}


def default_sigmas() -> np.ndarray:
    """13 noise levels, 0.003 .. 3 evenly in log sigma: from the sampler's last steps to coarse structure."""
    return np.logspace(np.log10(0.003), np.log10(3.0), 13)
