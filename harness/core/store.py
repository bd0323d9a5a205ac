"""The one dataset format: a zarr store in the diffusion_policy ReplayBuffer layout.

    store.zarr/
      .zattrs            schema_version, domain, source, env, env_params, generator
      data/<key>         all episodes concatenated along axis 0: agent_pos (T, 2), slider_pose (T, 3),
                         action (T, 2), optional image (T, H, W, 3) uint8, any extra keys
      meta/episode_ends  int64 (E,), cumulative: episode i is data[ends[i-1]:ends[i]]
      meta/<key>         one value per episode (seed, success, ...)
      data/image.<name>, data/extra.<name>, meta/extra.<name>
                         the extras namespace: more cameras, and arrays / per-episode values an importer
                         kept from its source under their source key (see is_image_key, EXTRA_PREFIX)

`meta/episode_ends` is the commit record: the writer appends data and per-episode metadata first and the
new end last, so steps after `episode_ends[-1]` (left by a killed writer) belong to no episode. Readers
ignore them and the writer cuts them off when it reopens the store.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import zarr

from harness.core.errors import DatasetError

SCHEMA_VERSION = 1
DOMAINS = ("sim", "target", "real")
SOURCES = ("gcs_kinematic", "gcs_physics", "teleop_scripted", "teleop_human", "imported",
           "corrupted")   # corrupted: a corrupt copy of another store (`cotrain corrupt`, real_data/corruption)
REQUIRED_ATTRS = ("schema_version", "domain", "source", "env", "env_params", "generator")
# key -> per-step shape; all are floating point.
REQUIRED_DATA = {"agent_pos": (2,), "slider_pose": (3,), "action": (2,)}
IMAGE_KEY = "image"
EXTRA_PREFIX = "extra."   # data/extra.<source key>, meta/extra.<source key>: kept from an imported source


def is_image_key(key: str) -> bool:
    """`image` (what policies see) or `image.<camera>` (any further camera): (T, H, W, 3) uint8."""
    return key == IMAGE_KEY or key.startswith(IMAGE_KEY + ".")
# Rows scanned at a time for the finite-value check, so a large store is checked in bounded memory.
_SCAN_ROWS = 200_000
# Bounds on what a store's metadata may declare, checked before any data is read (check_declared_sizes):
# a damaged or hostile .zarray saying [1e12, 2] would otherwise make a reader scan for hours.
MAX_STORE_EPISODES = 10_000_000     # meta/episode_ends entries
MAX_STORE_STEPS = 100_000_000       # committed steps (115 days of a 10 Hz robot)
MAX_TAIL_STEPS = 1_000_000          # steps an interrupted append can leave after the last end (one episode)
MAX_STEP_BYTES = 64 << 20           # one step of one array (a 4K RGB frame is 25 MB)


@dataclasses.dataclass
class StoreSummary:
    path: str
    domain: str
    source: str
    env: str
    n_episodes: int
    n_steps: int
    data_shapes: dict[str, tuple]     # key -> per-step shape
    data_dtypes: dict[str, str]
    meta_keys: list[str]
    uncommitted_steps: int            # steps after the last committed episode (interrupted write)
    # meta key -> values present, for per-episode metadata that stops short of n_episodes (episodes
    # appended by another tool, e.g. diffusion_policy's ReplayBuffer.add_episode, which writes no meta)
    partial_meta: dict[str, int] = dataclasses.field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [
            f"store      {self.path}",
            f"domain     {self.domain}   source {self.source}   env {self.env}",
            f"episodes   {self.n_episodes}   steps {self.n_steps}",
        ]
        for key, shape in self.data_shapes.items():
            out.append(f"data/{key:<12} ({self.n_steps}, {', '.join(map(str, shape))})"
                       .replace(", )", ")") + f"  {self.data_dtypes[key]}")
        out.append("meta       " + ", ".join(self.meta_keys))
        if self.uncommitted_steps:
            out.append(f"note       {self.uncommitted_steps} steps after the last episode belong to no "
                       "episode (an interrupted write); readers ignore them, diffusion_policy's ReplayBuffer "
                       "refuses them: `cotrain validate --repair` cuts them off")
        for key, n in self.partial_meta.items():
            out.append(f"note       meta/{key} has values for the first {n} of {self.n_episodes} episodes "
                       "(later ones were appended by another tool); those episodes have no value")
        return out


def open_group(path, mode: str = "r") -> zarr.Group:
    """Open a store folder (or .zarr.zip for reading), turning zarr's errors into a DatasetError."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(path, None, "no such store")
    if path.is_dir():
        check_contained(path)
    try:
        if path.is_file() and path.suffix == ".zip":
            store = zarr.storage.ZipStore(path, mode="r")
            return zarr.open_group(store, mode="r")
        return zarr.open_group(str(path), mode=mode)
    except Exception as exc:  # zarr raises several types for "not a group"
        raise DatasetError(path, None, f"not a zarr group ({type(exc).__name__})") from None


