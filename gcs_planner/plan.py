"""A plan: the pushes (arcs between knot poses) and the pusher's free paths, on one timeline.

`assemble` turns knots + faces into timed phases; `Plan` stores the dense trajectory (every
`sample_dt` seconds) plus the push table, and round-trips through a .npz file. Replay and the verifier
read only a `Plan`.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from gcs_planner.config import PlannerConfig
from gcs_planner.free_space import FreeSpace, path_length
from gcs_planner.mechanics import Face, limit_surface_c, push_for_twist, se2_exp, se2_log
from harness.core.atomic import atomic_path
from harness.core.errors import UserError
from sim_envs.geometry import PUSHER, to_body, to_world


@dataclasses.dataclass
class Plan:
    t: np.ndarray             # (N,) seconds from 0
    slider: np.ndarray        # (N, 3) slider pose x, y, theta (theta unwrapped)
    pusher: np.ndarray        # (N, 2) pusher centre, world frame
    face: np.ndarray          # (N,) int: face pushed at this sample, -1 when not in contact
    knots: np.ndarray         # (M + 1, 3) slider poses between pushes
    push_face: np.ndarray     # (M,) int face of each push
    push_s: np.ndarray        # (M,) contact parameter of each push along its face
    info: dict                # scalars: seed, cost, solve_time, ...

    @property
    def duration(self) -> float:
        return float(self.t[-1])

    def state_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(slider pose (3,), pusher xy (2,)) at time t, linear between dense samples."""
        t = float(np.clip(t, 0.0, self.t[-1]))
        slider = np.array([np.interp(t, self.t, self.slider[:, i]) for i in range(3)])
        pusher = np.array([np.interp(t, self.t, self.pusher[:, i]) for i in range(2)])
        return slider, pusher

    def save(self, path) -> None:
        path = Path(path)
        info = {f"info_{k}": np.asarray(v) for k, v in self.info.items()}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, t=self.t, slider=self.slider, pusher=self.pusher, face=self.face,
                         knots=self.knots, push_face=self.push_face, push_s=self.push_s, **info)

    @classmethod
    def load(cls, path) -> "Plan":
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: plan file not found")
        try:
            data = np.load(path)
            arrays = {k: data[k] for k in ("t", "slider", "pusher", "face", "knots", "push_face", "push_s")}
            info = {k[5:]: data[k].item() for k in data.files if k.startswith("info_")}
        except (KeyError, ValueError, OSError) as exc:
            raise UserError(f"{path}: not a plan file ({exc})") from None
        return cls(**arrays, info=info)


# ---------------------------------------------------------------------------------------------------
# Timed phases. Each maps u in [0, 1] to (slider pose, pusher xy) and knows its duration.

@dataclasses.dataclass
class _Push:
    q0: np.ndarray
    twist: np.ndarray
    pusher_body: np.ndarray
    face: int
    duration: float

    def at(self, u: float):
        q = se2_exp(self.q0, self.twist, u)
        return q, to_world(q, self.pusher_body[None])[0]


@dataclasses.dataclass
class _Free:
    pose: np.ndarray
    path_body: np.ndarray     # (K, 2) polyline in the slider's body frame
    duration: float

    def at(self, u: float):
        lengths = np.linalg.norm(np.diff(self.path_body, axis=0), axis=1)
        total = lengths.sum()
        if total < 1e-12:
            p = self.path_body[0]
        else:
            target = u * total
            cum = np.concatenate([[0.0], np.cumsum(lengths)])
            i = min(int(np.searchsorted(cum, target, side="right")) - 1, len(lengths) - 1)
            frac = (target - cum[i]) / lengths[i] if lengths[i] > 0 else 0.0
            p = self.path_body[i] + frac * (self.path_body[i + 1] - self.path_body[i])
        return self.pose.copy(), to_world(self.pose, p[None])[0]

    @property
    def face(self) -> int:
        return -1   # not pushing


