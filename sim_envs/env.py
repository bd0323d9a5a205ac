"""`PushTEnv`: one planar-pushing episode in Drake, stepped at the 10 Hz control rate.

The policy commands a pusher position (world xy) every 0.1 s. The command reaches the controller
`action_latency` control steps later (until then the pusher holds where the episode put it), its
setpoint moves toward it at most `max_pusher_speed`, and the preset's PD position controller (Drake's
implicit PD actuators, force-limited) tracks that setpoint. Observations carry the preset's Gaussian
noise on the slider pose (and optionally the pusher); `info` always carries the true, noise-free state.

Cameras: `visual` (a visual preset, sim_envs/visual.py) colours and lights the scene and adds its cameras,
observed as `image.<camera>`; `image_size` adds the plain top-down camera observed as `image` (videos,
teleop recordings). Each episode start re-mounts the preset's cameras from the start seed (jitter).
"""
from __future__ import annotations

import collections
import math

import numpy as np
from pydrake.math import RigidTransform, RotationMatrix
from pydrake.systems.analysis import Simulator

from sim_envs.config import PhysicsConfig, load_preset
from sim_envs.geometry import PUSHER, T_SLIDER, TASK, Task, in_workspace, is_success, wrap_angle
from sim_envs.initial_states import sample_initial_pose
from sim_envs.scene import DEFAULT_LOOK, build_scene, camera_pose, color_camera, resting_penetration
from sim_envs.visual import CameraConfig, VisualConfig, jittered, load_visual

OUTCOMES = ("running", "success", "timeout", "left_workspace")


