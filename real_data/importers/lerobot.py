"""Reader for LeRobot dataset folders, layouts v2.0/v2.1 (one parquet per episode) and v3.0 (many
episodes per parquet file, episode boundaries in meta/episodes/).

    meta/info.json                 codebase_version, fps, features, data_path, video_path, chunks_size
    meta/episodes.jsonl            v2.x: {"episode_index", "length", ...} per line
    meta/episodes/chunk-*/file-*.parquet   v3.0: episode_index, length, dataset_from_index, dataset_to_index,
                                           videos/<key>/{chunk_index, file_index, from_timestamp}
    data/**.parquet                frames: episode_index, frame_index, timestamp, <feature> columns
    videos/...                     mp4 per (v2.x) episode or (v3.0) file, for features of dtype "video"

Frames are grouped by their `episode_index` column in both layouts, so the frame files' names do not
matter; the episode metadata, when present, is cross-checked against what the frames say. Images of
dtype "image" are decoded from the parquet column; dtype "video" is decoded with ffmpeg (imageio).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.core.configs import read_text_bounded
from harness.core.errors import DatasetError
from harness.core.store import DOMAINS, SOURCES
from harness.core.writer import MAX_TEXT
from real_data.exporters.lerobot import CAMERA_PREFIX, ORIGIN
from real_data.importers.mapping import ImportMapping
from real_data.importers.source import Source, SourceEpisode, Stream, check_extra, check_image_shape, check_times, \
    choose_primary_camera, lowdim_fates, select_columns, store_name, unit_warnings

VERSIONS = ("v2.0", "v2.1", "v3.0")


def read_info(path: Path) -> dict:
    info_path = path / "meta" / "info.json"
    if not path.is_dir():
        raise DatasetError(path, None, "a LeRobot dataset is a folder; no such folder")
    if not info_path.is_file():
        raise DatasetError(path, "meta/info.json", "missing file")
    try:
        info = json.loads(read_text_bounded(info_path))
    except (json.JSONDecodeError, RecursionError) as exc:
        where = f"line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else "nested too deep"
        raise DatasetError(path, "meta/info.json", f"invalid JSON ({where})") from None
    if not isinstance(info, dict):
        raise DatasetError(path, "meta/info.json", f"must be a JSON object, got {type(info).__name__}")
    version = info.get("codebase_version")
    if version not in VERSIONS:
        raise DatasetError(path, "meta/info.json", f"codebase_version must be one of {list(VERSIONS)}, got {version!r}")
    if not isinstance(info.get("fps"), (int, float)) or not info["fps"] > 0:
        raise DatasetError(path, "meta/info.json", f"fps must be a positive number, got {info.get('fps')!r}")
    if not isinstance(info.get("features"), dict):
        raise DatasetError(path, "meta/info.json", "missing 'features' mapping")
    return info


def _read_frames(path: Path, columns: list[str], optional: tuple[str, ...] = ()) -> pa.Table:
    """Every frame file's `columns`, plus the `optional` ones the first file has, in one table."""
    files = sorted((path / "data").rglob("*.parquet"))
    if not files:
        raise DatasetError(path, "data", "no parquet frame files")
    tables = []
    for n, f in enumerate(files):
        rel = str(f.relative_to(path))
        try:
            schema = pq.read_schema(f)
        except Exception as exc:
            raise DatasetError(path, rel, f"not a parquet file ({type(exc).__name__})") from None
        if n == 0:
            columns = list(dict.fromkeys([*columns, *(c for c in optional if c in schema.names)]))
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise DatasetError(path, f"{rel}: {missing[0]}", f"missing column (present: {', '.join(schema.names)})")
        tables.append(pq.read_table(f, columns=columns))
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowInvalid as exc:
        raise DatasetError(path, "data", f"frame files disagree on column types ({exc})".splitlines()[0]) from None


