"""VectorEnv: lockstep stepping matches single envs, finished envs freeze, workers>1 matches workers=1."""
from __future__ import annotations


import numpy as np
import pytest

from sim_envs.env import PushTEnv
from sim_envs.geometry import PUSHER, TASK
from sim_envs.scripted import ScriptedPusher
from sim_envs.vector_env import VectorEnv


def run(vec, seeds, steps):
    policies = [ScriptedPusher() for _ in seeds]
    obs = vec.reset(seeds)
    history = []
    for _ in range(steps):
        actions = np.stack([p.act({k: v[i] for k, v in obs.items()}) for i, p in enumerate(policies)])
        obs, infos = vec.step(actions)
        history.append(np.concatenate([obs["slider_pose"], obs["agent_pos"]], axis=1))
    return np.array(history), infos


def test_in_process_matches_single_envs():
    with VectorEnv(2, "target") as vec:
        batched, _ = run(vec, [3, 4], 15)
    assert batched.shape == (15, 2, 5)
    single = PushTEnv("target")
    for i, seed in enumerate([3, 4]):
        policy = ScriptedPusher()
        obs = single.reset(seed)
        for t in range(15):
            obs, _ = single.step(policy.act(obs))
            np.testing.assert_array_equal(np.concatenate([obs["slider_pose"], obs["agent_pos"]]), batched[t, i])


def test_finished_envs_freeze_and_ignore_their_action():
    with VectorEnv(2, "sim") as vec:
        vec.reset([0, 1])
        # Env 0 starts at the goal: it succeeds on the first step; env 1 keeps running.
        vec._block.envs[0].reset(0, slider_pose=np.array(TASK.goal))
        obs, infos = vec.step(np.array([PUSHER.home, PUSHER.home]))
        assert [i["outcome"] for i in infos] == ["success", "running"]
        assert vec.done.tolist() == [True, False]
        frozen = obs["slider_pose"][0].copy()
        obs, infos = vec.step(np.array([[np.nan, np.nan], PUSHER.home]))   # NaN is fine for a finished env
        assert infos[0]["outcome"] == "success" and infos[0]["step"] == 1
        np.testing.assert_array_equal(obs["slider_pose"][0], frozen)
        with pytest.raises(ValueError, match="env 1"):
            vec.step(np.array([PUSHER.home, [np.nan, 0.0]]))
        with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
            vec.step(np.zeros((3, 2)))


def test_worker_processes_match_in_process():
    seeds = [5, 6, 7]
    with VectorEnv(3, "target", workers=1) as vec:
        local, _ = run(vec, seeds, 10)
    with VectorEnv(3, "target", workers=2) as vec:
        remote, infos = run(vec, seeds, 10)
        assert [i["step"] for i in infos] == [10, 10, 10]
        with pytest.raises(ValueError, match="seeds"):
            vec.reset([1])
    np.testing.assert_array_equal(local, remote)


def test_images_are_batched():
    with VectorEnv(2, "sim", image_size=(24, 32)) as vec:
        obs = vec.reset([0, 1])
        assert obs["image"].shape == (2, 24, 32, 3) and obs["image"].dtype == np.uint8
        assert not np.array_equal(obs["image"][0], obs["image"][1])     # different starts, different pictures