def check_contained(path) -> None:
    """Refuse a store folder holding a symbolic link that leads outside it (or nowhere).

    zarr follows links: a `data/action` linked to another store's array would be read as this store's,
    and a writer appending to this store would grow the other one. Every reader and writer opens a store
    through `open_group`, so this one walk (entries only, no file is read) keeps them all inside. A link
    to a place inside the store is harmless; the store folder itself may be a link (a store on another
    disk)."""
    root = Path(path).resolve()
    folders = [root]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_symlink():
                    target = Path(entry.path).resolve()
                    inside = target == root or root in target.parents
                    if not inside or not target.exists():
                        where = Path(entry.path).relative_to(root)
                        raise DatasetError(path, str(where), f"is a symbolic link to {os.readlink(entry.path)}, "
                                           f"{'which does not exist' if inside else 'outside the store'}; a store "
                                           "must hold its own files (copy them in)")
                elif entry.is_dir(follow_symlinks=False):
                    folders.append(Path(entry.path))


def array_names(group: zarr.Group) -> list[str]:
    """Sorted names of the arrays directly in `group`, read from the store's keys (`<name>/.zarray`, or a
    `zarr.json` of node_type array) without opening any array.

    Why not `group.array_keys()`: zarr opens every member in concurrent asyncio tasks to learn whether it
    is an array. An array whose codec is not installed (a Jpeg2k camera from a real-robot store) fails
    there, and when two do, zarr raises the first and leaves the other's exception unretrieved: asyncio
    then logs "Task exception was never retrieved" with a traceback on stderr, next to our one-line
    message. Listing keys reads no codec, so a broken array fails only where it is opened, alone.
    """
    import json

    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    store, prefix = group.store, group.path.strip("/")

    async def listing() -> list[str]:
        names = []
        async for name in store.list_dir(prefix):
            key = f"{prefix}/{name}" if prefix else name
            if await store.exists(f"{key}/.zarray"):
                names.append(name)
                continue
            meta = await store.get(f"{key}/zarr.json", prototype=default_buffer_prototype())
            try:
                if meta is not None and json.loads(meta.to_bytes()).get("node_type") == "array":
                    names.append(name)
            except (ValueError, AttributeError):   # not JSON, or not an object: not an array's metadata
                pass
        return sorted(names)

    return sync(listing())


def committed_ends(ends: np.ndarray) -> np.ndarray:
    """episode_ends without a torn last entry.

    Growing episode_ends by one is two file writes (the new shape, then the chunk holding the value). A
    writer killed between them leaves a last entry that reads as the fill value 0. Real ends are > 0, so
    a trailing 0 is an unwritten slot: that episode was never committed.
    """
    n = len(ends)
    while n and ends[n - 1] == 0:
        n -= 1
    return ends[:n]


def validate(path) -> StoreSummary:
    """Check a store against the format; raise DatasetError naming the first problem found.

    Unlike a reader's check, this also decodes every chunk of every array (images and metadata too) and
    names every unreadable one (a corrupt or truncated chunk file, an unknown codec) in the one line.
    """
    root = open_group(path)
    check_declared_sizes(root, Path(path))   # before unreadable_chunks walks every declared chunk
    unreadable = unreadable_chunks(root)
    if unreadable:
        shown = ", ".join(unreadable[:10]) + (f" and {len(unreadable) - 10} more" if len(unreadable) > 10 else "")
        raise DatasetError(path, None, f"unreadable chunks: {shown}")
    return _validate_group(root, Path(path))


