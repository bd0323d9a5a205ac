"""Reader for diffusion_policy ReplayBuffer stores (zarr v2 folder or `.zarr.zip`).

Layout, as written by diffusion_policy and the published sim-and-real cotraining code:
    data/state          (N, 3) pusher x, y, theta
    data/slider_state   (N, 3) slider x, y, theta
    data/action         (N, 2) commanded pusher x, y
    data/target         (N, 3) goal pose (not imported)
    data/<camera>       (N, H, W, 3) uint8, e.g. overhead_camera, wrist_camera
    meta/episode_ends   (E,) cumulative ends
There are no timestamps: samples are evenly spaced at the mapping's rate_hz (10 Hz by default).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from harness.data.errors import DatasetError
from real_data.importers.mapping import ImportMapping
from real_data.importers.source import Source, SourceEpisode, check_episode_ends, check_image_shape, \
    select_columns

DEFAULT_RATE_HZ = 10.0


def open_replay_buffer(path: Path) -> zarr.Group:
    if not path.exists():
        raise DatasetError(path, None, "no such file or folder")
    try:
        if path.is_file():
            store = zarr.storage.ZipStore(path, mode="r")
            return zarr.open_group(store, mode="r", zarr_format=2)
        return zarr.open_group(str(path), mode="r", zarr_format=2)
    except Exception as exc:  # zarr raises several types for "not a group" / "not a zip"
        raise DatasetError(path, None, f"not a zarr v2 store ({type(exc).__name__})") from None


def _read(path, arr, key: str, sl=slice(None)) -> np.ndarray:
    try:
        return np.asarray(arr[sl])
    except Exception as exc:  # e.g. a compressor (jpeg2k) whose codec is not installed
        raise DatasetError(path, key, f"cannot read ({type(exc).__name__}: {exc})".splitlines()[0]) from None


def read_diffusion_policy(path, mapping: ImportMapping) -> Source:
    path = Path(path)
    root = open_replay_buffer(path)
    if "data" not in root or not isinstance(root["data"], zarr.Group):
        raise DatasetError(path, "data", "missing group")
    if "meta" not in root or "episode_ends" not in root["meta"]:
        raise DatasetError(path, "meta/episode_ends", "missing array")
    data = root["data"]
    available = sorted(data.array_keys())

    raw = {}
    for target, field in mapping.lowdim().items():
        key = f"data/{field.key}"
        if field.key not in available:
            raise DatasetError(path, key, f"missing array (needed for {target}; present: {', '.join(available)})")
        raw[target] = (key, field, data[field.key])
    n_rows = raw["agent_pos"][2].shape[0] if raw["agent_pos"][2].ndim else 0
    for target, (key, _, arr) in raw.items():
        if arr.ndim == 0 or arr.shape[0] != n_rows:
            raise DatasetError(path, key, f"has {arr.shape[0] if arr.ndim else 0} rows, "
                                          f"data/{mapping.agent_pos.key} has {n_rows}")
    ends = check_episode_ends(path, "meta/episode_ends", _read(path, root["meta/episode_ends"], "meta/episode_ends"),
                              n_rows)
    lowdim = {t: select_columns(path, key, _read(path, arr, key), field, t) for t, (key, field, arr) in raw.items()}

    image_arr, image_shape, image_key = None, None, None
    if mapping.image is not None:
        image_key = f"data/{mapping.image.key}"
        if mapping.image.key in available:
            image_arr = data[mapping.image.key]
            image_shape = check_image_shape(path, image_key, image_arr.shape[1:], image_arr.dtype)
            if image_arr.shape[0] != n_rows:
                raise DatasetError(path, image_key, f"has {image_arr.shape[0]} rows, the low-dim data have {n_rows}")
            _read(path, image_arr, image_key, slice(0, 1))  # fail now, not mid-write, on a missing codec
        elif not mapping.image.optional:
            raise DatasetError(path, image_key, f"missing array (present: {', '.join(available)})")

    rate = mapping.rate_hz or DEFAULT_RATE_HZ
    episodes = []
    start = 0
    for i, end in enumerate(ends):
        sl = slice(start, int(end))
        loader = None
        if image_arr is not None:
            loader = (lambda sl=sl: _read(path, image_arr, image_key, sl))
        episodes.append(SourceEpisode(
            index=i, times=np.arange(sl.stop - sl.start) / rate,
            lowdim={t: v[sl] for t, v in lowdim.items()}, load_image=loader,
        ))
        start = int(end)
    return Source(path=path, format="diffusion-policy", rate_hz=rate, episodes=episodes, image_shape=image_shape,
                  info={"keys": available})
