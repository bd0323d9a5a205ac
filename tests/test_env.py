"""PushTEnv against real Drake: determinism, push directions, preset gap, outcomes, input errors, physics."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from harness.core.errors import ConfigError, UserError
from sim_envs.config import load_preset, preset_names
from sim_envs.env import PushTEnv
from sim_envs.geometry import PUSHER, T_SLIDER, TASK
from sim_envs.initial_states import sample_initial_pose
from sim_envs.scripted import ScriptedPusher

GOAL = np.array(TASK.goal)


@pytest.fixture(scope="module")
def target():
    env = PushTEnv("target")
    yield env
    env.close()


@pytest.fixture(scope="module")
def sim():
    env = PushTEnv("sim")
    yield env
    env.close()


def scripted_rollout(env, seed, steps):
    policy = ScriptedPusher()
    obs = env.reset(seed)
    poses = []
    for _ in range(steps):
        obs, info = env.step(policy.act(obs))
        poses.append(np.concatenate([info["slider_pose"], info["pusher_xy"], obs["slider_pose"]]))
    return np.array(poses)


def push_line(env, slider_pose, start, direction, steps=12, speed=0.01):
    """Pusher from `start` moving along `direction` by `speed` m per step; returns the final true pose."""
    env.reset(0, slider_pose=slider_pose, pusher_xy=start)
    direction = np.asarray(direction, float)
    for k in range(1, steps + 1):
        _, info = env.step(np.asarray(start) + k * speed * direction)
    for _ in range(env.config.action_latency + 3):            # let the commanded motion finish
        _, info = env.step(np.asarray(start) + steps * speed * direction)
    return info["slider_pose"]


def test_reset_uses_the_shared_initial_pose_and_home(target):
    obs = target.reset(5)
    slider, pusher = target.true_state()
    np.testing.assert_allclose(slider, sample_initial_pose(5), atol=1e-9)
    np.testing.assert_allclose(pusher, PUSHER.home)
    assert obs["agent_pos"].shape == (2,) and obs["slider_pose"].shape == (3,)
    assert obs["slider_pose"].dtype == np.float64


def test_same_seed_same_trajectory(target):
    a = scripted_rollout(target, 3, 40)
    b = scripted_rollout(target, 3, 40)
    c = scripted_rollout(target, 4, 40)
    np.testing.assert_array_equal(a, b)          # noise included: the seed seeds it
    assert not np.allclose(a, c)
    fresh = PushTEnv("target")
    np.testing.assert_array_equal(scripted_rollout(fresh, 3, 40), a)


def test_push_on_the_stem_tip_moves_the_slider_along_the_stem(sim):
    # theta = 0: the stem points to -y; its tip is at body y = stem.center - stem.half.
    tip = T_SLIDER.stem.center[1] - T_SLIDER.stem.half[1]
    slider = np.array([0.6, 0.0, 0.0])
    start = np.array([0.6, tip - PUSHER.radius - 0.01])
    final = push_line(sim, slider, start, (0.0, 1.0))
    dx, dy, dth = final - slider
    assert dy > 0.06                        # pushed 12 cm minus the 1 cm gap and controller lag
    assert abs(dx) < 0.01 and abs(dth) < math.radians(5)


def test_off_centre_push_rotates_the_slider_the_expected_way(sim):
    # Push the bar's top face down (-y) right of the centre: torque x * Fy < 0, the T turns clockwise.
    top = T_SLIDER.bar.center[1] + T_SLIDER.bar.half[1]
    slider = np.array([0.6, 0.0, 0.0])
    start = np.array([0.6 + 0.06, top + PUSHER.radius + 0.01])
    final = push_line(sim, slider, start, (0.0, -1.0), steps=8)
    assert final[2] < -math.radians(5)
    assert final[1] < -0.01


def test_presets_differ_for_the_same_actions(target, sim):
    actions = []
    policy = ScriptedPusher()
    obs = target.reset(1)
    for _ in range(150):
        a = policy.act(obs)
        actions.append(a)
        obs, _ = target.step(a)
    final_target = target.true_state()[0]
    sim.reset(1)
    for a in actions:
        sim.step(a)
    final_sim = sim.true_state()[0]
    assert np.linalg.norm(final_target[:2] - final_sim[:2]) > 0.002 or abs(final_target[2] - final_sim[2]) > 0.02


def test_success_then_step_raises(target):
    target.reset(0, slider_pose=GOAL + [0.005, 0.0, 0.01])
    _, info = target.step(PUSHER.home)
    assert info["outcome"] == "success" and info["step"] == 1
    assert info["time"] == pytest.approx(0.1)
    with pytest.raises(RuntimeError, match="episode finished"):
        target.step(PUSHER.home)


def test_timeout_and_left_workspace(target):
    env = target
    env.task = dataclasses.replace(TASK, time_limit=0.5)
    try:
        env.reset(2)
        outcomes = [env.step(PUSHER.home)[1]["outcome"] for _ in range(5)]
        assert outcomes == ["running"] * 4 + ["timeout"]
    finally:
        env.task = TASK
    env.reset(2, slider_pose=[TASK.workspace[1] + 0.01, 0.0, 0.0])
    assert env.step(PUSHER.home)[1]["outcome"] == "left_workspace"


@pytest.mark.parametrize("bad, problem", [
    ([np.nan, 0.2], "finite"), ([0.1, 0.2, 0.3], "shape"), (np.zeros((1, 2)), "shape"), ("xy", "action"),
])
def test_bad_actions_raise_value_error(target, bad, problem):
    target.reset(0)
    with pytest.raises(ValueError, match=problem):
        target.step(bad)


def test_preset_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown physics preset 'nope'.*target"):
        load_preset("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nslider_mas: 0.1\n")
    with pytest.raises(ConfigError, match="slider_mas: unknown key"):
        load_preset(bad)
    with pytest.raises(ConfigError, match="slider_mass must be > 0"):
        load_preset("target", ["slider_mass=-1"])
    with pytest.raises(ConfigError, match="contact_model: must be one of"):
        load_preset("target", ["contact_model=soft"])
    with pytest.raises(ConfigError, match="time_step must divide"):
        load_preset("target", ["time_step=0.003"])


def test_presets_load_and_shift_levels():
    names = preset_names()
    assert {"sim", "target", "com_shift_0055", "com_shift_0655", "com_shift_0955"} <= set(names)
    target_cfg = load_preset("target")
    for name, shift in [("com_shift_0055", 0.0055), ("com_shift_0655", 0.0655), ("com_shift_0955", 0.0955)]:
        cfg = load_preset(name)
        assert cfg.name == name
        assert math.hypot(*cfg.com_offset) == pytest.approx(shift)
        assert dataclasses.replace(cfg, name="x", description="", com_offset=(0.0, 0.0)) == \
            dataclasses.replace(target_cfg, name="x", description="")


def test_latency_delays_the_command():
    cfg = load_preset("target", ["action_latency=2", "obs_noise_xy=0", "obs_noise_theta=0"])
    env = PushTEnv(cfg)
    env.reset(0)
    home = np.array(PUSHER.home)
    moved = []
    for _ in range(3):
        _, info = env.step(home + [0.0, 0.03])
        moved.append(np.linalg.norm(info["pusher_xy"] - home))
    assert moved[0] < 1e-4 and moved[1] < 1e-4 and moved[2] > 0.01


def test_observation_noise_only_where_configured(target, sim):
    target.reset(0)
    obs, info = target.step(PUSHER.home)
    assert 1e-5 < np.abs(obs["slider_pose"] - info["slider_pose"]).max() < 0.05
    sim.reset(0)
    obs, info = sim.step(PUSHER.home)
    np.testing.assert_array_equal(obs["slider_pose"], info["slider_pose"])


def test_set_state_teleports(target):
    target.reset(0)
    target.set_state([0.5, 0.1, 3.0], [0.7, -0.2])
    slider, pusher = target.true_state()
    np.testing.assert_allclose(slider, [0.5, 0.1, 3.0], atol=1e-9)
    np.testing.assert_allclose(pusher, [0.7, -0.2])
    _, info = target.step([0.7, -0.2])           # resting, held: nothing moves
    np.testing.assert_allclose(info["slider_pose"], [0.5, 0.1, 3.0], atol=1e-5)
    np.testing.assert_allclose(info["pusher_xy"], [0.7, -0.2], atol=1e-5)


@pytest.mark.parametrize("preset", ["target", "sim"])
def test_slider_rests_flat_and_friction_stops_it_as_coulomb_predicts(preset):
    """A slider sent sliding at v0 stops after v0^2 / (2 mu g), stays on the table and flat."""
    env = PushTEnv(preset)
    env.reset(0, slider_pose=[0.45, 0.0, 0.0])
    plant, ctx = env._plant, env._plant_context
    from pydrake.multibody.math import SpatialVelocity
    v0 = 0.3
    plant.SetFreeBodySpatialVelocity(ctx, env._scene.slider, SpatialVelocity(np.zeros(3), [v0, 0.0, 0.0]))
    for _ in range(5):
        _, info = env.step(PUSHER.home)
    expected = v0 ** 2 / (2 * env.config.mu_slider_table * 9.81)
    travelled = info["slider_pose"][0] - 0.45
    assert travelled == pytest.approx(expected, rel=0.15)
    assert abs(info["slider_pose"][1]) < 1e-3 and abs(info["slider_pose"][2]) < 0.01
    z, tilt = env.slider_height()
    assert abs(z - T_SLIDER.height / 2) < 2e-4 and tilt < math.radians(1)


def test_image_observation():
    env = PushTEnv("target", image_size=(48, 64))
    obs = env.reset(0)
    assert obs["image"].shape == (48, 64, 3) and obs["image"].dtype == np.uint8
    before = obs["image"].copy()
    env.set_state(GOAL, PUSHER.home)
    after = env.observe()["image"]
    assert np.abs(after.astype(int) - before.astype(int)).sum() > 0    # the teleported T is drawn
    assert env.observe()["image"].std() > 5                            # not a blank frame


def test_pusher_friction_decides_stick_or_slip():
    """Pusher pressing the bar's top face while moving diagonally: frictionless it slides along the face,
    with high friction it sticks (its contact point stays put in the slider's frame)."""
    from sim_envs.geometry import to_body
    top = T_SLIDER.bar.center[1] + T_SLIDER.bar.half[1]
    slider = np.array([0.6, 0.0, 0.0])
    start = np.array([0.6, top + PUSHER.radius + 0.005])
    slip = {}
    for mu in (0.0, 0.8):
        env = PushTEnv(load_preset("sim", [f"mu_pusher_slider={mu}"]))
        final = push_line(env, slider, start, (0.5, -1.0), steps=8)
        slip[mu] = abs(to_body(final, env.true_state()[1][None])[0, 0])   # along the face, from x = 0
    assert slip[0.0] > 0.015 and slip[0.8] < slip[0.0] - 0.01


def test_far_commands_are_speed_limited():
    env = PushTEnv(load_preset("sim", ["max_pusher_speed=0.5"]))
    env.reset(0)
    home = np.array(PUSHER.home)
    _, info = env.step(home + [0.0, 5.0])                  # 5 m away: the setpoint moves 5 cm
    assert 0.0 < info["pusher_xy"][1] - home[1] < 0.05 + 1e-3
    for _ in range(3):
        _, info = env.step(home + [0.0, 5.0])
    assert info["pusher_xy"][1] - home[1] < 0.2 + 1e-3


def test_preset_inheritance(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("inherit: sim\nslider_mass: 0.2\n")
    cfg = load_preset(child)
    assert cfg.name == "child" and cfg.slider_mass == 0.2
    assert cfg.mu_slider_table == load_preset("sim").mu_slider_table
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"inherit: {loop}\n")
    with pytest.raises(ConfigError, match="inheritance cycle"):
        load_preset(loop)
    orphan = tmp_path / "orphan.yaml"
    orphan.write_text("inherit: nope\n")
    with pytest.raises(ConfigError, match="inherit: unknown physics preset 'nope'"):
        load_preset(orphan)


def test_centre_of_mass_shift_flips_the_turn():
    """Push the stem's side sideways between the centroid and the shifted centre of mass: the T turns one
    way about the centroid (target) and the other way about a centre of mass moved 95.5 mm down the stem."""
    side = T_SLIDER.stem.half[0]
    slider = np.array([0.6, 0.0, 0.0])
    start = np.array([0.6 + side + PUSHER.radius + 0.005, -0.05])
    turn = {}
    for name in ("target", "com_shift_0955"):
        final = push_line(PushTEnv(name), slider, start, (-1.0, 0.0), steps=6)
        turn[name] = final[2]
    assert turn["target"] < -math.radians(3)
    assert turn["com_shift_0955"] > math.radians(3)
