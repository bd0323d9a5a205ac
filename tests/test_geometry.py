"""The task geometry everything else relies on."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sim_envs.geometry import PUSHER, TASK, T_SLIDER, is_success, pose_error, pusher_slider_distance, \
    signed_distance_body, to_body, to_world
from sim_envs.initial_states import START_CLEARANCE, sample_initial_pose


def _polygon_area_and_centroid(v):
    x, y = v[:, 0], v[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2
    cx = ((x + np.roll(x, -1)) * cross).sum() / (6 * area)
    cy = ((y + np.roll(y, -1)) * cross).sum() / (6 * area)
    return area, np.array([cx, cy])


def test_t_outline_matches_published_dimensions_and_com_is_origin():
    area, centroid = _polygon_area_and_centroid(T_SLIDER.outline())
    assert area == pytest.approx(0.1651 * 0.0406 + 0.0406 * 0.1245)  # counter-clockwise, positive
    assert np.allclose(centroid, 0.0, atol=1e-12)
    assert np.ptp(T_SLIDER.outline()[:, 0]) == pytest.approx(0.1651)
    assert np.ptp(T_SLIDER.outline()[:, 1]) == pytest.approx(0.0406 + 0.1245)


def test_signed_distance_inside_outside_and_faces():
    assert signed_distance_body((0.0, 0.0)) < 0
    assert signed_distance_body((0.0, T_SLIDER.bar.center[1] + 0.0203 + 0.01)) == pytest.approx(0.01)
    # a point beside the stem, below the bar, is outside both boxes
    assert signed_distance_body((0.05, -0.05)) == pytest.approx(0.05 - 0.0203)
    # outward normals of all faces point away from the T
    for a, b in T_SLIDER.faces():
        mid = (a + b) / 2
        tangent = (b - a) / np.linalg.norm(b - a)
        normal = np.array([tangent[1], -tangent[0]])
        assert signed_distance_body(mid + 1e-3 * normal) == pytest.approx(1e-3, abs=1e-9)


def test_frames_and_pose_error():
    pose = (0.5, -0.1, 0.7)
    pts = np.array([[0.01, 0.02], [-0.03, 0.05]])
    assert np.allclose(to_body(pose, to_world(pose, pts)), pts)
    assert pose_error((0.0, 0.0, 3.0), goal=(0.0, 0.0, -3.0))[2] == pytest.approx(6.0 - 2 * math.pi)
    assert is_success((TASK.goal[0] + 0.01, TASK.goal[1] - 0.01, math.radians(3.0)))
    assert not is_success((TASK.goal[0] + 0.02, TASK.goal[1], 0.0))
    assert not is_success((TASK.goal[0], TASK.goal[1], math.radians(4.0)))


def test_initial_poses_are_seeded_and_valid():
    poses = np.array([sample_initial_pose(s) for s in range(200)])
    assert np.array_equal(poses[7], sample_initial_pose(7))
    assert len(np.unique(poses[:, 2])) == 200
    hx, hy = TASK.init_half_extent
    assert np.all(np.abs(poses[:, 0] - TASK.goal[0]) <= hx) and np.all(np.abs(poses[:, 1] - TASK.goal[1]) <= hy)
    assert np.all(np.abs(poses[:, 2]) <= math.pi)
    assert all(pusher_slider_distance(PUSHER.home, p) >= START_CLEARANCE for p in poses)
    assert not any(is_success(p) for p in poses)
