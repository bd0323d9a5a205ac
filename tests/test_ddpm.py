"""The DDPM formulation (harness/learning/ddpm.py) against diffusers itself, and every sampler against a closed-form
denoiser of a 2-D Gaussian mixture.

- The training loss through the shared Method classes equals diffusion_policy's loss computed by hand from
  `DDPMScheduler.add_noise` (eps and sample prediction), and the ambient losses equal their VP forms.
- DDPM-100, DDIM-10 and EDM's stochastic Heun (heun_churn) sample the mixture's distribution when the
  denoiser is its exact posterior mean.
- Under DDPM the source sampler draws t uniformly, truncation never draws a corrupt window at or below
  buffer * sigma_n, and the realised clean fraction is the analytic one.
"""
import math

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from scipy.stats import binomtest, norm

from harness.core.configs import ConfigError, from_dict
from harness.learning.ddpm import DDPM, VPDenoiser, scheduler_sample
from harness.learning.diffusion import Churn, heun_churn_sample, heun_sample, karras_schedule
from harness.learning.methods import METHODS, LossBatch
from harness.learning.sources import Mixing, SourceSampler
from harness.learning.train_config import TrainConfig

MEANS = torch.tensor([[-0.5, -0.3], [0.5, 0.3]], dtype=torch.float64)
WEIGHTS = torch.tensor([0.3, 0.7], dtype=torch.float64)
S = 0.25   # component std


