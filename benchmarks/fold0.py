"""The set-up both annotate benchmarks share: the data, the fold-0 classifier of `cotrain annotate` (same
settings and seed), and held-out windows of each class from fold 0 (which that classifier did not see)."""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from harness.learning.classifier import AnnotateConfig, _windows, _Windows, load_annotate_data, train_classifier
from harness.learning.windows import WindowSpec


@dataclasses.dataclass
class Fold0:
    model: object                  # the trained NoiseLevelClassifier
    trained_seconds: float         # its training wall time
    held: dict[str, _Windows]      # "clean", "corrupt": up to `windows` held-out windows each
    corrupt_raws: list             # the corrupt datasets (for their window counts)
    spec: WindowSpec
    device: object


def fold0_classifier(clean, corrupt, cfg: AnnotateConfig, windows: int, sort: bool = False) -> Fold0:
    """Train fold 0's classifier as annotate does and draw the held-out windows (sorted rows if `sort`)."""
    data = load_annotate_data(clean, corrupt, cfg)
    spec, device, normalizer, sigma_data = data.spec, data.device, data.normalizer, data.sigma_data
    clean_raws, clean_folds, corrupt_raws, corrupt_folds = data.clean, data.clean_folds, data.corrupt, data.corrupt_folds
    started = time.perf_counter()
    model = train_classifier(_windows(clean_raws, spec, normalizer, [np.flatnonzero(f != 0) for f in clean_folds]),
                             _windows(corrupt_raws, spec, normalizer, [np.flatnonzero(f != 0) for f in corrupt_folds]),
                             dataclasses.replace(cfg, seed=cfg.seed * 100), sigma_data, device)
    trained = time.perf_counter() - started
    rng = np.random.default_rng(0)
    held = {}
    for name, raws, folds in (("clean", clean_raws, clean_folds), ("corrupt", corrupt_raws, corrupt_folds)):
        w = _windows(raws, spec, normalizer, [np.flatnonzero(f == 0) for f in folds])
        keep = rng.choice(len(w.action), size=min(windows, len(w.action)), replace=False)
        keep = np.sort(keep) if sort else keep
        held[name] = _Windows(w.obs[keep], w.action[keep])
    return Fold0(model, trained, held, corrupt_raws, spec, device)
