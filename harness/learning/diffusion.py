"""Diffusion in the variance-exploding, x0-prediction form of EDM (Karras et al. 2022).

Forward process: x_sigma = x0 + sigma * z. The model is a denoiser D(x_sigma, sigma) ~ E[x0 | x_sigma],
built from a raw network F with EDM's preconditioning so that F's inputs and targets have unit variance
at every sigma:

    D(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma), cond)
    c_skip = sd^2 / (sigma^2 + sd^2)     c_out = sigma sd / sqrt(sigma^2 + sd^2)
    c_in = 1 / sqrt(sigma^2 + sd^2)      c_noise = ln(sigma) / 4          (sd = sigma_data)

Training sigmas are log-normal, ln sigma ~ N(P_mean, P_std^2) (`EDM.sample_sigma`, called by
sources.SourceSampler); the loss weight lambda(sigma) = 1 / c_out^2 makes lambda ||D - x0||^2 =
||F - F_target||^2, a unit-scale regression. Sampling is EDM's Heun sampler on the rho-schedule, deterministic
(`heun_sample`, Algorithm 1) or stochastic (`heun_churn_sample`, Algorithm 2); the schedule's bounds belong to
the sampler (`karras_schedule`), not to the model. The other formulation, diffusion_policy's DDPM, is
harness/learning/ddpm.py; both expose `sample_sigma`, `loss_weight` and `validation_sigmas`, so methods.py and
sources.py are written once for both.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
from torch import nn


@dataclasses.dataclass
class EDM:
    """The numbers that define training noise and preconditioning (all in normalized action units)."""
    sigma_data: float = 0.5
    P_mean: float = -1.2
    P_std: float = 1.2

    def precond(self, sigma: torch.Tensor):
        """c_skip, c_out, c_in, c_noise for sigma (any shape)."""
        sd2 = self.sigma_data ** 2
        total = sigma ** 2 + sd2
        c_skip = sd2 / total
        c_out = sigma * self.sigma_data / total.sqrt()
        c_in = 1 / total.sqrt()
        c_noise = sigma.clamp_min(1e-20).log() / 4
        return c_skip, c_out, c_in, c_noise

    def loss_weight(self, sigma: torch.Tensor) -> torch.Tensor:
        """lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2 = 1 / c_out^2."""
        return (sigma ** 2 + self.sigma_data ** 2) / (sigma * self.sigma_data) ** 2

    def sample_sigma(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Training noise levels: ln sigma ~ N(P_mean, P_std^2)."""
        return np.exp(self.P_mean + self.P_std * rng.standard_normal(n))

    def validation_sigmas(self) -> np.ndarray:
        """8 fixed noise levels for validation losses: the octile midpoints of the training log-normal."""
        from scipy.stats import norm
        return np.exp(self.P_mean + self.P_std * norm.ppf((np.arange(8) + 0.5) / 8))


def karras_schedule(num_steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                    rho: float = 7.0) -> torch.Tensor:
    """(num_steps + 1,) decreasing sigmas from sigma_max to sigma_min, then 0 (EDM eq. 5)."""
    i = torch.arange(num_steps, dtype=torch.float64)
    inv_rho = 1 / rho
    frac = i / max(num_steps - 1, 1)
    t = (sigma_max ** inv_rho + frac * (sigma_min ** inv_rho - sigma_max ** inv_rho)) ** rho
    return torch.cat([t, torch.zeros(1, dtype=torch.float64)])


class Denoiser(nn.Module):
    """D(x, sigma, cond) ~ E[x0 | x_sigma = x] around a raw network F(x, c_noise, cond)."""

    def __init__(self, net: nn.Module, edm: EDM):
        super().__init__()
        self.net = net
        self.edm = edm

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        # x (B, T, D), sigma (B,), cond (B, C) -> (B, T, D)
        sigma = sigma.to(torch.float32).reshape(-1)
        c_skip, c_out, c_in, c_noise = (c.reshape(-1, *([1] * (x.dim() - 1))) for c in self.edm.precond(sigma))
        f = self.net(c_in * x, c_noise.reshape(-1), cond)
        return c_skip * x + c_out * f.to(x.dtype)


@torch.no_grad()
def heun_sample(denoiser, cond: torch.Tensor, noise: torch.Tensor, schedule: torch.Tensor) -> torch.Tensor:
    """Deterministic Heun (EDM Algorithm 1 without churn): unit `noise` (B, T, D) -> sample (B, T, D).

    `schedule` (N + 1,) decreasing sigmas ending in 0 (`karras_schedule`); 2N - 1 denoiser evaluations.
    The result depends only on `noise` and `cond`, so the caller controls randomness by choosing the noise.
    """
    sigmas = schedule.tolist()
    x = noise.to(torch.float32) * sigmas[0]
    for s_cur, s_next in zip(sigmas[:-1], sigmas[1:]):
        x = heun_step(denoiser, cond, x, s_cur, s_next)
    return x


def heun_step(denoiser, cond: torch.Tensor, x: torch.Tensor, s_cur: float, s_next: float) -> torch.Tensor:
    """One step of the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma from s_cur to s_next:
    Euler, corrected by the trapezoid rule (Heun) unless s_next is 0. x (B, T, D) -> (B, T, D)."""
    ones = torch.ones(len(x), device=x.device)
    d = (x - denoiser(x, ones * s_cur, cond)) / s_cur
    x_next = x + (s_next - s_cur) * d
    if s_next > 0:
        d_next = (x_next - denoiser(x_next, ones * s_next, cond)) / s_next
        x_next = x + (s_next - s_cur) * (d + d_next) / 2
    return x_next


@dataclasses.dataclass
class Churn:
    """EDM's stochasticity settings (Algorithm 2): at sigma in [S_min, S_max] the sampler first raises the
    noise to sigma_hat = (1 + gamma) sigma, gamma = min(S_churn / N, sqrt(2) - 1), with fresh noise scaled
    by S_noise. Defaults: EDM's ImageNet-64 settings (Karras et al. 2022, Table 5)."""
    S_churn: float = 40.0
    S_min: float = 0.05
    S_max: float = 50.0
    S_noise: float = 1.003


@torch.no_grad()
def heun_churn_sample(denoiser, cond: torch.Tensor, noise: torch.Tensor, schedule: torch.Tensor, churn: Churn,
                      generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Stochastic Heun (EDM Algorithm 2): unit `noise` (B, T, D) -> sample (B, T, D).

    Each step first adds fresh noise, eps ~ N(0, S_noise^2 I), to move from sigma up to sigma_hat, then takes
    a Heun step from sigma_hat down to the next sigma. Row b's fresh noise comes from generators[b] only, so
    a row's sample does not depend on the batch it is in. With S_churn = 0 this is `heun_sample`.
    """
    from diffusers.utils.torch_utils import randn_tensor
    sigmas = schedule.tolist()
    n = len(sigmas) - 1
    x = noise.to(torch.float32) * sigmas[0]
    gens = list(generators)
    for s_cur, s_next in zip(sigmas[:-1], sigmas[1:]):
        gamma = min(churn.S_churn / n, 2 ** 0.5 - 1) if churn.S_min <= s_cur <= churn.S_max else 0.0
        s_hat = s_cur * (1 + gamma)
        if gamma > 0:
            eps = randn_tensor(x.shape, generator=gens, device=x.device, dtype=x.dtype) * churn.S_noise
            x = x + (s_hat ** 2 - s_cur ** 2) ** 0.5 * eps                  # raise the noise to s_hat
        x = heun_step(denoiser, cond, x, s_hat, s_next)
    return x
