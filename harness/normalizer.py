"""Affine per-feature normalization to [-1, 1] (diffusion_policy's "limits" mode), numpy only.

Fitted once on the training data of all sources, saved in the checkpoint (as plain lists) so a loaded
policy normalizes observations and un-normalizes actions exactly as in training. Noise levels sigma are
measured in these normalized action units, so every sigma in configs and annotations refers to them.
"""
from __future__ import annotations

import dataclasses

import numpy as np

# A feature whose range is below this is left unscaled (only centred), so constants do not blow up.
_MIN_RANGE = 1e-4


@dataclasses.dataclass
class Affine:
    """x_norm = (x - offset) * scale, per last-axis feature."""
    offset: np.ndarray  # (D,)
    scale: np.ndarray   # (D,)

    @classmethod
    def fit(cls, x: np.ndarray, fixed: tuple[int, ...] = ()) -> "Affine":
        """Map the data range of each feature onto [-1, 1]; features in `fixed` keep the identity."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, np.shape(x)[-1])
        lo, hi = x.min(axis=0), x.max(axis=0)
        rng = hi - lo
        scale = np.where(rng > _MIN_RANGE, 2.0 / np.maximum(rng, _MIN_RANGE), 1.0)
        offset = (hi + lo) / 2
        for i in fixed:
            offset[i], scale[i] = 0.0, 1.0
        return cls(offset.astype(np.float32), scale.astype(np.float32))

    def normalize(self, x):
        return (x - self.offset) * self.scale

    def unnormalize(self, x):
        return x / self.scale + self.offset

    def state(self) -> dict:
        return {"offset": self.offset.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> "Affine":
        return cls(np.asarray(state["offset"], np.float32), np.asarray(state["scale"], np.float32))


@dataclasses.dataclass
class Normalizer:
    """Observation features (agent xy, slider xy, cos, sin) and actions. Images are scaled to [0, 1] apart."""
    obs: Affine
    action: Affine

    @classmethod
    def fit(cls, obs: np.ndarray, action: np.ndarray) -> "Normalizer":
        # cos/sin of theta (features 4, 5) already lie in [-1, 1]; keep them on the circle.
        return cls(Affine.fit(obs, fixed=(4, 5)), Affine.fit(action))

    def state(self) -> dict:
        return {"obs": self.obs.state(), "action": self.action.state()}

    @classmethod
    def from_state(cls, state: dict) -> "Normalizer":
        return cls(Affine.from_state(state["obs"]), Affine.from_state(state["action"]))
