"""The scripted human-like teleoperator: strategy (what to do) + hand (how a person moves a gamepad).

    op = ScriptedTeleoperator(TeleopConfig())
    op.reset(seed); action = op.act(obs)          # obs from PushTEnv, action (2,) world xy

`run_episode(seed, config)` is the plain worker function the generator runs in parallel processes: it
builds its own env, so it can be sent to another process as (seed, config) alone.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from harness.core.configs import key
from harness.core.store import is_image_key
from real_data.teleop.human import Hand, HumanTraits
from real_data.teleop.strategy import Strategy, StrategyConfig
from sim_envs.visual import check_visual_name


@dataclasses.dataclass
class TeleopConfig:
    env: str = key("target", doc="physics preset the teleoperator pushes in")
    image_size: Optional[tuple[int, int]] = key(None, doc="(H, W) to record the plain top-down camera as data/image")
    visual: Optional[str] = key(None, since=22, doc="visual preset (sim_envs/visuals/): its cameras recorded as "
                                "data/image.<camera>; null = none")
    strategy: StrategyConfig = key(factory=StrategyConfig, doc="what to do: the pushing strategy "
                                   "(real_data/teleop/strategy.py)")
    human: HumanTraits = key(factory=HumanTraits, doc="how a person moves the gamepad: the hand's traits "
                             "(real_data/teleop/human.py)")

    def __post_init__(self):
        if not self.env:
            raise ValueError("env must name a physics preset")
        if self.image_size is not None and not all(8 <= s <= 2048 for s in self.image_size):
            raise ValueError(f"image_size must be [H, W] with each side 8..2048 pixels, got {list(self.image_size)}")
        if self.visual is not None:
            check_visual_name(self.visual)


class ScriptedTeleoperator:
    def __init__(self, config: TeleopConfig = TeleopConfig()):
        self.config = config
        self.strategy = Strategy(config.strategy)
        self.hand: Hand | None = None

    def reset(self, seed: int) -> None:
        self.strategy.reset()
        self.hand = Hand(self.config.human, np.random.default_rng([int(seed), 0x7E1E0]))

    def act(self, obs: dict) -> np.ndarray:
        seen = self.hand.perceive(obs)
        waypoint, speed = self.strategy.decide(seen)
        return self.hand.move(np.asarray(seen["agent_pos"], float), waypoint, speed)

    def stats(self) -> dict:
        return {"reapproaches": self.strategy.reapproaches, "pauses": self.hand.pauses,
                "reaction_delay_steps": self.hand.delay, "speed_factor": round(self.hand.base_speed, 4)}


_ENVS: dict = {}   # one env per (process, preset, image size, look): building Drake diagrams is not free


def _env(config: TeleopConfig):
    from sim_envs.env import PushTEnv   # (imports Drake: a TeleopConfig is read and checked without it)
    key = (config.env, tuple(config.image_size) if config.image_size else None, config.visual)
    if key not in _ENVS:
        _ENVS[key] = PushTEnv(preset=config.env, image_size=key[1], visual=config.visual)
    return _ENVS[key]


def run_episode(seed: int, config: TeleopConfig) -> tuple[dict, dict]:
    """One teleoperated episode: (data {agent_pos, slider_pose, action, [image]} (T, ...), meta)."""
    env = _env(config)
    op = ScriptedTeleoperator(config)
    op.reset(seed)
    obs = env.reset(seed)
    keys = ["agent_pos", "slider_pose"] + [k for k in obs if is_image_key(k)]
    data: dict[str, list] = {k: [] for k in keys + ["action"]}
    outcome = "running"
    while outcome == "running":
        action = op.act(obs)
        for k in keys:
            data[k].append(obs[k])
        data["action"].append(action)
        obs, info = env.step(action)
        outcome = info["outcome"]
    arrays = {k: np.asarray(v) for k, v in data.items()}
    meta = {"seed": int(seed), "success": outcome == "success", "outcome": outcome,
            "length": len(arrays["action"]), **op.stats()}
    return arrays, meta
