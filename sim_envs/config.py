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

from harness.core.configs import load_yaml, merge, parse_overrides, from_dict
from harness.core.errors import ConfigError, UserError

PRESET_DIR = Path(__file__).parent / "presets"


MAX_ACTION_LATENCY = 750   # control steps: the task's 75 s time limit; a longer delay means no action ever lands


@dataclasses.dataclass
class PhysicsConfig:
    name: str                                   # preset name, recorded in datasets and run folders
    description: str = ""                       # one line: what this preset stands for
    # --- the slider ---------------------------------------------------------------------------------
    slider_mass: float = 0.1                    # kg
    com_offset: tuple[float, float] = (0.0, 0.0)  # centre of mass in the slider's body frame (m); +y = bar
    # --- friction and contact -----------------------------------------------------------------------
    mu_slider_table: float = 0.35               # Coulomb friction, slider base on the table
    mu_pusher_slider: float = 0.3               # Coulomb friction, pusher on the slider's sides
    contact_model: Literal["point", "hydroelastic"] = "point"  # Drake contact model
    contact_approximation: Literal["sap", "lagged", "similar", "tamsi"] = "lagged"  # discrete solver
    contact_stiffness: float = 2.0e4            # point contact stiffness (N/m)
    contact_dissipation: float = 5.0            # Hunt-Crossley dissipation (s/m)
    hydroelastic_modulus: float = 2.0e6         # Pa; compliant table and pusher (hydroelastic model only)
    base_contacts: int = 8                      # point model: spheres under the T's outline vertices (8 or 16)
    # --- integration --------------------------------------------------------------------------------
    time_step: float = 0.005                    # discrete plant step (s); must divide the 0.1 s control step
    # --- the pusher and its position controller -----------------------------------------------------
    pusher_mass: float = 1.0                    # kg, moved by two prismatic joints (x, y)
    controller_kp: float = 400.0                # PD stiffness of the position controller (N/m)
    controller_kd: float = 40.0                 # PD damping (N s/m)
    max_force: float = 20.0                     # actuator force limit per axis (N)
    max_pusher_speed: float = 1.0               # m/s: the setpoint moves at most this * 0.1 s per control step
                                                # (a robot's speed limit; also keeps contact from tunnelling)
    action_latency: int = 0                     # control steps (0.1 s each) an action is delayed
    # --- observation --------------------------------------------------------------------------------
    obs_noise_xy: float = 0.0                   # std of Gaussian noise on the observed slider x, y (m)
    obs_noise_theta: float = 0.0                # std of Gaussian noise on the observed slider theta (rad)
    obs_noise_agent: float = 0.0                # std of Gaussian noise on the observed pusher x, y (m)

    def __post_init__(self):
        positive = ["slider_mass", "contact_stiffness", "hydroelastic_modulus", "time_step", "pusher_mass",
                    "controller_kp", "max_force", "max_pusher_speed"]
        for key in positive:
            if not getattr(self, key) > 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        nonneg = ["mu_slider_table", "mu_pusher_slider", "contact_dissipation", "controller_kd",
                  "action_latency", "obs_noise_xy", "obs_noise_theta", "obs_noise_agent"]
        for key in nonneg:
            if not getattr(self, key) >= 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
        for key in positive + nonneg:
            if not math.isfinite(getattr(self, key)):
                raise ValueError(f"{key} must be finite, got {getattr(self, key)}")
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
