"""A simple state-based pushing policy, for the rollout demo, the speed benchmark and tests.

Go around the T (outside its bounding circle) to the point behind it on the line from the goal through
the slider's centre, then push along that line. It ignores orientation, so it rarely reaches the
success tolerance in theta; it exists to exercise contact, not to solve the task.
"""
from __future__ import annotations

import math

import numpy as np

from sim_envs.geometry import PUSHER, T_SLIDER, TASK, wrap_angle

CLEARANCE = PUSHER.radius + T_SLIDER.radius() + 0.015   # orbit radius around the slider's centre (m)
MAX_STEP = 0.015                                          # m per 0.1 s control step (0.15 m/s)


class ScriptedPusher:
    """`act(obs) -> action (2,)` from the observation dict of PushTEnv."""

    def __init__(self, goal=TASK.goal, max_step: float = MAX_STEP, clearance: float = CLEARANCE):
        self.goal = np.asarray(goal[:2], float)
        self.max_step = max_step
        self.clearance = clearance
        self.pushing = False

    def reset(self) -> None:
        self.pushing = False

    def act(self, obs: dict) -> np.ndarray:
        slider = np.asarray(obs["slider_pose"][:2], float)
        pusher = np.asarray(obs["agent_pos"], float)
        to_goal = self.goal - slider
        dist = float(np.linalg.norm(to_goal))
        if dist < 1e-3:
            return pusher.copy()
        direction = to_goal / dist
        rel = pusher - slider
        behind = -direction * self.clearance
        angle_gap = wrap_angle(_angle(behind) - _angle(rel))
        if self.pushing and abs(angle_gap) > math.radians(40):
            self.pushing = False                     # the T slid away sideways: go around again
        if not self.pushing and abs(angle_gap) < math.radians(8) and np.linalg.norm(rel) > 0.8 * self.clearance:
            self.pushing = True
        if self.pushing:
            target = slider + direction * min(dist, 0.05)   # push through the centre, toward the goal
            # Keep pushing straight along the goal line: pull the pusher back onto it.
            target = target + 0.5 * _perp_error(pusher, slider, direction)
        else:
            # Orbit: move along the circle of radius `clearance` toward the point behind the T.
            step_angle = math.copysign(min(abs(angle_gap), self.max_step / self.clearance), angle_gap)
            a = _angle(rel) + step_angle
            target = slider + self.clearance * np.array([math.cos(a), math.sin(a)])
        return _limit(pusher, target, self.max_step)


def _angle(v) -> float:
    return math.atan2(v[1], v[0])


def _perp_error(pusher, slider, direction) -> np.ndarray:
    """Vector from the pusher to its projection on the line through the slider along `direction`."""
    rel = pusher - slider
    along = rel @ direction
    return slider + along * direction - pusher


def _limit(start, target, max_step) -> np.ndarray:
    delta = target - start
    n = float(np.linalg.norm(delta))
    return target if n <= max_step else start + delta * (max_step / n)
