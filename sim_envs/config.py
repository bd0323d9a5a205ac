"""Physics presets: a typed `PhysicsConfig` loaded from `sim_envs/presets/<name>.yaml`.

Two presets matter most: `sim` (the simulation GCS plans are replayed in: the cheap, "corrupt" data) and
`target` (stands in for the real robot: the "clean" data and the evaluation). Every way they differ is a
field here, so the sim-to-target gap is explicit and can be varied one factor at a time (the
`com_shift_*` presets move only the centre of mass, the published physics-shift levels).

A preset file may start with `inherit: <other preset>`; its keys then override that preset's.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Literal, Sequence

from harness.core.configs import check_bounds, key, load_yaml, merge, parse_overrides, from_dict
from harness.core.errors import ConfigError, UserError

PRESET_DIR = Path(__file__).parent / "presets"


MAX_ACTION_LATENCY = 750   # control steps: the task's 75 s time limit; a longer delay means no action ever lands


@dataclasses.dataclass
class PhysicsConfig:
    name: str = key(doc="preset name, recorded in datasets and run folders")
    description: str = key("", doc="one line: what this preset stands for")
    # --- the slider ---------------------------------------------------------------------------------
    slider_mass: float = key(0.1, doc="slider mass (kg)")
    com_offset: tuple[float, float] = key((0.0, 0.0), doc="centre of mass in the slider's body frame (m); +y = bar")
    # --- friction and contact -----------------------------------------------------------------------
    mu_slider_table: float = key(0.35, bound=(0, None), doc="Coulomb friction, slider base on the table")
    mu_pusher_slider: float = key(0.3, bound=(0, None), doc="Coulomb friction, pusher on the slider's sides")
    contact_model: Literal["point", "hydroelastic"] = key("point", doc="Drake contact model")
    contact_approximation: Literal["sap", "lagged", "similar", "tamsi"] = key("lagged", doc="discrete solver")
    contact_stiffness: float = key(2.0e4, doc="point contact stiffness (N/m)")
    contact_dissipation: float = key(5.0, bound=(0, None), doc="Hunt-Crossley dissipation (s/m)")
    hydroelastic_modulus: float = key(2.0e6, doc="Pa; compliant table and pusher (hydroelastic model only)")
    base_contacts: int = key(8, doc="point model: spheres under the T's outline vertices (8 or 16)")
    # --- integration --------------------------------------------------------------------------------
    time_step: float = key(0.005, doc="discrete plant step (s); must divide the 0.1 s control step")
    # --- the pusher and its position controller -----------------------------------------------------
    pusher_mass: float = key(1.0, doc="kg, moved by two prismatic joints (x, y)")
    controller_kp: float = key(400.0, doc="PD stiffness of the position controller (N/m)")
    controller_kd: float = key(40.0, bound=(0, None), doc="PD damping (N s/m)")
    max_force: float = key(20.0, doc="actuator force limit per axis (N)")
    max_pusher_speed: float = key(1.0, doc="m/s: the setpoint moves at most this * 0.1 s per control step (a "
                                  "robot's speed limit; also keeps contact from tunnelling)")
    action_latency: int = key(0, bound=(0, None), doc="control steps (0.1 s each) an action is delayed")
    # --- observation --------------------------------------------------------------------------------
    obs_noise_xy: float = key(0.0, bound=(0, None), doc="std of Gaussian noise on the observed slider x, y (m)")
    obs_noise_theta: float = key(0.0, bound=(0, None), doc="std of Gaussian noise on the observed slider theta (rad)")
    obs_noise_agent: float = key(0.0, bound=(0, None), doc="std of Gaussian noise on the observed pusher x, y (m)")

    def __post_init__(self):
        positive = ["slider_mass", "contact_stiffness", "hydroelastic_modulus", "time_step", "pusher_mass",
                    "controller_kp", "max_force", "max_pusher_speed"]
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        nonneg = ["mu_slider_table", "mu_pusher_slider", "contact_dissipation", "controller_kd",
                  "action_latency", "obs_noise_xy", "obs_noise_theta", "obs_noise_agent"]
        check_bounds(self)   # the nonneg keys, each declared with bound (0, None)
        for name in positive + nonneg:
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)}")
        steps = 0.1 / self.time_step
        if abs(steps - round(steps)) > 1e-6:
            raise ValueError(f"time_step must divide the 0.1 s control step, got {self.time_step}")
        if self.action_latency > MAX_ACTION_LATENCY:   # its queue is made at reset: 1e9 would fill the memory
            raise ValueError(f"action_latency must be <= {MAX_ACTION_LATENCY} control steps (one episode), got "
                             f"{self.action_latency}")
        if self.base_contacts not in (8, 16):
            raise ValueError(f"base_contacts must be 8 or 16, got {self.base_contacts}")
        if not all(math.isfinite(c) and abs(c) < 0.2 for c in self.com_offset):
            raise ValueError(f"com_offset must be finite and within 0.2 m, got {self.com_offset}")


def preset_names(directory: Path = PRESET_DIR) -> list[str]:
    """Names of the presets shipped in `directory` (default sim_envs/presets/, the physics ones)."""
    return sorted(p.stem for p in directory.glob("*.yaml"))


def preset_path(name_or_path: str | Path, directory: Path = PRESET_DIR, kind: str = "physics preset") -> Path:
    """A preset name -> its YAML file in `directory`; anything that looks like a path is used as it is."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text:
        return Path(text)
    path = directory / f"{text}.yaml"
    if not path.is_file():
        raise UserError(f"unknown {kind} {text!r} (available: {', '.join(preset_names(directory))})")
    return path


def load_preset(name_or_path: str | Path, overrides: Sequence[str] = ()) -> PhysicsConfig:
    """Load a preset by name (sim_envs/presets/<name>.yaml) or path, apply `key=value` overrides."""
    return load_preset_file(PhysicsConfig, name_or_path, overrides, PRESET_DIR, "physics preset")


def load_preset_file(cls, name_or_path: str | Path, overrides: Sequence[str], directory: Path, kind: str):
    """A preset of dataclass `cls` from `directory` (or a path), with `inherit:` resolved and overrides
    applied; the physics and the visual presets load the same way."""
    path = preset_path(name_or_path, directory, kind)
    data = _load_with_inheritance(path, (), directory, kind)
    if overrides:
        data = merge(data, parse_overrides(overrides))
    data.setdefault("name", path.stem)
    return from_dict(cls, data, str(path))


def _load_with_inheritance(path: Path, seen: tuple, directory: Path, kind: str) -> dict:
    data = load_yaml(path)
    parent = data.pop("inherit", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(path, "inherit", f"expected a preset name, got {parent!r}")
    if parent in seen:
        raise ConfigError(path, "inherit", f"inheritance cycle through {parent!r}")
    try:
        parent_path = preset_path(parent, directory, kind)
    except UserError as exc:
        raise ConfigError(path, "inherit", str(exc)) from None
    base = _load_with_inheritance(parent_path, seen + (parent,), directory, kind)
    base.pop("name", None)
    base.pop("description", None)
    return merge(base, data)
