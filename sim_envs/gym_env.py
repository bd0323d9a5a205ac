"""`cotrain/PlanarPushing-v0`: the Drake T-pushing task as a Gymnasium environment, for training and evaluation
code that is not ours (LeRobot, diffusion_policy, your own loop).

A thin layer over `PushTEnv` (sim_envs/env.py): the same simulation, the same start poses and the same
observation noise, so a policy that acts the same sees the same episode here and in `cotrain eval`. The
conventions are gym_pusht's (LeRobot's `gym.make("gym_pusht/PushT-v0", obs_type=...)`):

    obs_type                      observation
    state                         (5,) float64: pusher x, y, slider x, y, theta (m, rad)
    environment_state_agent_pos   {"agent_pos": (2,), "environment_state": (3,)}: LeRobot's
                                  observation.state and observation.environment_state (as `cotrain export`)
    pixels                        (H, W, 3) uint8 of the plain top-down camera, or {camera: (H, W, 3)} when the
                                  cameras are a visual preset's (gym_aloha's form; LeRobot reads them as
                                  observation.images.<camera>, as `cotrain export` writes them)
    pixels_agent_pos              {"pixels": as above, "agent_pos": (2,)}

Cameras: `image_size` (H, W) adds the plain top-down camera (`image`; 96x96 when pixels need it and no visual
preset is given), `visual` a visual preset's cameras; `cameras` names the ones observed (default all). With
both, the plain camera is the dict entry "image".

Actions: (2,) world-frame pusher targets in metres, each held for one 0.1 s control step (10 Hz). The action
space is the workspace rectangle; the env does not clip (nor does `cotrain eval`), so a target outside it is
tracked as any other, at the robot's speed limit. With actions inside the action space, observations stay
inside the observation space (OBS_MARGIN below).

Episodes: `reset(seed=s)` starts from `sample_initial_pose(s)`, the start of `cotrain eval` trial s (its
`--seed` + i), with the observation noise and camera jitter of that trial; `reset()` without a seed draws the
next start seed from the env's np_random. Success (`info["is_success"]`, reward 1) and the slider leaving the
workspace end the episode (terminated); the task's 75 s limit truncates it (registered as max_episode_steps).
"""
from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim_envs.geometry import TASK
from sim_envs.visual import IMAGE_PREFIX, VisualConfig, load_visual

ENV_ID = "cotrain/PlanarPushing-v0"
OBS_TYPES = ("state", "environment_state_agent_pos", "pixels", "pixels_agent_pos")
PLAIN_CAMERA = "image"                 # the plain top-down camera's name (PushTEnv's `image` key)
DEFAULT_IMAGE_SIZE = (96, 96)          # (H, W) of the plain camera when pixels or render() need it and none is given
# Observation bounds: the workspace grown by this much (m). An episode ends the step the slider's centre leaves
# the workspace, and in one 0.1 s step the pusher (speed limit 1 m/s) moves it at most 0.1 m.
OBS_MARGIN = 0.25
MAX_START_SEED = 2**31 - 1             # reset() without a seed draws below this (torch, numpy, Drake take it)


