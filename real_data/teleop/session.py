"""A teleoperation session: a person pushes the T in the target sim; every episode is recorded at 10 Hz.

Per control step the session polls its `InputSource`, moves the commanded pusher target (absolute
target from sliders/keys/mouse, or velocity from a gamepad stick, speed-limited), steps the env and
records (observation, action). An episode ends on success (or the env's timeout / leaving the workspace)
or when the person resets; then the next seed starts. "Discard" drops the last finished episode: the
store is append-only, so the last finished episode is held back in memory and committed only when the
next one finishes or the session stops. "Stop" (or Ctrl-C) commits that held episode and drops the
unfinished one.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Optional

import numpy as np

from harness.core.writer import EpisodeWriter
from real_data.teleop.inputs import InputSource
from sim_envs.geometry import TASK


@dataclasses.dataclass
class SessionSummary:
    committed: int = 0          # episodes written to the store
    discarded: int = 0          # finished episodes the person discarded
    successes: int = 0          # committed episodes that ended in success
    seeds: list = dataclasses.field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"recorded {self.committed} episodes ({self.successes} successful), discarded {self.discarded}; "
                f"seeds {self.seeds}"]


class TeleopSession:
    def __init__(self, env, source: InputSource, writer: EpisodeWriter, seeds, realtime: bool = True,
                 max_speed: float = 0.25, on_step: Optional[Callable] = None):
        self.env = env
        self.source = source
        self.writer = writer
        self.seeds = iter(seeds)
        self.realtime = realtime
        self.max_speed = max_speed          # m/s: the target cannot jump further than this per step
        self.on_step = on_step              # called with (obs, target) each step, e.g. to draw the target
        self.summary = SessionSummary()
        self._held: Optional[tuple[dict, dict]] = None

    def run(self, max_ticks: Optional[int] = None) -> SessionSummary:
        """Run until the person stops (or `max_ticks` control ticks, for tests). Ctrl-C counts as stop.

        An episode's clock starts at the person's first move: idle ticks before it are not recorded.
        """
        ticks = 0
        try:
            seed = next(self.seeds)
            obs, target, episode = self._start(seed)
            next_tick = time.monotonic()
            while max_ticks is None or ticks < max_ticks:
                ticks += 1
                if self.realtime:
                    next_tick += TASK.control_dt
                    time.sleep(max(0.0, next_tick - time.monotonic()))
                cmd = self.source.poll()
                if cmd.stop:
                    break
                if cmd.discard:
                    self._discard()
                if cmd.reset:
                    self._finish(seed, episode, "reset")
                    seed = next(self.seeds)
                    obs, target, episode = self._start(seed)
                    continue
                if not episode["action"] and cmd.target is None and cmd.velocity is None:
                    continue   # waiting for the first move
                target = self._move(target, cmd, obs)
                for key in ("agent_pos", "slider_pose") + (("image",) if "image" in obs else ()):
                    episode[key].append(obs[key])
                episode["action"].append(target.copy())
                obs, info = self.env.step(target)
                if self.on_step is not None:
                    self.on_step(obs, target)
                if info["outcome"] != "running":
                    self._finish(seed, episode, info["outcome"])
                    seed = next(self.seeds)
                    obs, target, episode = self._start(seed)
        except KeyboardInterrupt:
            pass
        finally:
            self._commit_held()
        return self.summary

    # ---- episode bookkeeping
    def _start(self, seed: int):
        obs = self.env.reset(seed)
        target = np.array(obs["agent_pos"], float)
        self.source.start(target)
        keys = ["agent_pos", "slider_pose", "action"] + (["image"] if "image" in obs else [])
        return obs, target, {k: [] for k in keys}

    def _finish(self, seed: int, episode: dict, outcome: str) -> None:
        if not episode["action"]:
            return   # reset before the first step: nothing to record
        self._commit_held()
        data = {k: np.asarray(v) for k, v in episode.items()}
        meta = {"seed": int(seed), "success": outcome == "success", "outcome": outcome,
                "length": len(data["action"])}
        self._held = (data, meta)

    def _discard(self) -> None:
        if self._held is not None:
            self._held = None
            self.summary.discarded += 1

    def _commit_held(self) -> None:
        if self._held is None:
            return
        data, meta = self._held
        self.writer.add_episode(data, meta)
        self._held = None
        self.summary.committed += 1
        self.summary.successes += int(meta["success"])
        self.summary.seeds.append(meta["seed"])

    # ---- the commanded target
    def _move(self, target: np.ndarray, cmd, obs) -> np.ndarray:
        dt = TASK.control_dt
        wanted = target.copy()
        if cmd.target is not None:
            wanted = np.asarray(cmd.target, float)
        if cmd.velocity is not None:
            wanted = wanted + np.asarray(cmd.velocity, float) * dt
        step = wanted - target
        n = float(np.linalg.norm(step))
        limit = self.max_speed * dt
        if n > limit:
            step *= limit / n
        x0, x1, y0, y1 = TASK.workspace
        new = np.clip(target + step, [x0, y0], [x1, y1])
        if cmd.velocity is not None:
            self.source.follow(new)   # keep the sliders showing where the stick has moved the target
        return new
