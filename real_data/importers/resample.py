"""Bring a stream recorded at any rate onto the dataset's 10 Hz grid.

Method (stated in the docs and stored in the output's attrs):
- Output times are t_k = k * 0.1 s from the episode's first sample, for every t_k within the recording.
- Positions and actions: linear interpolation between the two source samples around t_k. The slider angle
  is unwrapped first, so a pass through +-pi never interpolates through 0; it is wrapped back to (-pi, pi]
  if the source was wrapped.
- Images: zero-order hold, the latest frame at or before t_k (what a camera had delivered by then).
A source already on the 10 Hz grid passes through untouched.
"""
from __future__ import annotations

import math

import numpy as np

METHOD = "linear interpolation (slider angle unwrapped) for low-dim streams; latest frame at or before t for images"
_GRID_TOL = 1e-6   # s; a timestamp this close to the grid counts as on it


def output_times(times: np.ndarray, out_hz: float) -> np.ndarray:
    """(K,) grid times covered by the recording times (T,)."""
    dt = 1.0 / out_hz
    n = int(math.floor(times[-1] / dt + 1e-9)) + 1
    return np.arange(n) * dt


def on_grid(times: np.ndarray, out_hz: float) -> bool:
    grid = output_times(times, out_hz)
    return len(grid) == len(times) and bool(np.all(np.abs(grid - times) < _GRID_TOL))


def resample_lowdim(times: np.ndarray, values: np.ndarray, grid: np.ndarray, angle_column: int | None = None):
    """values (T, D) at times (T,) -> (K, D) at grid (K,), linearly interpolated."""
    values = np.asarray(values, dtype=np.float64)
    if angle_column is not None:
        values = values.copy()
        raw = values[:, angle_column]
        wrapped = bool(np.all(np.abs(raw) <= math.pi + 1e-9))
        values[:, angle_column] = np.unwrap(raw)
    out = np.stack([np.interp(grid, times, values[:, d]) for d in range(values.shape[1])], axis=1)
    if angle_column is not None and wrapped:
        out[:, angle_column] = (out[:, angle_column] + math.pi) % (2 * math.pi) - math.pi
    return out


def hold_indices(times: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(K,) index of the latest source sample at or before each grid time (zero-order hold)."""
    idx = np.searchsorted(times, grid + _GRID_TOL, side="right") - 1
    return np.clip(idx, 0, len(times) - 1)
