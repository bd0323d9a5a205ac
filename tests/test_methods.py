"""The methods on a 2-D Gaussian mixture whose posterior mean E[X0 | X_sigma] is known in closed form.

Samples are only available at noise level sigma_n (Y = X0 + sigma_n Z). The ambient method, through the
same Method and SourceSampler classes the policy uses, must recover E[X0 | X_sigma] for sigma > sigma_n;
the plain denoising loss on the same noisy samples learns the posterior mean of Y instead and must not.
"""
import numpy as np
import pytest
import torch
from torch import nn

from harness.learning.diffusion import EDM, Denoiser
from harness.learning.methods import METHODS, LossBatch, Method, make_method, method_class, rescaled_target_variance
from harness.learning.sources import Mixing, SourceSampler

MEANS = torch.tensor([[-1.0, -0.5], [1.0, 0.5]])
S = 0.3          # component std
SIGMA_N = 0.5    # the only noise level at which training data exist


def sample_x0(n, gen):
    k = torch.randint(0, 2, (n,), generator=gen)
    return MEANS[k] + S * torch.randn(n, 2, generator=gen)


def posterior_mean(x, sigma, comp_std=S):
    """E[X0 | X0 + sigma Z = x] for the equal-weight mixture with component std comp_std. x (N, 2)."""
    var = comp_std ** 2 + sigma ** 2
    logw = -((x[:, None, :] - MEANS[None]) ** 2).sum(-1) / (2 * var)   # (N, 2)
    w = torch.softmax(logw, dim=1)
    comp = MEANS[None] + (comp_std ** 2 / var) * (x[:, None, :] - MEANS[None])
    return (w[..., None] * comp).sum(1)


class MLP(nn.Module):
    """F(x, c_noise, cond) for x (B, 1, 2): the 'chunk' is one 2-D point."""

    def __init__(self, width=128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 2))

    def forward(self, x, c_noise, cond):
        return self.net(torch.cat([x[:, 0], c_noise[:, None]], dim=1))[:, None]


def train_on_noisy_samples(method: str, steps=2000, batch=512, seed=0) -> Denoiser:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    edm = EDM(sigma_data=float(np.sqrt(1.0 ** 2 * 0.8 + S ** 2)), P_mean=0.0, P_std=0.6)
    model = Denoiser(MLP(), edm)
    m = method_class(method)(contract=False)  # the data already are noisy at sigma_n
    # every sample is "corrupt" with sigma_n = SIGMA_N; the method says from which sigma it may be drawn
    sigma_n = np.full(1000, SIGMA_N)
    sampler = SourceSampler(0, m.valid_above(sigma_n), Mixing(kind="constant", value=0.0), edm.sample_sigma)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        draw = sampler.sample(batch, rng)
        y = (sample_x0(batch, gen) + SIGMA_N * torch.randn(batch, 2, generator=gen))[:, None]  # (B, 1, 2)
        lb = LossBatch(y, torch.from_numpy(draw.sigma).float(), torch.from_numpy(draw.corrupt),
                       torch.from_numpy(sigma_n[draw.index]).float())
        loss = m.loss(lambda x_t, s: model(x_t, s, None), lb, edm, gen).loss.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model


def relative_error(model, sigma, n=4000, seed=1):
    """RMS(h - E[X0|x]) / RMS(E[X0|x] - x): the error relative to the size of the denoising correction."""
    gen = torch.Generator().manual_seed(seed)
    x = sample_x0(n, gen) + sigma * torch.randn(n, 2, generator=gen)
    with torch.no_grad():
        h = model(x[:, None], torch.full((n,), sigma), None)[:, 0]
    truth = posterior_mean(x, sigma)
    return float((h - truth).pow(2).mean().sqrt() / (truth - x).pow(2).mean().sqrt())


SIGMAS = (0.7, 1.0, 1.5, 2.5)


@pytest.fixture(scope="module")
def ambient_model():
    return train_on_noisy_samples("ambient")


def test_ambient_recovers_clean_posterior_mean_above_sigma_n(ambient_model):
    errors = [relative_error(ambient_model, s) for s in SIGMAS]
    # bound: the error is at most 10% of the size of the denoising correction E[X0|x] - x just above
    # sigma_n (sigma = 1.4 sigma_n, where the ambient loss weights the error of h by a^2 = 0.24 only),
    # and at most 5% from sigma = 2 sigma_n on
    assert errors[0] < 0.10 and max(errors[1:]) < 0.05, errors


def test_plain_loss_on_noisy_samples_does_not(ambient_model):
    plain = train_on_noisy_samples("cotrain")
    plain_errors = [relative_error(plain, s) for s in SIGMAS]
    ambient_errors = [relative_error(ambient_model, s) for s in SIGMAS]
    # the plain loss learns E[Y | Y + sigma Z] of the noisy data: a clearly wrong (under-shrinking) denoiser
    # (at large sigma both posterior means approach the shared prior mean, so compare at sigma <= 2 sigma_n)
    assert min(plain_errors[:2]) > 0.15, plain_errors
    assert all(p > 3 * a for p, a in zip(plain_errors[:2], ambient_errors[:2])), (plain_errors, ambient_errors)