class TinyNet(torch.nn.Module):
    """F(x, c_noise, cond) for chunks (B, T, 2): depends on all three, so a wrong input would show."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(2 + 1 + 3, 2)

    def forward(self, x, c_noise, cond):
        b, t, _ = x.shape
        extra = torch.cat([c_noise[:, None], cond], dim=1)[:, None].expand(b, t, 4)
        return self.lin(torch.cat([x, extra], dim=-1))


def _batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(n, 4, 2, generator=g) * 2 - 1                    # (B, T, 2) normalized actions
    cond = torch.randn(n, 3, generator=g)
    return x0, cond


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample"])
def test_plain_loss_is_diffusion_policys_loss_from_add_noise(prediction_type):
    ddpm = DDPM(prediction_type=prediction_type)
    net = TinyNet()
    model = VPDenoiser(net, ddpm)
    x0, cond = _batch()
    t = torch.tensor([0, 1, 17, 50, 98, 99])
    sigma = torch.from_numpy(ddpm.sigmas[t.numpy()]).float()
    out = METHODS["cotrain"]().loss(lambda x, s: model(x, s, cond), LossBatch(x0, sigma, torch.zeros(6, dtype=bool),
                                    torch.zeros(6)), ddpm, torch.Generator().manual_seed(3))
    # by hand, as diffusion_policy's compute_loss: the second draw of the generator is the training noise
    g = torch.Generator().manual_seed(3)
    torch.randn(x0.shape, generator=g)                                # z1 (contraction noise; unused here)
    eps = torch.randn(x0.shape, generator=g)
    scheduler = DDPMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2",
                              prediction_type=prediction_type, clip_sample=True)
    noisy = scheduler.add_noise(x0, eps, t)
    pred = net(noisy, t.float() / 100, cond)
    target = eps if prediction_type == "epsilon" else x0
    expected = (pred - target).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(out.loss, expected, rtol=2e-4, atol=1e-6)


def test_ambient_losses_equal_their_vp_eps_forms():
    """ambient: ||sqrt(a) z2 - a eps_hat||^2; ambient_rescaled: ||z2 / sqrt(a) - eps_hat||^2 (methods.py)."""
    ddpm = DDPM()
    net = TinyNet()
    model = VPDenoiser(net, ddpm)
    x, cond = _batch()
    t = torch.tensor([10, 30, 50, 70, 90, 99])
    sigma = torch.from_numpy(ddpm.sigmas[t.numpy()]).float()
    sigma_n = sigma * torch.tensor([0.0, 0.2, 0.5, 0.7, 0.9, 0.3])    # one clean-like row (sigma_n = 0)
    batch = LossBatch(x, sigma, torch.ones(6, dtype=bool), sigma_n)
    g = torch.Generator().manual_seed(5)
    z1, z2 = torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g)
    x_n = x + sigma_n.view(-1, 1, 1) * z1
    x_t = x_n + (sigma ** 2 - sigma_n ** 2).sqrt().view(-1, 1, 1) * z2
    sqrt_abar = ddpm.sqrt_abar[t].view(-1, 1, 1)
    eps_hat = net(sqrt_abar * x_t, t.float() / 100, cond)
    a = (1 - sigma_n ** 2 / sigma ** 2).view(-1, 1, 1)
    for name, vp_form in (("ambient", a.sqrt() * z2 - a * eps_hat), ("ambient_rescaled", z2 / a.sqrt() - eps_hat)):
        out = METHODS[name]().loss(lambda xt, s: model(xt, s, cond), batch, ddpm, torch.Generator().manual_seed(5))
        torch.testing.assert_close(out.loss, vp_form.pow(2).flatten(1).mean(1), rtol=2e-4, atol=1e-5)


# ---------------------------------------------------------------- sampling a Gaussian mixture
def posterior_mean(x: torch.Tensor, sigma: torch.Tensor, means: torch.Tensor = MEANS) -> torch.Tensor:
    """E[X0 | X0 + sigma Z = x] for the mixture; x (B, 1, 2), sigma (B,) -> (B, 1, 2)."""
    x = x.double()[:, 0]
    var = (S ** 2 + sigma.double() ** 2)[:, None]                                        # (B, 1)
    logw = WEIGHTS.log()[None] - ((x[:, None] - means[None]) ** 2).sum(-1) / (2 * var)   # (B, 2)
    w = torch.softmax(logw, dim=1)
    comp = means[None] + (S ** 2 / var)[..., None] * (x[:, None] - means[None])           # (B, 2, 2)
    return (w[..., None] * comp).sum(1)[:, None].float()


class ExactEps(torch.nn.Module):
    """The exact eps-predicting network of the mixture under a DDPM schedule: eps = (x_sigma - D) / sigma."""

    def __init__(self, ddpm: DDPM, means: torch.Tensor = MEANS):
        super().__init__()
        self.ddpm = ddpm
        self.means = means

    def forward(self, x_t, c_noise, cond):
        t = torch.round(c_noise * 100).long()
        sigma = torch.from_numpy(self.ddpm.sigmas).float()[t]
        x_sigma = x_t / self.ddpm.sqrt_abar[t].view(-1, 1, 1)
        return (x_sigma - posterior_mean(x_sigma, sigma, self.means)) / sigma.view(-1, 1, 1)


def _check_mixture(x: torch.Tensor, what: str, means: torch.Tensor = MEANS) -> None:
    """Mean and mixture weights within sampling error (N = 4000); covariance and each component's own spread
    within 20%. What few steps cost in spread is discretization, not error: measured component std DDIM-10
    -16%, DDIM-100 -4%, DDPM-100 -8%, heun-18 +4%, heun_churn-18 +12% (+1% at 64 steps: they converge)."""
    x = x.double()[:, 0]
    comp_var = torch.eye(2, dtype=torch.float64) * S ** 2
    mean = (WEIGHTS[:, None] * means).sum(0)
    cov = comp_var + (WEIGHTS[:, None, None] * (means - mean)[:, :, None] * (means - mean)[:, None, :]).sum(0)
    n = len(x)
    assert torch.allclose(x.mean(0), mean, atol=4 * math.sqrt(float(cov.diagonal().max()) / n)), (what, x.mean(0))
    assert torch.allclose(torch.cov(x.T), cov, rtol=0.2, atol=0.01), (what, torch.cov(x.T), cov)
    heavy = float((x[:, 0] > 0).double().mean())
    p_right = norm.cdf(float(means[1, 0]) / S)             # a component's mass on its own side of x = 0
    expected = float(WEIGHTS[1]) * p_right + float(WEIGHTS[0]) * (1 - p_right)
    assert abs(heavy - expected) < 4 * math.sqrt(0.21 / n), (what, heavy, expected)
    # each component's own spread: samples collapsed onto the means (a biased sampler) would fail this
    near = x[x[:, 0] > 0] - means[1]
    assert abs(float(near.std(0).mean()) - S) < 0.2 * S, (what, float(near.std(0).mean()))


def _gens(n, seed=0):
    return [torch.Generator().manual_seed(seed * 100_003 + i) for i in range(n)]


@pytest.mark.parametrize("sampler,steps", [("ddpm", 100), ("ddim", 10)])
def test_ddpm_and_ddim_sample_a_gaussian_mixture(sampler, steps):
    ddpm = DDPM()
    model = VPDenoiser(ExactEps(ddpm), ddpm)
    noise = torch.randn(4000, 1, 2, generator=torch.Generator().manual_seed(1))
    x = scheduler_sample(model, torch.zeros(4000, 3), noise, ddpm.scheduler(sampler), steps, _gens(4000))
    _check_mixture(x, f"{sampler}-{steps}")


@pytest.mark.parametrize("sampler,steps", [("ddpm", 100), ("ddim", 10)])
def test_ddpm_and_ddim_reach_modes_beyond_the_unit_interval_with_a_wider_clip(sampler, steps):
    """Normalized data need not lie in [-1, 1] (the percentile normalizer leaves 15% of the GCS actions
    outside): with the clip range derived from the data the samplers reach the modes at +-1.6; clipped to
    [-1, 1], as before 2026-12-07, they cannot emit a single value beyond 1."""
    far = MEANS * torch.tensor([3.2, 1.0], dtype=torch.float64)      # modes at x = -1.6 and 1.6
    noise = torch.randn(4000, 1, 2, generator=torch.Generator().manual_seed(1))
    wide = DDPM(clip_sample_range=2.6)      # what training derives: max |x| of the data (~2.5), rounded up
    x = scheduler_sample(VPDenoiser(ExactEps(wide, far), wide), torch.zeros(4000, 3), noise, wide.scheduler(sampler),
                         steps, _gens(4000))
    _check_mixture(x, f"{sampler}-{steps} clip 2.6", far)
    unit = DDPM()                           # diffusers' (and diffusion_policy's) clip to [-1, 1]
    cut = scheduler_sample(VPDenoiser(ExactEps(unit, far), unit), torch.zeros(4000, 3), noise,
                           unit.scheduler(sampler), steps, _gens(4000))
    assert float(cut.abs().max()) <= 1.0 + 1e-6 and float(x.abs().max()) > 1.5


@pytest.mark.parametrize("name", ["heun", "heun_churn"])
def test_edm_samplers_sample_a_gaussian_mixture(name):
    noise = torch.randn(4000, 1, 2, generator=torch.Generator().manual_seed(1))
    schedule = karras_schedule(18, sigma_min=0.002, sigma_max=80.0)
    denoise = lambda x, sigma, cond: posterior_mean(x, sigma)
    if name == "heun":
        x = heun_sample(denoise, None, noise, schedule)
    else:
        x = heun_churn_sample(denoise, None, noise, schedule, Churn(), _gens(4000))
    _check_mixture(x, name)


def test_stochastic_samplers_draw_each_rows_noise_from_its_own_generator():
    """Row b's sample depends on generators[b] only: a batch of 3 equals 3 batches of 1, and another
    generator changes the sample (so the noise is really used)."""
    ddpm = DDPM()
    model = VPDenoiser(ExactEps(ddpm), ddpm)
    noise = torch.randn(3, 1, 2, generator=torch.Generator().manual_seed(2))
    denoise = lambda x, sigma, cond: posterior_mean(x, sigma)
    schedule = karras_schedule(8, sigma_max=80.0)
    runs = {
        "ddpm": lambda n, g: scheduler_sample(model, torch.zeros(len(n), 3), n, ddpm.scheduler("ddpm"), 100, g),
        "heun_churn": lambda n, g: heun_churn_sample(denoise, None, n, schedule, Churn(), g),
    }
    for name, run in runs.items():
        batched = run(noise, _gens(3))
        single = torch.cat([run(noise[i: i + 1], _gens(3)[i: i + 1]) for i in range(3)])
        torch.testing.assert_close(batched, single, rtol=0, atol=1e-6, msg=name)
        assert not torch.allclose(batched, run(noise, _gens(3, seed=1)), atol=1e-3), name


# ---------------------------------------------------------------- the source sampler under DDPM
def test_ddpm_truncation_draws_t_uniformly_and_never_below_buffer_sigma_n():
    ddpm = DDPM()
    rng = np.random.default_rng(0)
    sigma_n = np.concatenate([np.zeros(100), rng.lognormal(np.log(0.35), 1.0, 800), np.full(100, np.inf)])
    buffer = 1.2
    method = METHODS["truncated"](buffer=buffer)
    natural = Mixing(kind="natural", clean_episodes=50, corrupt_episodes=2000)
    sampler = SourceSampler(5000, method.valid_above(sigma_n), natural, ddpm.sample_sigma)
    draw = sampler.sample(300_000, rng)
    t = np.searchsorted(ddpm.sigmas, draw.sigma)
    assert np.array_equal(ddpm.sigmas[t], draw.sigma)                      # every sigma is a sigma(t)
    counts = np.bincount(t, minlength=100)
    assert counts.min() > 0.9 * 3000 and counts.max() < 1.1 * 3000         # uniform t: 3000 each, +-5 sd
    corrupt = draw.corrupt
    assert corrupt.any() and np.all(draw.sigma[corrupt] > buffer * sigma_n[draw.index[corrupt]])
    # analytic clean fraction from the sigma_n histogram: mean over t of E_c / (E_c + E_k f(sigma(t)))
    valid = (buffer * sigma_n[None, :] < ddpm.sigmas[:, None]).mean(1)     # (T,) valid corrupt fraction
    alpha = np.where(valid > 0, 50 / (50 + 2000 * valid), 1.0)
    expected = alpha.mean()
    got = binomtest(int((~corrupt).sum()), len(corrupt), expected)
    assert got.pvalue > 1e-3, (float((~corrupt).mean()), expected)


# ---------------------------------------------------------------- config
def test_config_refuses_a_sampler_of_the_other_formulation():
    with pytest.raises(ConfigError, match="diffusion.sampler"):
        from_dict(TrainConfig, {"diffusion": {"kind": "edm", "sampler": "ddim"}}, "cfg")
    with pytest.raises(ConfigError, match="diffusion.num_steps"):
        from_dict(TrainConfig, {"diffusion": {"kind": "ddpm", "num_steps": 101}}, "cfg")
    with pytest.raises(ConfigError, match="num_steps"):   # diffusion_policy's name, renamed
        from_dict(TrainConfig, {"diffusion": {"kind": "ddpm", "num_inference_steps": 10}}, "cfg")
    cfg = from_dict(TrainConfig, {"diffusion": {"kind": "ddpm"}}, "cfg")
    assert cfg.diffusion.resolved_sampler == "ddpm"
