"""Numbers that tell action styles apart (teleoperator vs planner), from an action sequence alone.

The cotraining study needs clean and corrupt data to differ in action style, not only in physics, so
the teleoperator's style is measured, not assumed:
- speed_cv: spread of the commanded speed (std / mean over moving steps). A planner's timed path moves
  at near-constant speed per segment; a hand speeds up, slows down and trembles.
- pause_fraction: share of steps where the command is (nearly) still.
- hf_power: share of the command velocity's power above 2 Hz (of 5 Hz Nyquist at 10 Hz): tremor and
  corrections put power there, smooth timed paths do not.
"""
from __future__ import annotations

import numpy as np

from sim_envs.geometry import TASK

STILL_SPEED = 0.005   # m/s: below this the command counts as still
HF_CUTOFF_HZ = 2.0


def style_stats(actions: np.ndarray, dt: float = TASK.control_dt) -> dict[str, float]:
    """actions (T, 2) commanded xy at 1/dt Hz -> {mean_speed, speed_cv, pause_fraction, hf_power}."""
    actions = np.asarray(actions, float)
    velocity = np.diff(actions, axis=0) / dt                     # (T-1, 2)
    speed = np.linalg.norm(velocity, axis=1)                     # (T-1,)
    moving = speed[speed >= STILL_SPEED]
    centered = velocity - velocity.mean(axis=0)
    power = (np.abs(np.fft.rfft(centered, axis=0)) ** 2).sum(axis=1)   # (F,)
    freqs = np.fft.rfftfreq(len(velocity), d=dt)
    total = power[1:].sum() if np.abs(centered).max() > 1e-9 else 0.0   # constant velocity: no spectrum
    return {
        "mean_speed": float(moving.mean()) if len(moving) else 0.0,
        "speed_cv": float(moving.std() / moving.mean()) if len(moving) > 1 else 0.0,
        "pause_fraction": float(np.mean(speed < STILL_SPEED)) if len(speed) else 0.0,
        "hf_power": float(power[freqs > HF_CUTOFF_HZ].sum() / total) if total > 0 else 0.0,
    }


def plan_actions(plan, dt: float = TASK.control_dt) -> np.ndarray:
    """(T, 2) a GCS plan's pusher path sampled at the control rate, i.e. the actions its replay commands."""
    times = np.arange(0.0, plan.duration + 1e-9, dt)
    return np.stack([np.interp(times, plan.t, plan.pusher[:, i]) for i in range(2)], axis=1)
