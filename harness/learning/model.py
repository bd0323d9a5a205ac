"""The policy network: observation encoder + denoiser (EDM or DDPM, harness/learning/diffusion.py, ddpm.py) over the
action chunk.

The observation history, the low-dim features `data.low_dim` selects (all 6, or the pusher's 2), plus
per-step features of every camera the policy sees (one encoder per camera; crops as diffusion_policy:
random in training, centred at evaluation), is flattened into one conditioning vector
(B, n_obs * (D_low + F_img * cameras)) for the denoising network's conditioning: the U-Net's FiLM layers
(`policy.arch: unet`, harness/learning/network.py) or the residual MLP's adaptive LayerNorms (`mlp`, harness/learning/mlp.py).
"""
from __future__ import annotations

import torch
from torch import nn

from harness.learning.windows import ACTION_DIM, LOW_DIM_COLUMNS
from harness.learning.ddpm import DDPM, VPDenoiser
from harness.learning.diffusion import EDM, Denoiser
from harness.learning.mlp import ChunkMLP
from harness.learning.network import TemporalUnet
from harness.learning.train_config import DiffusionConfig, PolicyConfig, TrainConfig
from harness.learning.vision import ImageObsEncoder

Formulation = EDM | DDPM   # what methods and the source sampler need: sample_sigma, loss_weight, validation_sigmas


class PolicyNet(nn.Module):
    def __init__(self, cfg: PolicyConfig, n_obs: int, horizon: int, formulation: Formulation,
                 image_keys: list[str] = (), low_dim: list[str] = ("agent_pos", "slider_pose")):
        super().__init__()
        # the obs_features columns this policy sees (a pixel policy as published: the pusher's xy alone)
        columns = sorted(c for name in low_dim for c in LOW_DIM_COLUMNS[name])
        self.register_buffer("low_dim_columns", torch.tensor(columns, dtype=torch.long), persistent=False)
        self.image_encoder = ImageObsEncoder(cfg.image, list(image_keys), cfg.n_groups) if image_keys else None
        per_step = len(columns) + (self.image_encoder.feature_dim if image_keys else 0)
        cond_dim = n_obs * per_step
        if cfg.arch == "mlp":
            net = ChunkMLP(ACTION_DIM, horizon, cond_dim, cfg.mlp_width, cfg.mlp_depth, cfg.noise_dim)
        else:
            net = TemporalUnet(ACTION_DIM, cond_dim, cfg.down_dims, cfg.noise_dim, cfg.kernel_size, cfg.n_groups)
        # D(x_sigma, sigma, cond) either way; the VP one also gives the diffusers samplers their model output
        self.denoiser = Denoiser(net, formulation) if isinstance(formulation, EDM) else VPDenoiser(net, formulation)

    def encode(self, obs: torch.Tensor, images: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """obs (B, n_obs, 6) [images {key: (B, n_obs, H, W, 3) uint8}] -> cond (B, C)."""
        feats = obs.index_select(-1, self.low_dim_columns)                    # (B, n_obs, low-dim features)
        if self.image_encoder is not None:
            b, n = obs.shape[:2]
            flat = {key: value.flatten(0, 1) for key, value in images.items()}   # {key: (B * n_obs, H, W, 3)}
            img = self.image_encoder(flat).view(b, n, -1)                       # (B, n_obs, F * cameras)
            feats = torch.cat([feats, img], dim=-1)
        return feats.flatten(1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, obs: torch.Tensor,
                images: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """D(x, sigma | obs): (B, T, 2)."""
        return self.denoiser(x, sigma, self.encode(obs, images))


def make_formulation(d: DiffusionConfig, sigma_data: float) -> Formulation:
    """The diffusion formulation of a config (sigma_data matters to EDM's preconditioning only)."""
    if d.kind == "ddpm":
        # clip_sample_range null: a run not yet started (training never samples), or a checkpoint from before
        # the range was derived (2026-12-07), which sampled with diffusers' default 1
        clip_range = 1.0 if d.clip_sample_range is None else d.clip_sample_range
        return DDPM(d.num_train_timesteps, d.beta_schedule, d.prediction_type, d.clip_sample, clip_range)
    return EDM(sigma_data, d.P_mean, d.P_std)


def build_model(cfg: TrainConfig, sigma_data: float) -> tuple[PolicyNet, Formulation]:
    """The network and its formulation for a config: the one place both training and loading build it."""
    formulation = make_formulation(cfg.diffusion, sigma_data)
    return PolicyNet(cfg.policy, cfg.data.n_obs, cfg.data.horizon, formulation, cfg.data.image_keys,
                     cfg.data.low_dim), formulation


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