def assemble(knots: np.ndarray, faces: list[int], all_faces: list[Face], cfg: PlannerConfig,
             free: FreeSpace, home=PUSHER.home, info: dict | None = None) -> Plan:
    """Time the pushes and the free moves between them, and sample the whole plan densely."""
    c = limit_surface_c()
    r = PUSHER.radius
    home = np.asarray(home, dtype=float)
    phases = []
    pushes = []
    for j, f in enumerate(faces):
        twist = se2_log(knots[j], knots[j + 1])
        push = push_for_twist(all_faces[f], twist, cfg.mu, c)
        s = float(np.clip(push.s, all_faces[f].s_lo, all_faces[f].s_hi))
        pushes.append((f, s, twist))
    pusher_body = to_body(knots[0], home[None])[0]   # where the pusher is, in the current body frame
    in_contact = None  # (face, s) the pusher touches now
    for j, (f, s, twist) in enumerate(pushes):
        face = all_faces[f]
        contact = face.pusher_center(s, r)
        same = in_contact is not None and in_contact[0] == f and \
            abs(in_contact[1] - s) * face.length <= cfg.same_contact_tol
        if same and abs(in_contact[1] - s) * face.length > 1e-6:
            # Slide along the face at zero normal force (slider still) to the next contact point.
            phases.append(_free_phase(knots[j], [pusher_body, contact], cfg))
        elif not same:
            if in_contact is not None:   # retreat from the old contact
                old = all_faces[in_contact[0]]
                pre_old = _pre_contact(old, in_contact[1], cfg, free)
                phases.append(_free_phase(knots[j], [pusher_body, pre_old], cfg))
                pusher_body = pre_old
            pre = _pre_contact(face, s, cfg, free)
            path = free.shortest_path(pusher_body, pre)
            phases.append(_free_phase(knots[j], list(path) + [contact], cfg))
        # Push: the pusher stays at `contact` in the body frame while the slider follows the arc.
        arc = np.array([to_world(se2_exp(knots[j], twist, u), contact[None])[0] for u in np.linspace(0, 1, 9)])
        length = path_length(arc)
        duration = max(length / cfg.contact_speed, abs(twist[2]) / math.radians(cfg.max_rotation_speed_deg),
                       2 * cfg.sample_dt)
        phases.append(_Push(knots[j], twist, contact, f, duration))
        pusher_body = contact
        in_contact = (f, s)
    # Back home, in the final pose's body frame.
    end = knots[-1]
    home_end = to_body(end, home[None])[0]
    if in_contact is not None:
        old = all_faces[in_contact[0]]
        pre_old = _pre_contact(old, in_contact[1], cfg, free)
        phases.append(_free_phase(end, [pusher_body, pre_old], cfg))
        pusher_body = pre_old
    phases.append(_free_phase(end, list(free.shortest_path(pusher_body, home_end)), cfg))
    return _sample(phases, knots, pushes, cfg, dict(info or {}, cost=plan_cost(phases, knots, cfg)))


def plan_cost(phases, knots: np.ndarray, cfg: PlannerConfig) -> float:
    """The graph's cost terms evaluated on the final plan (exact free paths included)."""
    c = limit_surface_c()
    d = np.diff(knots, axis=0)                                    # (M, 3)
    cost = cfg.w_translation * np.linalg.norm(d[:, :2], axis=1).sum()
    cost += cfg.w_rotation * np.abs(d[:, 2]).sum()
    cost += cfg.w_force * np.linalg.norm(d * [1.0, 1.0, c], axis=1).sum()
    cost += cfg.w_pusher_free * sum(path_length(p.path_body) for p in phases if isinstance(p, _Free))
    cost += cfg.w_mode * len(d)
    return float(cost)


def _pre_contact(face: Face, s: float, cfg: PlannerConfig, free: FreeSpace) -> np.ndarray:
    """Where the pusher waits before touching face at s: `standoff` out along the normal, further out if
    that is still inside the free-space margin (near a concave corner)."""
    gap = cfg.standoff
    p = face.pusher_center(s, PUSHER.radius, gap)
    while not free.is_free(p):
        gap += 0.005
        p = face.pusher_center(s, PUSHER.radius, gap)
    return p


def _free_phase(pose, points, cfg: PlannerConfig) -> _Free:
    path = np.array(points, dtype=float)
    # At least two samples long, so every free move shows in the dense trajectory.
    return _Free(np.asarray(pose, dtype=float), path, max(path_length(path) / cfg.free_speed, 2 * cfg.sample_dt))


def _sample(phases, knots, pushes, cfg: PlannerConfig, info: dict) -> Plan:
    starts = np.concatenate([[0.0], np.cumsum([p.duration for p in phases])])
    total = starts[-1]
    n = int(math.ceil(total / cfg.sample_dt)) + 1
    ts = np.minimum(np.arange(n) * cfg.sample_dt, total)
    slider = np.zeros((n, 3))
    pusher = np.zeros((n, 2))
    face = np.full(n, -1, dtype=np.int64)
    k = 0
    for i, t in enumerate(ts):
        while k < len(phases) - 1 and t > starts[k + 1]:
            k += 1
        u = (t - starts[k]) / phases[k].duration
        slider[i], pusher[i] = phases[k].at(float(np.clip(u, 0.0, 1.0)))
        face[i] = phases[k].face
    # Samples that fall exactly on a phase boundary take the free phase's label: no push at a boundary.
    return Plan(ts, slider, pusher, face, np.asarray(knots, dtype=float),
                np.array([p[0] for p in pushes], dtype=np.int64), np.array([p[1] for p in pushes]),
                dict(info, duration=float(total)))
