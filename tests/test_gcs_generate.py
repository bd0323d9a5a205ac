"""Plan replay into demonstrations, resumable generation, and the commands' error handling."""
from __future__ import annotations

import numpy as np
import pytest

import gcs_planner.generate as generate
from gcs_planner.generate import GenSimConfig, fill_store
from gcs_planner.planner import Planner
from gcs_planner.replay import control_times, replay_kinematic
from harness.cli import main
from harness.core.store import EpisodeStore
from sim_envs.geometry import TASK, wrap_angle
from tests.helpers import tree_digest

EASY_START = np.array([TASK.goal[0] + 0.06, TASK.goal[1] + 0.04, 0.35])


@pytest.fixture(scope="module")
def env():
    from sim_envs.env import PushTEnv
    e = PushTEnv(preset="sim")
    yield e
    e.close()


def test_kinematic_replay_reproduces_the_plans_slider_poses(env):
    plan = Planner().plan(EASY_START).plan
    demo = replay_kinematic(plan, env, stop_at_success=False)
    times = control_times(plan)
    assert len(demo.data["slider_pose"]) == len(times)
    expected = np.array([plan.state_at(t)[0] for t in times])
    got = demo.data["slider_pose"]
    assert np.allclose(got[:, :2], expected[:, :2], atol=1e-6)
    assert np.allclose([wrap_angle(a - b) for a, b in zip(got[:, 2], expected[:, 2])], 0.0, atol=1e-6)
    # Actions are the next step's planned pusher position; observations are the current one.
    assert np.allclose(demo.data["action"][:-1], demo.data["agent_pos"][1:], atol=1e-6)
    assert demo.reached_goal


def _store_dict(path):
    store = EpisodeStore(path)
    return {k: store.data(k)[:] for k in ("slider_pose", "action", "agent_pos")}, store.meta("seed")


