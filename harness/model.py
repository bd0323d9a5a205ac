"""The policy network: observation encoder + EDM denoiser over the action chunk.

The observation history (B, n_obs, 6) low-dim features, plus per-step image features when images are
used, is flattened into one conditioning vector (B, n_obs * (6 + F_img)) for the denoising network's conditioning: the U-Net's FiLM layers
(`policy.arch: unet`, harness/network.py) or the residual MLP's adaptive LayerNorms (`mlp`, harness/mlp.py).
"""
from __future__ import annotations

import torch
from torch import nn

from harness.windows import ACTION_DIM, OBS_DIM
from harness.diffusion import EDM, Denoiser
from harness.mlp import ChunkMLP
from harness.network import TemporalUnet
from harness.train_config import PolicyConfig, TrainConfig
from harness.vision import ImageEncoder


class PolicyNet(nn.Module):
    def __init__(self, cfg: PolicyConfig, n_obs: int, horizon: int, edm: EDM, use_image: bool = False):
        super().__init__()
        self.image_encoder = ImageEncoder(cfg.image.widths, cfg.image.feature_dim, cfg.n_groups) \
            if use_image else None
        per_step = OBS_DIM + (cfg.image.feature_dim if use_image else 0)
        cond_dim = n_obs * per_step
        if cfg.arch == "mlp":
            net = ChunkMLP(ACTION_DIM, horizon, cond_dim, cfg.mlp_width, cfg.mlp_depth, cfg.noise_dim)
        else:
            net = TemporalUnet(ACTION_DIM, cond_dim, cfg.down_dims, cfg.noise_dim, cfg.kernel_size, cfg.n_groups)
        self.denoiser = Denoiser(net, edm)

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


def build_model(cfg: TrainConfig, sigma_data: float) -> tuple[PolicyNet, EDM]:
    """The network and its preconditioning for a config: the one place both training and loading build it."""
    d = cfg.diffusion
    edm = EDM(sigma_data, d.P_mean, d.P_std)
    return PolicyNet(cfg.policy, cfg.data.n_obs, cfg.data.horizon, edm, cfg.data.use_image), edm


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
