"""How a person's hand turns a decision into gamepad motion: the human traits of the scripted teleoperator.

A person with a gamepad does not command positions; the stick sets a velocity, and the commanded pusher
position (the action) is that velocity integrated. On top of it, every trait is a parameter:
- reaction delay: decisions use the observation from `delay` control steps ago;
- speed limits and variation: a per-episode speed factor and a slow random drift of it;
- acceleration limit: the stick is not moved from rest to full in one step;
- hand tremor: low-amplitude, low-pass-filtered noise on the command;
- occasional pauses: the hand stops for a moment now and then.
All randomness comes from one generator seeded by the episode seed, so an episode is reproducible.
"""
from __future__ import annotations

import collections
import dataclasses

import numpy as np

from harness.core.configs import key
from sim_envs.geometry import TASK


@dataclasses.dataclass
class HumanTraits:
    reaction_delay_steps: tuple[int, int] = key((1, 3), doc="delay in 0.1 s steps, drawn per episode from [lo, hi]")
    speed_factor_range: tuple[float, float] = key((0.75, 1.2), doc="per-episode multiplier of the strategy's speeds")
    speed_drift: float = key(0.12, doc="std of the slow (OU) drift of the speed factor")
    max_accel: float = key(1.2, doc="m/s^2: how fast the stick's velocity can change")
    max_speed: float = key(0.2, doc="m/s: the stick's full deflection")
    tremor_std: float = key(0.0008, doc="m: std of the hand tremor on the command")
    tremor_smoothing: float = key(0.6, doc="AR(1) coefficient of the tremor (0 = white)")
    pause_prob: float = key(0.008, doc="chance per step of starting a pause")
    pause_steps: tuple[int, int] = key((3, 12), doc="pause length in steps, drawn from [lo, hi]")
    lead_limit: float = key(0.02, doc="m: the still command never leads the pusher by more")

    def __post_init__(self):
        def require(ok, key, what):
            if not ok:
                raise ValueError(f"{key} must be {what}, got {getattr(self, key)!r}")
        inf = float("inf")
        lo, hi = self.reaction_delay_steps
        require(0 <= lo <= hi <= 50, "reaction_delay_steps", "[lo, hi] with 0 <= lo <= hi <= 50 steps")
        lo, hi = self.speed_factor_range
        require(0 < lo <= hi < inf, "speed_factor_range", "[lo, hi] with 0 < lo <= hi")
        lo, hi = self.pause_steps
        require(1 <= lo <= hi, "pause_steps", "[lo, hi] with 1 <= lo <= hi")
        for key in ("max_accel", "max_speed"):
            require(0 < getattr(self, key) < inf, key, "> 0")
        for key in ("speed_drift", "tremor_std", "lead_limit"):
            require(0 <= getattr(self, key) < inf, key, ">= 0")
        require(0 <= self.tremor_smoothing < 1, "tremor_smoothing", "in [0, 1)")
        require(0 <= self.pause_prob <= 1, "pause_prob", "a probability in [0, 1]")


class Hand:
    """Integrates stick velocity into the commanded position, with the traits above."""

    def __init__(self, traits: HumanTraits, rng: np.random.Generator):
        self.t = traits
        self.rng = rng
        lo, hi = traits.reaction_delay_steps
        self.delay = int(rng.integers(lo, hi + 1))
        self.base_speed = float(rng.uniform(*traits.speed_factor_range))
        self._drift = 0.0
        self._tremor = np.zeros(2)
        self._velocity = np.zeros(2)
        self._cursor: np.ndarray | None = None
        self._pause_left = 0
        self.pauses = 0
        self._seen: collections.deque = collections.deque(maxlen=self.delay + 1)

    def perceive(self, obs: dict) -> dict:
        """The observation the person reacts to now: the one from `delay` steps ago."""
        self._seen.append({k: np.array(v, copy=True) for k, v in obs.items() if k != "image"})
        return self._seen[0]

    def move(self, pusher_now: np.ndarray, waypoint: np.ndarray, speed: float) -> np.ndarray:
        """One control step toward `waypoint` at about `speed` m/s; returns the action (commanded xy)."""
        dt = TASK.control_dt
        t = self.t
        if self._cursor is None:
            self._cursor = np.array(pusher_now, float)
        # Speed: episode factor times a slowly drifting one.
        self._drift = 0.9 * self._drift + t.speed_drift * np.sqrt(1 - 0.81) * self.rng.normal()
        factor = max(0.3, self.base_speed * (1.0 + self._drift))
        if self._pause_left == 0 and self.rng.random() < t.pause_prob:
            self._pause_left = int(self.rng.integers(t.pause_steps[0], t.pause_steps[1] + 1))
            self.pauses += 1
        if self._pause_left > 0:
            self._pause_left -= 1
            wanted = np.zeros(2)
        else:
            delta = np.asarray(waypoint, float) - self._cursor
            dist = float(np.linalg.norm(delta))
            v = min(speed * factor, t.max_speed, dist / dt)
            wanted = delta / dist * v if dist > 1e-9 else np.zeros(2)
        change = wanted - self._velocity
        limit = t.max_accel * dt
        norm = float(np.linalg.norm(change))
        if norm > limit:
            change *= limit / norm
        self._velocity = self._velocity + change
        self._cursor = self._cursor + self._velocity * dt
        # The person watches the pusher: the command does not run away from it. The pusher they see is
        # `delay` steps old and the controller lags a step, so a moving command leads by that much more.
        limit = t.lead_limit + float(np.linalg.norm(self._velocity)) * dt * (self.delay + 2)
        lead = self._cursor - pusher_now
        n = float(np.linalg.norm(lead))
        if n > limit:
            self._cursor = pusher_now + lead * (limit / n)
        a = t.tremor_smoothing
        self._tremor = a * self._tremor + t.tremor_std * np.sqrt(1 - a * a) * self.rng.normal(size=2)
        return self._cursor + self._tremor
