"""A trained diffusion policy for closed-loop use: `load_policy(path).act(obs_history)`.

act() takes the last n_obs observations of B environments, normalizes them, samples a whole action chunk
(horizon steps) with the deterministic Heun sampler, un-normalizes it and returns the n_action steps that
start at the current step (index n_obs - 1 of the chunk, as diffusion_policy does).

Randomness: the only random input is the initial noise (B, horizon, 2). Give it explicitly (`noise=`), or
give one seed per sample (`seeds=`): sample b's noise is then drawn from its own generator seeded with
seeds[b], so a batched call returns the same actions as B unbatched calls with the same seeds (up to
float round-off of batched matrix products, ~1e-6). Without either, noise comes from the policy's own
generator, seeded with `policy.seed` at load time and advanced by every call.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from harness.checkpoint import read_checkpoint
from harness.data.configs import from_dict
from harness.data.errors import UserError
from harness.diffusion import EDM, heun_sample, karras_schedule
from harness.model import PolicyNet, build_model
from harness.normalizer import Normalizer
from harness.train_config import TrainConfig
from harness.windows import ACTION_DIM, WindowSpec, obs_features


class DiffusionPolicy:
    def __init__(self, net: PolicyNet, normalizer: Normalizer, spec: WindowSpec, schedule: torch.Tensor,
                 device="cpu", seed: int = 0, config: TrainConfig | None = None,
                 image_size: tuple[int, int] | None = None):
        self.net = net.eval().requires_grad_(False).to(device)
        self.normalizer = normalizer
        self.spec = spec
        self.schedule = schedule          # (num_steps + 1,) the Heun sampler's sigmas, ending in 0
        self.device = torch.device(device)
        self.seed = seed
        self.config = config
        self.image_size = image_size      # (H, W) of the camera it was trained on; None for state policies
        self._gen = torch.Generator().manual_seed(seed)

    n_obs = property(lambda self: self.spec.n_obs)
    horizon = property(lambda self: self.spec.horizon)
    n_action = property(lambda self: self.spec.n_action)

    @property
    def edm(self) -> EDM:
        return self.net.denoiser.edm

    def initial_noise(self, batch: int, seeds: Sequence[int] | None = None) -> torch.Tensor:
        """(B, horizon, 2) unit noise: per-sample seeded, or from the policy's generator."""
        shape = (self.spec.horizon, ACTION_DIM)
        if seeds is not None:
            if len(seeds) != batch:
                raise ValueError(f"got {len(seeds)} seeds for a batch of {batch}")
            return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(s)))
                                for s in seeds])
        return torch.randn((batch, *shape), generator=self._gen)

    @torch.no_grad()
    def predict_chunk(self, obs_history: dict[str, np.ndarray], noise=None,
                      seeds: Sequence[int] | None = None) -> np.ndarray:
        """The whole predicted chunk in world frame, (B, horizon, 2)."""
        agent = np.asarray(obs_history["agent_pos"], np.float32)
        slider = np.asarray(obs_history["slider_pose"], np.float32)
        if agent.ndim != 3 or agent.shape[1] != self.n_obs or slider.shape[:2] != agent.shape[:2]:
            raise ValueError(f"obs_history needs agent_pos (B, {self.n_obs}, 2) and slider_pose "
                             f"(B, {self.n_obs}, 3); got {agent.shape} and {slider.shape}")
        b = agent.shape[0]
        obs = self.normalizer.obs.normalize(obs_features(agent, slider)).astype(np.float32)
        obs_t = torch.from_numpy(obs).to(self.device)
        image = None
        if self.net.image_encoder is not None:
            image = torch.from_numpy(np.asarray(obs_history["image"], np.uint8)).to(self.device)
        if noise is None:
            noise = self.initial_noise(b, seeds)
        noise = torch.as_tensor(noise, dtype=torch.float32).to(self.device)
        cond = self.net.encode(obs_t, image)
        x = heun_sample(self.net.denoiser, cond, noise, self.schedule)  # (B, horizon, 2)
        return self.normalizer.action.unnormalize(x.float().cpu().numpy())

    def act(self, obs_history: dict[str, np.ndarray], noise=None, seeds: Sequence[int] | None = None) -> np.ndarray:
        """(B, n_action, 2) world-frame pusher targets to execute, starting at the current step."""
        chunk = self.predict_chunk(obs_history, noise=noise, seeds=seeds)
        start = self.n_obs - 1
        return chunk[:, start: start + self.n_action]


def load_policy(path, device="cpu", num_steps: int | None = None, seed: int = 0) -> DiffusionPolicy:
    """Rebuild the EMA policy from one checkpoint file (latest.pt or final.pt); needs nothing else."""
    ckpt = read_checkpoint(path)
    cfg = from_dict(TrainConfig, ckpt["config"], str(path))
    d = cfg.diffusion
    net, _ = build_model(cfg, float(ckpt["sigma_data"]))
    try:
        net.load_state_dict(ckpt["ema"])
    except RuntimeError as exc:   # weights of another network size than the config says
        raise UserError(f"{path}: its weights do not match its config ({str(exc).splitlines()[0][:120]})") from None
    spec = WindowSpec(cfg.data.n_obs, cfg.data.horizon, cfg.data.n_action)
    schedule = karras_schedule(num_steps or d.num_steps, d.sampler_sigma_min, d.sampler_sigma_max, d.rho)
    image_shape = ckpt["image_shape"]
    return DiffusionPolicy(net, Normalizer.from_state(ckpt["normalizer"]), spec, schedule, device, seed, cfg,
                           image_size=tuple(image_shape[:2]) if image_shape else None)
