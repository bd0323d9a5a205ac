"""`cotrain/PlanarPushing-v0` (sim_envs/gym_env.py): Gymnasium's own checker, vector envs, and the promise that
an episode there is the `cotrain eval` trial of the same start seed."""
from __future__ import annotations

import json
import warnings
from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim_envs  # noqa: F401  (registers the env id)
from eval.scripted import ChunkedScriptedPolicy
from harness.cli import main
from sim_envs.geometry import pose_error
from sim_envs.gym_env import ENV_ID, PlanarPushingEnv
from sim_envs.initial_states import sample_initial_pose

# The one warning check_env gives: our actions are world-frame metres, not a normalized [-1, 1] box.
EXPECTED_WARNING = "symmetric and normalized space"


@pytest.mark.parametrize("kwargs", [
    {},
    {"obs_type": "environment_state_agent_pos", "render_mode": "rgb_array"},
    {"obs_type": "pixels_agent_pos", "visual": "target_96"},
], ids=["state", "env_state+render", "pixels_visual"])
def test_gymnasium_check_env_passes(kwargs):
    env = gym.make(ENV_ID, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    others = [str(w.message) for w in caught if EXPECTED_WARNING not in str(w.message)]
    assert not others, others
    assert env.spec.max_episode_steps == 750 and env.metadata["render_fps"] == 10
    env.close()


def test_observation_types_and_render():
    env = gym.make(ENV_ID, obs_type="pixels_agent_pos", render_mode="rgb_array", image_size=(48, 64))
    obs, info = env.reset(seed=3)
    assert obs["pixels"].shape == (48, 64, 3) and obs["pixels"].dtype == np.uint8 and obs["agent_pos"].shape == (2,)
    assert env.render().shape == (48, 64, 3)
    assert env.observation_space.contains(obs) and info["is_success"] is False
    env.close()
    several = gym.make(ENV_ID, obs_type="pixels", visual="target", cameras=["wrist"])
    obs, _ = several.reset(seed=3)
    assert list(obs) == ["wrist"] and obs["wrist"].shape == (128, 128, 3)   # LeRobot: observation.images.wrist
    several.close()
    with pytest.raises(ValueError, match="obs_type"):
        PlanarPushingEnv(obs_type="rgb")
    with pytest.raises(ValueError, match="cameras.*'top'.*this env has image"):
        PlanarPushingEnv(obs_type="pixels", cameras=["top"])


def test_reset_seed_is_the_start_of_eval_trial_seed():
    env = gym.make(ENV_ID, obs_type="environment_state_agent_pos")
    for seed in (0, 17):
        obs, info = env.reset(seed=seed)
        np.testing.assert_allclose(info["slider_pose"], sample_initial_pose(seed), atol=1e-9)
        assert info["start_seed"] == seed
        # the target preset's pose noise is drawn from the start seed too: same seed, same observation
        again, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(obs["environment_state"], again["environment_state"])
    env.close()


def _trajectory(env, seeds, actions):
    """(obs after reset, obs after each action) of a vector env reset with `seeds`."""
    first, _ = env.reset(seed=seeds)
    return [first] + [env.step(np.repeat(a[None], env.num_envs, axis=0))[0] for a in actions]


def test_sync_and_async_vector_envs_step_the_eval_starts():
    """reset(seed=s) on a vector env seeds env i with s + i: `cotrain eval --seed s`'s trials, in order."""
    actions = [np.array([0.587, 0.25 - 0.01 * k]) for k in range(1, 4)]
    single = gym.make(ENV_ID)
    expected = []
    for seed in (5, 6):
        obs, _ = single.reset(seed=seed)
        expected.append([obs] + [single.step(a)[0] for a in actions])
    single.close()
    make = lambda: gym.make("sim_envs:cotrain/PlanarPushing-v0")   # noqa: E731  (imports sim_envs in a new process)
    for vec in (gym.vector.SyncVectorEnv([make, make]), gym.vector.AsyncVectorEnv([make, make], context="spawn")):
        got = _trajectory(vec, 5, actions)
        vec.close()
        for i in range(2):
            np.testing.assert_array_equal(np.stack([step[i] for step in got]), np.stack(expected[i]))


def _gym_rollout(env, policy, seed, max_steps):
    """The chunked scripted policy through the gym env, as an outside loop runs it: last n_obs observations
    (padded at reset), n_action actions per chunk. Returns (outcome, steps, final true slider pose)."""
    obs, _ = env.reset(seed=seed)
    history = deque([obs] * policy.n_obs, maxlen=policy.n_obs)
    chunk: deque = deque()
    for step in range(1, max_steps + 1):
        if not chunk:
            stacked = {"agent_pos": np.stack([o["agent_pos"] for o in history])[None],
                       "slider_pose": np.stack([o["environment_state"] for o in history])[None]}
            chunk.extend(policy.act(stacked)[0])
        obs, _, terminated, truncated, info = env.step(chunk.popleft())
        history.append(obs)
        if terminated or truncated:
            break
    outcome = info["outcome"] if info["outcome"] != "running" else "timeout"
    return outcome, step, info["slider_pose"]


def test_scripted_policy_gives_the_same_trials_in_the_gym_env_and_in_cotrain_eval(tmp_path, capsys):
    seeds, limit_s = [8, 9, 10], 12.0
    out = tmp_path / "eval"
    assert main(["eval", "scripted", "--trials", "3", "--seed", "8", "--time-limit", str(limit_s), "--workers", "1",
                 "--n-envs", "3", "--out", str(out), "--no-progress"]) == 0
    scored = {r["seed"]: r for r in map(json.loads, (out / "trials.jsonl").read_text().splitlines())}
    env = gym.make(ENV_ID, obs_type="environment_state_agent_pos", max_episode_steps=int(limit_s * 10))
    for seed in seeds:
        outcome, steps, pose = _gym_rollout(env, ChunkedScriptedPolicy(), seed, int(limit_s * 10))
        err = pose_error(pose)
        assert (outcome, steps) == (scored[seed]["outcome"], scored[seed]["steps"]), seed
        assert np.hypot(err[0], err[1]) == pytest.approx(scored[seed]["final_xy_error"], abs=1e-12)
        assert abs(err[2]) == pytest.approx(scored[seed]["final_theta_error"], abs=1e-12)
    env.close()