def check_declared_sizes(root: zarr.Group, path: Path) -> None:
    """Refuse array metadata that declares more than a store can hold, reading no data but meta/episode_ends
    (itself bounded first): episodes and steps past MAX_STORE_*, a step over MAX_STEP_BYTES, a data array
    longer than `episode_ends` allows (an interrupted append leaves at most MAX_TAIL_STEPS), a per-episode
    array longer than the episodes plus one. Every reader and `validate` call this before scanning, so a
    lying shape is one line at once, not a scan of a trillion fill values. An array whose metadata cannot
    be read is left to the checks that name it."""
    if "meta" not in root or "episode_ends" not in root["meta"]:
        return   # the format checks name what is missing
    ends_arr = _array_or_none(root["meta"], "episode_ends")
    if ends_arr is None or ends_arr.ndim != 1:
        return
    if ends_arr.shape[0] > MAX_STORE_EPISODES:
        raise DatasetError(path, "meta/episode_ends", f"declares {ends_arr.shape[0]} episodes, more than "
                           f"{MAX_STORE_EPISODES}; its metadata (.zarray) is damaged")
    ends = committed_ends(np.asarray(ends_arr[:]))
    n_steps, n_episodes = (int(ends[-1]) if len(ends) else 0), len(ends)
    if n_steps > MAX_STORE_STEPS:
        raise DatasetError(path, "meta/episode_ends", f"ends at step {n_steps}, more than {MAX_STORE_STEPS}")
    for group, limit, unit in (("data", n_steps + MAX_TAIL_STEPS, "steps"), ("meta", n_episodes + 1, "values")):
        if group not in root:
            continue
        for name in array_names(root[group]):
            arr = _array_or_none(root[group], name)
            if arr is None or arr.ndim == 0:
                continue
            step_bytes = int(np.prod(arr.shape[1:], dtype=np.float64) * arr.dtype.itemsize)
            if step_bytes > MAX_STEP_BYTES:
                raise DatasetError(path, f"{group}/{name}", f"declares {step_bytes} bytes per step "
                                   f"{tuple(arr.shape[1:])}, more than {MAX_STEP_BYTES}")
            if arr.shape[0] > limit and name != "episode_ends":
                raise DatasetError(path, f"{group}/{name}", f"declares {arr.shape[0]} {unit}, but "
                                   f"meta/episode_ends allows at most {limit} ({n_episodes} episodes, {n_steps} "
                                   "steps); its metadata (.zarray) is damaged")


def _array_or_none(group: zarr.Group, name: str):
    try:
        return group[name]
    except Exception:  # noqa: BLE001 - unreadable metadata: unreadable_chunks / the format check name it
        return None


def unreadable_chunks(root: zarr.Group) -> list[str]:
    """'key[start:stop] (error)' for every chunk of every data/ and meta/ array that cannot be decoded."""
    bad = []
    for group in ("data", "meta"):
        for name in array_names(root[group]) if group in root else []:
            key = f"{group}/{name}"
            try:
                arr = root[group][name]
            except Exception as exc:  # noqa: BLE001 - unreadable array metadata (.zarray)
                bad.append(f"{key} metadata ({_why(exc)})")
                continue
            step = arr.chunks[0] if arr.ndim else 1
            for start in range(0, arr.shape[0] if arr.ndim else 1, max(step, 1)):
                try:
                    arr[start:start + step] if arr.ndim else arr[...]
                except Exception as exc:  # noqa: BLE001 - any decode error of this chunk
                    bad.append(f"{key}[{start}:{min(start + step, arr.shape[0])}] ({type(exc).__name__})")
    return bad


def _why(exc: Exception) -> str:
    """An array's metadata error in a few words; a missing codec by its id (numcodecs quotes it twice)."""
    codec = getattr(exc, "codec_id", None)
    if codec is not None:
        name = str(codec).strip("'")
        return f"its codec {name!r} is not available"
    return type(exc).__name__


def _validate_group(root: zarr.Group, path: Path) -> StoreSummary:
    """The format check every reader makes; a chunk or array that cannot be decoded is a DatasetError."""
    try:
        return _check_group(root, path)
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt chunk or metadata: one line, `cotrain validate` lists all
        raise DatasetError(path, None, f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:100]}); "
                           "run `cotrain validate` to list every unreadable chunk") from None


