"""EDM preconditioning, schedule and the Heun sampler, checked against exact Gaussian denoisers."""
import math

import torch

from harness.learning.diffusion import EDM, Denoiser, heun_sample, karras_schedule
from harness.learning.network import TemporalUnet


class _Zero(torch.nn.Module):
    def forward(self, x, c_noise, cond):
        return torch.zeros_like(x)


def test_preconditioning_matches_edm_formulas():
    edm = EDM(sigma_data=0.5)
    sigma = torch.tensor([0.01, 0.5, 10.0], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = edm.precond(sigma)
    assert torch.allclose(c_skip, 0.25 / (sigma ** 2 + 0.25))
    assert torch.allclose(c_out, sigma * 0.5 / (sigma ** 2 + 0.25).sqrt())
    assert torch.allclose(c_in, 1 / (sigma ** 2 + 0.25).sqrt())
    assert torch.allclose(c_noise, sigma.log() / 4)
    assert torch.allclose(edm.loss_weight(sigma), 1 / c_out ** 2)
    # with F = 0 the denoiser is the Wiener shrinkage of a N(0, sigma_data^2) prior
    d = Denoiser(_Zero(), edm)
    x = torch.ones(3, 4, 2)
    assert torch.allclose(d(x, sigma.float(), torch.zeros(3, 1)), c_skip.float().view(3, 1, 1) * x)


def test_schedule_decreases_from_sigma_max_to_zero():
    s = karras_schedule(10, sigma_min=0.002, sigma_max=80.0)
    assert len(s) == 11 and math.isclose(s[0], 80.0) and math.isclose(s[-2], 0.002, rel_tol=1e-9) and s[-1] == 0
    assert torch.all(s[1:] < s[:-1])


def test_heun_with_exact_gaussian_denoiser_recovers_data_std():
    """For X0 ~ N(0, s^2), D(x, sigma) = s^2 / (s^2 + sigma^2) x exactly; the ODE must map N(0, sigma_max^2)
    back to N(0, s^2)."""
    s = 0.3
    sigma_max = 80.0
    denoise = lambda x, sigma, cond: (s ** 2 / (s ** 2 + sigma ** 2)).view(-1, 1, 1) * x
    noise = torch.randn(4000, 4, 2, generator=torch.Generator().manual_seed(0))
    noise = noise / noise.std()
    exact = s * sigma_max / math.hypot(s, sigma_max)  # the ODE maps std sigma_max to this
    errors = [abs(float(heun_sample(denoise, None, noise, karras_schedule(n, sigma_max=sigma_max)).std()) - exact) / exact for n in (10, 18, 100)]
    # discretization error shrinks with the step count and vanishes in the limit
    assert errors[0] > errors[1] > errors[2] and errors[1] < 0.07 and errors[2] < 0.005, errors


def test_unet_shapes_and_conditioning_matter():
    torch.manual_seed(0)
    net = TemporalUnet(action_dim=2, cond_dim=12, down_dims=(16, 32, 64), noise_dim=16)
    x = torch.randn(3, 16, 2)
    out = net(x, torch.zeros(3), torch.zeros(3, 12))
    assert out.shape == (3, 16, 2)
    assert not torch.allclose(out, net(x, torch.zeros(3), torch.ones(3, 12)))   # FiLM uses the obs
    assert not torch.allclose(out, net(x, torch.ones(3), torch.zeros(3, 12)))   # ... and the noise level