class PushTEnv:
    """The T-pushing task in one physics preset. Not thread-safe; one per process or thread."""

    def __init__(self, preset: str | PhysicsConfig = "target", image_size: tuple[int, int] | None = None,
                 meshcat=None, record: bool = False, visual: str | VisualConfig | None = None):
        self.config: PhysicsConfig = preset if isinstance(preset, PhysicsConfig) else load_preset(preset)
        self.visual: VisualConfig | None = load_visual(visual) if isinstance(visual, str) else visual
        self.task: Task = TASK
        self.image_size = tuple(image_size) if image_size is not None else None
        self.meshcat = meshcat
        self.record = record
        # the plain top-down camera first: the one a recording's video shows (camera_keys[0])
        cameras = {"image": CameraConfig("image", size=self.image_size)} if self.image_size is not None else {}
        cameras.update({c.key: c for c in self.visual.cameras} if self.visual is not None else {})
        self._scene = build_scene(self.config, cameras, meshcat, self.visual or DEFAULT_LOOK)
        self._plant = self._scene.plant
        self.simulator = Simulator(self._scene.diagram)
        self._context = self.simulator.get_mutable_context()
        self._plant_context = self._plant.GetMyMutableContextFromRoot(self._context)
        self._desired_port = self._plant.get_desired_state_input_port(self._scene.pusher_instance)
        self._camera_contexts = {key: sensor.GetMyMutableContextFromRoot(self._context)
                                 for key, sensor in self._scene.cameras.items()}
        self._rest_z = T_SLIDER.height / 2 - resting_penetration(self.config)
        self._rng = np.random.default_rng(0)
        self._queue: collections.deque = collections.deque()
        self.frames: list[np.ndarray] = []   # rendered frames of the current episode when record and image_size
        self._frames: dict[str, np.ndarray] = {}   # the last rendered image of each camera
        self._step = 0
        self._outcome = "running"
        self._recording = False
        self.reset(0)

    # ------------------------------------------------------------------------------------------------
    def reset(self, seed: int, slider_pose=None, pusher_xy=None) -> dict:
        """Start an episode: slider at sample_initial_pose(seed) (or slider_pose), pusher at home."""
        seed = int(seed)
        pose = sample_initial_pose(seed) if slider_pose is None else _check_vector(slider_pose, 3, "slider_pose")
        xy = np.asarray(PUSHER.home, float) if pusher_xy is None else _check_vector(pusher_xy, 2, "pusher_xy")
        self._rng = np.random.default_rng([seed, 0x0B5E])
        self._step = 0
        self._outcome = "running"
        self._context.SetTime(0.0)
        self.mount_cameras(seed)
        self.set_state(pose, xy)
        self.frames = []
        if self.record and self._scene.visualizer is not None:
            # Only the latest episode is kept; start before Initialize so the first frame is recorded.
            self._scene.visualizer.DeleteRecording()
            self._scene.visualizer.StartRecording(True)    # record and keep drawing live
            self._recording = True
        self.simulator.Initialize()
        obs = self.observe()
        self._keep_frame(obs)
        return obs

    def step(self, action, render: bool = True) -> tuple[dict, dict]:
        """Command the pusher to `action` (world xy) and advance one control step (0.1 s).

        render False: the observation's camera images are the last rendered ones, not new frames. A policy
        that reads its last n_obs frames only when it asks for a chunk needs only those (eval/rollouts.py);
        nothing else changes, the physics and the observation noise included."""
        if self._outcome != "running":
            raise RuntimeError("episode finished; call reset")
        action = _check_vector(action, 2, "action")
        self._queue.append(action)
        applied = self._queue.popleft()            # the action from action_latency steps ago
        # The robot's speed limit: the setpoint moves toward the command by at most max_pusher_speed * dt.
        delta = applied - self._setpoint
        limit = self.config.max_pusher_speed * self.task.control_dt
        norm = float(np.hypot(delta[0], delta[1]))
        self._setpoint = applied if norm <= limit else self._setpoint + delta * (limit / norm)
        self._desired_port.FixValue(self._plant_context, np.array([*self._setpoint, 0.0, 0.0]))
        self._step += 1
        self.simulator.AdvanceTo(self._step * self.task.control_dt)
        slider_pose, pusher_xy = self.true_state()
        if is_success(slider_pose, self.task):
            self._outcome = "success"
        elif not in_workspace(slider_pose, self.task):
            self._outcome = "left_workspace"
        elif self._step >= self.task.max_steps:
            self._outcome = "timeout"
        if self._outcome != "running" and self._recording:
            self._scene.visualizer.StopRecording()
            self._recording = False
        obs = self.observe(render or self.record)
        self._keep_frame(obs)
        info = {"outcome": self._outcome, "step": self._step, "time": self._context.get_time(),
                "slider_pose": slider_pose, "pusher_xy": pusher_xy}
        return obs, info

    def set_state(self, slider_pose, pusher_xy) -> None:
        """Teleport the slider and the pusher (kinematic replay), zero all velocities, hold the pusher there."""
        x, y, theta = _check_vector(slider_pose, 3, "slider_pose")
        xy = _check_vector(pusher_xy, 2, "pusher_xy")
        plant, ctx = self._plant, self._plant_context
        plant.SetFreeBodyPose(ctx, self._scene.slider,
                              RigidTransform(RotationMatrix.MakeZRotation(theta), [x, y, self._rest_z]))
        self._scene.pusher_x.set_translation(ctx, xy[0])
        self._scene.pusher_y.set_translation(ctx, xy[1])
        plant.SetVelocities(ctx, np.zeros(plant.num_velocities()))
        self._setpoint = xy.copy()
        self._desired_port.FixValue(ctx, np.array([xy[0], xy[1], 0.0, 0.0]))
        # Until a commanded action comes out of the latency queue, the controller holds this position.
        self._queue = collections.deque([xy.copy() for _ in range(self.config.action_latency)])

    def observe(self, render: bool = True) -> dict:
        """Observation of the current state: preset noise on the poses, plus every camera's image (new frames,
        or with render False the last ones)."""
        slider_pose, pusher_xy = self.true_state()
        cfg = self.config
        if cfg.obs_noise_xy > 0 or cfg.obs_noise_theta > 0:
            noise = self._rng.normal(0.0, 1.0, 3) * [cfg.obs_noise_xy, cfg.obs_noise_xy, cfg.obs_noise_theta]
            slider_pose = slider_pose + noise
            slider_pose[2] = wrap_angle(slider_pose[2])
        if cfg.obs_noise_agent > 0:
            pusher_xy = pusher_xy + self._rng.normal(0.0, cfg.obs_noise_agent, 2)
        obs = {"agent_pos": pusher_xy, "slider_pose": slider_pose}
        if render or not self._frames:
            self._frames = {key: self.render(key) for key in self._camera_contexts}
        obs.update(self._frames)
        return obs

    @property
    def camera_keys(self) -> list[str]:
        """The observation keys of this env's cameras: `image` (image_size), then `image.<camera>` (visual)."""
        return list(self._camera_contexts)

    def render(self, key: str | None = None) -> np.ndarray:
        """(H, W, 3) uint8 colour image from camera `key` (default: the first of camera_keys)."""
        if not self._camera_contexts:
            raise RuntimeError("this env has no camera; create it with image_size=(H, W) or a visual preset")
        key = key or self.camera_keys[0]
        if key not in self._camera_contexts:
            raise KeyError(f"no camera {key!r}; this env has {', '.join(self.camera_keys)}")
        image = self._scene.cameras[key].color_image_output_port().Eval(self._camera_contexts[key])
        return np.array(image.data[:, :, :3], dtype=np.uint8)

    def mount_cameras(self, seed: int) -> None:
        """Place the visual preset's cameras for the episode of `seed`: the nominal mounting moved by one
        draw of the preset's jitter, a function of the seed alone (so a trial's pictures do not depend on
        which env or worker runs it). reset does this; a kinematic replay that never resets calls it."""
        if self.visual is None or not self.visual.jitter.any:
            return
        rng = np.random.default_rng([int(seed), 0xCA3E7A])
        for camera in self.visual.cameras:
            moved = jittered(camera, self.visual.jitter, rng)
            sensor, context = self._scene.cameras[camera.key], self._camera_contexts[camera.key]
            sensor.SetX_PB(context, camera_pose(moved))
            sensor.SetColorRenderCamera(context, color_camera(moved))

    def true_state(self) -> tuple[np.ndarray, np.ndarray]:
        """(slider_pose (3,) x, y, theta wrapped; pusher_xy (2,)), noise-free."""
        X = self._plant.GetFreeBodyPose(self._plant_context, self._scene.slider)
        R = X.rotation().matrix()
        p = X.translation()
        slider_pose = np.array([p[0], p[1], math.atan2(R[1, 0], R[0, 0])])
        pusher_xy = np.array([self._scene.pusher_x.get_translation(self._plant_context),
                              self._scene.pusher_y.get_translation(self._plant_context)])
        return slider_pose, pusher_xy

    def slider_height(self) -> tuple[float, float]:
        """(z of the slider origin, tilt angle in rad): for checks that the slider rests flat on the table."""
        X = self._plant.GetFreeBodyPose(self._plant_context, self._scene.slider)
        tilt = math.acos(max(-1.0, min(1.0, X.rotation().matrix()[2, 2])))
        return float(X.translation()[2]), tilt

    @property
    def outcome(self) -> str:
        return self._outcome

    @property
    def step_count(self) -> int:
        return self._step

    def publish_recording(self) -> None:
        """Finish a Meshcat recording (record=True, meshcat given) so it plays back in the browser/HTML."""
        if self._scene.visualizer is None:
            raise RuntimeError("no Meshcat visualizer; create the env with meshcat=...")
        if self._recording:
            self._scene.visualizer.StopRecording()
            self._recording = False
        self._scene.visualizer.PublishRecording()

    def close(self) -> None:
        self.simulator = None
        self._scene = None

    def _keep_frame(self, obs: dict) -> None:
        if self.record and self._camera_contexts:
            self.frames.append(obs[self.camera_keys[0]])


def _check_vector(value, n: int, name: str) -> np.ndarray:
    """A finite float64 vector of shape (n,), else ValueError naming `name` and the problem."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {n} numbers, got {value!r}") from None
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    return arr.copy()
