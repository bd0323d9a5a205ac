"""Affine per-feature normalization to [-1, 1], numpy only, in one of two modes (`data.normalizer_mode`).

Noise levels sigma are measured in these normalized action units, so every sigma in configs, annotations
and losses refers to them; the rule that keeps them comparable (docs/objectives.md section 11):

- `percentile` (the default; diffusion_policy's "limits" mode made robust): the FIT_PERCENTILES range of
  each feature (0.5th..99.5th percentile) maps to [-1, 1], not min..max, so a few outliers (corrupt copies
  with Gaussian noise, a glitch in a log) cannot squeeze the real data into a small part of the interval.
  Nothing is clipped: rare values land outside [-1, 1] (corrupt actions by up to 2 here), which is why a
  DDPM sampler clips to a range derived from the data (`diffusion.clip_sample_range`), not to 1.
  Actions are fitted on the clean data when there are any (the data the policy must imitate; corrupt data
  may carry any noise), else on all; observations on all data (`fit_normalizer`).
- `limits` (diffusion_policy's `LinearNormalizer(mode="limits")`, as its workspaces fit it on the whole
  training set): min..max of every feature over all training data, clean and corrupt, maps to [-1, 1], so
  every training value lies inside and diffusion_policy's clip to [-1, 1] never cuts one.
- One normalizer per study: the study fits it once on every episode it uses, writes it as JSON
  (`save_normalizer`) and every run (`data.normalizer`) and the classifier load it (`load_normalizer`), so
  a sigma means the same noise, and validation losses the same thing, in every run. A single
  `cotrain train` without `data.normalizer` fits its own on its training episodes.

What sigma = 1 means physically: 1 / scale of that action dimension, in metres (the action is the pusher's
commanded xy position). For the default demo study (its 20 scripted-teleop episodes) that is 0.19 m in x
and 0.26 m in y (docs/objectives.md section 11).

Saved in every checkpoint (as plain lists) so a loaded policy normalizes observations and un-normalizes
actions exactly as in training.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from harness.core.atomic import atomic_write_text
from harness.core.configs import read_text_bounded
from harness.core.errors import DatasetError

# A feature whose range is below this is left unscaled (only centred), so constants do not blow up.
_MIN_RANGE = 1e-4
# |offset| and |scale| of a normalizer file: 50x what a fit gives (scale <= 2 / _MIN_RANGE); beyond it a
# normalized float32 action overflows (scale 1e308) and the run would fail far from the cause.
MAX_AFFINE = 1e6
# The percentiles of each feature that map to -1 and +1 (robust to the outer 1% of the data).
FIT_PERCENTILES = (0.5, 99.5)
# data.normalizer_mode -> the percentiles of each feature that map to -1 and +1
MODES = {"percentile": FIT_PERCENTILES, "limits": (0.0, 100.0)}


@dataclasses.dataclass
class Affine:
    """x_norm = (x - offset) * scale, per last-axis feature."""
    offset: np.ndarray  # (D,)
    scale: np.ndarray   # (D,)

    @classmethod
    def fit(cls, x: np.ndarray, fixed: tuple[int, ...] = (), percentiles=FIT_PERCENTILES) -> "Affine":
        """Map the `percentiles` range of each feature onto [-1, 1]; features in `fixed` keep the identity."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, np.shape(x)[-1])
        if len(x) == 0:
            raise ValueError("cannot fit a normalizer on no data")
        lo, hi = np.percentile(x, percentiles, axis=0)
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
    mode: str = "percentile"   # how it was fitted (MODES); a limits fit records it in its state

    @classmethod
    def fit(cls, obs: np.ndarray, action: np.ndarray, mode: str = "percentile") -> "Normalizer":
        # cos/sin of theta (features 4, 5) already lie in [-1, 1]; keep them on the circle.
        return cls(Affine.fit(obs, (4, 5), MODES[mode]), Affine.fit(action, (), MODES[mode]), mode)

    def state(self) -> dict:
        # a percentile state is what it was before modes existed, so its files and hashes stay the same
        mode = {} if self.mode == "percentile" else {"mode": self.mode}
        return {**mode, "obs": self.obs.state(), "action": self.action.state()}

    @classmethod
    def from_state(cls, state: dict) -> "Normalizer":
        return cls(Affine.from_state(state["obs"]), Affine.from_state(state["action"]),
                   state.get("mode", "percentile"))


def fit_normalizer(obs: np.ndarray, clean_action: np.ndarray | None, all_action: np.ndarray,
                   mode: str = "percentile") -> Normalizer:
    """The one fitting rule (trainer, study, classifier). obs (N, 6), clean_action (M, 2) or None / empty,
    all_action (K, 2); raw units.

    percentile: observations on all data; actions on the clean data when there are any (what the policy
    must imitate; corrupt actions may carry any noise), else on all. limits: both on min..max of all data."""
    if mode == "limits":
        return Normalizer.fit(obs, all_action, mode)
    has_clean = clean_action is not None and len(clean_action) > 0
    return Normalizer.fit(obs, clean_action if has_clean else all_action)


def save_normalizer(normalizer: Normalizer, path) -> None:
    """Write the normalizer as JSON ({[mode,] obs: {offset, scale}, action: {offset, scale}}), atomically."""
    atomic_write_text(path, json.dumps(normalizer.state(), indent=2) + "\n")


# Feature counts a normalizer file must have: observation features (harness.learning.windows.obs_features), actions.
_FEATURES = {"obs": 6, "action": 2}


def load_normalizer(path) -> Normalizer:
    """A normalizer written by save_normalizer; anything else is a one-line DatasetError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, None, "no such normalizer file")
    try:
        state = json.loads(read_text_bounded(path))   # a file over the config bound is one line, unread
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:   # (nested 100,000 deep)
        raise DatasetError(path, None, f"not a readable normalizer JSON ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise DatasetError(path, None, "not a normalizer: expected an object with keys obs and action")
    for part, n in _FEATURES.items():
        _check_affine_state(path, part, state.get(part), n)
    if state.get("mode", "percentile") not in MODES:
        raise DatasetError(path, "mode", f"must be one of {', '.join(MODES)}, got {state['mode']!r}")
    return Normalizer.from_state(state)


def _check_affine_state(path: Path, part: str, state, n_features: int) -> None:
    if not isinstance(state, dict):
        raise DatasetError(path, part, "missing (expected {offset, scale})")
    for key in ("offset", "scale"):
        values = state.get(key)
        if not isinstance(values, list):
            raise DatasetError(path, f"{part}.{key}", "missing (expected a list of numbers)")
        if len(values) != n_features:
            raise DatasetError(path, f"{part}.{key}", f"has {len(values)} values, expected {n_features}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise DatasetError(path, f"{part}.{key}", f"must be finite numbers, got {values}")
        if any(abs(v) > MAX_AFFINE for v in values):   # a fit never gives these; float32 data would overflow
            raise DatasetError(path, f"{part}.{key}", f"must lie within +-{MAX_AFFINE:g} (a fit of this harness "
                               f"gives at most {2 / _MIN_RANGE:g}), got {values}")
    if any(v == 0 for v in state["scale"]):
        raise DatasetError(path, f"{part}.scale", f"must be nonzero, got {state['scale']}")


def same_affine(a: Affine, b: Affine) -> bool:
    """Equal up to float32 rounding (a JSON round trip of float32 values is exact; 1e-6 is slack)."""
    return bool(np.allclose(a.offset, b.offset, rtol=1e-6, atol=1e-9)
                and np.allclose(a.scale, b.scale, rtol=1e-6, atol=1e-9))
