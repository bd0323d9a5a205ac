"""Check a plan against the model it claims to satisfy, independently of how it was made.

Checks (tolerances in PlannerConfig):
- every push (exact arc between knots): contact force inside the friction cone with the true mu, pushing
  (normal force > 0), contact point on the usable part of its face, quasi-static residual small;
- dense trajectory: no pusher-slider overlap anywhere; touching during every push; the pusher fixed in
  the slider's body frame during a push (sticking); the slider still whenever nothing touches it;
- the slider starts at the start pose and ends at the goal within the success tolerance; the pusher
  starts and ends at home; the plan fits in the episode time limit.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from gcs_planner.config import PlannerConfig
from gcs_planner.mechanics import Face, limit_surface_c, push_for_twist, se2_log
from gcs_planner.plan import Plan
from sim_envs.geometry import PUSHER, TASK, is_success, pusher_slider_distance, to_body, pose_error


@dataclasses.dataclass
class Verdict:
    ok: bool
    problems: list[str]
    metrics: dict

    def summary(self) -> str:
        head = "plan verified" if self.ok else "plan REJECTED: " + "; ".join(self.problems[:3])
        m = self.metrics
        return (f"{head} (max friction ratio {m['max_friction_ratio']:.3f}, max residual "
                f"{m['max_residual']:.2e}, min gap {m['min_gap'] * 1000:.2f} mm, "
                f"final error {m['final_xy_err'] * 1000:.1f} mm / {np.degrees(m['final_theta_err']):.2f} deg)")


def verify(plan: Plan, start_pose, faces: list[Face], cfg: PlannerConfig, home=PUSHER.home) -> Verdict:
    problems: list[str] = []
    c = limit_surface_c()
    max_ratio, max_res = 0.0, 0.0
    for j, f in enumerate(plan.push_face):
        face = faces[int(f)]
        twist = se2_log(plan.knots[j], plan.knots[j + 1])
        push = push_for_twist(face, twist, cfg.mu, c)
        if np.linalg.norm(twist) < 1e-9:
            continue
        max_ratio = max(max_ratio, push.friction_ratio)
        max_res = max(max_res, push.residual)
        if push.normal_force <= 0:
            problems.append(f"push {j} on face {f} pulls instead of pushing")
        elif push.friction_ratio > cfg.mu + cfg.tol_friction:
            problems.append(f"push {j}: friction ratio {push.friction_ratio:.3f} > mu {cfg.mu}")
        tol_s = 1e-3 / face.length
        if not (face.s_lo - tol_s <= push.s <= face.s_hi + tol_s):
            problems.append(f"push {j}: contact point s={push.s:.3f} off the usable face [{face.s_lo:.3f}, {face.s_hi:.3f}]")
        if push.residual > cfg.tol_residual:
            problems.append(f"push {j}: quasi-static residual {push.residual:.3f} > {cfg.tol_residual}")

    gaps = np.array([pusher_slider_distance(p, q) for p, q in zip(plan.pusher, plan.slider)])
    min_gap = float(gaps.min())
    if min_gap < -cfg.tol_penetration:
        i = int(np.argmin(gaps))
        problems.append(f"pusher penetrates the slider by {-min_gap * 1000:.2f} mm at t={plan.t[i]:.2f} s")
    touching = plan.face >= 0
    if touching.any() and gaps[touching].max() > cfg.tol_contact_gap:
        problems.append(f"pusher leaves the face during a push (gap {gaps[touching].max() * 1000:.2f} mm)")
    body = np.array([to_body(q, p[None])[0] for p, q in zip(plan.pusher, plan.slider)])
    runs = np.flatnonzero(np.diff(np.concatenate([[0], touching.astype(int), [0]])))
    for a, b in zip(runs[::2], runs[1::2]):
        drift = np.linalg.norm(body[a:b] - body[a], axis=1).max() if b > a else 0.0
        if drift > 1e-4:
            problems.append(f"pusher slides along face {plan.face[a]} during a push")
    moving = np.linalg.norm(np.diff(plan.slider, axis=0), axis=1) > 1e-7
    free_step = ~touching[:-1] & ~touching[1:]
    if np.any(moving & free_step):
        problems.append("slider moves while nothing touches it")

    if np.linalg.norm(plan.slider[0] - np.asarray(start_pose)) > 1e-6:
        problems.append("plan does not start at the start pose")
    final = plan.slider[-1]
    err = pose_error(final)
    if not is_success(final):
        problems.append(f"final pose misses the goal by {err.round(4).tolist()}")
    for name, p in (("starts", plan.pusher[0]), ("ends", plan.pusher[-1])):
        if np.linalg.norm(p - np.asarray(home)) > 1e-6:
            problems.append(f"pusher {name} away from home")
    if plan.duration > TASK.time_limit:
        problems.append(f"plan takes {plan.duration:.1f} s > time limit {TASK.time_limit} s")
    metrics = {"max_friction_ratio": max_ratio, "max_residual": max_res, "min_gap": min_gap,
               "final_xy_err": float(np.hypot(err[0], err[1])), "final_theta_err": float(abs(err[2]))}
    return Verdict(not problems, problems, metrics)

