"""Export a dataset store as a LeRobot v3.0 dataset, without the lerobot package (pyarrow + imageio).

    OUT/
      meta/info.json                            codebase_version v3.0, fps, features, path templates, totals
      meta/stats.json                           per feature: min, max, mean, std, count, q01..q99
      meta/tasks.parquet                        task_index, task (read by pandas with the task as index)
      meta/episodes/chunk-000/file-000.parquet  per episode: episode_index, tasks, length, data/chunk_index,
                                                data/file_index, dataset_from_index, dataset_to_index,
                                                videos/<key>/{chunk_index, file_index, from_timestamp,
                                                to_timestamp}, meta/episodes/*, stats/<feature>/<stat>,
                                                and the store's per-episode metadata
      meta/cotrain_export.json                  what was exported (this output's identity; cotrain's file)
      meta/cotrain_origin.json                  the store's domain, source, env and generator (cotrain's file),
                                                so that sim data imported back stays sim data
      data/chunk-000/file-000.parquet           one row per frame (a new file past DATA_FILE_MB)
      videos/<key>/chunk-000/file-000.mp4       images as video (h264, yuv420p; a new file past VIDEO_FILE_MB),
                                                or, with images="png", PNG bytes in the frame parquet

Store key -> LeRobot feature (the LeRobot importer's defaults, so export then import gives the same arrays):
    agent_pos -> observation.state [x, y]; slider_pose -> observation.environment_state [x, y, theta];
    action -> action [x, y]; image -> observation.image; image.<name> -> observation.images.<name>; extra.<name> -> <name>;
    meta/<key>, meta/extra.<key> -> episode column <key>. A per-step shape () or (1,) is a scalar column
    (LeRobot's shape [1]); it imports back as (T,). Frames are at the store's 10 Hz: timestamp =
    frame_index / fps as float32, as LeRobot writes it. Tasks: the store's imported task texts
    (data/extra.task_index with attrs generator.source_info.tasks), else one task for every frame.

The output is built under a temporary name and renamed into place: an interruption leaves no output, and
an existing --out is refused unless it is an export of the same store with the same settings (then
there is nothing to do).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.core.atomic import atomic_path
from harness.core.errors import UserError
from harness.core.identity import check_same_identity, read_identity, write_identity
from harness.core.store import EXTRA_PREFIX, IMAGE_KEY, EpisodeStore, is_image_key
from sim_envs.geometry import TASK

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000          # files per chunk folder
DATA_FILE_MB = 100          # a frame parquet file is closed once it holds this much (uncompressed)
VIDEO_FILE_MB = 500         # a video file is closed once it is this big
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
RECORD = "meta/cotrain_export.json"
ORIGIN = "meta/cotrain_origin.json"   # the store's domain, source, env and generator: `cotrain import` restores them
DEFAULT_TASK = "Push the T-shaped block onto the goal pose."
CORE = {"agent_pos": ("observation.state", ["x", "y"]),
        "slider_pose": ("observation.environment_state", ["x", "y", "theta"]),
        "action": ("action", ["x", "y"])}
IMAGE_FEATURE = "observation.image"
CAMERA_PREFIX = "observation.images."   # a further camera image.<name> -> observation.images.<name>
DEFAULT_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
                    "task_index": "int64"}
EPISODE_COLUMNS = ("episode_index", "tasks", "length", "dataset_from_index", "dataset_to_index")
EPISODE_PREFIXES = ("data/", "videos/", "meta/episodes/", "stats/")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
IMAGE_MODES = ("video", "png")
_EXACT_STATS_MAX = 64   # features with at most this many values per step get exact quantiles


@dataclasses.dataclass
class _Feature:
    key: str                 # store data key
    name: str                # LeRobot feature name
    dtype: str               # LeRobot dtype: float32, int64, bool, video, image
    shape: list[int]
    names: list | None

    @property
    def camera(self) -> bool:
        return self.dtype in ("video", "image")

    def info(self, fps: int) -> dict:
        out = {"dtype": self.dtype, "shape": self.shape, "names": self.names}
        if self.dtype == "video":
            out["info"] = {"video.height": self.shape[0], "video.width": self.shape[1], "video.codec": "h264",
                           "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                           "video.channels": 3, "has_audio": False}
        return out


@dataclasses.dataclass
class ExportSummary:
    out: Path
    store: Path
    n_episodes: int
    n_frames: int
    images: str
    features: list[tuple[str, str]]      # (store key, where it went)
    skipped: bool = False

    def lines(self) -> list[str]:
        if self.skipped:
            return [f"{self.out}: already an export of {self.store} with these settings; nothing to do"]
        out = [f"exported {self.n_episodes} episodes ({self.n_frames} frames at {_fps():g} fps, images as "
               f"{self.images}) from {self.store} to {self.out} (LeRobot {CODEBASE_VERSION})"]
        width = max([len(k) for k, _ in self.features] + [10])
        out += [f"  {key:<{width}}  {'' if where.startswith('not exported') else '-> '}{where}"
                for key, where in self.features]
        return out


def _fps() -> int:
    return int(round(1.0 / TASK.control_dt))


def export_lerobot(store_path, out, images: str = "video", task: str | None = None, progress=None,
                   data_file_mb: float = DATA_FILE_MB, video_file_mb: float = VIDEO_FILE_MB) -> ExportSummary:
    """Write the store at `store_path` as a LeRobot v3.0 dataset folder `out` (atomically)."""
    if images not in IMAGE_MODES:
        raise UserError(f"--images must be one of {', '.join(IMAGE_MODES)}, got {images!r}")
    store_path, out = Path(store_path), Path(out)
    store = EpisodeStore(store_path)
    if store.n_episodes == 0:
        raise UserError(f"{store_path}: the store has no episodes; nothing to export")
    identity = {"format": "lerobot", "codebase_version": CODEBASE_VERSION, "store": str(store_path.resolve()),
                "store_episodes": store.n_episodes, "store_steps": store.n_steps,
                "store_attrs_sha256": hashlib.sha256(json.dumps(store.attrs, sort_keys=True, default=str)
                                                     .encode()).hexdigest(),
                "images": images, "task": task}
    if _claimed(out, identity):
        return ExportSummary(out, store_path, store.n_episodes, store.n_steps, images, [], skipped=True)

    fps = _fps()
    texts, task_values = _tasks(store, task)
    features = _plan(store, images, exclude={"extra.task_index"} if task_values is not None else set())
    for f in features:
        if f.dtype == "video" and (f.shape[0] % 2 or f.shape[1] % 2):
            raise UserError(f"{store_path}: data/{f.key}: h264 video needs an even height and width, got "
                            f"{f.shape[0]}x{f.shape[1]}; export with --images png")
    meta_columns, skipped = _meta_columns(store)

    bar = progress(total=store.n_episodes, desc="export", unit="ep") if progress else None
    try:
        with atomic_path(out) as tmp:
            tmp.mkdir(parents=True)
            data_files = _DataFiles(tmp, data_file_mb, _hf_features(features))
            videos = {f.name: _VideoFiles(tmp, f.name, fps, video_file_mb) for f in features if f.dtype == "video"}
            stats = {f.name: _Stats(image=f.camera) for f in features}
            stats.update({name: _Stats(image=False) for name in DEFAULT_FEATURES})
            episode_rows, index = [], 0
            for ep in range(store.n_episodes):
                data = store.episode(ep, [f.key for f in features])
                n = len(data[features[0].key])
                frame_index = np.arange(n, dtype=np.int64)
                tindex = (np.asarray(task_values[store.episode_slice(ep)], dtype=np.int64)
                          if task_values is not None else np.zeros(n, np.int64))
                columns = {f.name: _column(data[f.key], f, images) for f in features if f.dtype != "video"}
                defaults = {"timestamp": (frame_index / fps).astype(np.float32), "frame_index": frame_index,
                            "episode_index": np.full(n, ep, np.int64),
                            "index": np.arange(index, index + n, dtype=np.int64), "task_index": tindex}
                columns.update({k: pa.array(v) for k, v in defaults.items()})
                chunk, file = data_files.add(pa.table(columns))
                row = {"episode_index": ep, "tasks": sorted({texts[int(i)] for i in np.unique(tindex)}),
                       "length": n, "data/chunk_index": chunk, "data/file_index": file,
                       "dataset_from_index": index, "dataset_to_index": index + n}
                for f in features:
                    if f.dtype == "video":
                        vchunk, vfile, start, stop = videos[f.name].add(data[f.key])
                        row.update({f"videos/{f.name}/chunk_index": vchunk, f"videos/{f.name}/file_index": vfile,
                                    f"videos/{f.name}/from_timestamp": start,
                                    f"videos/{f.name}/to_timestamp": stop})
                row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
                episode_stats = {f.name: stats[f.name].add(data[f.key]) for f in features}
                episode_stats.update({k: stats[k].add(v) for k, v in defaults.items()})
                for name, st in episode_stats.items():
                    row.update({f"stats/{name}/{k}": v for k, v in st.items()})
                row.update({column: (values[ep].item() if ep < len(values) else None)
                            for column, (_, values) in meta_columns.items()})
                episode_rows.append(row)
                index += n
                if bar:
                    bar.update(1)
            for v in videos.values():
                v.close()
            shutil.rmtree(tmp / ".segments", ignore_errors=True)
            data_files.flush()
            _write_parquet(tmp / EPISODES_PATH.format(chunk_index=0, file_index=0), pa.Table.from_pylist(episode_rows))
            _write_tasks(tmp / "meta" / "tasks.parquet", texts)
            info = _info(store, features, fps, index, len(texts), any(f.dtype == "video" for f in features))
            (tmp / "meta" / "info.json").write_text(json.dumps(info, indent=4) + "\n")
            all_stats = {name: st.result() for name, st in stats.items()}
            (tmp / "meta" / "stats.json").write_text(json.dumps(all_stats, indent=4) + "\n")
            origin = {k: store.attrs.get(k) for k in ("domain", "source", "env", "env_params", "generator")}
            (tmp / ORIGIN).write_text(json.dumps(origin, indent=2, default=str) + "\n")
            write_identity(tmp / RECORD, identity)
    finally:
        if bar:
            bar.close()
    where = [(f"data/{f.key}", f"{f.name} ({f.dtype}{', in the frame parquet' if f.dtype == 'image' else ''})")
             for f in features]
    where += [(f"meta/{key}", f"meta/episodes: {column}") for column, (key, _) in meta_columns.items()]
    where += skipped
    if task_values is not None:
        where.append(("data/extra.task_index", f"task_index, with {len(texts)} task texts in meta/tasks.parquet"))
    return ExportSummary(out, store_path, store.n_episodes, index, images, where)


def _claimed(out: Path, identity: dict) -> bool:
    """True if `out` is already this export; refuse any other existing, non-empty output."""
    record = out / RECORD
    if record.is_file():
        check_same_identity(read_identity(record), identity, (), record)
        return True
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: exists and holds no {RECORD}, so it is not an export made by cotrain; "
                        "choose another --out")
    return False


def _tasks(store: EpisodeStore, task: str | None) -> tuple[list[str], np.ndarray | None]:
    """(task texts by task_index, per-step task_index or None for "task 0 everywhere")."""
    info = store.attrs.get("generator", {}).get("source_info", {}) if isinstance(store.attrs.get("generator"), dict) else {}
    recorded = info.get("tasks") if isinstance(info, dict) else None
    if task is None and isinstance(recorded, dict) and recorded and "extra.task_index" in store.data_keys:
        values = store.data("extra.task_index")
        if np.issubdtype(values.dtype, np.integer) and values.ndim == 1:
            n = max(int(values.max(initial=0)) + 1, max(int(k) for k in recorded) + 1)
            texts = [recorded.get(str(i), f"task {i}") for i in range(n)]
            return texts, values
    return [task or DEFAULT_TASK], None


def _plan(store: EpisodeStore, images: str, exclude: set[str]) -> list[_Feature]:
    info = store.attrs.get("generator", {}).get("source_info", {}) if isinstance(store.attrs.get("generator"), dict) else {}
    source_features = info.get("features", {}) if isinstance(info, dict) else {}
    shapes, dtypes = store.summary.data_shapes, store.summary.data_dtypes
    features, taken = [], set(DEFAULT_FEATURES)
    for key in sorted(shapes, key=lambda k: (k not in CORE, k != IMAGE_KEY, k)):
        if key in exclude:
            continue
        shape = list(shapes[key])
        if key in CORE:
            name, names = CORE[key]
        elif key == IMAGE_KEY:
            name, names = IMAGE_FEATURE, ["height", "width", "channels"]
        else:
            name = f"{CAMERA_PREFIX}{key[len(IMAGE_KEY) + 1:]}" if is_image_key(key) else \
                key[len(EXTRA_PREFIX):] if key.startswith(EXTRA_PREFIX) else key
            if name in taken or name in {c[0] for c in CORE.values()} | {IMAGE_FEATURE} or "/" in name or not name:
                name = key
            names = ["height", "width", "channels"] if is_image_key(key) else None
            recorded = source_features.get(name) if isinstance(source_features, dict) else None
            if not is_image_key(key) and isinstance(recorded, dict) and list(recorded.get("shape") or []) == \
                    (shape or [1]):
                names = recorded.get("names")
        taken.add(name)
        if is_image_key(key):
            dtype = "video" if images == "video" else "image"
        else:
            dtype = dtypes[key]
            if shape in ([], [1]):
                shape = [1]
        features.append(_Feature(key, name, dtype, shape, names))
    return features


def _meta_columns(store: EpisodeStore) -> tuple[dict[str, tuple[str, np.ndarray]], list[tuple[str, str]]]:
    """(episode column -> (store meta key, values; shorter for episodes appended by another tool)),
    and the meta keys not exported with the reason."""
    out, skipped = {}, []
    for key in store.meta_keys:
        n = store.summary.partial_meta.get(key, store.n_episodes)
        values = store.meta(key, missing=0)[:n]
        if values.ndim != 1 or not (values.dtype == np.bool_ or np.issubdtype(values.dtype, np.number)
                                    or values.dtype.kind == "U"):
            skipped.append((f"meta/{key}", f"not exported: not one number or text per episode (shape "
                                           f"{values.shape[1:]}, dtype {values.dtype})"))
            continue
        column = key[len(EXTRA_PREFIX):] if key.startswith(EXTRA_PREFIX) else key
        if column in EPISODE_COLUMNS or column.startswith(EPISODE_PREFIXES) or column in out:
            column = f"cotrain.{key}"
        out[column] = (key, values)
    return out, skipped


def _column(values: np.ndarray, feature: _Feature, images: str) -> pa.Array:
    if feature.dtype == "image":
        import imageio.v3 as iio
        return pa.array([{"bytes": iio.imwrite("<bytes>", frame, extension=".png"), "path": None} for frame in values],
                        type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    if values.ndim == 1 or values.shape[1:] == (1,):
        return pa.array(values.reshape(len(values)))
    flat = pa.array(values.reshape(-1))
    for d in reversed(values.shape[1:]):
        flat = pa.FixedSizeListArray.from_arrays(flat, d)
    return flat


def _hf_features(features: list[_Feature]) -> dict:
    """The frame columns' Hugging Face `datasets` features, as LeRobot declares them: an image column is
    `Image`, a scalar `Value`, a vector a `Sequence` of fixed length. Columns of more dimensions are left
    out (HF's ArrayND has its own storage type; `datasets` reads our nested lists as they are).

    Written into each frame parquet's schema metadata under "huggingface" (`_DataFiles.flush`), which is
    where `datasets.load_dataset("parquet", ...)` looks: without it a PNG column reads as a
    {"bytes", "path"} dict rather than an image."""
    out = {}
    for f in features:
        if f.dtype == "image":
            out[f.name] = {"_type": "Image"}
        elif f.shape == [1]:
            out[f.name] = {"dtype": f.dtype, "_type": "Value"}
        elif len(f.shape) == 1 and f.dtype != "video":
            out[f.name] = {"feature": {"dtype": f.dtype, "_type": "Value"}, "length": f.shape[0], "_type": "Sequence"}
    out.update({name: {"dtype": dtype, "_type": "Value"} for name, dtype in DEFAULT_FEATURES.items()})
    return out


class _DataFiles:
    """Frame tables into data/chunk-*/file-*.parquet; a file is closed once it holds `mb` megabytes. Each
    file's schema carries `hf_features` (see _hf_features)."""

    def __init__(self, root: Path, mb: float, hf_features: dict):
        self.root, self.limit = root, mb * (1 << 20)
        self.metadata = {b"huggingface": json.dumps({"info": {"features": hf_features}}).encode()}
        self.chunk, self.file, self.tables, self.size = 0, 0, [], 0

    def add(self, table: pa.Table) -> tuple[int, int]:
        if self.tables and self.size >= self.limit:
            self.flush()
            self.file += 1
            if self.file == CHUNKS_SIZE:
                self.chunk, self.file = self.chunk + 1, 0
        self.tables.append(table)
        self.size += table.nbytes
        return self.chunk, self.file

    def flush(self) -> None:
        if self.tables:
            table = pa.concat_tables(self.tables)
            _write_parquet(self.root / DATA_PATH.format(chunk_index=self.chunk, file_index=self.file),
                           table.replace_schema_metadata({**(table.schema.metadata or {}), **self.metadata}))
            self.tables, self.size = [], 0


class _VideoFiles:
    """One camera's frames into videos/<key>/chunk-*/file-*.mp4, many episodes per file.

    As LeRobot does, each episode is encoded on its own (a closed file, so its size is known exactly) and
    a file's episodes are joined without re-encoding (ffmpeg's concat demuxer) when the file is full."""

    def __init__(self, root: Path, key: str, fps: int, mb: float):
        self.root, self.key, self.fps, self.limit = root, key, fps, mb * (1 << 20)
        self.chunk, self.file, self.segments, self.size, self.frames = 0, 0, [], 0, 0
        self.scratch = root / ".segments" / key

    def add(self, frames: np.ndarray) -> tuple[int, int, float, float]:
        if self.segments and self.size >= self.limit:
            self.close()
            self.file += 1
            if self.file == CHUNKS_SIZE:
                self.chunk, self.file = self.chunk + 1, 0
        import imageio.v2 as iio
        self.scratch.mkdir(parents=True, exist_ok=True)
        segment = self.scratch / f"{len(self.segments):06d}.mp4"
        with iio.get_writer(str(segment), "ffmpeg", fps=self.fps, codec="libx264", pixelformat="yuv420p",
                            macro_block_size=1, output_params=["-g", "2", "-crf", "18"],
                            ffmpeg_log_level="error") as writer:
            for frame in frames:
                writer.append_data(frame)
        start = self.frames / self.fps
        self.segments.append(segment)
        self.size += segment.stat().st_size
        self.frames += len(frames)
        return self.chunk, self.file, start, self.frames / self.fps

    def close(self) -> None:
        """Join the current file's episodes into its mp4."""
        if not self.segments:
            return
        out = self.root / VIDEO_PATH.format(video_key=self.key, chunk_index=self.chunk, file_index=self.file)
        out.parent.mkdir(parents=True, exist_ok=True)
        if len(self.segments) == 1:
            os.replace(self.segments[0], out)
        else:
            import subprocess

            import imageio_ffmpeg
            listing = self.scratch / "segments.txt"
            listing.write_text("".join(f"file '{p.name}'\n" for p in self.segments))
            run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "concat", "-safe", "0",
                                  "-i", str(listing), "-c", "copy", str(out)], capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError(f"ffmpeg could not join the episodes of {out}: {run.stderr.strip()[:300]}")
            for p in [*self.segments, listing]:
                p.unlink()
        self.segments, self.size, self.frames = [], 0, 0