def test_ambient_and_rescaled_have_the_same_minimiser_per_sample():
    """For any fixed h, the two losses differ exactly by the factor a^2 = ((sigma^2 - sigma_n^2)/sigma^2)^2."""
    edm = EDM(sigma_data=0.5)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, 2, generator=gen)
    sigma = torch.full((64,), 0.9)
    batch = LossBatch(x, sigma, torch.ones(64, dtype=torch.bool), torch.full((64,), 0.6))
    h = lambda x_t, s: 0.7 * x_t
    amb = METHODS["ambient"]().loss(h, batch, edm, torch.Generator().manual_seed(1))
    res = METHODS["ambient_rescaled"]().loss(h, batch, edm, torch.Generator().manual_seed(1))
    a = 1 - 0.36 / 0.81
    assert amb.ambient.all() and res.ambient.all()
    assert torch.allclose(res.loss * a ** 2, amb.loss, rtol=1e-4)


def test_rescaled_target_variance_blows_up_near_sigma_n():
    """Empirical variance of the ambient_rescaled target (given x_t, X0 fixed) matches the closed form and
    diverges as sigma -> sigma_n; the ambient form's residual stays bounded."""
    sigma_n, n = 0.5, 200_000
    gen = torch.Generator().manual_seed(0)
    variances = []
    for sigma in (2.0, 1.0, 0.6, 0.52, 0.505):
        # given x_t, the part of x_n not explained by x_t: condition by regressing out x_t
        z1, z2 = torch.randn(n, generator=gen), torch.randn(n, generator=gen)
        x_n = sigma_n * z1
        x_t = x_n + (sigma ** 2 - sigma_n ** 2) ** 0.5 * z2
        a = 1 - sigma_n ** 2 / sigma ** 2
        target = (x_n - (1 - a) * x_t) / a
        resid = target - target.dot(x_t) / x_t.dot(x_t) * x_t  # remove the x_t-predictable part
        v = float(resid.var())
        assert abs(v - rescaled_target_variance(sigma, sigma_n)) / rescaled_target_variance(sigma, sigma_n) < 0.03
        assert float((a * resid).var()) <= sigma_n ** 2 + 1e-3  # the ambient form's residual stays bounded
        variances.append(v)
    assert all(b > a for a, b in zip(variances, variances[1:]))
    assert variances[-1] > 40 * variances[0]  # closed form: 12.7 vs 0.27


def test_truncated_and_cotrain_use_the_plain_loss_on_corrupt_samples():
    edm = EDM(sigma_data=0.5)
    x = torch.randn(8, 4, 2, generator=torch.Generator().manual_seed(0))
    batch = LossBatch(x, torch.full((8,), 1.0), torch.ones(8, dtype=torch.bool), torch.full((8,), 0.5))
    h = lambda x_t, s: torch.zeros_like(x_t)
    for method in ("cotrain", "truncated"):
        out = METHODS[method]().loss(h, batch, edm, torch.Generator().manual_seed(0))
        assert not out.ambient.any()
        assert torch.allclose(out.loss, edm.loss_weight(torch.ones(8)) * x.pow(2).flatten(1).mean(1))


def test_each_method_says_which_corrupt_windows_are_valid():
    """valid_above: target_only never, cotrain always, truncated / ambient above buffer * sigma_n."""
    sigma_n = np.array([0.0, 0.2, 1.0, np.inf])
    assert np.all(np.isinf(METHODS["target_only"]().valid_above(sigma_n)))
    assert np.all(METHODS["cotrain"]().valid_above(sigma_n) == 0)
    for name in ("truncated", "ambient", "ambient_rescaled"):
        assert np.array_equal(METHODS[name]().valid_above(sigma_n), sigma_n)
        assert np.allclose(METHODS[name](buffer=1.155).valid_above(sigma_n)[:3], [0.0, 0.231, 1.155])


def test_registry_is_the_one_list_and_settings_that_do_not_apply_are_refused():
    from harness.core.configs import from_dict
    from harness.core.errors import ConfigError
    from harness.learning.train_config import ObjectiveConfig

    assert list(METHODS) == ["target_only", "cotrain", "truncated", "ambient", "ambient_rescaled"]
    assert all(issubclass(cls, Method) and cls.name == name for name, cls in METHODS.items())
    assert isinstance(make_method(from_dict(ObjectiveConfig, {"method": "ambient", "buffer": 1.2})), METHODS["ambient"])
    with pytest.raises(ConfigError, match="sigma_n does not apply to method cotrain"):
        from_dict(ObjectiveConfig, {"method": "cotrain", "sigma_n": 0.3})
    with pytest.raises(ConfigError, match="objective.method must be one of"):
        from_dict(ObjectiveConfig, {"method": "ambient_plus"})
    with pytest.raises(ConfigError, match="renamed to sigma_n"):   # the old name is refused, naming the new one
        from_dict(ObjectiveConfig, {"method": "ambient", "sigma_min": 0.3})


def test_target_only_mixes_in_no_corrupt_data_whatever_alpha_says():
    natural = Mixing(kind="natural", clean_episodes=1, corrupt_episodes=9)
    mixing = METHODS["target_only"]().mixing(natural, Mixing(kind="constant", value=0.2))
    assert mixing(np.array([0.1, 5.0]), np.ones(2)).tolist() == [1.0, 1.0]
    assert METHODS["cotrain"]().mixing(natural, None) is natural
