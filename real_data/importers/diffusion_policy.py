"""Reader for diffusion_policy ReplayBuffer stores (zarr v2 folder, `.zarr.zip`, or a zip holding a store
folder such as diffusion_policy's `pusht.zip`).

Layouts, as written by diffusion_policy and the published sim-and-real cotraining code:
    data/state          (N, 3) pusher x, y, theta          PushT: (N, 5) agent x, y, block x, y, angle
    data/slider_state   (N, 3) slider x, y, theta
    data/action         (N, 2) commanded pusher x, y
    data/target         (N, 3) goal pose                    PushT: data/keypoint (N, 9, 2), n_contacts
    data/<camera>       (N, H, W, 3) uint8, e.g. overhead_camera, wrist_camera (real robot: Jpeg2k)
    meta/episode_ends   (E,) cumulative ends;  meta/<key> (E,) per-episode values
There are no timestamps: samples are evenly spaced at the mapping's rate_hz (10 Hz by default).

Arrays are listed from the store's `.zarray` files, so one array whose codec is not installed cannot stop
the listing: it is refused with one line if the mapping needs it, else dropped and named in the summary.
imagecodecs registers the Jpeg2k codec diffusion_policy's real-robot stores use.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import zarr

from harness.core.errors import DatasetError
from real_data.importers.mapping import ImportMapping
from real_data.importers.source import Source, SourceEpisode, Stream, as_image, check_episode_ends, check_extra, \
    check_image_shape, choose_primary_camera, lowdim_fates, select_columns, store_name, unit_warnings

DEFAULT_RATE_HZ = 10.0
# Extras up to this size are read and checked whole before writing; bigger ones per episode while writing.
_EAGER_BYTES = 256 << 20


def register_codecs() -> None:
    """Make imagecodecs' numcodecs codecs (imagecodecs_jpeg2k, ...) known to zarr, once."""
    try:
        import imagecodecs.numcodecs
    except ImportError:   # then a Jpeg2k store is refused with one line naming the codec
        return
    imagecodecs.numcodecs.register_codecs(verbose=False)


class _Tree:
    """The zarr v2 hierarchy's metadata files (folder or zip), read without decoding any array."""

    def __init__(self, path: Path):
        self.path = path
        self.zip = None
        self.prefix = ""
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError):
                raise DatasetError(path, None, "not a zarr v2 store (neither a folder nor a zip file)") from None
            names = [n for n in self.zip.namelist() if not n.startswith("__MACOSX/")]
            self._names = set(names)
            roots = sorted({n[: -len("data/.zgroup")] for n in names if n.endswith("data/.zgroup")
                            and n[: -len("data/.zgroup")] + ".zgroup" in self._names})
            if len(roots) > 1:
                raise DatasetError(path, None, f"the zip holds {len(roots)} stores ({', '.join(r.rstrip('/') for r in roots)}); "
                                               "unzip it and import one folder")
            self.prefix = roots[0] if roots else ""

    def open_group(self) -> zarr.Group:
        try:
            if self.zip is not None:
                store = zarr.storage.ZipStore(self.path, mode="r")
                return zarr.open_group(store, mode="r", zarr_format=2, path=self.prefix.rstrip("/") or None)
            return zarr.open_group(str(self.path), mode="r", zarr_format=2)
        except Exception as exc:  # zarr raises several types for "not a group" / "not a zip"
            raise DatasetError(self.path, None, f"not a zarr v2 store ({type(exc).__name__})") from None

    def children(self, group: str) -> tuple[list[str], list[str]]:
        """(arrays, groups) directly under `group`, by their .zarray / .zgroup files."""
        if self.zip is not None:
            base = f"{self.prefix}{group}/"
            found = {n[len(base):].split("/")[0] for n in self._names if n.startswith(base) and n != base}
            arrays = sorted(c for c in found if f"{base}{c}/.zarray" in self._names)
            groups = sorted(c for c in found if f"{base}{c}/.zgroup" in self._names)
            return arrays, groups
        folder = self.path / group
        if not folder.is_dir():
            return [], []
        subs = sorted(d for d in folder.iterdir() if d.is_dir())
        return [d.name for d in subs if (d / ".zarray").is_file()], [d.name for d in subs if (d / ".zgroup").is_file()]

    def zarray(self, key: str) -> dict:
        try:
            if self.zip is not None:
                return json.loads(self.zip.read(f"{self.prefix}{key}/.zarray"))
            return json.loads((self.path / key / ".zarray").read_text())
        except (KeyError, OSError, ValueError):
            return {}

    def why_unreadable(self, key: str, exc: Exception) -> str:
        """One line: which codec is missing, else the error's name."""
        import numcodecs
        meta = self.zarray(key)
        codecs = [c for c in [meta.get("compressor"), *(meta.get("filters") or [])] if isinstance(c, dict)]
        for codec in codecs:
            try:
                numcodecs.get_codec(dict(codec))
            except Exception:  # noqa: BLE001 - UnknownCodecError, or a codec that cannot be built
                hint = " (pip install imagecodecs)" if str(codec.get("id", "")).startswith("imagecodecs_") else ""
                return f"cannot read: its codec {codec.get('id')!r} is not installed{hint}"
        return f"cannot read ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})"


