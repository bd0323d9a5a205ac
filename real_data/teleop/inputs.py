"""Where a person's commands come from: the input-source abstraction of browser teleoperation.

The session asks its source for one `Command` per control step. `MeshcatInput` reads the browser through
Drake's Meshcat: keyboard and mouse act on two sliders (the target x and y; arrow keys step them, the
mouse drags them), a gamepad's left stick sets a velocity, and buttons (on screen, on the keyboard, on
the gamepad) reset, discard the last episode and stop. Tests drive this very class headless by
injecting the websocket messages a browser would send (`inject`), so the path under test is the one a
person uses.
"""
from __future__ import annotations

import dataclasses
import struct
from typing import Optional, Protocol

import numpy as np

from sim_envs.geometry import TASK


@dataclasses.dataclass
class Command:
    target: Optional[np.ndarray] = None     # (2,) absolute pusher target (sliders / mouse / keys), world xy
    velocity: Optional[np.ndarray] = None   # (2,) m/s pusher velocity (gamepad stick)
    reset: bool = False                     # end this episode (it is recorded) and start the next
    discard: bool = False                   # drop the last recorded episode
    stop: bool = False                      # end the session (an unfinished episode is dropped)


class InputSource(Protocol):
    def start(self, pusher_xy: np.ndarray) -> None:
        """A new episode starts with the pusher at `pusher_xy`."""

    def poll(self) -> Command:
        """The person's command for this control step."""

    def follow(self, target_xy: np.ndarray) -> None:
        """The session's current target (e.g. after gamepad motion), so the controls can show it."""


# Buttons: Meshcat name -> (keyboard code, gamepad button index in the standard mapping).
BUTTONS = {
    "reset": ("Reset episode (R, gamepad A)", "KeyR", 0),
    "discard": ("Discard last episode (X, gamepad B)", "KeyX", 1),
    "stop": ("Stop and save (Q, gamepad Start)", "KeyQ", 9),
}
SLIDERS = {"x": ("Pusher x (Left/Right)", "ArrowLeft", "ArrowRight"),
           "y": ("Pusher y (Down/Up)", "ArrowDown", "ArrowUp")}


class MeshcatInput:
    """Keyboard, mouse (sliders) and gamepad input from the browser showing the scene."""

    def __init__(self, meshcat, key_step: float = 0.004, stick_speed: float = 0.15, deadzone: float = 0.15):
        self.meshcat = meshcat
        self.stick_speed = stick_speed      # m/s at full stick deflection
        self.deadzone = deadzone
        x0, x1, y0, y1 = TASK.workspace
        for axis, (name, dec, inc) in SLIDERS.items():
            lo, hi = (x0, x1) if axis == "x" else (y0, y1)
            meshcat.AddSlider(name, lo, hi, key_step, (lo + hi) / 2, decrement_keycode=dec, increment_keycode=inc)
        for name, key, _ in BUTTONS.values():
            meshcat.AddButton(name, key)
        self._clicks = {k: meshcat.GetButtonClicks(v[0]) for k, v in BUTTONS.items()}
        self._pressed = {k: False for k in BUTTONS}      # gamepad buttons: act on the press, not the hold
        self._slider_last = self._sliders()
        self._goal: np.ndarray | None = None             # where the person last put the sliders

    def _sliders(self) -> np.ndarray:
        return np.array([self.meshcat.GetSliderValue(SLIDERS[a][0]) for a in ("x", "y")])

    def start(self, pusher_xy) -> None:
        self.follow(pusher_xy)

    def follow(self, target_xy) -> None:
        for axis, value in zip(("x", "y"), np.asarray(target_xy, float)):
            self.meshcat.SetSliderValue(SLIDERS[axis][0], float(value))
        self._slider_last = self._sliders()
        self._goal = None   # the stick (or a reset) has taken over from the sliders

    def poll(self) -> Command:
        cmd = Command()
        for key, (name, _, button) in BUTTONS.items():
            clicks = self.meshcat.GetButtonClicks(name)
            fired = clicks > self._clicks[key]
            self._clicks[key] = clicks
            setattr(cmd, key, fired)
        pad = self.meshcat.GetGamepad()
        if pad.index is not None:
            for key, (_, _, button) in BUTTONS.items():
                down = button < len(pad.button_values) and pad.button_values[button] > 0.5
                if down and not self._pressed[key]:
                    setattr(cmd, key, True)
                self._pressed[key] = down
            if len(pad.axes) >= 2:
                stick = np.array([pad.axes[0], -pad.axes[1]])    # browser y axis points down
                m = float(np.linalg.norm(stick))
                if m > self.deadzone:
                    scale = min(1.0, (m - self.deadzone) / (1 - self.deadzone))
                    cmd.velocity = stick / m * scale * self.stick_speed
        sliders = self._sliders()
        if np.any(np.abs(sliders - self._slider_last) > 1e-9):   # the person moved a slider (keys or mouse)
            self._goal = sliders
        self._slider_last = sliders
        if cmd.velocity is None and self._goal is not None:
            cmd.target = self._goal.copy()   # keep heading there (the session limits the speed)
        return cmd

    def close(self) -> None:
        self.meshcat.DeleteAddedControls()


# ---- what a browser sends, for driving MeshcatInput without one ------------------------------------
def inject(meshcat, message: dict) -> None:
    """Deliver `message` to Meshcat as if a browser had sent it over the websocket, e.g.
    {"type": "button", "name": ...}, {"type": "slider", "name": ..., "value": v},
    {"type": "gamepad", "name": "", "gamepad": {"index": 0, "button_values": [...], "axes": [...]}}."""
    meshcat._InjectWebsocketMessage(message=_msgpack(message))


def press(meshcat, action: str) -> None:
    """Click one of the on-screen buttons (reset, discard, stop) the way a browser reports it."""
    inject(meshcat, {"type": "button", "name": BUTTONS[action][0]})


def gamepad(meshcat, axes=(0.0, 0.0), buttons=()) -> None:
    """Report a gamepad state: left stick `axes` (x right, y down, in [-1, 1]) and pressed button indices."""
    values = [1.0 if i in buttons else 0.0 for i in range(16)]
    inject(meshcat, {"type": "gamepad", "name": "",
                     "gamepad": {"index": 0, "button_values": values, "axes": [float(a) for a in axes] + [0.0, 0.0]}})


def _msgpack(obj) -> bytes:
    """Minimal MessagePack encoder (maps, arrays, strings, floats, ints, bools) - all a UI event needs."""
    if isinstance(obj, dict):
        head = bytes([0x80 | len(obj)]) if len(obj) < 16 else b"\xde" + struct.pack(">H", len(obj))
        return head + b"".join(_msgpack(str(k)) + _msgpack(v) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        head = bytes([0x90 | len(obj)]) if len(obj) < 16 else b"\xdc" + struct.pack(">H", len(obj))
        return head + b"".join(_msgpack(v) for v in obj)
    if isinstance(obj, str):
        data = obj.encode()
        head = bytes([0xA0 | len(data)]) if len(data) < 32 else b"\xd9" + bytes([len(data)])
        return head + data
    if isinstance(obj, bool):
        return b"\xc3" if obj else b"\xc2"
    if isinstance(obj, int):
        return struct.pack(">B", obj) if 0 <= obj < 128 else b"\xd3" + struct.pack(">q", obj)
    if isinstance(obj, float):
        return b"\xcb" + struct.pack(">d", obj)
    if obj is None:
        return b"\xc0"
    raise TypeError(f"cannot pack {type(obj).__name__}")