class PlanarPushingEnv(gym.Env):
    """One `PushTEnv` behind Gymnasium's API; see the module docstring for observations and actions."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": int(round(TASK.control_hz))}

    def __init__(self, preset: str = "target", visual: str | VisualConfig | None = None, obs_type: str = "state",
                 cameras: Sequence[str] | None = None, image_size: Sequence[int] | None = None,
                 render_mode: str | None = None):
        if obs_type not in OBS_TYPES:
            raise ValueError(f"obs_type must be one of {', '.join(OBS_TYPES)}, got {obs_type!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or rgb_array, got {render_mode!r}")
        look = load_visual(visual) if isinstance(visual, str) else visual
        pixels = obs_type.startswith("pixels")
        # The plain camera exists when asked for (image_size), when pixels have no other camera, or for render().
        wants_plain = image_size is not None or (look is None and (pixels or render_mode is not None))
        size = tuple(int(s) for s in image_size) if image_size is not None else DEFAULT_IMAGE_SIZE
        available = ([PLAIN_CAMERA] if wants_plain else []) + ([c.name for c in look.cameras] if look else [])
        self.cameras = list(cameras) if cameras is not None else (available if pixels else [])
        unknown = [name for name in self.cameras if name not in available]
        if unknown or (pixels and not self.cameras):
            raise ValueError(f"cameras {unknown or '[]'}: this env has {', '.join(available) or 'no camera'} "
                             "(the plain top-down camera 'image', and the cameras of the visual preset)")
        from sim_envs.env import PushTEnv   # Drake: imported here, so registering the env id costs nothing
        self._env = PushTEnv(preset, image_size=size if wants_plain else None, visual=look)
        self.obs_type, self.render_mode = obs_type, render_mode
        # camera name -> (H, W, 3)
        self._shapes = {**({PLAIN_CAMERA: (*size, 3)} if wants_plain else {}),
                        **({c.name: (int(c.size[0]), int(c.size[1]), 3) for c in look.cameras} if look else {})}
        self.start_seed: int | None = None
        self._pixels = pixels
        self._keys = {name: (PLAIN_CAMERA if name == PLAIN_CAMERA else IMAGE_PREFIX + name) for name in self.cameras}
        self._render_key = PLAIN_CAMERA if wants_plain else (self._env.camera_keys or [None])[0]   # render()'s camera
        self.action_space = spaces.Box(low=np.array([TASK.workspace[0], TASK.workspace[2]]),
                                       high=np.array([TASK.workspace[1], TASK.workspace[3]]), dtype=np.float64)
        self.observation_space = self._observation_space()

    # ------------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start the episode of start seed `seed` (that of `cotrain eval` trial `seed`), or of the next seed
        drawn from np_random. options: `slider_pose` (3,) and / or `pusher_xy` (2,) start elsewhere."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"slider_pose", "pusher_xy"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; known: slider_pose, pusher_xy")
        self.start_seed = int(seed) if seed is not None else int(self.np_random.integers(MAX_START_SEED))
        obs = self._env.reset(self.start_seed, **options)
        return self._observation(obs), self._info("running", step=0)

    def step(self, action):
        """Hold pusher target `action` (world xy, m) for 0.1 s -> (obs, reward, terminated, truncated, info)."""
        obs, info = self._env.step(action, render=self._pixels)   # state obs: no frames drawn (render() draws)
        outcome = info["outcome"]
        reward = 1.0 if outcome == "success" else 0.0
        return (self._observation(obs), reward, outcome in ("success", "left_workspace"), outcome == "timeout",
                self._info(outcome, step=info["step"], slider_pose=info["slider_pose"],
                           pusher_xy=info["pusher_xy"]))

    def render(self):
        """(H, W, 3) uint8 from the plain top-down camera (or the visual preset's first), at the current state."""
        if self.render_mode is None:
            gym.logger.warn("render() without a render_mode; make the env with render_mode='rgb_array'")
            return None
        return self._env.render(self._render_key)

    def close(self):
        if self._env is not None:
            self._env.close()
            self._env = None

    # ------------------------------------------------------------------------------------------------
    def _observation(self, obs: dict):
        agent = np.asarray(obs["agent_pos"], np.float64)          # (2,)
        slider = np.asarray(obs["slider_pose"], np.float64)       # (3,)
        if self.obs_type == "state":
            return np.concatenate([agent, slider])                 # (5,)
        if self.obs_type == "environment_state_agent_pos":
            return {"agent_pos": agent, "environment_state": slider}
        frames = {name: np.array(obs[key], dtype=np.uint8) for name, key in self._keys.items()}   # (H, W, 3)
        pixels = frames[PLAIN_CAMERA] if self.cameras == [PLAIN_CAMERA] else frames
        return pixels if self.obs_type == "pixels" else {"pixels": pixels, "agent_pos": agent}

    def _info(self, outcome: str, step: int, slider_pose=None, pusher_xy=None) -> dict:
        """is_success every step (LeRobot's eval reads it), and the true (noise-free) state."""
        if slider_pose is None:
            slider_pose, pusher_xy = self._env.true_state()
        return {"is_success": outcome == "success", "outcome": outcome, "start_seed": self.start_seed,
                "step": int(step), "slider_pose": np.asarray(slider_pose, np.float64),
                "pusher_xy": np.asarray(pusher_xy, np.float64)}

    def _observation_space(self) -> spaces.Space:
        x0, x1, y0, y1 = TASK.workspace
        m = OBS_MARGIN
        agent = spaces.Box(np.array([x0 - m, y0 - m]), np.array([x1 + m, y1 + m]), dtype=np.float64)
        slider = spaces.Box(np.array([x0 - m, y0 - m, -np.pi]), np.array([x1 + m, y1 + m, np.pi]), dtype=np.float64)
        if self.obs_type == "state":
            return spaces.Box(np.concatenate([agent.low, slider.low]), np.concatenate([agent.high, slider.high]),
                              dtype=np.float64)
        if self.obs_type == "environment_state_agent_pos":
            return spaces.Dict({"agent_pos": agent, "environment_state": slider})
        boxes = {name: spaces.Box(0, 255, self._shapes[name], dtype=np.uint8) for name in self.cameras}
        pixels = boxes[PLAIN_CAMERA] if self.cameras == [PLAIN_CAMERA] else spaces.Dict(boxes)
        return pixels if self.obs_type == "pixels" else spaces.Dict({"pixels": pixels, "agent_pos": agent})


def register() -> None:
    """Register ENV_ID with Gymnasium (sim_envs/__init__.py calls it; a second call does nothing)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="sim_envs.gym_env:PlanarPushingEnv", max_episode_steps=TASK.max_steps)