class _Stats:
    """LeRobot's statistics: per episode, and over the dataset (min, max, mean, std, count, quantiles).

    Low-dim features over axis 0 (a scalar feature keeps shape (1,)); images per channel, shape (3, 1, 1),
    in [0, 1], from up to 100 evenly spaced frames per episode, as LeRobot computes them. An image's
    dataset quantiles are the frame-count-weighted mean of its episodes' quantiles."""

    def __init__(self, image: bool):
        self.image = image
        self.parts: list[dict] = []
        self.values: list[np.ndarray] = []

    def add(self, values: np.ndarray) -> dict:
        values = np.asarray(values)
        if self.image:
            idx = np.unique(np.round(np.linspace(0, len(values) - 1, min(len(values), 100))).astype(int))
            x = values[idx].astype(np.float64).transpose(0, 3, 1, 2) / 255.0        # (n, 3, H, W)
            st = {"min": x.min(axis=(0, 2, 3), keepdims=True)[0], "max": x.max(axis=(0, 2, 3), keepdims=True)[0],
                  "mean": x.mean(axis=(0, 2, 3), keepdims=True)[0], "std": x.std(axis=(0, 2, 3), keepdims=True)[0],
                  "count": np.array([len(values)])}
            for name, q in QUANTILES.items():   # per channel, over the sampled frames' pixels
                st[name] = np.quantile(x, q, axis=(0, 2, 3), keepdims=True)[0]
        else:
            x = values.astype(np.float64).reshape(len(values), -1) if values.ndim > 1 else \
                values.astype(np.float64)[:, None]
            shape = values.shape[1:] if values.ndim > 1 and values.shape[1:] != (1,) else (1,)
            st = {"min": x.min(axis=0), "max": x.max(axis=0), "mean": x.mean(axis=0), "std": x.std(axis=0)}
            st = {k: v.reshape(shape) for k, v in st.items()}
            st["count"] = np.array([len(values)])
            for name, q in QUANTILES.items():
                st[name] = np.quantile(x, q, axis=0).reshape(shape)
            if x.shape[1] <= _EXACT_STATS_MAX:
                self.values.append(x)
        self.parts.append(st)
        return {k: v.tolist() for k, v in st.items()}

    def result(self) -> dict:
        counts = np.array([p["count"][0] for p in self.parts], dtype=np.float64)
        total = counts.sum()
        shape = (-1,) + (1,) * (self.parts[0]["mean"].ndim)
        means = np.stack([p["mean"] for p in self.parts])
        mean = (means * counts.reshape(shape)).sum(axis=0) / total
        var = ((np.stack([p["std"] for p in self.parts]) ** 2 + (means - mean) ** 2) * counts.reshape(shape)).sum(axis=0) / total
        out = {"min": np.min([p["min"] for p in self.parts], axis=0), "max": np.max([p["max"] for p in self.parts], axis=0),
               "mean": mean, "std": np.sqrt(var), "count": np.array([int(total)])}
        if self.image:   # exact quantiles would need every frame: the frame-count-weighted mean of the episodes'
            weights = counts.reshape(shape) / total
            for name in QUANTILES:
                out[name] = (np.stack([p[name] for p in self.parts]) * weights).sum(axis=0)
        if not self.image and self.values:
            x = np.concatenate(self.values)
            shape = self.parts[0]["mean"].shape
            out["mean"], out["std"] = x.mean(axis=0).reshape(shape), x.std(axis=0).reshape(shape)
            for name, q in QUANTILES.items():
                out[name] = np.quantile(x, q, axis=0).reshape(shape)
        return {k: np.asarray(v).tolist() for k, v in out.items()}


