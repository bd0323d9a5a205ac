"""One closed-loop episode of a policy in a PushTEnv, timed: used by `cotrain rollout` and the benchmark."""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from sim_envs.env import PushTEnv
from sim_envs.geometry import pose_error
from sim_envs.scripted import ScriptedPusher


@dataclasses.dataclass
class RolloutResult:
    seed: int
    outcome: str              # running (stopped by max_steps), success, timeout, left_workspace
    steps: int
    sim_time: float           # s simulated
    wall_time: float          # s spent in policy + env.step (env construction and reset excluded)
    cpu_time: float           # CPU s of this process over the same span (robust to other jobs on the machine)
    final_error: np.ndarray   # (dx, dy, dtheta) of the true final slider pose from the goal

    @property
    def realtime_factor(self) -> float:
        return self.sim_time / self.wall_time if self.wall_time > 0 else float("inf")

    @property
    def cpu_realtime_factor(self) -> float:
        """Simulated seconds per CPU second: the real-time factor on one uncontended core."""
        return self.sim_time / self.cpu_time if self.cpu_time > 0 else float("inf")

    def summary(self) -> str:
        dx, dy, dth = self.final_error
        return (f"seed {self.seed}: {self.outcome} after {self.steps} steps ({self.sim_time:.1f} s simulated), "
                f"final error |dxy| {np.hypot(dx, dy) * 1000:.1f} mm, |dtheta| {np.degrees(abs(dth)):.1f} deg, "
                f"real-time factor {self.realtime_factor:.1f}x (per CPU second {self.cpu_realtime_factor:.1f}x)")


def run_episode(env: PushTEnv, seed: int, policy=None, max_steps: int | None = None) -> RolloutResult:
    """Reset to `seed` and step `policy.act(obs)` until a terminal outcome or `max_steps` steps."""
    policy = policy if policy is not None else ScriptedPusher()
    if hasattr(policy, "reset"):
        policy.reset()
    obs = env.reset(seed)
    limit = env.task.max_steps if max_steps is None else max_steps
    info = {"outcome": "running", "step": 0, "time": 0.0}
    start, start_cpu = time.perf_counter(), time.process_time()
    while info["outcome"] == "running" and info["step"] < limit:
        obs, info = env.step(policy.act(obs))
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    slider_pose, _ = env.true_state()
    return RolloutResult(seed, info["outcome"], info["step"], info["time"], wall, cpu, pose_error(slider_pose))