def test_interrupted_then_resumed_generation_equals_uninterrupted(tmp_path, monkeypatch):
    cfg = GenSimConfig(num=2, seed=7, workers=1)
    fill_store(tmp_path / "full.zarr", cfg, progress=False)

    real = generate.generate_episode
    calls = []

    def interrupted(seed, c):
        calls.append(seed)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(seed, c)

    monkeypatch.setattr(generate, "generate_episode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fill_store(tmp_path / "resumed.zarr", cfg, progress=False)
    assert EpisodeStore(tmp_path / "resumed.zarr").n_episodes == 1
    monkeypatch.setattr(generate, "generate_episode", real)
    summary = fill_store(tmp_path / "resumed.zarr", cfg, progress=False)
    assert summary.kept_before == 1 and summary.kept == 1

    full, full_seeds = _store_dict(tmp_path / "full.zarr")
    resumed, resumed_seeds = _store_dict(tmp_path / "resumed.zarr")
    assert list(full_seeds) == list(resumed_seeds)
    for key in full:
        assert np.array_equal(full[key], resumed[key])
    attrs = EpisodeStore(tmp_path / "full.zarr").attrs
    assert attrs["domain"] == "sim" and attrs["source"] == "gcs_kinematic" and attrs["env"] == "sim"
    assert attrs["generator"]["seed"] == 7 and "mu_pusher_slider" in attrs["env_params"]


@pytest.mark.parametrize("argv, needle", [
    (["gen-sim", "--num", "0", "--out", "{tmp}/a.zarr"], "num"),
    (["gen-sim", "--num", "2", "--out", "{tmp}/a.zarr", "--env", "no_such_preset"], "no_such_preset"),
    (["gen-sim", "--num", "2", "--out", "{tmp}/a.zarr", "planner.mu=-1"], "mu"),
    (["gen-sim", "--num", "2", "--out", "{tmp}/a.zarr", "bogus=1"], "bogus"),
    (["plan", "--seed", "-3", "--out", "{tmp}/p.npz"], "--seed"),
    (["plan", "--out", "{tmp}/p.npz"], "--seed"),
    (["plan", "--seed", "1", "--out", "{tmp}/p.txt"], ".npz"),
])
def test_bad_arguments_exit_2_with_one_line(argv, needle, tmp_path, capsys):
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and needle in err


def test_resume_with_other_settings_is_refused(tmp_path, capsys):
    out = tmp_path / "s.zarr"
    from tests.helpers import write_store
    write_store(out, domain="sim", source="gcs_kinematic")    # a store with another generator config
    code = main(["gen-sim", "--num", "2", "--out", str(out), "--env", "target", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "env" in err


def test_physics_replay_tracks_the_plan_and_moves_the_slider_toward_the_goal(env):
    from gcs_planner.replay import replay_physics
    from sim_envs.geometry import pose_error
    planner = Planner()
    plan = planner.plan(EASY_START).plan
    demo = replay_physics(plan, env, seed=0, faces=planner.faces, max_replans=0)
    n = len(demo.data["action"])
    assert demo.data["slider_pose"].shape == (n, 3) and demo.data["agent_pos"].shape == (n, 2)
    assert np.isfinite(demo.data["action"]).all() and demo.replans == 0
    start_err = np.abs(pose_error(EASY_START)[:2]).sum()
    end_err = np.abs(pose_error(demo.data["slider_pose"][-1])[:2]).sum()
    assert end_err < 0.5 * start_err



def test_gen_sim_refuses_another_generator_config_untouched_and_resumes_on_free_keys(tmp_path, capsys):
    out = tmp_path / "s.zarr"
    base = ["gen-sim", "--out", str(out), "--seed", "7", "--no-progress"]
    assert main([*base, "--num", "1", "--workers", "1"]) == 0
    before = tree_digest(out)
    capsys.readouterr()
    for extra, key in [(["--replay", "physics"], "attrs.generator: replay"),
                       (["planner.mu=0.25"], "attrs.generator: planner.mu"),
                       (["--images"], "attrs.generator: images"),
                       (["--seed", "8"], "attrs.generator: seed")]:
        assert main([*base, "--num", "2", "--workers", "1", *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and key in err and str(out) in err, err
        assert tree_digest(out) == before
    # num, workers and max_seeds are free: a larger --num with more workers resumes and appends seed 8.
    assert main([*base, "--num", "2", "--workers", "2", "max_seeds=10"]) == 0
    store = EpisodeStore(out)
    assert store.meta("seed").tolist() == [7, 8] and store.attrs["generator"]["workers"] == 1


def test_gen_sim_num_fills_the_store_up_to_num_kept_seeds(tmp_path, monkeypatch):
    """`num` is the size of the finished store: the first num kept seeds from `seed` on, in order (the same
    meaning as gen-teleop's num, see test_teleop_scripted). A larger num appends only what is missing; a
    smaller one leaves the store as it is."""
    calls = []

    def fake(seed, cfg):
        calls.append(seed)
        if seed == 8:
            return generate.EpisodeResult(seed, "plan_failed", "plan: test", None, None, 0.0)
        data = {"agent_pos": np.zeros((3, 2)), "slider_pose": np.zeros((3, 3)), "action": np.zeros((3, 2))}
        return generate.EpisodeResult(seed, "kept", "", data, {"seed": np.int64(seed)}, 0.0)

    monkeypatch.setattr(generate, "generate_episode", fake)
    out = tmp_path / "s.zarr"
    fill_store(out, GenSimConfig(num=2, seed=7, workers=1), progress=False)
    assert calls == [7, 8, 9] and EpisodeStore(out).meta("seed").tolist() == [7, 9]
    calls.clear()
    summary = fill_store(out, GenSimConfig(num=3, seed=7, workers=1), progress=False)
    assert calls == [8, 10] and (summary.kept_before, summary.kept) == (2, 1)   # dropped seed 8 is tried again
    calls.clear()
    fill_store(out, GenSimConfig(num=1, seed=7, workers=1), progress=False)
    assert calls == [] and EpisodeStore(out).meta("seed").tolist() == [7, 9, 10]
