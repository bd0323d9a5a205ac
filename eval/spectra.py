"""Power spectra of action sequences: do clean and corrupt data share low frequencies, differ in high ones?

The Ambient view in one line: adding Gaussian noise of std sigma to an action sequence buries every
frequency component whose power is below sigma^2 (white noise has a flat spectrum). If sim and real action
sequences differ only at high frequencies, where their power is small, a moderate sigma makes them
indistinguishable while leaving the shared low-frequency structure visible.

We cut every episode into windows of `length` control steps, remove each window's mean (the position the
push happens at says nothing about its style), and average the periodogram |rfft|^2 / length over windows
and both action axes. With that normalisation white noise of variance s^2 has expected power s^2 in every
bin, so the curves can be read against sigma^2 directly.
"""
from __future__ import annotations

import numpy as np

from sim_envs.geometry import TASK


def action_windows(episodes: list[np.ndarray], length: int = 32, stride: int = 8) -> np.ndarray:
    """Windows (N, length, 2) from a list of action sequences (T_i, 2); episodes shorter than length are skipped."""
    out = []
    for a in episodes:
        a = np.asarray(a, dtype=float)
        for start in range(0, len(a) - length + 1, stride):
            out.append(a[start: start + length])
    return np.stack(out) if out else np.zeros((0, length, 2))


def power_spectrum(windows: np.ndarray, dt: float = TASK.control_dt) -> tuple[np.ndarray, np.ndarray]:
    """(freqs (F,) in Hz, power (F,) in action-units^2) averaged over windows and action axes."""
    windows = np.asarray(windows, dtype=float)                  # (N, L, D)
    if windows.ndim != 3 or len(windows) == 0:
        raise ValueError(f"need windows shaped (N, L, D) with N > 0, got {windows.shape}")
    length = windows.shape[1]
    centred = windows - windows.mean(axis=1, keepdims=True)
    spec = np.abs(np.fft.rfft(centred, axis=1)) ** 2 / length   # (N, F, D)
    return np.fft.rfftfreq(length, d=dt), spec.mean(axis=(0, 2))


def episodes_spectrum(episodes: list[np.ndarray], length: int = 32, stride: int | None = None,
                      scale=None) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Power spectrum of the actions of `episodes` ((T, 2) each; the study report reads them from a store).

    Returns (freqs, power, n_windows), or None when no episode is `length` steps long. `scale` ((2,) or a
    scalar) multiplies the actions first: the action normalizer's scale gives normalized action units, in
    which the classifier's sigmas are measured. stride defaults to length // 4.
    """
    if scale is not None:
        episodes = [np.asarray(a, dtype=float) * np.asarray(scale, dtype=float) for a in episodes]
    windows = action_windows(episodes, length, max(1, length // 4) if stride is None else stride)
    if not len(windows):
        return None
    freqs, power = power_spectrum(windows)
    return freqs, power, len(windows)
