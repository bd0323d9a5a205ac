"""The low-dimensional denoising network: a residual MLP over the whole action chunk, AdaLN-conditioned.

For state observations the action chunk is tiny (horizon 16 x 2 numbers), so a temporal U-Net spends
almost all of its compute on convolutions over 16 time steps with hundreds of channels. This network
flattens the chunk (B, T * Da) into one vector and runs a stack of residual MLP blocks on it (the family
IDQL and other low-dim diffusion policies use). Conditioning is adaptive LayerNorm with a zero-initialised
gate (DiT's adaLN-Zero): the noise-level embedding and the observation vector are turned into a
per-block scale, shift and gate, so every block starts as the identity and the condition decides how
much each block changes the chunk. Same interface as TemporalUnet: F(x, c_noise, cond) -> shape of x.

Cost per sample is about 2 * depth * width * (3 * width) multiply-adds, against a U-Net whose cost grows
with width^2 * horizon * kernel; benchmarks/train_speed.py measures both.
"""
from __future__ import annotations

import torch
from torch import nn

from harness.learning.network import NoiseEmbedding


class AdaLNBlock(nn.Module):
    """h + gate * MLP(LayerNorm(h) * (1 + scale) + shift), with (scale, shift, gate) from the condition."""

    def __init__(self, width: int, cond_dim: int, expand: int = 2):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.modulation = nn.Linear(cond_dim, 3 * width)
        nn.init.zeros_(self.modulation.weight)   # adaLN-Zero: the block is the identity at initialisation
        nn.init.zeros_(self.modulation.bias)
        self.mlp = nn.Sequential(nn.Linear(width, expand * width), nn.Mish(), nn.Linear(expand * width, width))

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:  # h (B, W), cond (B, C)
        scale, shift, gate = self.modulation(cond).chunk(3, dim=-1)            # (B, W) each
        return h + gate * self.mlp(self.norm(h) * (1 + scale) + shift)


class ChunkMLP(nn.Module):
    """F(x, c_noise, cond) for an action chunk x (B, T, Da); the EDM preconditioning wraps it (diffusion.py)."""

    def __init__(self, action_dim: int, horizon: int, cond_dim: int, width: int = 256, depth: int = 4,
                 noise_dim: int = 128):
        super().__init__()
        self.horizon, self.action_dim = horizon, action_dim
        self.noise_emb = NoiseEmbedding(noise_dim)
        self.cond = nn.Sequential(nn.Linear(noise_dim + cond_dim, width), nn.Mish(), nn.Linear(width, width),
                                  nn.Mish())
        self.inp = nn.Linear(horizon * action_dim, width)
        self.blocks = nn.ModuleList(AdaLNBlock(width, width) for _ in range(depth))
        self.out_norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, horizon * action_dim)

    def forward(self, x, c_noise, cond):  # x (B, T, Da), c_noise (B,), cond (B, cond_dim)
        if x.shape[1:] != (self.horizon, self.action_dim):
            raise ValueError(f"chunk of shape {tuple(x.shape[1:])}, this network was built for "
                             f"({self.horizon}, {self.action_dim})")
        c = self.cond(torch.cat([self.noise_emb(c_noise), cond], dim=-1))   # (B, W)
        h = self.inp(x.flatten(1))                                          # (B, W)
        for block in self.blocks:
            h = block(h, c)
        return self.out(self.out_norm(h)).view_as(x)                        # (B, T, Da)
