"""What every reader hands to the import pipeline, and the checks shared by all readers.

A reader validates the whole source before anything is written: every problem becomes one DatasetError
naming the source path, the key and what is wrong. Images are big, so they are only checked for shape
and dtype up front and loaded one episode at a time while writing.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from harness.data.errors import DatasetError
from real_data.importers.mapping import TARGET_WIDTH, FieldMap


@dataclasses.dataclass
class SourceEpisode:
    """One episode as recorded, before resampling."""
    index: int                                      # episode index in the source
    times: np.ndarray                               # (T,) seconds from the episode start, increasing
    lowdim: dict[str, np.ndarray]                   # agent_pos (T, 2), slider_pose (T, 3), action (T, 2)
    load_image: Optional[Callable[[], np.ndarray]] = None   # -> (T, H, W, 3) uint8, loaded on demand

    @property
    def length(self) -> int:
        return len(self.times)


@dataclasses.dataclass
class Source:
    path: Path
    format: str
    rate_hz: float                                  # the rate the source was recorded at
    episodes: list[SourceEpisode]
    image_shape: Optional[tuple[int, int, int]]     # (H, W, 3), or None without images
    info: dict                                      # format-specific facts kept in the output's attrs


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
    return out


def check_image_shape(path, key: str, shape: tuple, dtype) -> tuple[int, int, int]:
    """Per-step image shape must be (H, W, 3) uint8."""
    step = tuple(int(s) for s in shape)
    if len(step) != 3 or step[2] != 3:
        raise DatasetError(path, key, f"images must be (H, W, 3) per step, got {step}")
    if np.dtype(dtype) != np.uint8:
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
