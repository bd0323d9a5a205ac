"""The sigma-first source sampler: validity of every corrupt draw and the mixing ratio (binomial tests)."""
import numpy as np
import pytest
from scipy.stats import binomtest

from harness.learning.diffusion import EDM
from harness.learning.sources import Mixing, SourceSampler


def _sampler(smin, mixing, locality=None, n_clean=50):
    return SourceSampler(n_clean, np.asarray(smin, float), mixing, EDM(P_mean=-1.2, P_std=1.2).sample_sigma,
                         locality_sigma_max=locality)


def test_corrupt_never_drawn_below_its_threshold():
    rng = np.random.default_rng(0)
    smin = np.concatenate([np.zeros(5), rng.uniform(0.01, 3.0, 200), [np.inf] * 5])
    s = _sampler(smin, Mixing(kind="constant", value=0.3))
    draw = s.sample(200_000, rng)
    c = draw.corrupt
    assert c.any() and (~c).any()
    assert np.all(draw.sigma[c] > smin[draw.index[c]])           # never outside the valid range
    assert not np.isin(draw.index[c], np.arange(205, 210)).any()  # threshold inf: never
    assert draw.index[~c].max() < 50


def test_locality_band_also_allows_small_sigma():
    rng = np.random.default_rng(1)
    smin = np.full(100, 0.5)
    s = _sampler(smin, Mixing(kind="constant", value=0.5), locality=0.05)
    draw = s.sample(100_000, rng)
    c = draw.corrupt
    ok = (draw.sigma[c] > 0.5) | (draw.sigma[c] < 0.05)
    assert ok.all()
    assert (draw.sigma[c] < 0.05).any()
    between = (draw.sigma > 0.05) & (draw.sigma <= 0.5)
    assert not draw.corrupt[between].any()


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.8, 1.0])
def test_constant_mixing_matches_alpha(alpha):
    rng = np.random.default_rng(2)
    s = _sampler(np.zeros(300), Mixing(kind="constant", value=alpha))  # cotrain: all valid
    n = 40_000
    clean = int((~s.sample(n, rng).corrupt).sum())
    if alpha in (0.0, 1.0):
        assert clean == n * alpha
    else:
        assert binomtest(clean, n, alpha).pvalue > 1e-3


def test_sigma_dependent_mixing_matches_table_per_sigma():
    rng = np.random.default_rng(3)
    table = Mixing.table([0.01, 0.1, 1.0, 10.0], [0.95, 0.8, 0.3, 0.1])
    s = _sampler(np.zeros(100), table)
    for sigma in (0.01, 0.05, 0.3, 2.0):
        n = 20_000
        draw = s.sources_for(np.full(n, sigma), rng)
        expected = float(np.interp(np.log(sigma), np.log([0.01, 0.1, 1, 10]), [0.95, 0.8, 0.3, 0.1]))
        assert binomtest(int((~draw.corrupt).sum()), n, expected).pvalue > 1e-3, sigma


def test_natural_ratio_counts_only_valid_corrupt_episodes():
    rng = np.random.default_rng(4)
    smin = np.concatenate([np.zeros(100), np.full(300, 1.0)])  # 1/4 valid below sigma = 1
    mix = Mixing(kind="natural", clean_episodes=10, corrupt_episodes=40)
    s = _sampler(smin, mix)
    n = 20_000
    low = s.sources_for(np.full(n, 0.5), rng)
    high = s.sources_for(np.full(n, 2.0), rng)
    assert binomtest(int((~low.corrupt).sum()), n, 10 / (10 + 40 * 0.25)).pvalue > 1e-3
    assert binomtest(int((~high.corrupt).sum()), n, 10 / 50).pvalue > 1e-3


def test_no_clean_data_redraws_sigma_until_a_source_is_valid():
    rng = np.random.default_rng(5)
    s = _sampler(np.full(10, 0.3), Mixing(kind="constant", value=0.0), n_clean=0)
    draw = s.sample(5000, rng)
    assert draw.corrupt.all() and (draw.sigma > 0.3).all()


def test_sampler_state_round_trips():
    rng = np.random.default_rng(6)
    s = _sampler(np.zeros(10), Mixing(kind="constant", value=0.5))
    s.sample(10, rng)
    state = SourceSampler.rng_state(rng)
    a = s.sample(10, rng)
    b = s.sample(10, SourceSampler.restore_rng(state))
    assert np.array_equal(a.index, b.index) and np.array_equal(a.sigma, b.sigma)
