"""Append whole episodes to a store so that an interruption never leaves a half-written episode.

Each `add_episode` writes the data arrays, then the per-episode metadata, then the new entry of
`meta/episode_ends`, which is the commit record (see store.py). Ctrl-C and SIGTERM that arrive during an
append are held back until the episode is committed; a harder crash leaves at most uncommitted steps,
which readers ignore and the next writer cuts off. A new store is created under a temporary name and
renamed into place, so the output path never names a store without its attributes. One writer at a time:
a second writer on the same store (another process, or a second run of a generator) is refused, since two
appenders would interleave their episodes. A generator that passes `resume_free_keys` gets the run-identity
rule (harness.core.identity): reopening a store made with another generator config is refused, naming the
first differing key, before anything in the store is touched.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import zarr

from harness.core.atomic import temporary_sibling
from harness.core.configs import _plain
from harness.core.errors import DatasetError, at_path
from harness.core.identity import check_same_identity
from harness.core.locks import acquire_lock, check_writable
from harness.core.store import DOMAINS, IMAGE_KEY, REQUIRED_DATA, SCHEMA_VERSION, SOURCES, _validate_group, \
    array_names, committed_ends, is_image_key, open_group


@dataclasses.dataclass
class FillSummary:
    """What one session of a resumable generator added to its store: the first lines of every generator's
    summary (a generator's own summary extends it with what it measured)."""
    out: Path
    new_episodes: int
    skipped: int                 # episodes already in the store when this session started
    total_episodes: int

    def lines(self) -> list[str]:
        return [
            f"store      {self.out}",
            f"episodes   {self.new_episodes} new, {self.skipped} already there, {self.total_episodes} in the store",
        ]


LOCK_FILE = ".writer.lock"  # in the store folder; zarr ignores it
MAX_TEXT = 64              # characters of a text value per episode (meta/<key> is a fixed-width array)
# Steps per chunk along time: low-dim arrays are tiny per step; images are ~100 KB per step raw.
LOWDIM_CHUNK = 4096
IMAGE_CHUNK = 1            # one frame a chunk (Blosc lz4), as diffusion_policy's ReplayBuffer: a frame reads alone
_CHUNK_BYTES = 4 << 20


class EpisodeWriter:
    """Append-only writer. Use as a context manager or call `close()`.

    `attrs` (domain, source, env, env_params, generator) are written when the store is created; when
    reopening an existing store they must agree on domain, source and env, else the store belongs to
    another dataset and we refuse to mix them.

    resume_free_keys: None (browser teleop, importers) checks only domain, source and env on reopen. Given
    (a generator's free keys, possibly empty), the store's recorded `attrs.generator` must also equal
    `generator` except under those keys, else a one-line ConfigError names the first differing key. All
    these checks run before the store is locked or modified, so a refused store is left exactly as it was.
    """

    def __init__(self, path, *, domain: str, source: str, env: str, env_params: Mapping,
                 generator: Mapping, extra_attrs: Mapping | None = None,
                 resume_free_keys: Iterable[str] | None = None):
        if domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        self.path = Path(path)
        self._lock = None
        attrs = {
            "schema_version": SCHEMA_VERSION, "domain": domain, "source": source, "env": env,
            "env_params": _plain(dict(env_params)), "generator": _plain(dict(generator)),
            **_plain(dict(extra_attrs or {})),
        }
        if not self.path.exists():
            check_writable(self.path)   # a read-only place: one line now, not a traceback mid-creation
            self._create(attrs)         # (a writer that lost the race to create it goes on as a reopen)
        self._check_then_lock(attrs, resume_free_keys)
        self._root = self._reopen()
        self._ends = self._root["meta/episode_ends"]

    # ---- opening
    def _create(self, attrs: dict) -> None:
        """Build an empty store beside `path` and rename it into place. Two writers creating one store at
        once both build; the rename lets one win, and the other drops its copy and opens the winner's."""
        tmp = temporary_sibling(self.path)
        shutil.rmtree(tmp, ignore_errors=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
            root.attrs.update(attrs)
            root.require_group("data")
            meta = root.require_group("meta")
            # fill_value 0 marks an unwritten slot (see store.committed_ends)
            meta.create_array("episode_ends", shape=(0,), chunks=(LOWDIM_CHUNK,), dtype="int64", fill_value=0)
        except OSError as exc:   # a full disk: no half-made store left beside the output, and the output named
            shutil.rmtree(tmp, ignore_errors=True)
            exc.filename = exc.filename or str(self.path)
            raise
        except BaseException:    # Ctrl-C
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            os.replace(tmp, self.path)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not self.path.is_dir():
                raise

    def _check_then_lock(self, attrs: dict, free_keys: Iterable[str] | None) -> None:
        """Check the store read-only (a refused store is left untouched, not even a lock file added), then
        lock it and check again: only under the lock is it sure that no other writer is half-way through an
        episode. A first check that fails while another writer has the store open is that writer's torn
        state, not a verdict: the lock then answers "busy" (or, once it is free, the second check decides)."""
        lock_file = self.path / LOCK_FILE
        try:
            self._check_reopen(attrs, free_keys)
        except DatasetError:
            if not lock_file.exists():
                raise
        self._lock = _lock_store(self.path)
        try:
            self._check_reopen(attrs, free_keys)
        except BaseException:
            self._lock.close()
            self._lock = None
            raise

    def _check_reopen(self, attrs: dict, free_keys: Iterable[str] | None) -> None:
        """Refuse a store that is invalid or belongs to another dataset (or generator config); reads only."""
        if not self.path.is_dir():
            raise DatasetError(self.path, None, "not a store folder")
        root = open_group(self.path, mode="r")
        summary = _validate_group(root, self.path)   # tolerates a torn last commit and uncommitted steps
        if summary.partial_meta:   # appending would pair our values with the other tool's episodes
            key, n = next(iter(summary.partial_meta.items()))
            raise DatasetError(self.path, f"meta/{key}", f"has values for {n} of {summary.n_episodes} episodes "
                               "(episodes appended by another tool); write new episodes to another store")
        if free_keys is not None:   # first: it names the setting the user changed (e.g. `replay`, not `source`)
            check_same_identity(dict(root.attrs["generator"]), attrs["generator"], free_keys,
                                where=f"{self.path}: attrs.generator")
        for key in ("domain", "source", "env"):
            if root.attrs.get(key) != attrs[key]:
                raise DatasetError(self.path, f"attrs.{key}",
                                   f"existing store has {root.attrs.get(key)!r}, this writer has {attrs[key]!r}")

    def _reopen(self) -> zarr.Group:
        root = zarr.open_group(str(self.path), mode="r+")
        trim_uncommitted(root)
        return root

    @staticmethod
    def _committed(root) -> tuple[int, int]:
        ends = root["meta/episode_ends"]
        n = ends.shape[0]
        return (int(ends[n - 1]) if n else 0), n

    # ---- state
    @property
    def n_episodes(self) -> int:
        return self._ends.shape[0]

    @property
    def n_steps(self) -> int:
        return self._committed(self._root)[0]

    def meta(self, key: str) -> np.ndarray:
        """Committed values of a per-episode metadata array (empty if absent), e.g. seeds for resume."""
        if key not in self._root["meta"]:
            return np.zeros((0,))
        return np.asarray(self._root["meta"][key][: self.n_episodes])

    # ---- appending
    def add_episode(self, data: Mapping[str, np.ndarray], meta: Mapping[str, object] | None = None) -> int:
        """Append one whole episode: data {key: (T, ...)}, meta {key: scalar}. Returns its index."""
        data = {k: np.asarray(v) for k, v in data.items()}
        meta = dict(meta or {})
        self._check(data, meta)
        with _signals_held(), at_path(self.path):   # a full disk names the store
            n_steps, n_eps = self._committed(self._root)
            length = len(next(iter(data.values())))
            for key, value in data.items():
                arr = self._data_array(key, value)
                arr.resize((n_steps + length, *arr.shape[1:]))
                arr[n_steps:] = value
            for key, value in meta.items():
                arr = self._meta_array(key, value)
                arr.resize((n_eps + 1,))
                arr[n_eps] = value
            # The commit: one new end.
            self._ends.resize((n_eps + 1,))
            self._ends[n_eps] = n_steps + length
        return n_eps

    def _check(self, data: dict, meta: dict) -> None:
        missing = [k for k in REQUIRED_DATA if k not in data]
        if missing:
            raise ValueError(f"episode lacks data key {missing[0]!r}")
        lengths = {k: len(v) for k, v in data.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"episode arrays differ in length: {lengths}")
        if next(iter(lengths.values())) == 0:
            raise ValueError("episode is empty")
        for key, shape in REQUIRED_DATA.items():
            if data[key].shape[1:] != shape:
                raise ValueError(f"data {key!r} must be (T, {shape[0]}), got {data[key].shape}")
        for key, value in data.items():
            if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                raise ValueError(f"data {key!r} has NaN or inf")
        existing = set(array_names(self._root["data"]))
        if self.n_episodes and existing != set(data):
            raise ValueError(f"episode keys {sorted(data)} differ from the store's {sorted(existing)}")
        for key, value in meta.items():
            if np.ndim(value) != 0:
                raise ValueError(f"meta {key!r} must be a scalar, got shape {np.shape(value)}")
        existing_meta = set(array_names(self._root["meta"])) - {"episode_ends"}
        if self.n_episodes and existing_meta != set(meta):
            raise ValueError(f"episode meta keys {sorted(meta)} differ from the store's {sorted(existing_meta)}")

    def _data_array(self, key: str, value: np.ndarray):
        group = self._root["data"]
        if key in group:
            return group[key]
        dtype = np.float32 if np.issubdtype(value.dtype, np.floating) and key != IMAGE_KEY else value.dtype
        # Images a frame a chunk; other arrays up to 4096 steps, fewer when a step is big (a kept extra).
        chunk = IMAGE_CHUNK if is_image_key(key) else max(1, min(LOWDIM_CHUNK, _CHUNK_BYTES // max(1, value[0].nbytes)))
        return group.create_array(key, shape=(0, *value.shape[1:]), chunks=(chunk, *value.shape[1:]), dtype=dtype)

    def _meta_array(self, key: str, value):
        group = self._root["meta"]
        if key in group:
            return group[key]
        dtype = np.asarray(value).dtype
        if dtype.kind == "U":
            dtype = np.dtype(f"U{MAX_TEXT}")
        return group.create_array(key, shape=(0,), chunks=(LOWDIM_CHUNK,), dtype=dtype)

    def close(self) -> None:
        """Release the store for other writers (every append is already durable)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _lock_store(path: Path):
    """Hold an exclusive lock on the store until close() or process exit (the OS releases it then)."""
    if not path.is_dir():
        raise DatasetError(path, None, "not a store folder")
    return acquire_lock(path / LOCK_FILE,
                        DatasetError(path, None, "another writer has this store open; wait for it to finish"))


def trim_uncommitted(root) -> dict[str, int]:
    """Cut off what an interrupted append left: a torn episode_ends entry, data steps after the last end,
    metadata values after the last episode. Returns {array: values removed}. Short metadata (episodes
    appended by another tool) is left as it is."""
    removed = {}
    before = root["meta/episode_ends"].shape[0]
    _repair_torn_commit(root)
    if root["meta/episode_ends"].shape[0] != before:
        removed["meta/episode_ends"] = before - root["meta/episode_ends"].shape[0]
    n_steps, n_eps = EpisodeWriter._committed(root)
    for name in array_names(root["data"]):
        arr = root["data"][name]
        if arr.shape[0] > n_steps:
            removed[f"data/{name}"] = arr.shape[0] - n_steps
            arr.resize((n_steps, *arr.shape[1:]))
    for name in array_names(root["meta"]):
        arr = root["meta"][name]
        if name != "episode_ends" and arr.shape[0] > n_eps:
            removed[f"meta/{name}"] = arr.shape[0] - n_eps
            arr.resize((n_eps, *arr.shape[1:]))
    return removed


def repair(path) -> dict[str, int]:
    """`cotrain validate --repair`: trim an uncommitted tail so that every reader (diffusion_policy's
    ReplayBuffer too) accepts the store. Takes the writer lock: a store being written is refused."""
    path = Path(path)
    _validate_group(open_group(path, mode="r"), path)
    lock = _lock_store(path)
    try:
        return trim_uncommitted(zarr.open_group(str(path), mode="r+"))
    finally:
        lock.close()


def _repair_torn_commit(root) -> None:
    """Drop an episode_ends entry whose value was never written (a crash between its two file writes)."""
    ends = root["meta/episode_ends"]
    n = len(committed_ends(np.asarray(ends[:])))
    if n != ends.shape[0]:
        ends.resize((n,))


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT/SIGTERM until the block finishes, then deliver them (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}

    def hold(signum, frame):
        received.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in received:
            if sig == signal.SIGINT:
                raise KeyboardInterrupt
            os.kill(os.getpid(), sig)
