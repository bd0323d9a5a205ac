"""What every reader hands to the import pipeline, and the checks shared by all readers.

A reader validates the whole source before anything is written: every problem becomes one DatasetError
naming the source path, the key and what is wrong. Images are big, so they are only checked for shape
and dtype up front and loaded one episode at a time while writing.

Nothing is dropped silently: a reader records the fate of every source key (`Source.fates`: imported as,
kept as an extra, used for bookkeeping, or dropped and why) and any warning, and the import prints them.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from harness.core.errors import DatasetError
from real_data.importers.mapping import FieldMap, ImportMapping, TARGET_WIDTH
from sim_envs.geometry import TASK


@dataclasses.dataclass
class SourceEpisode:
    """One episode as recorded, before resampling."""
    index: int                                      # episode index in the source
    times: np.ndarray                               # (T,) seconds from the episode start, increasing
    lowdim: dict[str, np.ndarray]                   # agent_pos (T, 2), slider_pose (T, 3), action (T, 2)
    load_image: Optional[Callable[[], np.ndarray]] = None   # -> (T, H, W, 3) uint8, loaded on demand
    streams: dict[str, "Stream"] = dataclasses.field(default_factory=dict)   # store data key -> stream
    meta: dict[str, object] = dataclasses.field(default_factory=dict)       # store meta key -> scalar

    @property
    def length(self) -> int:
        return len(self.times)


@dataclasses.dataclass
class Stream:
    """A further per-step array of one episode (another camera, an extra), loaded on demand."""
    load: Callable[[], np.ndarray]                  # -> (T, ...)


@dataclasses.dataclass
class Source:
    path: Path
    format: str
    rate_hz: float                                  # the rate the source was recorded at
    episodes: list[SourceEpisode]
    image_shape: Optional[tuple[int, int, int]]     # (H, W, 3), or None without images
    info: dict                                      # format-specific facts kept in the output's attrs
    fates: list[tuple[str, str]] = dataclasses.field(default_factory=list)   # (source key, what became of it)
    warnings: list[str] = dataclasses.field(default_factory=list)
    origin: Optional[dict] = None                   # a cotrain export's store attrs (domain, source, env, ...)


def store_name(key: str) -> str:
    """A source key as a name inside the store's data/ or meta/ group (no "/": that would be a subgroup)."""
    return key.replace("/", ".")


def check_extra(path, key: str, values: np.ndarray) -> str | None:
    """Why an extra array cannot be kept (None if it can): numbers or booleans, finite."""
    if values.dtype == np.bool_ or np.issubdtype(values.dtype, np.integer):
        return None
    if not np.issubdtype(values.dtype, np.floating):
        return f"not numeric (dtype {values.dtype})"
    finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1) if len(values) else np.ones(0, bool)
    if not finite.all():
        return f"NaN or inf at row {int(np.flatnonzero(~finite)[0])}"
    return None


def as_image(path, key: str, frames: np.ndarray) -> np.ndarray:
    """Frames (T, H, W, 3) as uint8: uint8 as is; floats holding whole numbers 0..255 (PushT's `img`)
    converted exactly; anything else refused."""
    if frames.dtype == np.uint8:
        return frames
    if np.issubdtype(frames.dtype, np.floating) or np.issubdtype(frames.dtype, np.integer):
        ok = np.isfinite(frames).all() and frames.min(initial=0) >= 0 and frames.max(initial=0) <= 255 \
            and (np.asarray(frames) == np.round(frames)).all()
        if ok:
            return frames.astype(np.uint8)
        raise DatasetError(path, key, f"images must be uint8 or whole numbers 0..255, got {frames.dtype} values "
                                      "outside that")
    raise DatasetError(path, key, f"images must be uint8, got {frames.dtype}")


def select_columns(path, key: str, values: np.ndarray, field: FieldMap, target: str) -> np.ndarray:
    """Check a low-dim source array (N, D) and take the mapped columns -> (N, width) float64."""
    name = field.key
    if not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)):
        raise DatasetError(path, key, f"{target} needs a numeric array, got dtype {values.dtype}")
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise DatasetError(path, key, f"{target} needs a (N, D) array, got shape {values.shape}")
    width = TARGET_WIDTH[target]
    columns = field.columns if field.columns is not None else list(range(values.shape[1]))
    if field.columns is None and values.shape[1] != width:
        raise DatasetError(path, key, f"{target} needs {width} columns, {name!r} has {values.shape[1]} "
                                      f"(pick columns in the mapping file)")
    bad = [c for c in columns if not -values.shape[1] <= c < values.shape[1]]
    if bad:
        raise DatasetError(path, key, f"column {bad[0]} out of range for shape {values.shape}")
    out = values[:, columns].astype(np.float64)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        raise DatasetError(path, key, f"NaN or inf at row {int(np.flatnonzero(~finite)[0])}")
    return field.transform(out)


def check_image_shape(path, key: str, shape: tuple, dtype, allow_float: bool = False) -> tuple[int, int, int]:
    """Per-step image shape must be (H, W, 3) uint8 (or, with allow_float, numbers checked by as_image)."""
    step = tuple(int(s) for s in shape)
    if len(step) != 3 or step[2] != 3:
        raise DatasetError(path, key, f"images must be (H, W, 3) per step, got {step}")
    numeric = np.issubdtype(np.dtype(dtype), np.floating) or np.issubdtype(np.dtype(dtype), np.integer)
    if np.dtype(dtype) != np.uint8 and not (allow_float and numeric):
        raise DatasetError(path, key, f"images must be uint8, got {np.dtype(dtype)}")
    return step  # type: ignore[return-value]


