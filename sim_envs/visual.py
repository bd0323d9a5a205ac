"""Visual presets: how a scene looks to its cameras, beside the physics presets (sim_envs/config.py).

A simulator's pictures differ from a real camera's: other colours, other light, a camera mounted a little
off its nominal pose and never twice in quite the same place. A `VisualConfig` makes each of those a field,
so the `sim` and `target` presets can differ in appearance the way they differ in physics, one factor at a
time, and a store records the preset it was rendered with (attrs `visual`) as it records its physics.

Cameras: each `CameraConfig` is rendered headless by RenderEngineVtk and observed as `image.<name>`
(H, W, 3) uint8. A camera is placed by a position and a point it looks at; `up` is the world direction that
appears up in the picture. Jitter moves every camera by a fresh Gaussian draw at each episode start, drawn
from the episode's seed alone, so a rollout's pictures depend on its start seed and nothing else.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from harness.core.configs import check_bounds, key
from harness.core.errors import UserError
from sim_envs.config import load_preset_file, preset_names

VISUAL_DIR = Path(__file__).parent / "visuals"
IMAGE_PREFIX = "image."          # the store / observation key of camera <name> is image.<name>


@dataclasses.dataclass
class CameraConfig:
    name: str = key(doc="observed and stored as image.<name>")
    size: tuple[int, int] = key((96, 96), doc="(H, W) pixels")
    position: tuple[float, float, float] = key((0.60, 0.0, 0.8), doc="world xyz of the camera (m)")
    look_at: tuple[float, float, float] = key((0.60, 0.0, 0.0), doc="world xyz at the image centre (m)")
    up: tuple[float, float, float] = key((1.0, 0.0, 0.0), doc="world direction shown as image up")
    fov_y: float = key(45.0, doc="vertical field of view (deg)")
    # A 640x480 frame resized to 128x128 (the published data) has fov_x > fov_y at a square size.
    fov_x: float | None = key(None, doc="horizontal field of view (deg); null = square pixels")
    parent: str = key("world", doc="world, or pusher: position / look_at / up are then in the pusher's frame and "
                      "the camera moves with it (wrist)")

    def __post_init__(self):
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"camera name must be letters, digits and _, got {self.name!r}")
        if len(self.size) != 2 or not all(8 <= int(s) <= 2048 for s in self.size):
            raise ValueError(f"camera {self.name}: size must be [H, W] with each side 8..2048, got {list(self.size)}")
        for key in ("fov_y", "fov_x"):
            value = getattr(self, key)
            if value is not None and not 1.0 <= value <= 170.0:
                raise ValueError(f"camera {self.name}: {key} must be in [1, 170] degrees, got {value}")
        if self.parent not in ("world", "pusher"):
            raise ValueError(f"camera {self.name}: parent must be world or pusher, got {self.parent!r}")
        forward = np.subtract(self.look_at, self.position)
        if np.linalg.norm(forward) < 1e-6:
            raise ValueError(f"camera {self.name}: look_at must differ from position")
        if np.linalg.norm(np.cross(forward / np.linalg.norm(forward), self.up)) < 1e-6:
            raise ValueError(f"camera {self.name}: up must not be parallel to the viewing direction")

    @property
    def key(self) -> str:
        return IMAGE_PREFIX + self.name


@dataclasses.dataclass
class CameraJitter:
    position: float = key(0.0, bound=(0, 0.1), doc="std (m) of each camera's position, per axis, drawn per episode")
    look_at: float = key(0.0, bound=(0, 0.1), doc="std (m) of the point it looks at, per axis")
    fov_y: float = key(0.0, bound=(0, 10), doc="std (deg) of the field of view (the intrinsics: focal length)")

    def __post_init__(self):
        check_bounds(self, "jitter")   # each std within its bound (NaN and infinity lie outside)

    @property
    def any(self) -> bool:
        return self.position > 0 or self.look_at > 0 or self.fov_y > 0


RGB = tuple[float, float, float]


@dataclasses.dataclass
class LightConfig:
    direction: tuple[float, float, float] = key((0.0, 0.0, -1.0), doc="world direction the light travels")
    intensity: float = key(1.0, doc="brightness, in (0, 10]")
    color: RGB = key((1.0, 1.0, 1.0), doc="the light's colour (RGB in [0, 1])")

    def __post_init__(self):
        if np.linalg.norm(self.direction) < 1e-6:
            raise ValueError("lights: direction must not be zero")
        if not (math.isfinite(self.intensity) and 0 < self.intensity <= 10):
            raise ValueError(f"lights: intensity must be in (0, 10], got {self.intensity}")
        _check_rgb("lights: color", self.color)


def _check_rgb(key: str, value) -> None:
    if len(value) != 3 or not all(0.0 <= float(c) <= 1.0 for c in value):
        raise ValueError(f"{key} must be 3 numbers in [0, 1], got {list(value)}")


@dataclasses.dataclass
class VisualConfig:
    name: str = key(doc="preset name, recorded in stores and checkpoints")
    description: str = key("", doc="one line: what this look stands for")
    slider_color: RGB = key((0.30, 0.45, 0.80), doc="the T (RGB in [0, 1])")
    pusher_color: RGB = key((0.85, 0.25, 0.20), doc="the pusher (RGB in [0, 1])")
    table_color: RGB = key((0.92, 0.92, 0.90), doc="the table (RGB in [0, 1])")
    goal_color: RGB = key((0.30, 0.80, 0.35), doc="the goal T drawn on the table (RGB in [0, 1])")
    show_goal: bool = key(True, doc="draw the goal T at all")
    background: RGB = key((0.80, 0.898, 1.00), doc="what a camera sees past the table (RGB in [0, 1])")
    lights: list[LightConfig] = key(factory=list, doc="directional lights; none = VTK's default (a light at the "
                                    "camera)")
    cameras: list[CameraConfig] = key(factory=lambda: [CameraConfig("overhead")], doc="the cameras rendered, each "
                                      "observed and stored as image.<name>")
    jitter: CameraJitter = key(factory=CameraJitter, doc="per-episode random moves of every camera's mounting")

    def __post_init__(self):
        for key in ("slider_color", "pusher_color", "table_color", "goal_color", "background"):
            _check_rgb(key, getattr(self, key))
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"cameras: names must differ, got {names}")

    @property
    def camera_keys(self) -> list[str]:
        return [c.key for c in self.cameras]

    def camera_shapes(self) -> dict[str, tuple[int, int, int]]:
        """{image.<name>: (H, W, 3)}: what the stores and policies of this preset hold per step."""
        return {c.key: (int(c.size[0]), int(c.size[1]), 3) for c in self.cameras}


def visual_names() -> list[str]:
    """Names of the visual presets shipped in sim_envs/visuals/."""
    return preset_names(VISUAL_DIR)


def check_visual_name(name_or_path: str, key: str = "visual") -> None:
    """ValueError (a config's one-line error) unless `name_or_path` is a shipped visual preset or a file."""
    text = str(name_or_path)
    looks_like_path = text.endswith((".yaml", ".yml")) or "/" in text
    known = Path(text).is_file() if looks_like_path else text in visual_names()
    if not text or not known:
        raise ValueError(f"{key} must name a visual preset ({', '.join(visual_names())}) or a preset file, "
                         f"got {text!r}")


def load_visual(name_or_path: str | Path, overrides: Sequence[str] = ()) -> VisualConfig:
    """Load a visual preset by name (sim_envs/visuals/<name>.yaml) or path, apply `key=value` overrides."""
    return load_preset_file(VisualConfig, name_or_path, overrides, VISUAL_DIR, "visual preset")


def camera_rotation(position, look_at, up) -> np.ndarray:
    """R_WC (3, 3) of Drake's camera frame (x right, y down, z forward in the image) for a camera at
    `position` looking at `look_at`, with world `up` shown as image up."""
    z = np.subtract(look_at, position).astype(float)
    z /= np.linalg.norm(z)
    down = -(np.asarray(up, float) - np.dot(up, z) * z)
    y = down / np.linalg.norm(down)
    x = np.cross(y, z)
    return np.column_stack([x, y, z])


def jittered(camera: CameraConfig, jitter: CameraJitter, rng: np.random.Generator | None) -> CameraConfig:
    """The camera moved by one draw of `jitter` (unchanged without an rng or without jitter). Draws are
    taken in a fixed order whatever the jitter sizes, so one seed gives one mounting."""
    if rng is None or not jitter.any:
        return camera
    d_pos, d_look, d_fov = rng.normal(size=3), rng.normal(size=3), rng.normal()
    scale = 1.0 + jitter.fov_y * d_fov / camera.fov_y       # both fields of view change with the focal length
    return dataclasses.replace(
        camera,
        position=tuple(np.add(camera.position, jitter.position * d_pos).tolist()),
        look_at=tuple(np.add(camera.look_at, jitter.look_at * d_look).tolist()),
        fov_y=float(np.clip(camera.fov_y * scale, 1.0, 170.0)),
        fov_x=None if camera.fov_x is None else float(np.clip(camera.fov_x * scale, 1.0, 170.0)))


def visual_attrs(name_or_path: str | None) -> dict:
    """A store's attrs for the look it was rendered with: {"visual": the resolved preset} (none without one),
    recorded beside env_params so that what the cameras saw travels with the data."""
    return {} if name_or_path is None else {"visual": dataclasses.asdict(load_visual(name_or_path))}


@dataclasses.dataclass
class CameraSetup:
    """What an env must render for a policy: the plain top-down camera (`image`) at `image_size`, and / or
    the cameras of a visual preset (`image.<camera>`). One object crosses from a checkpoint to the envs."""
    image_size: tuple[int, int] | None = None
    visual: VisualConfig | None = None

    def shapes(self) -> dict[str, tuple[int, int, int]]:
        """{observation key: (H, W, 3)} of every camera this setup renders."""
        out = {"image": (*self.image_size, 3)} if self.image_size else {}
        return {**out, **(self.visual.camera_shapes() if self.visual else {})}

    def check_serves(self, wanted: dict[str, tuple], who: str) -> None:
        """UserError (one line) unless this setup renders every camera in `wanted` at its shape."""
        have = self.shapes()
        for key, shape in wanted.items():
            if key not in have:
                raise UserError(f"{who} sees camera {key} but the look {self.name} renders "
                                f"{', '.join(have) or 'no camera'}; pass a visual preset that has it (--visual)")
            if tuple(have[key]) != tuple(shape):
                raise UserError(f"{who} sees {key} at {tuple(shape)} but the look {self.name} renders it at "
                                f"{tuple(have[key])}")

    @property
    def name(self) -> str:
        return self.visual.name if self.visual else "(plain top-down camera)"
