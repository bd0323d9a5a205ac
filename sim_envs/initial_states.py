"""Seeded initial slider poses, shared by env.reset, both data generators, the planner benchmark and eval,
so that "seed 17" means the same start everywhere."""
from __future__ import annotations

import math

import numpy as np

from sim_envs.geometry import PUSHER, T_SLIDER, TASK, Task, TSlider, Pusher, in_workspace, is_success, \
    pusher_slider_distance, to_world

# Keep the T this far (m) from the pusher's home, so an episode never starts in contact.
START_CLEARANCE = 0.02


def sample_initial_pose(seed: int, task: Task = TASK, slider: TSlider = T_SLIDER, pusher: Pusher = PUSHER) -> np.ndarray:
    """Slider pose (x, y, theta) uniform in the box around the goal, rejecting bad starts.

    Rejected: overlap with (or within START_CLEARANCE of) the pusher at home, any part of the T outside
    the workspace, and poses that already count as success.
    """
    rng = np.random.default_rng([int(seed), 0x5EED])
    hx, hy = task.init_half_extent
    for _ in range(10_000):
        pose = np.array([
            task.goal[0] + rng.uniform(-hx, hx),
            task.goal[1] + rng.uniform(-hy, hy),
            rng.uniform(-math.pi, math.pi),
        ])
        if pusher_slider_distance(pusher.home, pose, slider, pusher) < START_CLEARANCE:
            continue
        corners = to_world(pose, slider.outline())
        if not all(in_workspace((cx, cy, 0.0), task) for cx, cy in corners):
            continue
        if is_success(pose, task):
            continue
        return pose
    raise RuntimeError(f"no valid initial pose found for seed {seed}; check Task.init_half_extent and workspace")
