"""Per-sample training losses of every method; see docs/objectives.md for the derivations.

All methods share the network, the data pipeline and the sigma-first source sampler (sources.py); they
differ only in what a *corrupt* sample contributes at the sigma it was drawn with. Every loss carries the
same outer EDM weight lambda(sigma) = 1 / c_out(sigma)^2 and is averaged over the chunk's elements:

    plain            lambda ||h(x0 + sigma z) - x0||^2                         (clean samples; cotrain and
                                                                                truncated corrupt samples;
                                                                                the locality band)
    ambient          lambda ||a h(x_t) + (1 - a) x_t - x_n||^2,  a = (sigma^2 - sigma_n^2) / sigma^2
    ambient_rescaled lambda ||h(x_t) - (x_n - (1 - a) x_t) / a||^2

with x_n = x + sigma_n z1 (the "contraction"; skipped when the data are already noisy at sigma_n) and
x_t = x_n + sqrt(sigma^2 - sigma_n^2) z2, which has the law of X0 + sigma Z. Both ambient forms have the
same minimiser h = E[X0 | X_t] (double Tweedie); `ambient` weights the error of h by lambda a^2,
`ambient_rescaled` by lambda, at the price of a target whose variance grows like 1 / a^2 as sigma -> sigma_n.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import torch

from harness.diffusion import EDM

METHODS = ("target_only", "cotrain", "ambient", "ambient_rescaled", "truncated")
# Smallest a = (sigma^2 - sigma_n^2) / sigma^2 used in a division, so a sample drawn a hair above sigma_n
# gives a huge but finite loss (that blow-up is the point of showing ambient_rescaled).
_MIN_A = 1e-6


@dataclasses.dataclass
class LossBatch:
    """What a loss needs of one batch (torch, one device)."""
    x: torch.Tensor          # (B, T, D) clean x0 for clean samples, the raw corrupt chunk otherwise
    sigma: torch.Tensor      # (B,) training noise level
    corrupt: torch.Tensor    # (B,) bool
    sigma_n: torch.Tensor    # (B,) the corrupt sample's sigma_n / sigma_min (0 for clean samples)


@dataclasses.dataclass
class LossOut:
    loss: torch.Tensor       # (B,) per-sample weighted loss
    ambient: torch.Tensor    # (B,) bool: this sample used an ambient form (else the plain loss)


class Objective:
    """Turns a batch and a denoiser into per-sample losses for one method.

    `contract`: add sigma_n noise to corrupt chunks first (sim data); False when the stored corrupt data
    already are clean-plus-Gaussian-noise at sigma_n. Used by ambient methods only.
    """

    def __init__(self, method: str, edm: EDM, contract: bool = True):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; known: {METHODS}")
        self.method, self.edm, self.contract = method, edm, contract

    @property
    def is_ambient(self) -> bool:
        return self.method in ("ambient", "ambient_rescaled")

    def __call__(self, denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], batch: LossBatch,
                 generator: torch.Generator | None = None) -> LossOut:
        x, sigma = batch.x, batch.sigma.to(batch.x.dtype)
        view = (-1,) + (1,) * (x.dim() - 1)
        z1 = _randn(x, generator)
        z2 = _randn(x, generator)
        # Ambient rows: corrupt samples drawn above their sigma_n. The sampler only draws a corrupt
        # sample below its sigma_n inside the locality band, where the plain loss applies.
        ambient = batch.corrupt & (sigma > batch.sigma_n) & (batch.sigma_n > 0) if self.is_ambient \
            else torch.zeros_like(batch.corrupt)
        sigma_n = torch.where(ambient, batch.sigma_n.to(x.dtype), torch.zeros_like(sigma))

        x_n = x + (sigma_n.view(view) * z1 if self.contract else 0)        # (B, T, D), = x on plain rows
        extra = (sigma ** 2 - sigma_n ** 2).clamp_min(0).sqrt()               # (B,), = sigma on plain rows
        x_t = x_n + extra.view(view) * z2
        h = denoise(x_t, sigma)                                               # (B, T, D) ~ E[X0 | x_t]

        weight = self.edm.loss_weight(sigma)                                  # (B,) lambda(sigma)
        a = (1 - sigma_n ** 2 / sigma ** 2).view(view)                        # 1 on plain rows
        if self.method == "ambient_rescaled":
            target = (x_n - (1 - a) * x_t) / a.clamp_min(_MIN_A)              # rescaled target for h
            residual = h - target
        else:
            # plain rows: a = 1, x_n = x, so this is h - x0; ambient rows: the predicted x_n minus x_n
            residual = a * h + (1 - a) * x_t - x_n
        per_sample = residual.pow(2).flatten(1).mean(dim=1)
        return LossOut(weight * per_sample, ambient)


def rescaled_target_variance(sigma: float, sigma_n: float) -> float:
    """Per-element conditional variance of the ambient_rescaled target given x_t, for X0 known exactly.

    Given x_t, x_n = x_t - sqrt(sigma^2 - sigma_n^2) z2 has a residual variance (of the x_n part not
    explained by x_t) of sigma_n^2 (sigma^2 - sigma_n^2) / sigma^2 when X0 is fixed; dividing by a scales
    it by 1 / a^2, giving sigma_n^2 sigma^2 / (sigma^2 - sigma_n^2), which diverges as sigma -> sigma_n.
    The `ambient` form's residual variance is a^2 times that: sigma_n^2 (sigma^2 - sigma_n^2) / sigma^2 -> 0.
    """
    if sigma <= sigma_n:
        return float("inf")
    return sigma_n ** 2 * sigma ** 2 / (sigma ** 2 - sigma_n ** 2)


def _randn(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Noise drawn on the CPU generator (reproducible on any device), then moved to `like`'s device."""
    return torch.randn(like.shape, generator=generator, dtype=like.dtype).to(like.device)