def _check_group(root: zarr.Group, path: Path) -> StoreSummary:
    check_declared_sizes(root, path)
    attrs = dict(root.attrs)
    for key in REQUIRED_ATTRS:
        if key not in attrs:
            raise DatasetError(path, f"attrs.{key}", "missing root attribute")
    if attrs["schema_version"] != SCHEMA_VERSION:
        raise DatasetError(path, "attrs.schema_version",
                           f"unsupported version {attrs['schema_version']!r} (this reader knows {SCHEMA_VERSION})")
    if attrs["domain"] not in DOMAINS:
        raise DatasetError(path, "attrs.domain", f"must be one of {list(DOMAINS)}, got {attrs['domain']!r}")
    if attrs["source"] not in SOURCES:
        raise DatasetError(path, "attrs.source", f"must be one of {list(SOURCES)}, got {attrs['source']!r}")
    if not isinstance(attrs["env"], str):
        raise DatasetError(path, "attrs.env", "must be the name of the env preset")
    for key in ("env_params", "generator"):
        if not isinstance(attrs[key], dict):
            raise DatasetError(path, f"attrs.{key}", "must be a mapping")

    for group in ("data", "meta"):
        if group not in root or not isinstance(root[group], zarr.Group):
            raise DatasetError(path, group, "missing group")
    if "episode_ends" not in root["meta"]:
        raise DatasetError(path, "meta/episode_ends", "missing array")
    ends_arr = root["meta/episode_ends"]
    if ends_arr.ndim != 1 or ends_arr.dtype != np.int64:
        raise DatasetError(path, "meta/episode_ends", f"must be 1-D int64, got {ends_arr.dtype} {ends_arr.shape}")
    ends = committed_ends(np.asarray(ends_arr[:]))
    n_episodes = len(ends)
    if n_episodes and ends[0] <= 0:
        raise DatasetError(path, "meta/episode_ends", "first episode is empty (episode_ends[0] <= 0)")
    if n_episodes > 1:
        bad = np.flatnonzero(np.diff(ends) <= 0)
        if len(bad):
            i = int(bad[0]) + 1
            raise DatasetError(path, "meta/episode_ends",
                               f"not strictly increasing at episode {i} ({ends[i - 1]} -> {ends[i]})")
    n_steps = int(ends[-1]) if n_episodes else 0

    data = root["data"]
    keys = array_names(data)
    shapes, dtypes, uncommitted = {}, {}, 0
    for key, shape in REQUIRED_DATA.items():
        # A store with no episode yet (a writer stopped before its first commit) has no arrays: still valid.
        if key not in keys and (n_episodes or keys):
            raise DatasetError(path, f"data/{key}", "missing array")
    for key in keys:
        arr = data[key]
        name = f"data/{key}"
        if arr.ndim < 1:
            raise DatasetError(path, name, "must have a time axis")
        if arr.shape[0] < n_steps:
            raise DatasetError(path, name, f"has {arr.shape[0]} steps but meta/episode_ends ends at {n_steps}")
        uncommitted = max(uncommitted, arr.shape[0] - n_steps)
        step_shape = tuple(arr.shape[1:])
        if key in REQUIRED_DATA:
            if step_shape != REQUIRED_DATA[key]:
                raise DatasetError(path, name, f"per-step shape must be {REQUIRED_DATA[key]}, got {step_shape}")
            if not np.issubdtype(arr.dtype, np.floating):
                raise DatasetError(path, name, f"must be floating point, got {arr.dtype}")
        if is_image_key(key):
            if len(step_shape) != 3 or step_shape[2] != 3:
                raise DatasetError(path, name, f"per-step shape must be (H, W, 3), got {step_shape}")
            if arr.dtype != np.uint8:
                raise DatasetError(path, name, f"must be uint8, got {arr.dtype}")
        if np.issubdtype(arr.dtype, np.floating):
            for start in range(0, n_steps, _SCAN_ROWS):
                block = np.asarray(arr[start:min(n_steps, start + _SCAN_ROWS)])
                finite = np.isfinite(block.reshape(len(block), -1)).all(axis=1)
                if not finite.all():
                    step = start + int(np.flatnonzero(~finite)[0])
                    episode = int(np.searchsorted(ends, step, side="right"))
                    raise DatasetError(path, name, f"NaN or inf at step {step} (episode {episode})")
        shapes[key], dtypes[key] = step_shape, str(arr.dtype)

    meta_keys = array_names(root["meta"])
    partial = {}
    for key in meta_keys:
        arr = root["meta"][key]
        if arr.ndim < 1:
            raise DatasetError(path, f"meta/{key}", "must have one value per episode, got a scalar")
        if key == "success":
            _check_success(arr, path, n_episodes)
        if arr.shape[0] < n_episodes and key != "episode_ends":
            # Optional metadata that episodes appended by another tool (diffusion_policy's add_episode
            # writes data and episode_ends only) do not have: reported, readers ask for it with `missing`.
            partial[key] = int(arr.shape[0])

    return StoreSummary(
        path=str(path), domain=attrs["domain"], source=attrs["source"], env=attrs["env"],
        n_episodes=n_episodes, n_steps=n_steps, data_shapes=shapes, data_dtypes=dtypes,
        meta_keys=meta_keys, uncommitted_steps=uncommitted, partial_meta=partial,
    )


