"""The annotations store written by `cotrain annotate` and read by the trainer (numpy + zarr, no torch).

    annotations.zarr/
      .zattrs           format, n_obs, horizon, n_action, eps, k_draws, smooth, accuracy_tol, clean_paths,
                        corrupt_paths, action_normalizer {offset, scale}, config, folds (per cross-fitting
                        fold: held-out accuracy raw and calibrated, calibration (a, b) per sigma, median /
                        never / zero of its windows' sigma_n)
      sigma_grid        (G,) increasing noise levels, sigma_grid[0] = 0
      accuracy          (G,) held-out balanced accuracy of the (calibrated) classifier at each sigma
      corrupt/<i>/      one group per corrupt dataset (attrs: path, n_episodes, sigma_n_dataset):
        episode, t0     (N,) the window index definition (harness/learning/windows.py)
        fold            (N,) the cross-fitting fold whose classifier scored the window
        sigma_n         (N,) the window's noise level (harness/learning/sigma_n_rule.py); inf = never
        accuracy        (G,) held-out balanced accuracy of this dataset against the clean data
        p_corrupt       (N, G) float16 calibrated mean P(corrupt) over k_draws noise draws; NaN at the
                        sigmas above a window's crossing, which `search: crossing` does not score

The sigmas are in the normalized action units of `action_normalizer`; the trainer normalizes actions with
these same statistics when it uses the annotations, so the numbers mean the same noise.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import zarr

from harness.core.atomic import atomic_path
from harness.core.errors import DatasetError
from harness.learning.windows import WindowSpec

FORMAT = "cotrain-annotations-v3"   # v3: the first-crossing rule on calibrated P, folds, per-dataset sigma_n
OLDER_FORMATS = ("cotrain-annotations-v1", "cotrain-annotations-v2")


@dataclasses.dataclass
class AnnotatedDataset:
    path: str
    n_episodes: int
    episode: np.ndarray     # (N,)
    t0: np.ndarray          # (N,)
    sigma_n: np.ndarray     # (N,) per window; inf = never indistinguishable
    p_corrupt: np.ndarray | None = None  # (N, G)
    fold: np.ndarray | None = None       # (N,) which cross-fitting fold scored the window
    accuracy: np.ndarray | None = None   # (G,) held-out balanced accuracy of this dataset vs clean
    sigma_n_dataset: float | None = None  # the per-dataset rule's sigma_n (inf = never)


@dataclasses.dataclass
class Annotations:
    spec: WindowSpec
    sigma_grid: np.ndarray
    accuracy: np.ndarray
    datasets: list[AnnotatedDataset]
    action_normalizer: dict
    attrs: dict

    def find(self, path) -> AnnotatedDataset | None:
        """The annotated dataset for the store at `path`: same resolved path, else the only one with the
        same folder name (a data folder moved or copied elsewhere); None if neither."""
        want = Path(path).resolve()
        for ds in self.datasets:
            if Path(ds.path).resolve() == want:
                return ds
        same_name = [ds for ds in self.datasets if Path(ds.path).name == want.name]
        return same_name[0] if len(same_name) == 1 else None


def write_annotations(out, ann: Annotations) -> Path:
    out = Path(out)
    with atomic_path(out) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        root.attrs.update({**ann.attrs, "format": FORMAT, "n_obs": ann.spec.n_obs, "horizon": ann.spec.horizon,
                           "n_action": ann.spec.n_action, "action_normalizer": ann.action_normalizer})
        root.create_array("sigma_grid", data=np.asarray(ann.sigma_grid, np.float64))
        root.create_array("accuracy", data=np.asarray(ann.accuracy, np.float64))
        group = root.require_group("corrupt")
        for i, ds in enumerate(ann.datasets):
            g = group.require_group(str(i))
            g.attrs.update({"path": str(ds.path), "n_episodes": int(ds.n_episodes),
                            "sigma_n_dataset": None if ds.sigma_n_dataset is None else float(ds.sigma_n_dataset)})
            g.create_array("episode", data=np.asarray(ds.episode, np.int64))
            g.create_array("t0", data=np.asarray(ds.t0, np.int64))
            g.create_array("sigma_n", data=np.asarray(ds.sigma_n, np.float64))
            if ds.fold is not None:
                g.create_array("fold", data=np.asarray(ds.fold, np.int64))
            if ds.accuracy is not None:
                g.create_array("accuracy", data=np.asarray(ds.accuracy, np.float64))
            if ds.p_corrupt is not None:
                g.create_array("p_corrupt", data=np.asarray(ds.p_corrupt, np.float16))
    return out


def read_annotations(path, with_probabilities: bool = False) -> Annotations:
    path = Path(path)
    if not path.exists():
        raise DatasetError(path, None, "no such annotations store (run `cotrain annotate`)")
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception as exc:
        raise DatasetError(path, None, f"not a zarr group ({type(exc).__name__})") from None
    attrs = dict(root.attrs)
    if attrs.get("format") in OLDER_FORMATS:
        raise DatasetError(path, "attrs.format", f"made by an older version ({attrs['format']}, another sigma_n "
                           "rule); re-run `cotrain annotate`")
    if attrs.get("format") != FORMAT:
        raise DatasetError(path, "attrs.format", f"not an annotations store (format {attrs.get('format')!r})")
    try:
        spec = WindowSpec(attrs["n_obs"], attrs["horizon"], attrs["n_action"])
        datasets = []
        for i in range(len(list(root["corrupt"].group_keys()))):
            g = root[f"corrupt/{i}"]
            datasets.append(AnnotatedDataset(
                path=g.attrs["path"], n_episodes=int(g.attrs["n_episodes"]), episode=g["episode"][:],
                t0=g["t0"][:], sigma_n=g["sigma_n"][:],
                p_corrupt=g["p_corrupt"][:] if with_probabilities and "p_corrupt" in g else None,
                fold=g["fold"][:] if "fold" in g else None, accuracy=g["accuracy"][:] if "accuracy" in g else None,
                sigma_n_dataset=_float_or_none(g.attrs.get("sigma_n_dataset"))))
        return Annotations(spec, root["sigma_grid"][:], root["accuracy"][:], datasets,
                           attrs["action_normalizer"], attrs)
    except KeyError as exc:
        raise DatasetError(path, str(exc).strip("'\""), "missing from annotations store") from None


def _float_or_none(value) -> float | None:
    """JSON attrs hold inf as the string 'Infinity' or a float; None stays None."""
    return None if value is None else float(value)


def sigma_n_for_windows(ds: AnnotatedDataset, episode: np.ndarray, t0: np.ndarray, where: str) -> np.ndarray:
    """Look up sigma_n of the windows (episode, t0) (N,); every window must have been annotated."""
    width = int(max(ds.t0.max(initial=0), t0.max(initial=0)) - min(ds.t0.min(initial=0), t0.min(initial=0)) + 1)
    base = min(ds.t0.min(initial=0), t0.min(initial=0))
    key_ann = ds.episode * width + (ds.t0 - base)
    key_want = np.asarray(episode) * width + (np.asarray(t0) - base)
    order = np.argsort(key_ann)
    pos = np.searchsorted(key_ann[order], key_want)
    pos = np.minimum(pos, len(order) - 1)
    found = key_ann[order][pos] == key_want if len(order) else np.zeros(len(key_want), bool)
    if not found.all():
        k = int(np.flatnonzero(~found)[0])
        raise DatasetError(where, None, f"window (episode {episode[k]}, t0 {t0[k]}) is not in the annotations "
                           f"(annotated {ds.n_episodes} episodes of {ds.path})")
    return ds.sigma_n[order][pos]
