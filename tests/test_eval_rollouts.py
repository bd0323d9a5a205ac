"""Closed-loop rollouts in the real Drake target preset with a scripted (chunked, noisy) policy.

Trials are capped at a few seconds of simulated time (max_steps) to keep the tests fast; the cap ends a
trial as "timeout" exactly like the env's own 75 s limit.
"""
import numpy as np
import pytest

from eval.rollouts import evaluate, read_trial_log
from eval.scripted import ChunkedScriptedPolicy
from harness.core.errors import UserError

SEEDS = [0, 1, 2]
STEPS = 30  # 3 s per trial


class Spy(ChunkedScriptedPolicy):
    """Remembers every batch it was asked about and the actions it returned."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.batches, self.outputs = [], []

    def act(self, obs_history, noise=None):
        self.batches.append({k: np.array(v) for k, v in obs_history.items()})
        out = super().act(obs_history, noise)
        self.outputs.append(out)
        return out


def _key(records):
    return [(r.seed, r.outcome, r.steps, round(r.final_xy_error, 12), round(r.final_theta_error, 12))
            for r in records]


def _actions_per_trial(spy, n_trials, n_envs):
    """Rebuild each trial's executed chunks from the spy's batches (waves of n_envs trials in seed order)."""
    per = [[] for _ in range(n_trials)]
    calls = iter(spy.outputs)
    for wave_start in range(0, n_trials, n_envs):
        members = list(range(wave_start, min(n_trials, wave_start + n_envs)))
        for _ in range(-(-STEPS // spy.n_action)):  # every member runs the full capped trial here
            out = next(calls)
            for row, trial in enumerate(members):
                per[trial].append(out[row])
    return [np.concatenate(p) for p in per]


def test_same_seeds_give_same_outcomes_and_batching_does_not_matter():
    batched, again, single = (Spy(noise_scale=0.004) for _ in range(3))
    first = evaluate(batched, "target", SEEDS, n_envs=3, progress=False, max_steps=STEPS)
    second = evaluate(again, "target", SEEDS, n_envs=3, progress=False, max_steps=STEPS)
    one_by_one = evaluate(single, "target", SEEDS, n_envs=1, progress=False, max_steps=STEPS)
    assert [r.seed for r in first] == SEEDS
    assert _key(first) == _key(second) == _key(one_by_one)
    assert all(r.steps == STEPS and r.outcome == "timeout" for r in first)
    # Batched and unbatched inference produce exactly the same actions for every trial...
    a = _actions_per_trial(batched, 3, 3)
    b = _actions_per_trial(single, 3, 1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    # ...and that is not vacuous: the noise changes them, and differs between trials.
    quiet = Spy()
    evaluate(quiet, "target", SEEDS, n_envs=3, progress=False, max_steps=STEPS)
    q = _actions_per_trial(quiet, 3, 3)
    assert not np.allclose(q[0], a[0])
    assert np.abs((a[0] - q[0])[:8] - (a[1] - q[1])[:8]).max() > 1e-4


def test_inference_is_batched_and_history_padded():
    spy = Spy(n_obs=2, n_action=8)
    evaluate(spy, "target", SEEDS, n_envs=3, progress=False, max_steps=STEPS)
    # One act() call per chunk for all three envs: ceil(30 / 8) = 4 calls of batch 3.
    assert len(spy.batches) == 4
    assert all(b["agent_pos"].shape == (3, 2, 2) and b["slider_pose"].shape == (3, 2, 3) for b in spy.batches)
    first = spy.batches[0]
    np.testing.assert_array_equal(first["slider_pose"][:, 0], first["slider_pose"][:, 1])  # padded at reset
    assert not np.array_equal(spy.batches[1]["agent_pos"][:, 0], spy.batches[1]["agent_pos"][:, 1])


def test_evaluation_resumes_from_its_trial_log(tmp_path):
    log = tmp_path / "trials.jsonl"
    evaluate(ChunkedScriptedPolicy(), "target", [0, 1], n_envs=2, progress=False, log_path=log, max_steps=10)
    spy = Spy()
    records = evaluate(spy, "target", [0, 1, 2], n_envs=2, progress=False, log_path=log, max_steps=10)
    assert [r.seed for r in records] == [0, 1, 2]
    assert {len(b["agent_pos"]) for b in spy.batches} == {1}   # only seed 2 ran
    assert sorted(r.seed for r in read_trial_log(log)) == [0, 1, 2]


def test_worker_processes_give_the_same_records():
    policy = ChunkedScriptedPolicy(noise_scale=0.004)
    one = evaluate(policy, "target", SEEDS, n_envs=2, workers=1, progress=False, max_steps=12)
    two = evaluate(policy, "target", SEEDS, n_envs=2, workers=2, progress=False, max_steps=12)
    assert _key(one) == _key(two)


def test_bad_policy_output_is_reported():
    class Broken(ChunkedScriptedPolicy):
        def act(self, obs_history, noise=None):
            return np.zeros((1, 8, 3))
    with pytest.raises(ValueError, match="expected"):
        evaluate(Broken(), "target", [0], n_envs=1, progress=False, max_steps=5)


def test_a_policy_that_fails_to_load_in_a_worker_is_reported(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    # the worker's own one-line error reaches the parent as it was raised (harness/learning/checkpoint.py)
    with pytest.raises(UserError, match=r"broken\.pt: not a readable checkpoint \(UnpicklingError\)$"):
        evaluate(str(bad), "target", [0, 1], n_envs=1, workers=2, progress=False, max_steps=3)


@pytest.mark.parametrize("diffusion", [{"num_steps": 2}, {"num_steps": 2, "sampler": "heun_churn"},
                                       {"kind": "ddpm", "num_steps": 5}])
def test_diffusion_policy_batched_and_unbatched_queries_agree(tmp_path, diffusion):
    """The real policy (a tiny, briefly trained checkpoint): per-trial noise makes batching irrelevant, also
    for the stochastic samplers, whose per-step noise comes from the trial's own stream."""
    from eval.rollouts import _load_policy, _query
    from harness.core.configs import from_dict
    from harness.learning.train_config import TrainConfig
    from harness.learning.training import train
    from tests.synthetic_stores import write_store

    store = write_store(tmp_path / "c.zarr", "target", n_episodes=3, seed=1)
    cfg = from_dict(TrainConfig, {
        "out_dir": str(tmp_path / "run"), "device": "cpu",
        "data": {"datasets": [{"path": str(store), "role": "clean"}], "val_fraction": 0.0},
        "objective": {"method": "target_only"},
        "policy": {"down_dims": [8, 16], "noise_dim": 8, "n_groups": 4}, "diffusion": diffusion,
        "optim": {"batch_size": 8, "warmup_steps": 1}, "run": {"steps": 2, "progress": False}})
    policy = _load_policy(str(train(cfg)), "cpu")
    rng = np.random.default_rng(0)
    obs = {"agent_pos": rng.uniform(0.4, 0.6, (3, policy.n_obs, 2)),
           "slider_pose": rng.uniform(-0.5, 0.5, (3, policy.n_obs, 3))}
    seeds, queries = [5, 6, 7], np.array([0, 3, 1])
    batched = _query(policy, obs, seeds, queries, wants_noise=True)
    single = np.concatenate([_query(policy, {k: v[i:i + 1] for k, v in obs.items()}, [seeds[i]],
                                    queries[i:i + 1], wants_noise=True) for i in range(3)])
    assert batched.shape == (3, policy.n_action, 2)
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-5)   # float32 convs differ by batch size
    other = _query(policy, obs, [8, 9, 10], queries, wants_noise=True)   # the noise does matter
    assert np.abs(other - batched).max() > 1e-4
    # In fixed batches (inference_batch) a row's actions are its own, bit for bit: alone, with the others,
    # or split over several batches (10 rows in batches of 8).
    obs10 = {"agent_pos": rng.uniform(0.4, 0.6, (10, policy.n_obs, 2)),
             "slider_pose": rng.uniform(-0.5, 0.5, (10, policy.n_obs, 3))}
    seeds10, queries10 = list(range(20, 30)), np.arange(10) % 3
    fixed = _query(policy, obs10, seeds10, queries10, True, inference_batch=8)
    alone = [_query(policy, {k: v[i:i + 1] for k, v in obs10.items()}, seeds10[i:i + 1], queries10[i:i + 1], True,
                    inference_batch=8) for i in range(10)]
    assert np.array_equal(fixed, np.concatenate(alone))