def _read(path, arr, key: str, sl=slice(None)) -> np.ndarray:
    try:
        return np.asarray(arr[sl])
    except Exception as exc:  # e.g. a corrupt chunk
        raise DatasetError(path, key, f"cannot read ({type(exc).__name__}: {exc})".splitlines()[0]) from None


def read_diffusion_policy(path, mapping: ImportMapping) -> Source:
    path = Path(path)
    if not path.exists():
        raise DatasetError(path, None, "no such file or folder")
    register_codecs()
    tree = _Tree(path)
    root = tree.open_group()
    if "data" not in root or not isinstance(root["data"], zarr.Group):
        raise DatasetError(path, "data", "missing group")
    data_names, data_groups = tree.children("data")
    meta_names, meta_groups = tree.children("meta")
    if "episode_ends" not in meta_names:
        raise DatasetError(path, "meta/episode_ends", "missing array")

    arrays, unreadable = {}, {}
    for group, names in (("data", data_names), ("meta", meta_names)):
        for name in names:
            key = f"{group}/{name}"
            try:
                arrays[key] = root[group][name]
            except Exception as exc:  # noqa: BLE001 - unknown codec or broken .zarray: named below
                unreadable[key] = tree.why_unreadable(key, exc)

    def need(key: str, purpose: str):
        if key in unreadable:
            raise DatasetError(path, key, f"{unreadable[key]} (needed for {purpose})")
        if key not in arrays:
            raise DatasetError(path, key, f"missing array (needed for {purpose}; present: {', '.join(data_names)})")
        return arrays[key]

    fates: list[tuple[str, str]] = []
    raw = {t: (f"data/{f.key}", f, need(f"data/{f.key}", t)) for t, f in mapping.lowdim().items()}
    n_rows = raw["agent_pos"][2].shape[0] if raw["agent_pos"][2].ndim else 0
    for target, (key, _, arr) in raw.items():
        if arr.ndim == 0 or arr.shape[0] != n_rows:
            raise DatasetError(path, key, f"has {arr.shape[0] if arr.ndim else 0} rows, "
                                          f"data/{mapping.agent_pos.key} has {n_rows}")
    ends_arr = need("meta/episode_ends", "episode boundaries")
    ends = check_episode_ends(path, "meta/episode_ends", _read(path, ends_arr, "meta/episode_ends"), n_rows)
    fates.append(("meta/episode_ends", f"used: episode boundaries ({len(ends)} episodes)"))
    lowdim = {t: select_columns(path, key, _read(path, arr, key), field, t) for t, (key, field, arr) in raw.items()}
    widths = {f.key: (arr.shape[1] if arr.ndim > 1 else 1) for _, f, arr in raw.values()}
    fates += [(f"data/{k}", fate) for k, fate in lowdim_fates(mapping, widths).items()]
    mapped = {f"data/{f.key}" for f in mapping.lowdim().values()}

    # Cameras: (N, H, W, 3) uint8 arrays; the mapping's image key may also be numbers 0..255 (PushT's img).
    def is_camera(key):
        arr = arrays.get(key)
        return arr is not None and arr.ndim == 4 and arr.shape[-1] == 3 and arr.dtype == np.uint8
    cameras = [k.split("/", 1)[1] for k in sorted(arrays) if k.startswith("data/") and is_camera(k)
               and k not in mapped and k.split("/", 1)[1] not in mapping.drop]
    image_name, image_note, warnings = choose_primary_camera(mapping, cameras, [n for n in data_names])
    image_arr, image_shape, image_key = None, None, None
    if image_name is not None:
        image_key = f"data/{image_name}"
        image_arr = need(image_key, "image")
        image_shape = check_image_shape(path, image_key, image_arr.shape[1:], image_arr.dtype, allow_float=True)
        if image_arr.shape[0] != n_rows:
            raise DatasetError(path, image_key, f"has {image_arr.shape[0]} rows, the low-dim data have {n_rows}")
        _read(path, image_arr, image_key, slice(0, 1))  # fail now, not mid-write, on an unreadable chunk
        if image_arr.dtype != np.uint8:   # numbers that must be whole 0..255: checked whole, in blocks
            step = max(1, (64 << 20) // max(1, int(np.prod(image_shape)) * image_arr.dtype.itemsize))
            for start in range(0, n_rows, step):
                as_image(path, image_key, _read(path, image_arr, image_key, slice(start, start + step)))
        fates.append((image_key, f"-> data/image{image_note}"))

    # Every other array: kept under the extras namespace, or dropped with the reason.
    streams: dict[str, tuple[str, object]] = {}   # store data key -> (source key, array or loaded values)
    for name in data_names:
        key = f"data/{name}"
        if key in mapped or name == image_name:
            continue
        why = mapping.drop_reason(name, key) or unreadable.get(key)
        arr = arrays.get(key)
        if why is None and (arr.ndim == 0 or arr.shape[0] != n_rows):
            why = f"has {arr.shape[0] if arr.ndim else 0} rows, the episodes have {n_rows}"
        if why is None and name in cameras:
            try:
                _read(path, arr, key, slice(0, 1))
                streams[f"image.{store_name(name)}"] = (key, arr)
                fates.append((key, f"-> data/image.{store_name(name)} (camera)"))
                continue
            except DatasetError as exc:
                why = exc.problem
        if why is None and not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.number)):
            why = f"not numeric (dtype {arr.dtype})"
        if why is None:
            if arr.nbytes <= _EAGER_BYTES:
                try:
                    values = _read(path, arr, key)
                    why = check_extra(path, key, values)
                except DatasetError as exc:
                    why = exc.problem
                if why is None:
                    streams[f"extra.{store_name(name)}"] = (key, values)
            else:
                streams[f"extra.{store_name(name)}"] = (key, arr)
        if why is None:
            fates.append((key, f"-> data/extra.{store_name(name)}"))
        else:
            fates.append((key, f"dropped: {why}"))
            if key in unreadable:
                warnings.append(f"{key}: {why}; it is not imported")
    for name in data_groups:
        fates.append((f"data/{name}", "dropped: a group, not an array"))

    episode_meta: dict[str, np.ndarray] = {}
    for name in meta_names:
        key = f"meta/{name}"
        if name == "episode_ends":
            continue
        why = mapping.drop_reason(name, key) or unreadable.get(key)
        arr = arrays.get(key)
        if why is None and (arr.ndim != 1 or arr.shape[0] != len(ends)):
            why = f"not one value per episode (shape {arr.shape}, {len(ends)} episodes)"
        if why is None:
            values = _read(path, arr, key)
            why = check_extra(path, key, values)
        if why is None:
            episode_meta[f"extra.{store_name(name)}"] = values
            fates.append((key, f"-> meta/extra.{store_name(name)}"))
        else:
            fates.append((key, f"dropped: {why}"))
    for name in meta_groups:
        fates.append((f"meta/{name}", "dropped: a group, not an array"))

    warnings += unit_warnings(lowdim)
    rate = mapping.rate_hz or DEFAULT_RATE_HZ
    episodes = []
    start = 0
    for i, end in enumerate(ends):
        sl = slice(start, int(end))
        loader = None
        if image_arr is not None:
            loader = (lambda sl=sl: as_image(path, image_key, _read(path, image_arr, image_key, sl)))
        ep_streams = {}
        for out_key, (key, values) in streams.items():
            if isinstance(values, np.ndarray):
                ep_streams[out_key] = Stream(load=lambda v=values, sl=sl: v[sl])
            else:
                ep_streams[out_key] = Stream(load=lambda a=values, key=key, sl=sl: _checked(path, key, a, sl))
        episodes.append(SourceEpisode(
            index=i, times=np.arange(sl.stop - sl.start) / rate,
            lowdim={t: v[sl] for t, v in lowdim.items()}, load_image=loader, streams=ep_streams,
            meta={k: v[i].item() for k, v in episode_meta.items()},
        ))
        start = int(end)
    info = {"layout": "zip" if tree.zip is not None else "folder"}
    if tree.prefix:
        info["zip_folder"] = tree.prefix.rstrip("/")
    attrs = dict(root.attrs)
    if attrs:
        info["attrs"] = attrs
        fates.append((".zattrs", "kept in attrs generator.source_info.attrs"))
    return Source(path=path, format="diffusion-policy", rate_hz=rate, episodes=episodes, image_shape=image_shape,
                  info=info, fates=fates, warnings=warnings)


def _checked(path, key: str, arr, sl: slice) -> np.ndarray:
    values = _read(path, arr, key, sl)
    why = check_extra(path, key, values)
    if why is not None:
        raise DatasetError(path, key, f"{why} (rows {sl.start}..{sl.stop - 1}); drop it in the mapping")
    return values