def _check_success(arr, path: Path, n_episodes: int) -> None:
    """meta/success decides which episodes train (the success filter) and what `info` counts: true / false,
    or the integers 1 / 0 that other tools write. Floats and text would be read as truthy numbers or fail
    late, so they are refused here."""
    if arr.dtype == np.bool_:
        return
    if not np.issubdtype(arr.dtype, np.integer):
        raise DatasetError(path, "meta/success", f"must be true/false (bool, or integers 0/1), got {arr.dtype}")
    values = np.asarray(arr[:n_episodes])
    if not np.isin(values, (0, 1)).all():
        raise DatasetError(path, "meta/success", f"must be 0 or 1, got {values[~np.isin(values, (0, 1))][0]}")


class EpisodeStore:
    """Read side of a validated store. Lazy by default; `in_memory=True` loads every array once."""

    def __init__(self, path, in_memory: bool = False):
        self.path = Path(path)
        self._root = open_group(self.path)
        self.summary = _validate_group(self._root, self.path)
        self.attrs = dict(self._root.attrs)
        self.episode_ends = committed_ends(np.asarray(self._root["meta/episode_ends"][:]))
        self._data = {k: self._root["data"][k] for k in self.summary.data_shapes}
        if in_memory:
            self._data = {k: np.asarray(a[: self.n_steps]) for k, a in self._data.items()}

    # ---- shape of the store
    @property
    def n_episodes(self) -> int:
        return self.summary.n_episodes

    @property
    def n_steps(self) -> int:
        return self.summary.n_steps

    @property
    def domain(self) -> str:
        return self.summary.domain

    @property
    def source(self) -> str:
        return self.summary.source

    @property
    def data_keys(self) -> list[str]:
        return list(self._data)

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(np.concatenate([[0], self.episode_ends]))

    # ---- contents
    def episode_slice(self, i: int) -> slice:
        if not 0 <= i < self.n_episodes:
            raise IndexError(f"episode {i} out of range (store has {self.n_episodes})")
        start = int(self.episode_ends[i - 1]) if i > 0 else 0
        return slice(start, int(self.episode_ends[i]))

    def episode(self, i: int, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """All steps of episode i: {key: (T, ...)}."""
        sl = self.episode_slice(i)
        return {k: self._read(k, sl) for k in (keys or self.data_keys)}

    def episodes(self, keys: Iterable[str] | None = None):
        for i in range(self.n_episodes):
            yield self.episode(i, keys)

    def data(self, key: str, stop: int | None = None) -> np.ndarray:
        """Committed steps [0, stop) of one key (default: all), (N, ...), loaded into memory."""
        stop = self.n_steps if stop is None else min(stop, self.n_steps)
        return self._read(key, slice(0, stop))

    def _read(self, key: str, steps: slice) -> np.ndarray:
        try:
            return np.asarray(self._data[key][steps])
        except Exception as exc:  # noqa: BLE001 - e.g. a corrupt image chunk (images are not scanned on open)
            raise DatasetError(self.path, f"data/{key}", f"unreadable ({type(exc).__name__}); run `cotrain "
                               "validate` to list every unreadable chunk") from None

    def meta(self, key: str, missing=None) -> np.ndarray:
        """One value per episode, (E,).

        Episodes appended by another tool may have no value (summary.partial_meta): they get `missing` if
        given, else a DatasetError names the key, so no reader pairs values with the wrong episodes.
        """
        if key not in self._root["meta"]:
            raise KeyError(f"{self.path}: meta/{key} not present")
        values = np.asarray(self._root["meta"][key][: self.n_episodes])
        if len(values) < self.n_episodes:
            if missing is None:
                raise DatasetError(self.path, f"meta/{key}", f"has values for {len(values)} of {self.n_episodes} "
                                   "episodes (later ones were appended by another tool)")
            fill = np.full((self.n_episodes - len(values), *values.shape[1:]), missing, dtype=values.dtype)
            values = np.concatenate([values, fill])
        return values

    @property
    def meta_keys(self) -> list[str]:
        return [k for k in self.summary.meta_keys if k != "episode_ends"]