def _is_list(t) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _column_array(path, key: str, column: pa.ChunkedArray) -> np.ndarray:
    """A feature column -> array: numbers per row (N,), lists (N, D), lists of lists (N, D1, D2), ...;
    ragged rows and missing values are errors."""
    col = column.combine_chunks()
    if isinstance(col, pa.ChunkedArray):   # pyarrow keeps huge columns chunked
        col = pa.concat_arrays(col.chunks)
    dims = []
    while _is_list(col.type):
        if col.null_count:
            raise DatasetError(path, key, f"{col.null_count} missing values")
        lengths = np.asarray(pc.list_value_length(col))
        if len(lengths) and (lengths != lengths[0]).any():
            i = int(np.flatnonzero(lengths != lengths[0])[0])
            what = "row" if not dims else "element"
            raise DatasetError(path, key, f"unequal lengths: {what} {i} has {lengths[i]} values, {what} 0 has {lengths[0]}")
        dims.append(int(lengths[0]) if len(lengths) else 0)
        col = col.flatten()
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)):
        raise DatasetError(path, key, f"expected numbers or lists of numbers, got {column.type}")
    if col.null_count:
        raise DatasetError(path, key, f"{col.null_count} missing values")
    flat = np.asarray(col.to_numpy(zero_copy_only=False))
    n = len(column)
    return flat.reshape(n, *dims)


def _episode_meta(path: Path, version: str) -> dict[int, dict]:
    """episode_index -> metadata row (length, and for v3.0 the offsets into data and video files)."""
    rows: list[dict] = []
    if version.startswith("v2"):
        jsonl = path / "meta" / "episodes.jsonl"
        if not jsonl.is_file():
            return {}
        for n, line in enumerate(jsonl.read_text().splitlines()):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    raise DatasetError(path, "meta/episodes.jsonl", f"line {n + 1}: invalid JSON") from None
    else:
        files = sorted((path / "meta" / "episodes").rglob("*.parquet"))
        if not files:
            raise DatasetError(path, "meta/episodes", "missing episode metadata (v3.0 needs meta/episodes/*.parquet)")
        for f in files:
            rows.extend(pq.read_table(f).to_pylist())
    out = {}
    for row in rows:
        if "episode_index" not in row or "length" not in row:
            raise DatasetError(path, "meta/episodes", "rows need episode_index and length")
        out[int(row["episode_index"])] = row
    if version == "v3.0":
        _check_v3_offsets(path, out)
    return out


def _check_v3_offsets(path: Path, meta: dict[int, dict]) -> None:
    previous_end = 0
    for ep in sorted(meta):
        row = meta[ep]
        start, end = row.get("dataset_from_index"), row.get("dataset_to_index")
        if start is None or end is None:
            continue
        if start < previous_end or end < start:
            raise DatasetError(path, "meta/episodes", f"episode {ep}: dataset_from_index/dataset_to_index not "
                                                      f"monotone ({start}..{end} after {previous_end})")
        if end - start != row["length"]:
            raise DatasetError(path, "meta/episodes", f"episode {ep}: dataset_to_index - dataset_from_index = "
                                                      f"{end - start} but length = {row['length']}")
        previous_end = end


def _image_hw(path, key: str, feature: dict) -> tuple[int, int, int]:
    shape = list(feature.get("shape", []))
    names = feature.get("names") or []
    if len(shape) == 3 and names and str(names[0]).lower() in ("c", "channel", "channels"):
        shape = [shape[1], shape[2], shape[0]]   # (C, H, W) -> (H, W, C)
    return check_image_shape(path, f"meta/info.json: features.{key}.shape", shape, np.uint8)


class _VideoCache:
    """Decodes one mp4 at a time: v3.0 files hold many consecutive episodes."""

    def __init__(self):
        self._file, self._frames = None, None

    def frames(self, file: Path) -> np.ndarray:
        if file != self._file:
            import imageio.v2 as iio  # imported here: only video imports pay for ffmpeg
            try:
                with iio.get_reader(str(file), "ffmpeg") as reader:
                    self._frames = np.stack([np.asarray(f) for f in reader])
            except Exception as exc:
                raise DatasetError(file, None, f"cannot decode video ({type(exc).__name__})") from None
            self._file = file
        return self._frames


