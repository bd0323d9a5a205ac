"""The corruptions `cotrain corrupt` applies to one episode's actions, each an equation of docs/objectives.md
section 16, with its effect on the action power spectrum.

Every transform works in normalized action units (x_norm = (x - offset) * scale, the study normalizer's
action fit), so a level means the same noise as a sigma anywhere else in the harness. For an episode of T
control steps (dt = 0.1 s), with the DFT frequencies f_k = k / (T dt), k = 0 .. T // 2:

    gaussian   a'_t = a_t + L z_t                              z_t ~ N(0, I) iid: +L^2 at every frequency
    jitter     a'_t = a_t + L irfft(1[f_k >= f_c] rfft(z))_t   +L^2 at f >= f_c, nothing below
    drift      a'_t = a_t + L irfft(1[f_k <  f_c] rfft(z))_t   +L^2 at f <  f_c, nothing above
    latency    a'_t = a_(max(t - k, 0))                        k = L control steps; |A(f)|^2 unchanged
    bias       a'_t = a_t + L b                                b ~ N(0, I) once per episode; only f = 0

"+L^2" is per frequency bin in the periodogram normalisation of eval/spectra.py (|rfft|^2 / T), in which
white noise of variance s^2 has power s^2 in every bin, so the corrupt spectrum reads against the clean
one directly. jitter and drift are white noise with a band cut out by a brick-wall filter on the whole
episode's DFT: their power outside the band is zero (to float rounding), which a tapered filter
(Butterworth) would not give. Their per-coordinate std is L sqrt(share of bins in the band).

Observations are not touched here: the corrupt data are "the same states, other actions", which is what
the Ambient assumption X_n = X_0 + sigma_n Z speaks about (the action chunk is what the policy diffuses).
"""
from __future__ import annotations

import numpy as np

TRANSFORMS = ("gaussian", "jitter", "drift", "latency", "bias")
BANDED = ("jitter", "drift")                  # the transforms with a cutoff frequency
DEFAULT_CUTOFF_HZ = {"jitter": 2.0, "drift": 0.5}
MAX_LATENCY_STEPS = 1000


def check_transform(transform: str, level: float, cutoff_hz: float | None, control_dt: float) -> None:
    """ValueError naming the key when (transform, level, cutoff) make no corruption of this meaning."""
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {list(TRANSFORMS)}, got {transform!r}")
    if not np.isfinite(level) or level < 0:
        raise ValueError(f"level must be a finite number >= 0, got {level}")
    if transform == "latency" and (level != int(level) or level > MAX_LATENCY_STEPS):
        raise ValueError(f"level of latency is a whole number of control steps in [0, {MAX_LATENCY_STEPS}], "
                         f"got {level}")
    nyquist = 0.5 / control_dt
    if transform in BANDED:
        if cutoff_hz is not None and not 0 < cutoff_hz < nyquist:
            raise ValueError(f"cutoff_hz must be in (0, {nyquist:g}) Hz (the Nyquist frequency), got {cutoff_hz}")
    elif cutoff_hz is not None:
        raise ValueError(f"cutoff_hz applies to {' and '.join(BANDED)} only, not {transform}")


def resolved_cutoff(transform: str, cutoff_hz: float | None) -> float | None:
    """The cutoff a banded transform uses (its default when none is given); None for the others."""
    if transform not in BANDED:
        return None
    return DEFAULT_CUTOFF_HZ[transform] if cutoff_hz is None else float(cutoff_hz)


def band_mask(length: int, cutoff_hz: float, control_dt: float, above: bool) -> np.ndarray:
    """(length // 2 + 1,) True at the DFT bins of the band: f >= cutoff (above) or f < cutoff."""
    freqs = np.fft.rfftfreq(length, d=control_dt)
    return freqs >= cutoff_hz if above else freqs < cutoff_hz


def band_noise(rng: np.random.Generator, length: int, dims: int, mask: np.ndarray) -> np.ndarray:
    """(length, dims) white N(0, 1) noise with every DFT bin outside `mask` set to zero: its periodogram
    |rfft|^2 / length has expectation 1 in the band and is 0 outside."""
    z = rng.standard_normal((length, dims))                              # (T, D)
    return np.fft.irfft(np.fft.rfft(z, axis=0) * mask[:, None], n=length, axis=0)


def corrupt_actions(action: np.ndarray, transform: str, level: float, rng: np.random.Generator,
                    scale: np.ndarray, control_dt: float, cutoff_hz: float | None = None) -> np.ndarray:
    """One episode's actions (T, D) in raw units -> corrupted (T, D) in raw units.

    scale (D,): the action normalizer's scale, so noise of level L in normalized units is L / scale raw
    (the offset cancels for an additive corruption). rng: this episode's own generator, so an episode's
    corruption depends on (seed, episode) alone and a resumed store equals an uninterrupted one.
    """
    action = np.asarray(action, np.float64)                              # (T, D)
    length, dims = action.shape
    scale = np.asarray(scale, np.float64)                                # (D,)
    if transform == "latency":
        k = int(level)
        return action[np.maximum(np.arange(length) - k, 0)]              # held at a_0 for the first k steps
    if transform == "gaussian":
        noise = rng.standard_normal((length, dims))
    elif transform == "bias":
        noise = np.broadcast_to(rng.standard_normal((1, dims)), (length, dims))
    elif transform in BANDED:
        mask = band_mask(length, resolved_cutoff(transform, cutoff_hz), control_dt, above=transform == "jitter")
        noise = band_noise(rng, length, dims, mask)
    else:
        raise ValueError(f"unknown transform {transform!r}")
    return action + level * noise / scale                                # (T, D)
