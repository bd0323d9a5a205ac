"""Replay a plan into a demonstration at the 10 Hz control rate, through the environment's own observation.

- kinematic: at every control step the slider and the pusher are put exactly where the plan has them
  (env.set_state) and the environment observes (env.observe); the slider follows the plan exactly.
- physics: the pusher is commanded to the planned pusher positions (env.step) and the slider moves by the
  preset's physics. While a push is planned, the command is set `push_depth` metres into the face, so the
  position controller presses instead of merely touching; it leads by the controller's lag. If a plan
  ends with the slider off the goal, the caller may re-plan from the true pose (`replan`, `max_replans`).

Step k observes time k * 0.1 s; its action is the commanded pusher position for time (k + 1) * 0.1 s.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from gcs_planner.mechanics import Face
from gcs_planner.plan import Plan
from harness.core.store import is_image_key
from sim_envs.geometry import TASK, is_success, rotation


@dataclasses.dataclass
class Demo:
    data: dict                # agent_pos (T, 2), slider_pose (T, 3), action (T, 2), [image (T, H, W, 3)]
    reached_goal: bool        # the true slider pose met the success tolerance
    outcome: str              # success / plan_end / timeout / left_workspace
    replans: int = 0          # physics replay: plans made after the first one


def control_times(plan: Plan) -> np.ndarray:
    """Times of the control steps covering the plan: 0, 0.1, ..., >= plan end."""
    n = int(math.ceil(plan.duration / TASK.control_dt - 1e-9))
    return np.arange(n + 1) * TASK.control_dt


def commanded_pusher(plan: Plan, t: float, faces: list[Face] | None = None, push_depth: float = 0.0) -> np.ndarray:
    """Planned pusher position at t, pressed `push_depth` into the face if a push is under way."""
    slider, pusher = plan.state_at(t)
    if push_depth and faces is not None:
        i = min(int(np.searchsorted(plan.t, t)), len(plan.t) - 1)
        f = int(plan.face[i])
        if f >= 0:
            pusher = pusher - push_depth * (rotation(slider[2]) @ faces[f].normal)
    return pusher


def replay_kinematic(plan: Plan, env, stop_at_success: bool = True) -> Demo:
    times = control_times(plan)
    rows = []
    reached = False
    for k, t in enumerate(times):
        slider, pusher = plan.state_at(t)
        env.set_state(slider, pusher)
        obs = env.observe()
        action = plan.state_at(min(t + TASK.control_dt, plan.duration))[1]
        rows.append((obs, action))
        if is_success(slider):
            reached = True
            if stop_at_success:
                break
    return Demo(_stack(rows), reached, "success" if reached else "plan_end")


def tracking_lead(env) -> float:
    """Seconds the preset's PD position controller lags a moving setpoint: kd / kp.

    The controller's desired velocity is zero, so tracking a setpoint that moves at speed v settles at
    an error of (kd / kp) v behind it; commanding that far ahead along the plan cancels the lag.
    """
    cfg = env.config
    return cfg.controller_kd / cfg.controller_kp


def replay_physics(plan: Plan, env, seed: int, faces: list[Face], push_depth: float = 0.005,
                   settle_steps: int = 10, stop_at_success: bool = True, lead: float | None = None,
                   replan: Callable[[np.ndarray], Plan | None] | None = None, max_replans: int = 0) -> Demo:
    """Track the planned pusher path in the physics preset; the environment decides success.

    The command for step k is the planned pusher position at t_{k+1} plus `lead` seconds of the planned
    velocity (default: the controller's lag, tracking_lead). When a plan has run out (pusher back home)
    and the slider is not at the goal, up to `max_replans` new plans are made from the slider's true
    pose with `replan(pose)` and tracked in the same episode.
    """
    obs = env.reset(seed, slider_pose=plan.slider[0], pusher_xy=plan.pusher[0])
    lead = tracking_lead(env) if lead is None else lead
    rows: list = []
    reached = False
    replans = 0
    while True:
        obs, outcome, reached = _track(plan, env, obs, faces, push_depth, lead, rows, settle_steps,
                                       stop_at_success, reached)
        if outcome != "plan_end" or reached or replans >= max_replans or replan is None:
            break
        plan = replan(env.true_state()[0])
        replans += 1
        if plan is None:
            break
    rows.append((obs, rows[-1][1]))   # the final observation, holding the last command
    return Demo(_stack(rows), reached, outcome, replans)


def _track(plan: Plan, env, obs: dict, faces, push_depth, lead, rows: list, settle_steps: int,
           stop_at_success: bool, reached: bool) -> tuple[dict, str, bool]:
    """Step the env along one plan (plus settle steps), appending (obs, action) rows."""
    times = control_times(plan)
    outcome = "plan_end"
    for k in range(len(times) - 1 + settle_steps):
        t_next = min(times[min(k + 1, len(times) - 1)], plan.duration)
        action = commanded_pusher(plan, t_next, faces, push_depth)
        if lead > 0 and t_next < plan.duration:
            dt = TASK.control_dt
            velocity = (commanded_pusher(plan, min(t_next + dt / 2, plan.duration), faces, push_depth) -
                        commanded_pusher(plan, max(t_next - dt / 2, 0.0), faces, push_depth)) / dt
            action = action + lead * velocity
        rows.append((obs, action))
        obs, info = env.step(action)
        reached = reached or is_success(info["slider_pose"])
        if info["outcome"] != "running":
            outcome = info["outcome"]
            break
        if reached and stop_at_success:
            outcome = "success"
            break
    return obs, outcome, reached


def _stack(rows) -> dict:
    data = {
        "agent_pos": np.array([o["agent_pos"] for o, _ in rows], dtype=np.float64),
        "slider_pose": np.array([o["slider_pose"] for o, _ in rows], dtype=np.float64),
        "action": np.array([a for _, a in rows], dtype=np.float64),
    }
    for key in rows[0][0]:
        if is_image_key(key):       # image (plain top-down camera) and image.<camera> (a visual preset's)
            data[key] = np.stack([o[key] for o, _ in rows]).astype(np.uint8)
    return data
