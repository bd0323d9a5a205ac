"""`cotrain rollout`: a short scripted push writes a playable GIF and a Meshcat HTML; bad input exits 2."""
from __future__ import annotations

import time

import imageio.v3 as iio
import pytest

from harness.cli import main
from sim_envs.env import PushTEnv
from sim_envs.rollout import run_episode


def test_rollout_writes_video_and_html(tmp_path, capsys):
    gif, html = tmp_path / "r.gif", tmp_path / "r.html"
    code = main(["rollout", "--env", "sim", "--seed", "1", "--steps", "4", "--video", str(gif),
                 "--image-size", "32x40", "--html", str(html)])
    out = capsys.readouterr().out
    assert code == 0
    assert "running after 4 steps" in out and "real-time factor" in out
    frames = iio.imread(gif)
    assert frames.shape[0] == 5 and frames.shape[1:3] == (32, 40)     # reset frame + 4 steps
    text = html.read_text()
    assert "<html" in text.lower() and len(text) > 10_000


def test_rollout_bad_input_exits_2(tmp_path, capsys):
    assert main(["rollout", "--env", "nope"]) == 2
    assert "unknown physics preset 'nope'" in capsys.readouterr().err
    assert main(["rollout", "--video", str(tmp_path / "x.avi")]) == 2
    assert "video must end in .mp4 or .gif" in capsys.readouterr().err
    assert main(["rollout", "--set", "mu_slider_table=-1"]) == 2
    assert "mu_slider_table must be >= 0" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_run_episode_stops_at_max_steps_and_times_itself():
    env = PushTEnv("target")
    before = time.perf_counter()
    result = run_episode(env, seed=2, max_steps=7)
    outer = time.perf_counter() - before
    assert result.outcome == "running" and result.steps == 7
    assert result.sim_time == pytest.approx(result.steps * env.task.control_dt, abs=1e-9)
    # the episode's timed span lies inside the call, and the factors are simulated time over that span
    assert 0 < result.wall_time <= outer
    assert result.realtime_factor == pytest.approx(result.sim_time / result.wall_time)
    assert result.realtime_factor >= result.sim_time / outer
    assert result.cpu_realtime_factor == pytest.approx(result.sim_time / result.cpu_time)
    assert f"real-time factor {result.realtime_factor:.1f}x" in result.summary()