# Frame columns every LeRobot dataset has, and what the import does with them.
BOOKKEEPING = {
    "timestamp": "used: frame times (resampled to the 10 Hz grid when off it)",
    "frame_index": "used: frame order within an episode",
    "episode_index": "used: episode boundaries",
    "index": "dropped: the global frame number (the store's meta/episode_ends replaces it)",
}
# Episode-metadata columns LeRobot itself writes (v3.0 prefixes: data/, videos/, meta/episodes/, stats/).
EPISODE_STANDARD = ("episode_index", "length", "tasks", "dataset_from_index", "dataset_to_index")
EPISODE_PREFIXES = {
    "data/": "used: where the episode's frames are",
    "videos/": "used: where the episode's video frames are",
    "meta/episodes/": "dropped: where this metadata row is (LeRobot bookkeeping)",
    "stats/": "dropped: per-episode statistics (`cotrain export` computes its own)",
}
NUMERIC_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                  "uint32", "uint64", "bool")


def read_lerobot(path, mapping: ImportMapping) -> Source:
    path = Path(path)
    info = read_info(path)
    version, fps, features = info["codebase_version"], float(info["fps"]), info["features"]
    fates: list[tuple[str, str]] = []

    for target, field in mapping.lowdim().items():
        if field.key not in features:
            raise DatasetError(path, f"meta/info.json: features.{field.key}",
                               f"missing feature (needed for {target}; present: {', '.join(sorted(features))})")
    mapped = {f.key for f in mapping.lowdim().values()}
    cameras = [k for k, f in features.items() if f.get("dtype") in ("video", "image") and k not in mapped
               and k not in mapping.drop]
    image, image_note, warnings = choose_primary_camera(mapping, cameras, list(features))
    if image is not None and image not in features:
        raise DatasetError(path, f"meta/info.json: features.{image}", "missing feature")
    if image and features[image].get("dtype") not in ("video", "image"):
        raise DatasetError(path, f"meta/info.json: features.{image}",
                           f"dtype must be video or image, got {features[image].get('dtype')!r}")
    image_shape = _image_hw(path, image, features[image]) if image else None

    # Every other feature: a further camera, an extra column, or dropped with the reason.
    more_cameras, extra_columns = [], []
    for key, feature in features.items():
        if key in mapped or key == image or key in BOOKKEEPING or key == "task_index":
            continue
        why = mapping.drop_reason(key)
        dtype = feature.get("dtype")
        if why is None and dtype in ("video", "image"):
            _image_hw(path, key, feature)
            more_cameras.append(key)
            continue
        if why is None and dtype not in NUMERIC_DTYPES:
            why = f"dtype {dtype!r} is not numeric"
        if why is None:
            extra_columns.append(key)
        else:
            fates.append((key, f"dropped: {why}"))

    image_columns = [k for k in [image, *more_cameras] if k and features[k]["dtype"] == "image"]
    lowdim_keys = list(dict.fromkeys(f.key for f in mapping.lowdim().values()))
    keep_tasks = mapping.drop_reason("task_index") is None
    frames = _read_frames(path, list(dict.fromkeys(["episode_index", *lowdim_keys, *image_columns])),
                          optional=("frame_index", "timestamp", *extra_columns,
                                    *(("task_index",) if keep_tasks else ())))
    if len(frames) == 0:
        raise DatasetError(path, "data", "no frames")

    episode_index = np.asarray(frames.column("episode_index").to_numpy(zero_copy_only=False))
    frame_index = (np.asarray(frames.column("frame_index").to_numpy(zero_copy_only=False))
                   if "frame_index" in frames.column_names else None)
    timestamp = (np.asarray(frames.column("timestamp").to_numpy(zero_copy_only=False), dtype=np.float64)
                 if "timestamp" in frames.column_names else None)
    raw = {k: _column_array(path, k, frames.column(k)) for k in lowdim_keys}
    lowdim_all = {t: select_columns(path, f.key, raw[f.key], f, t) for t, f in mapping.lowdim().items()}
    widths = {k: (a.shape[1] if a.ndim > 1 else 1) for k, a in raw.items()}
    fates += list(lowdim_fates(mapping, widths).items())
    if image:
        fates.append((image, f"-> data/image{image_note}"))
    for key in BOOKKEEPING:
        if key in features or key in frames.column_names:
            fates.append((key, BOOKKEEPING[key] if key in frames.column_names or key == "index"
                          else "dropped: in info.json but no data column"))

    extras: dict[str, np.ndarray] = {}
    for key in extra_columns:
        if key not in frames.column_names:
            fates.append((key, "dropped: in info.json but no data column"))
            continue
        try:
            values = _column_array(path, key, frames.column(key))
            why = check_extra(path, key, values)
        except DatasetError as exc:
            why = exc.problem
        if why is None:
            extras[f"extra.{store_name(key)}"] = values
            fates.append((key, f"-> data/extra.{store_name(key)}"))
        else:
            fates.append((key, f"dropped: {why}"))
    tasks = _read_tasks(path, version)
    if "task_index" in frames.column_names:
        extras["extra.task_index"] = _column_array(path, "task_index", frames.column("task_index"))
        fates.append(("task_index", "-> data/extra.task_index (task texts in attrs generator.source_info.tasks)"))
    elif "task_index" in features:
        fates.append(("task_index", "dropped: " + (mapping.drop_reason("task_index") or "no data column")))
    if tasks is not None:
        fates.append((tasks[0], "kept in attrs generator.source_info.tasks (task_index -> text)"))
    for key in more_cameras:
        fates.append((key, f"-> data/{_camera_store_key(key)} (camera, {features[key]['dtype']})"))

    meta = _episode_meta(path, version)
    meta_file = "meta/episodes.jsonl" if version.startswith("v2") else "meta/episodes"
    present = sorted(set(episode_index.tolist()))
    episode_values, meta_fates = _episode_values(path, meta, mapping, meta_file, present)
    fates += meta_fates
    if version.startswith("v2") and (path / "meta" / "episodes_stats.jsonl").is_file():
        fates.append(("meta/episodes_stats.jsonl", "dropped: per-episode statistics (`cotrain export` computes its own)"))
    if (path / "meta" / "stats.json").is_file():
        fates.append(("meta/stats.json", "dropped: statistics (`cotrain export` computes its own)"))

    for ep, row in meta.items():
        if row["length"] == 0 or ep not in present:
            raise DatasetError(path, "meta/episodes", f"episode {ep} is empty")
    caches = {k: _VideoCache() for k in [image, *more_cameras] if k}
    episodes = []
    # Rows grouped by episode, in frame order within each (files may list frames in any order).
    order = np.lexsort((frame_index if frame_index is not None else np.arange(len(episode_index)), episode_index))
    starts = np.searchsorted(episode_index[order], present)
    for ep, rows in zip(present, np.split(order, starts[1:])):
        if frame_index is not None:
            fi = frame_index[rows]
            if (np.diff(fi) <= 0).any():
                raise DatasetError(path, "data: frame_index", f"episode {ep}: frame_index repeats")
        if ep in meta and meta[ep]["length"] != len(rows):
            raise DatasetError(path, "meta/episodes", f"episode {ep}: unequal lengths, metadata says "
                                                      f"{meta[ep]['length']} frames, the data have {len(rows)}")
        if timestamp is not None:
            raw_t = timestamp[rows]
            if (np.diff(raw_t) <= 0).any():
                i = int(np.flatnonzero(np.diff(raw_t) <= 0)[0]) + 1
                raise DatasetError(path, "data: timestamp", f"episode {ep}: timestamps not monotone at frame {i}")
            times = check_times(path, "data: timestamp", raw_t, ep)
        else:
            times = (fi - fi[0]) / fps if frame_index is not None else np.arange(len(rows)) / fps
            raw_t = times
        loaders = {k: _camera_loader(path, info, meta, frames, features, k, ep, rows, raw_t, fps, caches[k])
                   for k in caches}
        streams = {_camera_store_key(k): Stream(load=loaders[k]) for k in more_cameras}
        streams.update({k: Stream(load=lambda v=v, rows=rows: v[rows]) for k, v in extras.items()})
        episodes.append(SourceEpisode(index=int(ep), times=times,
                                      lowdim={t: v[rows] for t, v in lowdim_all.items()},
                                      load_image=loaders.get(image), streams=streams,
                                      meta={k: v[ep] for k, v in episode_values.items()}))
    rate = mapping.rate_hz or fps
    if mapping.rate_hz is not None:  # the mapping's rate wins over the recorded timestamps
        for e in episodes:
            e.times = np.arange(e.length) / rate
    warnings += unit_warnings(lowdim_all)
    source_info = {"codebase_version": version, "fps": fps, "robot_type": info.get("robot_type"),
                   "features": {k: {n: f.get(n) for n in ("dtype", "shape", "names")} for k, f in features.items()}}
    if tasks is not None:
        source_info["tasks"] = tasks[1]
    episode_tasks = {str(ep): row["tasks"] for ep, row in meta.items() if isinstance(row.get("tasks"), list)}
    if episode_tasks:
        source_info["episode_tasks"] = episode_tasks
    return Source(path=path, format="lerobot", rate_hz=rate, episodes=episodes, image_shape=image_shape,
                  info=source_info, fates=fates, warnings=warnings, origin=_cotrain_origin(path))


