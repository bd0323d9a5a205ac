"""Bring a stream recorded at any rate onto the dataset's 10 Hz grid.

Method (stated in the docs and stored in the output's attrs):
- Output times are t_k = k * 0.1 s from the episode's first sample, for every t_k within the recording.
- Positions, actions and other floating-point streams: linear interpolation between the two source samples
  around t_k. The slider angle is unwrapped first, so a pass through +-pi never interpolates through 0; it is
  wrapped back to (-pi, pi] if the source was wrapped.
- Images, integer and boolean streams: zero-order hold, the latest sample at or before t_k (what a camera
  had delivered by then).
A source already on the 10 Hz grid passes through untouched.

Timestamps are compared with a tolerance relative to the time step (GRID_TOL of the smaller of the output
and the source step), never an absolute one: LeRobot stores timestamps as float32, whose rounding grows
with time (about 2e-6 s at 40 s, 1e-4 s at 30 min), so an absolute tolerance fails on long episodes.
A sample within the tolerance of a grid time is that grid time's sample, exactly.
"""
from __future__ import annotations

import math

import numpy as np

METHOD = ("linear interpolation (slider angle unwrapped) for floating-point streams; latest sample at or "
          "before t for images, integers and booleans")
GRID_TOL = 0.01   # fraction of the time step: a timestamp this close to a grid time counts as on it


def tolerance(times: np.ndarray, dt: float) -> float:
    """Seconds within which a source time counts as equal to a grid time (grid step `dt`)."""
    steps = np.diff(times)
    step = min(dt, float(steps.min())) if len(steps) else dt
    return GRID_TOL * step


def output_times(times: np.ndarray, out_hz: float) -> np.ndarray:
    """(K,) grid times covered by the recording times (T,)."""
    dt = 1.0 / out_hz
    n = int(math.floor(times[-1] / dt + tolerance(times, dt) / dt)) + 1
    return np.arange(n) * dt


def on_grid(times: np.ndarray, out_hz: float) -> bool:
    grid = output_times(times, out_hz)
    return len(grid) == len(times) and bool(np.all(np.abs(grid - times) <= tolerance(times, 1.0 / out_hz)))


def _exact_hits(times: np.ndarray, grid: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """(grid rows, source rows) where a source sample lies within `tol` of the grid time."""
    right = np.clip(np.searchsorted(times, grid), 0, len(times) - 1)
    left = np.clip(right - 1, 0, len(times) - 1)
    nearest = np.where(np.abs(times[left] - grid) <= np.abs(times[right] - grid), left, right)
    hit = np.abs(times[nearest] - grid) <= tol
    return np.flatnonzero(hit), nearest[hit]


def resample_lowdim(times: np.ndarray, values: np.ndarray, grid: np.ndarray, angle_column: int | None = None):
    """values (T, D) at times (T,) -> (K, D) at grid (K,), linearly interpolated (exact on hits)."""
    source = np.asarray(values, dtype=np.float64)
    values = source
    if angle_column is not None:
        values = source.copy()
        raw = values[:, angle_column]
        wrapped = bool(np.all(np.abs(raw) <= math.pi + 1e-9))
        values[:, angle_column] = np.unwrap(raw)
    out = np.stack([np.interp(grid, times, values[:, d]) for d in range(values.shape[1])], axis=1)
    if angle_column is not None and wrapped:
        out[:, angle_column] = (out[:, angle_column] + math.pi) % (2 * math.pi) - math.pi
    dt = float(grid[1] - grid[0]) if len(grid) > 1 else 1.0
    rows, src = _exact_hits(times, grid, tolerance(times, dt))
    out[rows] = source[src]
    return out


def resample_any(times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """An extra stream (T, ...) -> (K, ...): linear for floating point, zero-order hold otherwise."""
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.floating):
        dt = float(grid[1] - grid[0]) if len(grid) > 1 else 1.0
        return values[hold_indices(times, grid, dt)]
    flat = values.reshape(len(values), -1)
    return resample_lowdim(times, flat, grid).reshape(len(grid), *values.shape[1:])


def hold_indices(times: np.ndarray, grid: np.ndarray, dt: float | None = None) -> np.ndarray:
    """(K,) index of the latest source sample at or before each grid time (zero-order hold)."""
    if dt is None:
        dt = float(grid[1] - grid[0]) if len(grid) > 1 else 1.0
    idx = np.searchsorted(times, grid + tolerance(times, dt), side="right") - 1
    return np.clip(idx, 0, len(times) - 1)
