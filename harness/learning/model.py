"""The policy network: observation encoder + denoiser (EDM or DDPM, harness/learning/diffusion.py, ddpm.py) over the
action chunk.

The observation history (B, n_obs, 6) low-dim features, plus per-step image features when images are
used, is flattened into one conditioning vector (B, n_obs * (6 + F_img)) for the denoising network's conditioning: the U-Net's FiLM layers
(`policy.arch: unet`, harness/learning/network.py) or the residual MLP's adaptive LayerNorms (`mlp`, harness/learning/mlp.py).
"""
from __future__ import annotations

import torch
from torch import nn

from harness.learning.windows import ACTION_DIM, OBS_DIM
from harness.learning.ddpm import DDPM, VPDenoiser
from harness.learning.diffusion import EDM, Denoiser
from harness.learning.mlp import ChunkMLP
from harness.learning.network import TemporalUnet
from harness.learning.train_config import DiffusionConfig, PolicyConfig, TrainConfig

Formulation = EDM | DDPM   # what methods and the source sampler need: sample_sigma, loss_weight, validation_sigmas
from harness.learning.vision import ImageEncoder


class PolicyNet(nn.Module):
    def __init__(self, cfg: PolicyConfig, n_obs: int, horizon: int, formulation: Formulation,
                 use_image: bool = False):
        super().__init__()
        self.image_encoder = ImageEncoder(cfg.image.widths, cfg.image.feature_dim, cfg.n_groups) \
            if use_image else None
        per_step = OBS_DIM + (cfg.image.feature_dim if use_image else 0)
        cond_dim = n_obs * per_step
        if cfg.arch == "mlp":
            net = ChunkMLP(ACTION_DIM, horizon, cond_dim, cfg.mlp_width, cfg.mlp_depth, cfg.noise_dim)
        else:
            net = TemporalUnet(ACTION_DIM, cond_dim, cfg.down_dims, cfg.noise_dim, cfg.kernel_size, cfg.n_groups)
        # D(x_sigma, sigma, cond) either way; the VP one also gives the diffusers samplers their model output
        self.denoiser = Denoiser(net, formulation) if isinstance(formulation, EDM) else VPDenoiser(net, formulation)

    def encode(self, obs: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        """obs (B, n_obs, 6) [image (B, n_obs, H, W, 3) uint8] -> cond (B, C)."""
        feats = obs
        if self.image_encoder is not None:
            b, n = image.shape[:2]
            img = self.image_encoder(image.flatten(0, 1)).view(b, n, -1)  # (B, n_obs, F)
            feats = torch.cat([obs, img], dim=-1)
        return feats.flatten(1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, obs: torch.Tensor,
                image: torch.Tensor | None = None) -> torch.Tensor:
        """D(x, sigma | obs): (B, T, 2)."""
        return self.denoiser(x, sigma, self.encode(obs, image))


def make_formulation(d: DiffusionConfig, sigma_data: float) -> Formulation:
    """The diffusion formulation of a config (sigma_data matters to EDM's preconditioning only)."""
    if d.kind == "ddpm":
        return DDPM(d.num_train_timesteps, d.beta_schedule, d.prediction_type, d.clip_sample)
    return EDM(sigma_data, d.P_mean, d.P_std)


def build_model(cfg: TrainConfig, sigma_data: float) -> tuple[PolicyNet, Formulation]:
    """The network and its formulation for a config: the one place both training and loading build it."""
    formulation = make_formulation(cfg.diffusion, sigma_data)
    return PolicyNet(cfg.policy, cfg.data.n_obs, cfg.data.horizon, formulation, cfg.data.use_image), formulation


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