def _tiny_checkpoint(tmp_path, policy: dict, diffusion: dict) -> str:
    from harness.core.configs import from_dict
    from harness.learning.train_config import TrainConfig
    from harness.learning.training import train
    from tests.synthetic_stores import write_store

    store = write_store(tmp_path / "c.zarr", "target", n_episodes=3, seed=1)
    cfg = from_dict(TrainConfig, {
        "out_dir": str(tmp_path / "run"), "device": "cpu",
        "data": {"datasets": [{"path": str(store), "role": "clean"}], "val_fraction": 0.0},
        "objective": {"method": "target_only"}, "policy": policy, "diffusion": diffusion,
        "optim": {"batch_size": 8, "warmup_steps": 1}, "run": {"steps": 3, "progress": False}})
    return str(train(cfg))


@pytest.mark.parametrize("arch", ["mlp", "unet"])
def test_trials_are_bit_identical_whatever_n_envs_workers_or_resume(tmp_path, arch):
    """With inference_batch (the default of cotrain eval and of a study), every record, compared in full
    float64, is the same for n_envs 1 / 2 / 5, workers 1 / 2, and an evaluation resumed after one trial."""
    from eval.rollouts import PolicyFile
    policy = {"arch": "mlp", "mlp_width": 32, "mlp_depth": 2} if arch == "mlp" else \
        {"down_dims": [8, 16], "noise_dim": 8, "n_groups": 4}
    ckpt = PolicyFile(_tiny_checkpoint(tmp_path, policy, {"num_steps": 2, "sampler": "heun_churn"}))
    seeds = [3, 4, 5, 6, 7]
    run = dict(progress=False, max_steps=15, inference_batch=8)

    def exact(records):   # every field in full (repr: NaN equals NaN)
        return [repr(r.to_dict()) for r in records]

    base = exact(evaluate(ckpt, "target", seeds, n_envs=5, workers=1, **run))
    for n_envs, workers in ((1, 1), (2, 2), (3, 1)):
        assert exact(evaluate(ckpt, "target", seeds, n_envs=n_envs, workers=workers, **run)) == base, (n_envs, workers)
    log = tmp_path / "trials.jsonl"
    evaluate(ckpt, "target", seeds[2:3], n_envs=5, workers=1, log_path=log, **run)   # "interrupted" after one
    assert exact(evaluate(ckpt, "target", seeds, n_envs=5, workers=1, log_path=log, **run)) == base
