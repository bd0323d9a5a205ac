"""diffusion_policy's recipe: a variance-preserving DDPM (Ho et al. 2020) on the `diffusers` schedulers.

Forward process at timestep t in {0, ..., T-1}: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps
(`DDPMScheduler.add_noise`), abar_t from the scheduler (squared-cosine betas by default). The network
F(x_t, t, cond) predicts eps (`prediction_type: epsilon`) or x0 (`sample`); training draws t uniformly and
minimises ||F - eps||^2 (or ||F - x0||^2), averaged over the chunk; sampling runs the scheduler's `step`
(DDPM: fresh noise at every step; DDIM with eta = 0: deterministic) from x_T ~ N(0, I), clipping the
predicted x0 to [-clip_sample_range, clip_sample_range] when `clip_sample` is on. diffusion_policy clips to
[-1, 1], which holds all its training data because its normalizer maps their min..max there; this harness's
default normalizer maps percentiles of the clean actions there, so the trainer derives the range from the
data instead (training.derived_config) and a sampler can reach every training action.

One noise language for every method. Dividing x_t by sqrt(abar_t) gives the variance-exploding form
x_sigma = x_t / sqrt(abar_t) = x0 + sigma(t) eps with

    sigma(t) = sqrt((1 - abar_t) / abar_t),

so a VP timestep *is* a VE noise level, and an eps-predicting network *is* an x0 denoiser:

    D(x_sigma, sigma) = x_sigma - sigma F(sqrt(abar_t) x_sigma, t)      (epsilon)
    D(x_sigma, sigma) = F(sqrt(abar_t) x_sigma, t)                      (sample)

and ||F - eps||^2 = ||D - x0||^2 / sigma^2: the eps loss is the x0 loss with weight lambda(sigma) =
1 / sigma^2 (sample prediction: lambda = 1). So methods.py, sources.py and the annotations speak sigma under
both formulations and each method's loss is written once (docs/objectives.md, section 14, derives the VP
forms of the ambient losses).

The network's noise input is c_noise = t / 100: NoiseEmbedding stretches c_noise by 100, so the embedding
sees the integer timestep t exactly as diffusion_policy's SinusoidalPosEmb does.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
from torch import nn


@dataclasses.dataclass
class DDPM:
    """The VP schedule, its sigma(t) table and the training-time draws of the DDPM formulation."""
    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "epsilon"          # "epsilon" | "sample"
    clip_sample: bool = True
    clip_sample_range: float = 1.0            # |x0| bound of the clip (diffusers' clip_sample_range)

    def __post_init__(self):
        alphas_cumprod = self.scheduler("ddpm").alphas_cumprod                         # (T,) float32
        self.sqrt_abar = alphas_cumprod.sqrt()                                          # (T,) float32
        abar = alphas_cumprod.double().numpy()
        self.sigmas = np.sqrt((1 - abar) / abar)                                        # (T,) increasing

    def scheduler(self, sampler: str):
        """A fresh diffusers scheduler of this schedule: "ddpm" (DDPMScheduler) or "ddim" (DDIMScheduler).

        DDIM as diffusion_policy configures it: set_alpha_to_one, steps_offset 0, eta 0 (deterministic).
        """
        from diffusers import DDIMScheduler, DDPMScheduler
        common = dict(num_train_timesteps=self.num_train_timesteps, beta_schedule=self.beta_schedule,
                      prediction_type=self.prediction_type, clip_sample=self.clip_sample,
                      clip_sample_range=self.clip_sample_range)
        if sampler == "ddim":
            return DDIMScheduler(**common, set_alpha_to_one=True, steps_offset=0)
        return DDPMScheduler(**common, variance_type="fixed_small")

    # ---- training
    def sample_sigma(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Training noise levels: t ~ U{0, ..., T-1} first, then sigma(t) (sources.SourceSampler)."""
        return self.sigmas[rng.integers(0, self.num_train_timesteps, n)]

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The timestep t whose sigma(t) is nearest to sigma (in log sigma): exact for sigmas of the table."""
        table = torch.as_tensor(np.log(self.sigmas), dtype=torch.float64, device=sigma.device)
        return (sigma.double().log()[:, None] - table[None]).abs().argmin(dim=1)        # (B,) long

    def loss_weight(self, sigma: torch.Tensor) -> torch.Tensor:
        """lambda(sigma) that turns the x0 loss into diffusion_policy's: 1 / sigma^2 (eps), 1 (sample)."""
        return 1 / sigma ** 2 if self.prediction_type == "epsilon" else torch.ones_like(sigma)

    def validation_sigmas(self) -> np.ndarray:
        """8 fixed noise levels for validation losses: sigma(t) at the 8 octile midpoints of uniform t."""
        t = ((np.arange(8) + 0.5) / 8 * self.num_train_timesteps).astype(int)
        return self.sigmas[t]


class VPDenoiser(nn.Module):
    """An eps- (or x0-) predicting network F(x_t, c_noise, cond), seen two ways: as the x0 denoiser
    D(x_sigma, sigma, cond) that every method trains (forward), and as the scheduler's model output
    F(x_t, t, cond) that the diffusers samplers step with (model_output)."""

    def __init__(self, net: nn.Module, ddpm: DDPM):
        super().__init__()
        self.net = net
        self.ddpm = ddpm

    def model_output(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        # x_t (B, T, D), t (B,) long, cond (B, C) -> (B, T, D) predicted eps (or x0)
        return self.net(x_t, t.to(torch.float32) / 100, cond).to(x_t.dtype)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        # x = x_sigma (B, T, D), sigma (B,) -> (B, T, D) the x0 estimate
        sigma = sigma.to(torch.float32).reshape(-1)
        t = self.ddpm.timestep(sigma)                                                    # (B,)
        view = (-1,) + (1,) * (x.dim() - 1)
        scale = self.ddpm.sqrt_abar.to(x.device)[t].view(view)                           # sqrt(abar_t)
        out = self.model_output(scale * x, t, cond)                                      # x_t = sqrt(abar) x_sigma
        if self.ddpm.prediction_type == "sample":
            return out
        return x - sigma.view(view) * out                                                # x_sigma - sigma eps


@torch.no_grad()
def scheduler_sample(denoiser: VPDenoiser, cond: torch.Tensor, noise: torch.Tensor, scheduler,
                     num_steps: int, generators: Sequence[torch.Generator] | None) -> torch.Tensor:
    """diffusion_policy's conditional_sample: x_T = `noise` (B, T, D), then `num_steps` scheduler steps.

    `generators`: one torch.Generator per row for the per-step noise of DDPM (diffusers draws row b from
    generators[b]), so a row's sample depends on its own generator only, whatever the batch.
    """
    scheduler.set_timesteps(num_steps)
    x = noise.to(torch.float32)
    generator = list(generators) if generators is not None else None
    for t in scheduler.timesteps:
        tt = torch.full((len(x),), int(t), device=x.device, dtype=torch.long)
        out = denoiser.model_output(x, tt, cond)
        x = scheduler.step(out, int(t), x, generator=generator).prev_sample
    return x
