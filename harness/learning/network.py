"""The denoising network: a 1-D temporal U-Net over the action chunk, FiLM-conditioned.

Input: a noisy (preconditioned) action chunk (B, T, Da), the noise level c_noise (B,), and a conditioning
vector (B, C) built from the observation history. The noise level becomes a sinusoidal embedding + MLP;
it is concatenated with the observation vector and every residual block turns it into a per-channel
scale and shift (FiLM) of its hidden features. Convolutions run along time, so the chunk's temporal
structure is built in; `down_dims` sets the widths per resolution ([256, 512, 1024] in the published
diffusion-policy setup, a few dozen channels for tests).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class NoiseEmbedding(nn.Module):
    """Sinusoidal features of a scalar (EDM's c_noise = ln(sigma) / 4), then an MLP."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 4), nn.Mish(), nn.Linear(dim * 4, dim))

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, dim)
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=c_noise.device) / max(half - 1, 1))
        angles = c_noise.float()[:, None] * 100.0 * freqs[None, :]  # c_noise spans ~[-2, 1]: stretch it
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=-1))


def _groups(channels: int, n_groups: int) -> int:
    """Largest group count <= n_groups that divides channels (GroupNorm needs a divisor)."""
    g = min(n_groups, channels)
    while channels % g:
        g -= 1
    return g


class ConvBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish, 'same' padding along time."""

    def __init__(self, c_in: int, c_out: int, kernel: int, n_groups: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2),
            nn.GroupNorm(_groups(c_out, n_groups), c_out),
            nn.Mish(),
        )

    def forward(self, x):
        return self.block(x)


class FiLMResBlock(nn.Module):
    """Two conv blocks; between them the condition scales and shifts every channel; residual skip."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, n_groups: int):
        super().__init__()
        self.conv1 = ConvBlock(c_in, c_out, kernel, n_groups)
        self.conv2 = ConvBlock(c_out, c_out, kernel, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, cond):  # x (B, C_in, T), cond (B, cond_dim)
        h = self.conv1(x)
        scale, shift = self.film(cond).unsqueeze(-1).chunk(2, dim=1)  # (B, C_out, 1) each
        h = h * (1 + scale) + shift
        return self.conv2(h) + self.skip(x)


class TemporalUnet(nn.Module):
    """F(x, c_noise, cond) -> same shape as x. The EDM preconditioning wraps this (diffusion.py)."""

    def __init__(self, action_dim: int, cond_dim: int, down_dims=(256, 512, 1024), noise_dim: int = 128,
                 kernel: int = 5, n_groups: int = 8):
        super().__init__()
        self.noise_emb = NoiseEmbedding(noise_dim)
        film_dim = noise_dim + cond_dim
        dims = [action_dim, *down_dims]
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == len(down_dims) - 1
            self.down.append(nn.ModuleList([
                FiLMResBlock(c_in, c_out, film_dim, kernel, n_groups),
                FiLMResBlock(c_out, c_out, film_dim, kernel, n_groups),
                nn.Conv1d(c_out, c_out, 3, stride=2, padding=1) if not last else nn.Identity(),
            ]))
        mid = down_dims[-1]
        self.mid = nn.ModuleList([FiLMResBlock(mid, mid, film_dim, kernel, n_groups) for _ in range(2)])
        self.up = nn.ModuleList()
        for c_out, c_in in reversed(list(zip(down_dims[:-1], down_dims[1:]))):
            self.up.append(nn.ModuleList([
                FiLMResBlock(2 * c_in, c_out, film_dim, kernel, n_groups),
                FiLMResBlock(c_out, c_out, film_dim, kernel, n_groups),
                nn.ConvTranspose1d(c_out, c_out, 4, stride=2, padding=1),
            ]))
        self.out = nn.Sequential(ConvBlock(down_dims[0], down_dims[0], kernel, n_groups),
                                 nn.Conv1d(down_dims[0], action_dim, 1))
        self.n_down = len(down_dims) - 1

    def forward(self, x, c_noise, cond):  # x (B, T, Da), c_noise (B,), cond (B, cond_dim)
        if x.shape[1] % (2 ** self.n_down):
            raise ValueError(f"horizon {x.shape[1]} must be divisible by 2**{self.n_down} (len(down_dims) - 1 "
                             "downsamplings)")
        film = torch.cat([self.noise_emb(c_noise), cond], dim=-1)  # (B, film_dim)
        h = x.transpose(1, 2)  # (B, Da, T)
        skips = []
        for res1, res2, downsample in self.down:
            h = res2(res1(h, film), film)
            skips.append(h)
            h = downsample(h)
        for block in self.mid:
            h = block(h, film)
        for res1, res2, upsample in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = upsample(res2(res1(h, film), film))
        return self.out(h).transpose(1, 2)  # (B, T, Da)
