"""`--record N`: replay the first N evaluation trials with a Meshcat recording and a camera video each.

A trial's outcome depends only on its seed (see rollouts.py), so replaying it alone in a recording env
reproduces the trial that was scored. Recording runs after the scored evaluation, in this process, with
one env at a time (rendering is the slow part, and only a few trials are recorded).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from eval.rollouts import _load_policy, check_cameras, one_torch_thread, run_wave
from sim_envs.env import PushTEnv
from sim_envs.recording import save_meshcat_html, save_video
from sim_envs.visual import CameraSetup

VIDEO_SIZE = (240, 240)   # (H, W) of the recorded camera when the policy itself uses no images


class _OneEnv:
    """A single PushTEnv behind the VectorEnv interface that run_wave drives."""

    def __init__(self, env):
        self.env = env

    def reset(self, seeds):
        return {k: np.asarray(v)[None] for k, v in self.env.reset(int(seeds[0])).items()}

    def step(self, actions, render=None):     # a recording renders every frame (the video's)
        obs, info = self.env.step(np.asarray(actions)[0])
        return {k: np.asarray(v)[None] for k, v in obs.items()}, [info]


def record_rollouts(policy_or_path, preset, seeds: Sequence[int], out_dir, device: str = "cpu",
                    max_steps: int | None = None, video_suffix: str = ".mp4", inference_batch: int = 0,
                    visual=None) -> list[Path]:
    """Write <out_dir>/seed<k>.html (Meshcat replay) and seed<k>.mp4 for each seed; return the paths.
    inference_batch: the scored evaluation's, so that a recording replays the trial that was scored."""
    from pydrake.geometry import Meshcat


    policy = _load_policy(policy_or_path, device)
    cameras = check_cameras(policy, visual) or CameraSetup()
    image_size = cameras.image_size or VIDEO_SIZE     # the video is the plain top-down camera's
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    meshcat = Meshcat()
    for seed in seeds:
        meshcat.Delete()
        env = PushTEnv(preset, image_size=tuple(image_size), meshcat=meshcat, record=True, visual=cameras.visual)
        try:
            with one_torch_thread(inference_batch > 0):
                [record] = run_wave(policy, _OneEnv(env), [seed], max_steps=max_steps, inference_batch=inference_batch)
            env.publish_recording()
            html = save_meshcat_html(meshcat, out_dir / f"seed{seed}.html")
            video = save_video(env.frames, out_dir / f"seed{seed}{video_suffix}")
            written += [html, video]
            print(f"recorded   seed {seed}: {record.outcome} after {record.steps} steps -> {html.name}, {video.name}")
        finally:
            env.close()
    return written