def _camera_store_key(key: str) -> str:
    """A further camera's data key: observation.images.wrist -> image.wrist (any other name kept whole)."""
    return f"image.{store_name(key.removeprefix(CAMERA_PREFIX) or key)}"


def _cotrain_origin(path: Path) -> dict | None:
    """What `cotrain export` recorded of the store it exported (None for other LeRobot datasets)."""
    file = path / ORIGIN
    if not file.is_file():
        return None
    try:
        origin = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(path, ORIGIN, f"unreadable ({type(exc).__name__})") from None
    if not isinstance(origin, dict) or origin.get("domain") not in DOMAINS or origin.get("source") not in SOURCES \
            or not isinstance(origin.get("env"), str) or not isinstance(origin.get("env_params"), dict):
        raise DatasetError(path, ORIGIN, f"needs domain in {DOMAINS}, source in {SOURCES}, env and env_params")
    return origin


def _camera_loader(path, info, meta, frames, features, key, ep, rows, raw_t, fps, cache):
    shape = _image_hw(path, key, features[key])
    if features[key]["dtype"] == "image":
        return lambda: _decode_images(path, key, frames.column(key).take(pa.array(rows)), shape)
    file, offset = _video_location(path, info, meta, key, ep)
    return lambda: _video_frames(path, cache, file, offset + raw_t, fps, shape)


