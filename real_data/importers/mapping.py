"""Which source keys become which dataset keys, and at what rate the source was recorded.

A mapping file (YAML) is optional; the defaults cover the published layouts:

    agent_pos:   {key: state, columns: [0, 1]}       # pusher x, y (the published `state` is x, y, theta)
    slider_pose: {key: slider_state}                 # x, y, theta
    action:      {key: action}                       # commanded pusher x, y
    image:       {key: overhead_camera, optional: true}
    rate_hz: null                                    # null: the source's own rate (LeRobot fps; 10 for zarr)
    extras: true                                     # keep every other array / episode value (see below)
    drop: []                                         # source keys not to import

Any field may be overridden; the rest keep the defaults of the chosen format. `image: null` drops the
primary camera. A low-dim field may also take `scale` and `offset` (a number, or one per column):
value = source[:, columns] * scale + offset, e.g. PushT's pixels to metres.

Everything else in the source is kept under the store's extras namespace (harness.core.store): other
cameras as data/image.<source key>, other per-step arrays as data/extra.<source key>, per-episode values
as meta/extra.<source key>; `extras: false` or `drop: [key, ...]` leave them out (and the import summary
says so).
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Union

import numpy as np

from harness.core.configs import from_dict, load_yaml, merge, to_dict
from harness.core.configs import key as declare   # (FieldMap has a key named `key`)
from harness.core.errors import ConfigError

# Dataset keys a mapping fills, with the number of columns each must have per step.
TARGET_WIDTH = {"agent_pos": 2, "slider_pose": 3, "action": 2}
OUTPUT_HZ = 10.0   # every imported stream is resampled to the dataset's control rate


@dataclasses.dataclass
class FieldMap:
    key: str = declare(doc="source key (zarr: name under data/; LeRobot: feature name)")
    columns: Optional[list[int]] = declare(None, doc="which columns of the source key to take; null = all")
    optional: bool = declare(False, doc="true: skipped (with a note) when the source lacks the key")
    scale: Optional[Union[float, list[float]]] = declare(None, doc="per column, or one number for all; null = 1")
    offset: Optional[Union[float, list[float]]] = declare(None, doc="added after scaling; null = 0")

    def transform(self, values: np.ndarray) -> np.ndarray:
        """(N, width) selected columns -> scaled and offset (float64)."""
        out = np.asarray(values, dtype=np.float64)
        if self.scale is not None:
            out = out * np.asarray(self.scale, dtype=np.float64)
        if self.offset is not None:
            out = out + np.asarray(self.offset, dtype=np.float64)
        return out

    def describe(self) -> str:
        parts = []
        if self.columns is not None:
            parts.append(f"columns {', '.join(map(str, self.columns))}")
        if self.scale is not None:
            parts.append(f"scale {self.scale}")
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        return f" ({'; '.join(parts)})" if parts else ""


@dataclasses.dataclass
class ImportMapping:
    agent_pos: FieldMap = declare(doc="-> data/agent_pos (T, 2)")
    slider_pose: FieldMap = declare(doc="-> data/slider_pose (T, 3)")
    action: FieldMap = declare(doc="-> data/action (T, 2)")
    image: Optional[FieldMap] = declare(None, doc="-> data/image (T, H, W, 3) uint8; null = no images")
    rate_hz: Optional[float] = declare(None, doc="source control rate; null = from the source's metadata")
    extras: bool = declare(True, doc="keep unmapped cameras, arrays and per-episode values")
    drop: list[str] = declare(factory=list, doc="source keys not to import")

    def __post_init__(self):
        if self.rate_hz is not None and not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")

    def drop_reason(self, *names: str) -> str | None:
        """Why an unmapped source key (given by any of its names) is not imported; None: it is kept."""
        if any(n in self.drop for n in names):
            return "listed in the mapping's drop"
        if not self.extras:
            return "extras: false in the mapping"
        return None

    def lowdim(self) -> dict[str, FieldMap]:
        return {"agent_pos": self.agent_pos, "slider_pose": self.slider_pose, "action": self.action}


DEFAULTS: dict[str, dict] = {
    # diffusion_policy ReplayBuffer as written by the published sim-and-real cotraining code.
    "diffusion-policy": {
        "agent_pos": {"key": "state", "columns": [0, 1]},
        "slider_pose": {"key": "slider_state", "columns": [0, 1, 2]},
        "action": {"key": "action", "columns": [0, 1]},
        "image": {"key": "overhead_camera", "optional": True},
        "rate_hz": None, "extras": True, "drop": [],
    },
    # LeRobot naming conventions: the pusher in observation.state, the object in environment_state.
    "lerobot": {
        "agent_pos": {"key": "observation.state", "columns": [0, 1]},
        "slider_pose": {"key": "observation.environment_state", "columns": [0, 1, 2]},
        "action": {"key": "action", "columns": [0, 1]},
        "image": {"key": "observation.image", "optional": True},
        "rate_hz": None, "extras": True, "drop": [],
    },
}


def load_mapping(fmt: str, path=None) -> ImportMapping:
    """Defaults of `fmt`, updated by the YAML file at `path` (unknown keys rejected)."""
    data = dict(DEFAULTS[fmt])
    source = "defaults"
    if path is not None:
        update = load_yaml(path)
        # A field given as a plain string is just its source key.
        for name in ("agent_pos", "slider_pose", "action", "image"):
            if isinstance(update.get(name), str):
                update[name] = {"key": update[name]}
            if name in update and isinstance(update[name], dict):
                update[name] = {"columns": None, "optional": False, "scale": None, "offset": None, **update[name]}
        data = merge(data, update)
        source = str(path)
    mapping = from_dict(ImportMapping, data, source)
    for name, field in mapping.lowdim().items():
        if field.columns is not None and len(field.columns) != TARGET_WIDTH[name]:
            raise ConfigError(source, f"{name}.columns",
                              f"must pick {TARGET_WIDTH[name]} columns, got {len(field.columns)}")
        for what in ("scale", "offset"):
            value = getattr(field, what)
            if isinstance(value, list) and len(value) not in (1, TARGET_WIDTH[name]):
                raise ConfigError(source, f"{name}.{what}", f"must be one number or {TARGET_WIDTH[name]} "
                                                            f"(one per column), got {len(value)}")
            if value is not None and not np.all(np.isfinite(value)):
                raise ConfigError(source, f"{name}.{what}", "must be finite")
        if field.scale is not None and np.any(np.asarray(field.scale) == 0):
            raise ConfigError(source, f"{name}.scale", "must not be 0")
    return mapping


def mapping_dict(mapping: ImportMapping) -> dict:
    return to_dict(mapping)