def _write_parquet(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def _write_tasks(path: Path, texts: list[str]) -> None:
    """meta/tasks.parquet as LeRobot writes it with pandas: column task_index, the task text as the index."""
    table = pa.table({"task_index": pa.array(range(len(texts)), pa.int64()), "task": pa.array(texts, pa.string())})
    pandas = {"index_columns": ["task"],
              "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                                  "metadata": {"encoding": "UTF-8"}}],
              "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                           "numpy_type": "int64", "metadata": None},
                          {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
                           "metadata": None}],
              "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3"}
    _write_parquet(path, table.replace_schema_metadata({b"pandas": json.dumps(pandas).encode()}))


def _info(store: EpisodeStore, features: list[_Feature], fps: int, n_frames: int, n_tasks: int, video: bool) -> dict:
    info = store.attrs.get("generator", {}).get("source_info", {}) if isinstance(store.attrs.get("generator"), dict) else {}
    robot_type = info.get("robot_type") if isinstance(info, dict) else None
    all_features = {f.name: f.info(fps) for f in features}
    all_features.update({k: {"dtype": d, "shape": [1], "names": None} for k, d in DEFAULT_FEATURES.items()})
    return {
        "codebase_version": CODEBASE_VERSION, "robot_type": robot_type or "pusht_pusher",
        "total_episodes": store.n_episodes, "total_frames": n_frames, "total_tasks": n_tasks,
        "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": DATA_FILE_MB, "video_files_size_in_mb": VIDEO_FILE_MB,
        "fps": fps, "splits": {"train": f"0:{store.n_episodes}"}, "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if video else None, "features": all_features,
    }