def _read_tasks(path: Path, version: str) -> tuple[str, dict[str, str]] | None:
    """(file, {task_index: text}) from meta/tasks.jsonl (v2.x) or meta/tasks.parquet (v3.0), if present."""
    if version.startswith("v2"):
        file = path / "meta" / "tasks.jsonl"
        if not file.is_file():
            return None
        rows = []
        for n, line in enumerate(file.read_text().splitlines()):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    raise DatasetError(path, "meta/tasks.jsonl", f"line {n + 1}: invalid JSON") from None
    else:
        file = path / "meta" / "tasks.parquet"
        if not file.is_file():
            return None
        try:
            table = pq.read_table(file)
        except Exception as exc:  # noqa: BLE001 - any unreadable parquet
            raise DatasetError(path, "meta/tasks.parquet", f"not a parquet file ({type(exc).__name__})") from None
        text = next((c for c in ("task", "__index_level_0__") if c in table.column_names), None)
        if text is None or "task_index" not in table.column_names:
            raise DatasetError(path, "meta/tasks.parquet", f"needs task_index and task columns, has "
                                                           f"{', '.join(table.column_names)}")
        rows = [{"task_index": r["task_index"], "task": r[text]} for r in table.to_pylist()]
    try:
        tasks = {str(int(r["task_index"])): str(r["task"]) for r in rows}
    except (KeyError, TypeError, ValueError):
        raise DatasetError(path, str(file.relative_to(path)), "rows need task_index and task") from None
    return str(file.relative_to(path)), tasks


