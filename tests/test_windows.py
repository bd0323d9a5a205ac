"""Windows: count, edge padding at both ends, and the normalizer round trip."""
import numpy as np
import pytest

from harness.learning.windows import WindowSpec, make_windows, split_episodes
from harness.learning.normalizer import Normalizer


def test_windows_pad_with_edge_steps():
    spec = WindowSpec(n_obs=2, horizon=6, n_action=3)
    w = make_windows(np.array([5, 12]), spec)  # episodes of 5 and 7 steps
    # per episode: t0 from -(n_obs-1) to len - horizon + n_action - 1
    assert list(w.t0[w.episode == 0]) == list(range(-1, 5 - 6 + 2 + 1))
    assert list(w.t0[w.episode == 1]) == list(range(-1, 7 - 6 + 2 + 1))
    steps = w.steps()
    assert steps[0].tolist() == [0, 0, 1, 2, 3, 4]            # first window repeats step 0
    last0 = np.flatnonzero(w.episode == 0)[-1]
    assert steps[last0].tolist() == [1, 2, 3, 4, 4, 4]        # last window repeats the final step
    assert steps[w.episode == 1].min() == 5 and steps[w.episode == 1].max() == 11  # never crosses episodes
    # as in diffusion_policy, the "current step" (index n_obs-1) runs from the first step to the last
    # one whose n_action executed steps still fit with pad_after padding: len - 1 - (horizon - n_obs + 1 - n_action)
    now = steps[:, spec.n_obs - 1]
    gap = spec.horizon - spec.n_obs + 1 - spec.n_action
    assert sorted(set(now[w.episode == 0])) == list(range(5 - gap))
    assert sorted(set(now[w.episode == 1])) == list(range(5, 12 - gap))

def test_spec_rejects_action_beyond_horizon():
    with pytest.raises(ValueError, match="horizon"):
        WindowSpec(n_obs=2, horizon=8, n_action=8)


def test_split_keeps_at_least_one_validation_episode():
    train, val = split_episodes(10, 0.05, seed=0)
    assert len(val) == 1 and len(train) == 9 and not set(train) & set(val)
    assert len(split_episodes(10, 0.0, 0)[1]) == 0


def test_normalizer_maps_range_to_unit_interval_and_back():
    rng = np.random.default_rng(0)
    obs = rng.uniform(-3, 7, (100, 6)).astype(np.float32)
    obs[:, 4:] = np.clip(obs[:, 4:], -1, 1)
    act = rng.uniform(0.2, 0.9, (100, 2)).astype(np.float32)
    n = Normalizer.fit(obs, act)
    a = n.action.normalize(act)
    # the 0.5th..99.5th percentiles map to -1..1 (harness.learning.normalizer.FIT_PERCENTILES); nothing is clipped
    lo, hi = np.percentile(a, [0.5, 99.5], axis=0)
    assert np.allclose(lo, -1, atol=1e-5) and np.allclose(hi, 1, atol=1e-5)
    assert np.all(a.min(0) < -1) and np.all(a.min(0) > -1.05) and np.all(a.max(0) > 1) and np.all(a.max(0) < 1.05)
    assert np.allclose(n.obs.normalize(obs)[:, 4:], obs[:, 4:])  # cos/sin untouched
    assert np.allclose(Normalizer.from_state(n.state()).action.unnormalize(a), act, atol=1e-6)