def check_episode_ends(path, key: str, ends: np.ndarray, n_rows: int | None = None) -> np.ndarray:
    """Cumulative ends: 1-D integers, strictly increasing (no empty episode), last = number of rows."""
    ends = np.asarray(ends)
    if ends.ndim != 1 or not np.issubdtype(ends.dtype, np.integer):
        raise DatasetError(path, key, f"must be a 1-D integer array, got {ends.dtype} {ends.shape}")
    if len(ends) == 0:
        raise DatasetError(path, key, "no episodes")
    if ends[0] <= 0:
        raise DatasetError(path, key, "episode 0 is empty")
    steps = np.diff(ends)
    if (steps < 0).any():
        i = int(np.flatnonzero(steps < 0)[0]) + 1
        raise DatasetError(path, key, f"not monotone at episode {i} ({ends[i - 1]} -> {ends[i]})")
    if (steps == 0).any():
        i = int(np.flatnonzero(steps == 0)[0]) + 1
        raise DatasetError(path, key, f"episode {i} is empty")
    if n_rows is not None and int(ends[-1]) != n_rows:
        raise DatasetError(path, key, f"last episode ends at {int(ends[-1])} but the data have {n_rows} rows")
    return ends.astype(np.int64)


def check_times(path, key: str, times: np.ndarray, episode: int) -> np.ndarray:
    times = np.asarray(times, dtype=np.float64)
    if not np.isfinite(times).all():
        raise DatasetError(path, key, f"episode {episode}: NaN or inf timestamp")
    if len(times) > 1 and (np.diff(times) <= 0).any():
        i = int(np.flatnonzero(np.diff(times) <= 0)[0]) + 1
        raise DatasetError(path, key, f"episode {episode}: timestamps not increasing at frame {i}")
    return times - times[0]


def lowdim_fates(mapping: ImportMapping, widths: dict[str, int]) -> dict[str, str]:
    """source key -> '-> data/agent_pos (columns 0, 1; scale ...)', joined when one key feeds several
    targets (PushT's state), with the columns no target takes named."""
    fates: dict[str, list[str]] = {}
    used: dict[str, set[int]] = {}
    for target, field in mapping.lowdim().items():
        fates.setdefault(field.key, []).append(f"data/{target}{field.describe()}")
        width = widths.get(field.key, 0)
        cols = field.columns if field.columns is not None else range(width)
        used.setdefault(field.key, set()).update(c % width if width else c for c in cols)
    out = {}
    for key, targets in fates.items():
        unused = [c for c in range(widths.get(key, 0)) if c not in used[key]]
        note = f"; column{'s' if len(unused) > 1 else ''} {', '.join(map(str, unused))} not imported" if unused else ""
        out[key] = "-> " + ", ".join(targets) + note
    return out


def choose_primary_camera(mapping: ImportMapping, cameras: list[str], present: list[str]
                          ) -> tuple[Optional[str], str, list[str]]:
    """Which source key becomes data/image: (key or None, a note for its fate, warnings).

    The mapping's image key if the source has it; if it is absent and optional, the source's only camera
    (with a warning saying so); with several cameras and none named, none (they are all kept as
    data/image.<key>) and a warning naming them. A required image key that is absent is the caller's error.
    """
    if mapping.image is None:
        return None, "", []
    key = mapping.image.key
    if key in present:
        return key, "", []
    if not mapping.image.optional:
        return key, "", []   # the caller's `need` refuses it with the keys present
    if len(cameras) == 1:
        return cameras[0], f" (the only camera; the mapping's image key {key!r} is absent)", [
            f"data/image is {cameras[0]!r}, the source's only camera (the mapping names {key!r}); set "
            f"`image: {cameras[0]}` in the mapping to say so"]
    if cameras:
        return None, "", [f"no data/image: the mapping's image key {key!r} is not in the source; its cameras "
                          f"{', '.join(cameras)} are kept as data/image.<key>; set `image: <key>` in the mapping "
                          "to choose the one policies see"]
    return None, "", []


def unit_warnings(lowdim: dict[str, np.ndarray], margin: float = 2.0) -> list[str]:
    """Warn when positions lie far outside the task's workspace: another unit (PushT's pixels) or frame."""
    x_min, x_max, y_min, y_max = TASK.workspace
    out = []
    for target in ("agent_pos", "slider_pose", "action"):
        if target not in lowdim or not len(lowdim[target]):
            continue
        xy = lowdim[target][:, :2]
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        if lo[0] < x_min - margin or hi[0] > x_max + margin or lo[1] < y_min - margin or hi[1] > y_max + margin:
            out.append(f"{target}: x spans {lo[0]:.4g}..{hi[0]:.4g}, y {lo[1]:.4g}..{hi[1]:.4g}, far outside the "
                       f"task workspace (x {x_min}..{x_max} m, y {y_min}..{y_max} m): another unit (pixels?) or "
                       f"frame; set scale and offset for {target} in the mapping")
    return out
