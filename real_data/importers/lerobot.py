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

from harness.data.errors import DatasetError
from real_data.importers.mapping import ImportMapping
from real_data.importers.source import Source, SourceEpisode, check_image_shape, check_times, select_columns

VERSIONS = ("v2.0", "v2.1", "v3.0")


def read_info(path: Path) -> dict:
    info_path = path / "meta" / "info.json"
    if not path.is_dir():
        raise DatasetError(path, None, "a LeRobot dataset is a folder; no such folder")
    if not info_path.is_file():
        raise DatasetError(path, "meta/info.json", "missing file")
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(path, "meta/info.json", f"invalid JSON (line {exc.lineno})") from None
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


def _column_array(path, key: str, column: pa.ChunkedArray) -> np.ndarray:
    """A feature column (list<number> or number per row) -> (N, D) array; ragged rows are an error."""
    col = column.combine_chunks()
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type):
        if col.null_count:
            raise DatasetError(path, key, f"{col.null_count} missing values")
        lengths = np.asarray(pc.list_value_length(col))
        if len(lengths) and (lengths != lengths[0]).any():
            i = int(np.flatnonzero(lengths != lengths[0])[0])
            raise DatasetError(path, key, f"unequal lengths: row {i} has {lengths[i]} values, row 0 has {lengths[0]}")
        width = int(lengths[0]) if len(lengths) else 0
        flat = np.asarray(col.flatten().to_numpy(zero_copy_only=False))
        return flat.reshape(len(col), width)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        return np.asarray(col.to_numpy(zero_copy_only=False))[:, None]
    raise DatasetError(path, key, f"expected numbers or lists of numbers, got {col.type}")


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


def read_lerobot(path, mapping: ImportMapping) -> Source:
    path = Path(path)
    info = read_info(path)
    version, fps, features = info["codebase_version"], float(info["fps"]), info["features"]

    for target, field in mapping.lowdim().items():
        if field.key not in features:
            raise DatasetError(path, f"meta/info.json: features.{field.key}",
                               f"missing feature (needed for {target}; present: {', '.join(sorted(features))})")
    image = None
    if mapping.image is not None:
        if mapping.image.key in features:
            image = mapping.image.key
        elif not mapping.image.optional:
            raise DatasetError(path, f"meta/info.json: features.{mapping.image.key}", "missing feature")
    image_kind = features[image].get("dtype") if image else None
    if image and image_kind not in ("video", "image"):
        raise DatasetError(path, f"meta/info.json: features.{image}", f"dtype must be video or image, got {image_kind!r}")
    image_shape = _image_hw(path, image, features[image]) if image else None

    lowdim_keys = list(dict.fromkeys(f.key for f in mapping.lowdim().values()))
    columns = ["episode_index", *lowdim_keys, *([image] if image_kind == "image" else [])]
    frames = _read_frames(path, list(dict.fromkeys(columns)), optional=("frame_index", "timestamp"))
    if len(frames) == 0:
        raise DatasetError(path, "data", "no frames")

    episode_index = np.asarray(frames.column("episode_index").to_numpy(zero_copy_only=False))
    frame_index = (np.asarray(frames.column("frame_index").to_numpy(zero_copy_only=False))
                   if "frame_index" in frames.column_names else None)
    timestamp = (np.asarray(frames.column("timestamp").to_numpy(zero_copy_only=False), dtype=np.float64)
                 if "timestamp" in frames.column_names else None)
    lowdim_all = {t: select_columns(path, f.key, _column_array(path, f.key, frames.column(f.key)), f, t)
                  for t, f in mapping.lowdim().items()}

    meta = _episode_meta(path, version)
    present = sorted(set(episode_index.tolist()))
    for ep, row in meta.items():
        if row["length"] == 0 or ep not in present:
            raise DatasetError(path, "meta/episodes", f"episode {ep} is empty")
    video = _VideoCache()
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
        loader = None
        if image_kind == "image":
            loader = (lambda rows=rows: _decode_images(path, image, frames.column(image).take(pa.array(rows)),
                                                       image_shape))
        elif image_kind == "video":
            file, offset = _video_location(path, info, meta, image, ep)
            loader = (lambda file=file, offset=offset, t=raw_t: _video_frames(path, video, file, offset + t,
                                                                            fps, image_shape))
        episodes.append(SourceEpisode(index=int(ep), times=times,
                                      lowdim={t: v[rows] for t, v in lowdim_all.items()}, load_image=loader))
    rate = mapping.rate_hz or fps
    if mapping.rate_hz is not None:  # the mapping's rate wins over the recorded timestamps
        for e in episodes:
            e.times = np.arange(e.length) / rate
    return Source(path=path, format="lerobot", rate_hz=rate, episodes=episodes, image_shape=image_shape,
                  info={"codebase_version": version, "fps": fps})


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
