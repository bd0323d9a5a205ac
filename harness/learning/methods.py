"""The methods the harness compares, one class each: everything that makes a method itself lives in its class.

Every method shares the network, the data pipeline and the sigma-first source sampler (sources.py). A
method decides three things about *corrupt* data, and nothing else:
  1. `valid_above(sigma_n)`: from which training noise level each corrupt window may be drawn (a threshold
     per window; inf = never), plus the optional locality band below `locality_sigma_max`;
  2. `mixing(natural, configured)`: alpha(sigma) = P(clean | sigma), where a corrupt window is valid;
  3. `loss(...)`: the per-sample loss, written as its equation below.
Adding a method is one class here (and one test); `METHODS` is the one list of names that configs, the
study and the plots read.

Notation (docs/objectives.md has the derivations). x: the sample's action chunk (B, T, D); sigma: its
training noise level; sigma_n: a corrupt window's own noise level (0 for clean samples); z1, z2 ~ N(0, I);
h = D(x_t, sigma) the x0 denoiser; lambda(sigma) the formulation's loss weight: 1 / c_out(sigma)^2 under EDM,
1 / sigma^2 under DDPM with eps prediction (1 with x0 prediction). Every loss is averaged over the chunk's
elements.
    x_n = x + sigma_n z1                      the "contraction" to level sigma_n (skipped when the data are
                                              already clean-plus-noise at sigma_n: contract = false)
    x_t = x_n + sqrt(sigma^2 - sigma_n^2) z2  which has the law of X0 + sigma Z
With sigma_n = 0 this is plain denoising: x_t = x + sigma z2.

Both formulations (harness/learning/diffusion.py, harness/learning/ddpm.py) speak this sigma: a DDPM timestep t is the level
sigma(t) = sqrt((1 - abar_t) / abar_t), its eps network is the denoiser h = x_t - sigma eps_hat (network input
sqrt(abar_t) x_t), and so each loss below is written once. Its VP (eps) form is in the docstring of each
class, derived in docs/objectives.md section 14; tests/test_ddpm.py checks that they agree.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar

import numpy as np
import torch

from harness.learning.sources import Mixing

# Smallest a = (sigma^2 - sigma_n^2) / sigma^2 used in a division, so a sample drawn a hair above sigma_n
# gives a huge but finite loss (that blow-up is the point of showing ambient_rescaled).
_MIN_A = 1e-6

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # (x_t (B, T, D), sigma (B,)) -> h (B, T, D)


@dataclasses.dataclass
class LossBatch:
    """What a loss needs of one batch (torch, one device)."""
    x: torch.Tensor          # (B, T, D) clean x0 for clean samples, the raw corrupt chunk otherwise
    sigma: torch.Tensor      # (B,) training noise level
    corrupt: torch.Tensor    # (B,) bool
    sigma_n: torch.Tensor    # (B,) the corrupt sample's noise level sigma_n (0 for clean samples)


@dataclasses.dataclass
class LossOut:
    loss: torch.Tensor       # (B,) per-sample weighted loss
    ambient: torch.Tensor    # (B,) bool: this sample used an ambient form (else the plain loss)


@dataclasses.dataclass
class Noised:
    x_n: torch.Tensor        # (B, T, D) the sample at its own noise level sigma_n
    x_t: torch.Tensor        # (B, T, D) the network input at the training sigma
    a: torch.Tensor          # (B, 1, 1) (sigma^2 - sigma_n^2) / sigma^2; 1 where sigma_n = 0


def add_noise(x: torch.Tensor, sigma: torch.Tensor, sigma_n: torch.Tensor, contract: bool,
              generator: torch.Generator | None) -> Noised:
    """x_n = x + sigma_n z1 (if contract), x_t = x_n + sqrt(sigma^2 - sigma_n^2) z2, for every method.

    z1 and z2 are drawn for every row whatever the method, so all methods consume the same noise stream.
    """
    view = (-1,) + (1,) * (x.dim() - 1)
    z1, z2 = _randn(x, generator), _randn(x, generator)
    x_n = x + (sigma_n.view(view) * z1 if contract else 0)                   # (B, T, D)
    extra = (sigma ** 2 - sigma_n ** 2).clamp_min(0).sqrt()                   # (B,)
    x_t = x_n + extra.view(view) * z2                                         # (B, T, D)
    a = (1 - sigma_n ** 2 / sigma ** 2).view(view)                            # (B, 1, 1)
    return Noised(x_n, x_t, a)


@dataclasses.dataclass
class Method:
    """A way of using corrupt data. The base class is plain denoising of every sample it is given."""
    name: ClassVar[str]
    needs_sigma_n: ClassVar[bool] = False    # corrupt windows need a noise level sigma_n (number/annotations)
    sweeps_alpha: ClassVar[bool] = False     # the study sweeps its mixing ratio alpha (a row per value)
    fixed_alpha: ClassVar[float | None] = None  # alpha it always uses (plots draw it on the alpha axis there)

    buffer: float = 1.0                      # corrupt window valid at sigma > buffer * sigma_n (ADP's buffer)
    locality_sigma_max: float | None = None  # corrupt data also used (plain loss) at sigma < this
    contract: bool = True                    # add sigma_n noise to corrupt chunks first (false: already noisy)

    def valid_above(self, sigma_n: np.ndarray) -> np.ndarray:
        """(N,) sigma above which each corrupt window may be drawn: every sigma (0)."""
        return np.zeros(len(sigma_n))

    def mixing(self, natural: Mixing, configured: Mixing | None) -> Mixing:
        """alpha(sigma): the configured one (objective.alpha / alpha_table), else the natural ratio."""
        return configured or natural

    def loss(self, denoise: Denoise, batch: LossBatch, diffusion, generator=None) -> LossOut:
        """Plain denoising:  lambda(sigma) ||h(x + sigma z) - x||^2.

        `diffusion` is the formulation (EDM or DDPM): only its loss_weight is used. Under DDPM with eps
        prediction this is diffusion_policy's loss ||eps_hat(sqrt(abar) x + sqrt(1 - abar) z, t) - z||^2.
        """
        sigma = batch.sigma.to(batch.x.dtype)
        noised = add_noise(batch.x, sigma, torch.zeros_like(sigma), self.contract, generator)
        h = denoise(noised.x_t, sigma)
        return LossOut(weighted_mse(h, batch.x, sigma, diffusion), torch.zeros_like(batch.corrupt))

    @classmethod
    def settings_error(cls, objective) -> str | None:
        """Why these objective settings do not fit this method (None if they do)."""
        if not cls.needs_sigma_n:
            for key, unset in (("sigma_n", None), ("locality_sigma_max", None), ("buffer", 1.0),
                               ("contract", True)):
                if getattr(objective, key) != unset:
                    return f"objective.{key} does not apply to method {cls.name}"
            for key in objective.per_window_reshaping():
                return f"objective.{key} does not apply to method {cls.name}"
        return None


class TargetOnly(Method):
    """Clean data only: corrupt windows are never drawn (they still shape the observation normalizer)."""
    name = "target_only"
    fixed_alpha = 1.0

    def valid_above(self, sigma_n):
        return np.full(len(sigma_n), np.inf)

    def mixing(self, natural, configured):
        return Mixing(kind="constant", value=1.0)

    @classmethod
    def settings_error(cls, objective):
        if objective.alpha_table is not None:
            return f"objective.alpha_table does not apply to method {cls.name}"
        return super().settings_error(objective)


class Cotrain(Method):
    """Clean and corrupt windows alike at every sigma, mixed with P(clean) = alpha (natural: by episodes)."""
    name = "cotrain"
    sweeps_alpha = True


class Truncated(Method):
    """Ambient Diffusion Policy: plain loss, but a corrupt window only at sigma > buffer * sigma_n (or in the
    locality band), where noise has made it indistinguishable from clean data."""
    name = "truncated"
    needs_sigma_n = True

    def valid_above(self, sigma_n):
        return self.buffer * np.asarray(sigma_n, float)


class Ambient(Truncated):
    """Corrupt windows above their sigma_n learn through the ambient (double Tweedie) loss:

        lambda ||a h(x_t) + (1 - a) x_t - x_n||^2,   a = (sigma^2 - sigma_n^2) / sigma^2

    the predicted x_n against x_n; clean rows (sigma_n = 0, a = 1) reduce to the plain loss, and so do
    corrupt rows drawn in the locality band below their sigma_n. Under DDPM (eps prediction, lambda =
    1 / sigma^2, h = x_t - sigma eps_hat, x_t - x_n = sigma sqrt(a) z2) the same loss reads

        ||sqrt(a) z2 - a eps_hat||^2 = a ||z2 - sqrt(a) eps_hat||^2,   a = 1 - sigma_n^2 / sigma(t)^2
    """
    name = "ambient"

    def ambient_rows(self, batch: LossBatch, sigma: torch.Tensor) -> torch.Tensor:
        return batch.corrupt & (sigma > batch.sigma_n) & (batch.sigma_n > 0)

    def loss(self, denoise, batch, diffusion, generator=None):
        sigma = batch.sigma.to(batch.x.dtype)
        rows = self.ambient_rows(batch, sigma)                                          # (B,)
        sigma_n = torch.where(rows, batch.sigma_n.to(sigma.dtype), torch.zeros_like(sigma))
        n = add_noise(batch.x, sigma, sigma_n, self.contract, generator)
        h = denoise(n.x_t, sigma)                                                       # ~ E[X0 | x_t]
        residual = self.residual(h, n)
        return LossOut(diffusion.loss_weight(sigma) * residual.pow(2).flatten(1).mean(dim=1), rows)

    def residual(self, h: torch.Tensor, n: Noised) -> torch.Tensor:
        return n.a * h + (1 - n.a) * n.x_t - n.x_n


class AmbientRescaled(Ambient):
    """The same minimiser written as a target for h, which blows up as sigma -> sigma_n (shown on purpose):

        lambda ||h(x_t) - (x_n - (1 - a) x_t) / a||^2

    It weights the error of h by lambda instead of lambda a^2; the target's variance grows like 1 / a^2
    (`rescaled_target_variance`). Under DDPM (eps prediction) it is an eps target that blows up alike:

        ||z2 / sqrt(a) - eps_hat||^2
    """
    name = "ambient_rescaled"

    def residual(self, h, n):
        return h - (n.x_n - (1 - n.a) * n.x_t) / n.a.clamp_min(_MIN_A)


METHODS: dict[str, type[Method]] = {m.name: m for m in (TargetOnly, Cotrain, Truncated, Ambient, AmbientRescaled)}


def method_class(name: str) -> type[Method]:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]


def weighted_mse(h: torch.Tensor, target: torch.Tensor, sigma: torch.Tensor, diffusion) -> torch.Tensor:
    """(B,) lambda(sigma) * mean squared error per sample: the formulation's weighting of every loss here."""
    return diffusion.loss_weight(sigma) * (h - target).pow(2).flatten(1).mean(dim=1)


def make_method(objective) -> Method:
    """The method of an ObjectiveConfig, with its settings."""
    cls = method_class(objective.method)
    return cls(buffer=objective.buffer, locality_sigma_max=objective.locality_sigma_max,
               contract=objective.contract)


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