def _episode_values(path: Path, meta: dict[int, dict], mapping: ImportMapping, meta_file: str,
                    present: list[int]) -> tuple[dict[str, dict[int, object]], list[tuple[str, str]]]:
    """Per-episode columns LeRobot does not define -> {meta/extra.<name>: {episode: value}}, and fates."""
    columns = list(dict.fromkeys(c for row in meta.values() for c in row))
    uncovered = [ep for ep in present if ep not in meta]
    values: dict[str, dict[int, object]] = {}
    fates: list[tuple[str, str]] = []
    grouped = set()
    for col in columns:
        prefix = next((p for p in EPISODE_PREFIXES if col.startswith(p)), None)
        if prefix is not None:
            if prefix not in grouped:
                grouped.add(prefix)
                fates.append((f"{meta_file}: {prefix}*", EPISODE_PREFIXES[prefix]))
            continue
        if col in ("episode_index", "length", "dataset_from_index", "dataset_to_index"):
            fates.append((f"{meta_file}: {col}", "used: checked against the frames"))
            continue
        if col == "tasks":
            fates.append((f"{meta_file}: {col}", "kept in attrs generator.source_info.episode_tasks"))
            continue
        why = mapping.drop_reason(col)
        if why is None and uncovered:
            why = f"episode {uncovered[0]} has no metadata row"
        column = [meta[ep].get(col) for ep in present] if why is None else []
        if why is None and any(v is None for v in column):
            why = "missing for some episodes"
        text = why is None and all(isinstance(v, str) for v in column)
        if text and max(len(v) for v in column) > MAX_TEXT:
            why = f"text longer than {MAX_TEXT} characters"
        if why is None and not text and not all(isinstance(v, (bool, int, float)) for v in column):
            why = "not one number or text per episode"
        if why is None and not text and not all(np.isfinite(float(v)) for v in column):
            why = "NaN or inf"
        if why is None:
            name = f"extra.{store_name(col)}"
            values[name] = dict(zip(present, column))
            fates.append((f"{meta_file}: {col}", f"-> meta/{name}"))
        else:
            fates.append((f"{meta_file}: {col}", f"dropped: {why}"))
    return values, fates


def _video_location(path: Path, info: dict, meta: dict, key: str, ep: int) -> tuple[Path, float]:
    """The mp4 holding episode `ep` of video feature `key`, and the episode's start time in it."""
    template = info.get("video_path")
    if not template:
        raise DatasetError(path, "meta/info.json: video_path", f"missing (feature {key} is a video)")
    if info["codebase_version"].startswith("v2"):
        chunk = ep // int(info.get("chunks_size", 1000))
        rel, offset = template.format(episode_chunk=chunk, video_key=key, episode_index=ep), 0.0
    else:
        row = meta.get(ep, {})
        need = [f"videos/{key}/chunk_index", f"videos/{key}/file_index", f"videos/{key}/from_timestamp"]
        if any(n not in row for n in need):
            raise DatasetError(path, "meta/episodes", f"episode {ep}: missing {need[0].rsplit('/', 1)[0]}/* columns")
        rel = template.format(video_key=key, chunk_index=int(row[need[0]]), file_index=int(row[need[1]]))
        offset = float(row[need[2]])
    file = path / rel
    if not file.is_file():
        raise DatasetError(path, rel, f"missing video file for episode {ep}")
    return file, offset


def _video_frames(path, cache: _VideoCache, file: Path, times: np.ndarray, fps: float, shape) -> np.ndarray:
    frames = cache.frames(file)
    idx = np.rint(np.asarray(times) * fps).astype(int)
    if idx.max() >= len(frames):
        raise DatasetError(path, str(file.relative_to(path)), f"video has {len(frames)} frames, needs frame {idx.max()}")
    out = frames[idx]
    if out.shape[1:] != tuple(shape) or out.dtype != np.uint8:
        raise DatasetError(path, str(file.relative_to(path)), f"frames are {out.shape[1:]} {out.dtype}, "
                                                            f"info.json says {tuple(shape)} uint8")
    return out


def _decode_images(path, key: str, column: pa.ChunkedArray, shape) -> np.ndarray:
    import imageio.v3 as iio
    out = []
    for value in column.to_pylist():
        data = value.get("bytes") if isinstance(value, dict) else value
        if data is None:
            raise DatasetError(path, key, "image without bytes (external image files are not supported)")
        img = np.asarray(iio.imread(data))
        if img.shape != tuple(shape) or img.dtype != np.uint8:
            raise DatasetError(path, key, f"decoded image is {img.shape} {img.dtype}, expected {tuple(shape)} uint8")
        out.append(img)
    return np.stack(out)
