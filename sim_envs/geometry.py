"""The task's geometry: the one source of truth for the planner, the simulation and rendering.

The T slider ("small T" of the published planar-pushing setup) is two boxes, a top bar and a stem. Its
body frame has the origin at the geometric centre of mass of the two boxes (uniform density), x along
the bar and y along the stem, pointing from the stem towards the bar:

            +y
     ┌──────────────┐   top bar 0.1651 x 0.0406
     └────┐    ┌────┘
          │ o  │        o = body origin (centre of mass)
          │    │        stem 0.0406 x 0.1245
          └────┘
A physics preset may move the true centre of mass away from this origin (`com_offset`); the frame stays.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Box2D:
    """An axis-aligned box in the slider's body frame."""
    center: tuple[float, float]
    size: tuple[float, float]  # (width along x, height along y)

    @property
    def half(self) -> np.ndarray:
        return np.asarray(self.size) / 2

    def corners(self) -> np.ndarray:
        """(4, 2) counter-clockwise from bottom-left."""
        cx, cy = self.center
        hx, hy = self.half
        return np.array([[cx - hx, cy - hy], [cx + hx, cy - hy], [cx + hx, cy + hy], [cx - hx, cy + hy]])


@dataclasses.dataclass(frozen=True)
class TSlider:
    bar_size: tuple[float, float] = (0.1651, 0.0406)
    stem_size: tuple[float, float] = (0.0406, 0.1245)
    height: float = 0.03175
    mass: float = 0.1

    @property
    def _bar_area(self) -> float:
        return self.bar_size[0] * self.bar_size[1]

    @property
    def _stem_area(self) -> float:
        return self.stem_size[0] * self.stem_size[1]

    @property
    def bar_to_stem(self) -> float:
        """Distance between the centres of the bar and the stem along y."""
        return self.bar_size[1] / 2 + self.stem_size[1] / 2

    @property
    def bar(self) -> Box2D:
        y = self._stem_area * self.bar_to_stem / (self._bar_area + self._stem_area)
        return Box2D((0.0, y), self.bar_size)

    @property
    def stem(self) -> Box2D:
        y = self.bar.center[1] - self.bar_to_stem
        return Box2D((0.0, y), self.stem_size)

    @property
    def boxes(self) -> tuple[Box2D, Box2D]:
        return (self.bar, self.stem)

    def outline(self) -> np.ndarray:
        """(8, 2) vertices of the T's outline, counter-clockwise, in the body frame."""
        bar, stem = self.bar, self.stem
        bx, by = bar.half
        sx, sy = stem.half
        yb, ys = bar.center[1], stem.center[1]
        return np.array([
            [-sx, ys - sy], [sx, ys - sy], [sx, yb - by], [bx, yb - by],
            [bx, yb + by], [-bx, yb + by], [-bx, yb - by], [-sx, yb - by],
        ])

    def faces(self) -> np.ndarray:
        """(8, 2, 2): each face of the outline as (start, end) vertices, counter-clockwise.

        The outward normal of a face from a to b is (b - a) rotated by -90 degrees.
        """
        v = self.outline()
        return np.stack([v, np.roll(v, -1, axis=0)], axis=1)

    def inertia_zz(self) -> float:
        """Rotational inertia about the body origin, uniform density (kg m^2)."""
        total = 0.0
        area = self._bar_area + self._stem_area
        for box in self.boxes:
            m = self.mass * box.size[0] * box.size[1] / area
            w, h = box.size
            total += m * (w * w + h * h) / 12 + m * (box.center[0] ** 2 + box.center[1] ** 2)
        return total

    def radius(self) -> float:
        """Distance from the body origin to the farthest vertex (bounding circle)."""
        return float(np.max(np.linalg.norm(self.outline(), axis=1)))


@dataclasses.dataclass(frozen=True)
class Pusher:
    radius: float = 0.015
    height: float = 0.03
    home: tuple[float, float] = (0.587, 0.25)   # where the pusher starts and ends every episode


@dataclasses.dataclass(frozen=True)
class Task:
    """Goal, success tolerance, timing, and the regions poses are sampled from and must stay in."""
    goal: tuple[float, float, float] = (0.587, -0.0355, 0.0)
    success_xy: float = 0.015                     # |dx|, |dy| <= this (m)
    success_theta: float = math.radians(3.5)      # |dtheta| <= this (rad)
    control_hz: float = 10.0
    time_limit: float = 75.0                      # s
    # Initial slider poses: uniform in goal +- init_half_extent (x, y), theta uniform in (-pi, pi).
    init_half_extent: tuple[float, float] = (0.15, 0.15)
    # The slider's origin must stay inside this box (x_min, x_max, y_min, y_max) or the episode ends.
    workspace: tuple[float, float, float, float] = (0.25, 0.95, -0.40, 0.40)

    @property
    def control_dt(self) -> float:
        return 1.0 / self.control_hz

    @property
    def max_steps(self) -> int:
        return int(round(self.time_limit * self.control_hz))


T_SLIDER = TSlider()
PUSHER = Pusher()
TASK = Task()


# ---------------------------------------------------------------------------------------------------
# Plane geometry used by the planner, the environments and the tests.

def rotation(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def to_world(pose, points_body: np.ndarray) -> np.ndarray:
    """Body-frame points (N, 2) to world for slider pose (x, y, theta)."""
    x, y, theta = pose
    return np.asarray(points_body) @ rotation(theta).T + np.array([x, y])


def to_body(pose, points_world: np.ndarray) -> np.ndarray:
    x, y, theta = pose
    return (np.asarray(points_world) - np.array([x, y])) @ rotation(theta)


def signed_distance_body(point_body, slider: TSlider = T_SLIDER) -> float:
    """Signed distance from a body-frame point to the T (negative inside): union of two boxes."""
    p = np.asarray(point_body, dtype=float)
    return min(_box_sdf(p, box) for box in slider.boxes)


def pusher_slider_distance(pusher_xy, slider_pose, slider: TSlider = T_SLIDER, pusher: Pusher = PUSHER) -> float:
    """Gap between the pusher's surface and the T (negative when they overlap)."""
    body = to_body(slider_pose, np.asarray(pusher_xy)[None])[0]
    return signed_distance_body(body, slider) - pusher.radius


def pose_error(pose, goal=TASK.goal) -> np.ndarray:
    """(dx, dy, dtheta) with dtheta wrapped to (-pi, pi]."""
    dx, dy = pose[0] - goal[0], pose[1] - goal[1]
    return np.array([dx, dy, wrap_angle(pose[2] - goal[2])])


def is_success(pose, task: Task = TASK) -> bool:
    dx, dy, dth = pose_error(pose, task.goal)
    return abs(dx) <= task.success_xy and abs(dy) <= task.success_xy and abs(dth) <= task.success_theta


def in_workspace(pose, task: Task = TASK) -> bool:
    x_min, x_max, y_min, y_max = task.workspace
    return x_min <= pose[0] <= x_max and y_min <= pose[1] <= y_max


def wrap_angle(a: float) -> float:
    return float((a + math.pi) % (2 * math.pi) - math.pi)


def _box_sdf(p: np.ndarray, box: Box2D) -> float:
    q = np.abs(p - np.asarray(box.center)) - box.half
    outside = np.linalg.norm(np.maximum(q, 0.0))
    inside = min(max(q[0], q[1]), 0.0)
    return float(outside + inside)
