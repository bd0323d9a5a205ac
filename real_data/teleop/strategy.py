"""The pushing strategy of the scripted teleoperator: what a person decides, not how their hand moves.

Feedback, from the observed state only (no planner):
1. Choose a face point to push. For every reachable point on the T's outline, predict how a push along
   the inward normal would move the slider (ellipsoidal limit surface: a force f at r gives a twist
   v = f, omega = (r x f) / c^2) and score how well that motion reduces the pose error
   (dx, dy, L * dtheta). A person prefers the face they are already at, so the current choice is kept
   while it stays good enough (hysteresis).
2. Approach: go around the T (outside a clearance circle) to just outside that point, then in.
3. Push along the inward normal at a speed that shrinks with the error, steering back to the chosen
   point if the pusher slides along the face.
4. Re-approach (back off, choose again) when the push stops helping: the slider turns the wrong way,
   another face has become much better, or contact is lost.

`Strategy.decide(obs)` returns a waypoint (world xy) and a speed; the human layer (human.py) turns
that into gamepad-like motion.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from harness.core.configs import key
from sim_envs.geometry import PUSHER, T_SLIDER, TASK, pose_error, rotation, signed_distance_body

APPROACH, PUSH, RETREAT = "approach", "push", "retreat"


@dataclasses.dataclass
class StrategyConfig:
    rot_weight: float = key(0.12, doc="L (m): how much 1 rad of slider angle error weighs against 1 m of xy error")
    limit_surface_c: float = key(0.06, doc="c (m): torque-to-force ratio of the slider's friction limit surface")
    candidate_spacing: float = key(0.006, doc="m between candidate push points along each face")
    approach_gap: float = key(0.012, doc="m between the pusher's surface and the face before pushing")
    clearance_margin: float = key(0.02, doc="m added to the T's radius + pusher radius for going around the T")
    approach_speed: float = key(0.14, doc="m/s while moving freely")
    push_speed_max: float = key(0.06, doc="m/s pushing far from the goal")
    push_speed_min: float = key(0.012, doc="m/s pushing near the goal")
    push_speed_gain: float = key(0.5, doc="push speed (m/s) per unit of weighted error (m)")
    keep_score: float = key(0.25, doc="keep pushing the current point while its score stays above this (and no "
                            "other point scores switch_margin higher)")
    switch_margin: float = key(0.35, doc="switch from the current point (still above keep_score) only to a point "
                               "scoring this much higher")
    wrong_way_deg: float = key(2.0, doc="re-approach if the slider turns this much the wrong way over 3 steps")
    lost_contact: float = key(0.02, doc="m gap between pusher and T that counts as lost contact")
    retreat_distance: float = key(0.025, doc="m to back off along the face normal before choosing again")

    def __post_init__(self):
        def require(ok, key, what):
            if not ok:
                raise ValueError(f"{key} must be {what}, got {getattr(self, key)!r}")
        inf = float("inf")
        for key in ("rot_weight", "limit_surface_c", "candidate_spacing", "approach_speed", "push_speed_max",
                    "push_speed_min", "wrong_way_deg", "lost_contact"):
            require(0 < getattr(self, key) < inf, key, "> 0")
        for key in ("approach_gap", "clearance_margin", "push_speed_gain", "retreat_distance"):
            require(0 <= getattr(self, key) < inf, key, ">= 0")
        require(self.push_speed_min <= self.push_speed_max, "push_speed_min",
                f"<= push_speed_max ({self.push_speed_max})")
        # scores are cosines in [-1, 1]
        require(-1 <= self.keep_score <= 1, "keep_score", "in [-1, 1] (scores are cosines)")
        require(0 <= self.switch_margin <= 2, "switch_margin", "in [0, 2] (scores are cosines)")


def _face_candidates(spacing: float):
    """Reachable push points in the slider frame: points (K, 2), outward normals (K, 2)."""
    points, normals = [], []
    r = PUSHER.radius
    for a, b in T_SLIDER.faces():
        length = float(np.linalg.norm(b - a))
        tangent = (b - a) / length
        normal = np.array([tangent[1], -tangent[0]])       # outward for a counter-clockwise outline
        n = max(1, int(length / spacing))
        for s in (np.arange(n) + 0.5) / n * length:
            p = a + tangent * s
            center = p + normal * (r + 1e-3)
            # The cylinder must fit there without touching another face (concave corners of the T).
            if signed_distance_body(center) >= r - 1e-4:
                points.append(p)
                normals.append(normal)
    return np.array(points), np.array(normals)


class Strategy:
    def __init__(self, config: StrategyConfig = StrategyConfig(), goal=TASK.goal):
        self.cfg = config
        self.goal = np.asarray(goal, float)
        self.points, self.normals = _face_candidates(config.candidate_spacing)       # (K, 2), (K, 2)
        # Predicted body twist per unit push at each point: force -n at r -> (v, omega).
        force = -self.normals
        torque = self.points[:, 0] * force[:, 1] - self.points[:, 1] * force[:, 0]
        self._v_body = force                                                           # (K, 2)
        self._omega = torque / config.limit_surface_c ** 2                             # (K,)
        self.clearance = T_SLIDER.radius() + PUSHER.radius + config.clearance_margin
        self.reset()

    def reset(self) -> None:
        self.mode = APPROACH
        self.choice: int | None = None
        self.history: list[np.ndarray] = []      # recent slider poses seen while pushing
        self.retreat_target: np.ndarray | None = None
        self.reapproaches = 0

    # ---- scoring
    def scores(self, slider_pose) -> np.ndarray:
        """(K,) cosine between each push's predicted motion and the motion that removes the error."""
        err = pose_error(slider_pose, self.goal)                                        # (3,)
        L = self.cfg.rot_weight
        want = -np.array([err[0], err[1], L * err[2]])
        v_world = self._v_body @ rotation(slider_pose[2]).T                             # (K, 2)
        motion = np.column_stack([v_world, L * self._omega])                            # (K, 3)
        motion /= np.linalg.norm(motion, axis=1, keepdims=True)
        return motion @ want / max(np.linalg.norm(want), 1e-9)

    def weighted_error(self, slider_pose) -> float:
        err = pose_error(slider_pose, self.goal)
        return float(math.hypot(math.hypot(err[0], err[1]), self.cfg.rot_weight * err[2]))

    # ---- the decision
    def decide(self, obs: dict) -> tuple[np.ndarray, float]:
        """Waypoint (2,) world xy for the pusher and the speed (m/s) to move toward it."""
        pose = np.asarray(obs["slider_pose"], float)
        pusher = np.asarray(obs["agent_pos"], float)
        scores = self.scores(pose)
        if self.mode == PUSH and self._should_stop_pushing(pose, pusher, scores):
            self.mode = RETREAT
            self.reapproaches += 1
            n_world = rotation(pose[2]) @ self.normals[self.choice]
            self.retreat_target = pusher + n_world * self.cfg.retreat_distance
        if self.mode == RETREAT:
            if np.linalg.norm(pusher - self.retreat_target) > 0.006:
                return self.retreat_target, self.cfg.approach_speed
            self.mode, self.choice = APPROACH, None
        if self.mode == APPROACH:
            if self.choice is None or scores[self.choice] < self.cfg.keep_score:
                self.choice = self._choose(pose, pusher, scores)
            start = self._point_world(pose, self.choice, PUSHER.radius + self.cfg.approach_gap)
            if np.linalg.norm(pusher - start) < 0.005:
                self.mode, self.history = PUSH, []
            else:
                return self._navigate(pose, pusher, start), self.cfg.approach_speed
        return self._push_waypoint(pose, pusher)

    def _choose(self, pose, pusher, scores) -> int:
        """Best-scoring point, with a small preference for points near the pusher (less walking around)."""
        centers = self._all_points_world(pose, PUSHER.radius + self.cfg.approach_gap)   # (K, 2)
        travel = np.linalg.norm(centers - pusher, axis=1)
        return int(np.argmax(scores - 0.15 * travel / self.clearance))

    def _should_stop_pushing(self, pose, pusher, scores) -> bool:
        cfg = self.cfg
        self.history = (self.history + [pose])[-4:]
        if scores[self.choice] < cfg.keep_score or scores.max() - scores[self.choice] > cfg.switch_margin:
            return True
        # Lost contact: the T slid or spun away from the pusher.
        body = (pusher - pose[:2]) @ rotation(pose[2])
        if signed_distance_body(body) - PUSHER.radius > cfg.lost_contact:
            return True
        # Turning the wrong way: the push should rotate the slider with the sign of omega.
        if len(self.history) == 4 and abs(self.cfg.rot_weight * pose_error(pose, self.goal)[2]) > 0.01:
            turned = math.remainder(self.history[-1][2] - self.history[0][2], 2 * math.pi)
            predicted = self._omega[self.choice]
            if abs(predicted) > 1.0 and turned * predicted < 0 and abs(turned) > math.radians(cfg.wrong_way_deg):
                return True
        return False

    def _push_waypoint(self, pose, pusher) -> tuple[np.ndarray, float]:
        cfg = self.cfg
        R = rotation(pose[2])
        n_world = R @ self.normals[self.choice]
        on_face = self._point_world(pose, self.choice, PUSHER.radius)
        # Steer back toward the chosen point if the pusher slid along the face.
        tangent = np.array([-n_world[1], n_world[0]])
        slip = float((on_face - pusher) @ tangent)
        speed = float(np.clip(cfg.push_speed_gain * self.weighted_error(pose), cfg.push_speed_min, cfg.push_speed_max))
        step = speed * TASK.control_dt
        waypoint = pusher - n_world * 2 * step + tangent * 0.5 * slip
        return waypoint, speed

    # ---- geometry helpers
    def _point_world(self, pose, k: int, offset: float) -> np.ndarray:
        body = self.points[k] + self.normals[k] * offset
        return body @ rotation(pose[2]).T + pose[:2]

    def _all_points_world(self, pose, offset: float) -> np.ndarray:
        return (self.points + self.normals * offset) @ rotation(pose[2]).T + pose[:2]

    def _navigate(self, pose, pusher, target) -> np.ndarray:
        """Straight to `target` if the way is clear of the T, else around it on the clearance circle."""
        if self._segment_clear(pose, pusher, target):
            return target
        center = pose[:2]
        rel = pusher - center
        dist = float(np.linalg.norm(rel))
        if dist < self.clearance - 0.005:
            return center + rel / max(dist, 1e-9) * self.clearance        # step out first
        a_now = math.atan2(rel[1], rel[0])
        t_rel = target - center
        gap = math.remainder(math.atan2(t_rel[1], t_rel[0]) - a_now, 2 * math.pi)
        step = math.copysign(min(abs(gap), 0.06 / self.clearance), gap)  # look 6 cm ahead along the circle
        a = a_now + step
        return center + self.clearance * np.array([math.cos(a), math.sin(a)])

    def _segment_clear(self, pose, a, b) -> bool:
        n = max(2, int(np.linalg.norm(b - a) / 0.005) + 1)
        R = rotation(pose[2])
        # Near a concave corner the start point itself is closer than that to the other face: allow it.
        limit = min(PUSHER.radius + 0.004, signed_distance_body((b - pose[:2]) @ R) - 0.001)
        for s in np.linspace(0.0, 1.0, n):
            body = (a + (b - a) * s - pose[:2]) @ R
            if signed_distance_body(body) < limit:
                return False
        return True
