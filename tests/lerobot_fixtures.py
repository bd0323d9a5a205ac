"""LeRobot datasets written here with pyarrow, the way LeRobot's own writer lays them out (v2.1 and v3.0):
float32 timestamps, fixed-length list columns, PNG image structs, tasks and episode metadata files. And a
checker of a dataset against the v3.0 format's rules, used on what `cotrain export` writes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


def _png(frame: np.ndarray) -> dict:
    import imageio.v3 as iio
    return {"bytes": iio.imwrite("<bytes>", frame, extension=".png"), "path": None}


def _array(values: np.ndarray, dtype: str) -> pa.Array:
    if dtype == "image":
        return pa.array([_png(f) for f in values], type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    if values.ndim == 1:
        return pa.array(values.astype(dtype))
    flat = pa.array(values.astype(dtype).reshape(-1))
    for d in reversed(values.shape[1:]):
        flat = pa.FixedSizeListArray.from_arrays(flat, d)
    return flat


def write_dataset(path: Path, episodes: list[dict[str, np.ndarray]], features: dict, version: str = "v3.0",
                  fps: float = 10.0, tasks: list[str] | None = None, episode_meta: list[dict] | None = None,
                  robot_type: str | None = "so100") -> Path:
    """episodes: {feature: (N, ...) values} each (images (N, H, W, 3) uint8 for dtype "image"); timestamps
    (float32, frame_index / fps), indices and task_index 0 are added unless given."""
    path = Path(path)
    feats = {**features, **DEFAULT_FEATURES}
    info = {"codebase_version": version, "robot_type": robot_type, "total_episodes": len(episodes),
            "total_frames": sum(len(next(iter(e.values()))) for e in episodes), "total_tasks": len(tasks or ["t"]),
            "chunks_size": 1000, "fps": fps, "features": feats}
    tables, rows, start = [], [], 0
    for ep, values in enumerate(episodes):
        n = len(next(iter(values.values())))
        cols = {k: _array(np.asarray(v), feats[k]["dtype"]) for k, v in values.items()}
        cols.setdefault("timestamp", pa.array((np.arange(n) / fps).astype(np.float32)))
        cols.setdefault("frame_index", pa.array(np.arange(n, dtype=np.int64)))
        cols["episode_index"] = pa.array(np.full(n, ep, np.int64))
        cols["index"] = pa.array(np.arange(start, start + n, dtype=np.int64))
        cols.setdefault("task_index", pa.array(np.zeros(n, np.int64)))
        tables.append(pa.table(cols))
        row = {"episode_index": ep, "tasks": [(tasks or ["t"])[0]], "length": n, **((episode_meta or [{}] * len(episodes))[ep])}
        if version == "v3.0":
            row.update({"data/chunk_index": 0, "data/file_index": 0, "dataset_from_index": start,
                        "dataset_to_index": start + n, "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        rows.append(row)
        start += n
    (path / "meta").mkdir(parents=True)
    if version == "v3.0":
        info["data_path"] = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
        (path / "data" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.concat_tables(tables), path / "data" / "chunk-000" / "file-000.parquet")
        (path / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), path / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
        if tasks is not None:
            pq.write_table(pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": tasks}),
                           path / "meta" / "tasks.parquet")
    else:
        info["data_path"] = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
        (path / "data" / "chunk-000").mkdir(parents=True)
        for ep, table in enumerate(tables):
            pq.write_table(table, path / "data" / "chunk-000" / f"episode_{ep:06d}.parquet")
        (path / "meta" / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if tasks is not None:
            (path / "meta" / "tasks.jsonl").write_text(
                "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(tasks)))
    (path / "meta" / "info.json").write_text(json.dumps(info))
    return path


# ------------------------------------------------------------------ the v3.0 format's rules
_ARROW = {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64(), "int32": pa.int32(),
          "bool": pa.bool_(), "uint8": pa.uint8()}


def check_v3_layout(root: Path) -> dict:
    """Assert what LeRobot's v3.0 reader relies on; returns info.json. Rules checked:
    info.json: version, fps, totals, path templates, features with dtype/shape/names (no '/' in a name,
    the five default features); every data file's columns match the non-video features (scalar for shape
    [1], fixed lists of the shape otherwise, image structs); timestamps float32 = frame_index / fps;
    episode_index, index and frame_index consistent; episodes metadata covers 0..E-1 with contiguous
    dataset_from/to_index ranges equal to the frames; every video file exists with its episodes' time
    ranges inside it; tasks.parquet maps every task_index used; stats.json has every feature."""
    root = Path(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    fps = info["fps"]
    assert isinstance(fps, int) and fps > 0
    features = info["features"]
    for name, spec in DEFAULT_FEATURES.items():
        assert features[name]["dtype"] == spec["dtype"] and features[name]["shape"] == [1], name
    for name, f in features.items():
        assert "/" not in name and {"dtype", "shape", "names"} <= set(f), name
        assert isinstance(f["shape"], list) and all(isinstance(d, int) and d > 0 for d in f["shape"]), name
        if f["dtype"] in ("video", "image"):
            assert len(f["shape"]) == 3 and f["shape"][2] == 3 and f["names"] == ["height", "width", "channels"]
        if f["dtype"] == "video":
            assert f["info"]["video.height"] == f["shape"][0] and f["info"]["video.fps"] == fps
    files = sorted((root / "data").glob("chunk-*/file-*.parquet"))
    assert files, "no data files"
    table = pa.concat_tables([pq.read_table(f) for f in files])
    columns = {k for k, f in features.items() if f["dtype"] != "video"}
    assert set(table.column_names) == columns, (set(table.column_names) ^ columns)
    for name in columns:
        f, t = features[name], table.schema.field(name).type
        if f["dtype"] == "image":
            assert pa.types.is_struct(t) and {t.field(i).name for i in range(t.num_fields)} == {"bytes", "path"}
            continue
        want = _ARROW[f["dtype"]]
        for d in reversed(f["shape"] if f["shape"] != [1] else []):
            want = pa.list_(want, d)
        assert t == want, (name, t, want)
    n = len(table)
    assert info["total_frames"] == n
    ts = table.column("timestamp").to_numpy()
    fi = table.column("frame_index").to_numpy()
    assert ts.dtype == np.float32 and np.array_equal(ts, (fi / fps).astype(np.float32))
    assert np.array_equal(table.column("index").to_numpy(), np.arange(n))
    ep = table.column("episode_index").to_numpy()
    assert (np.diff(ep) >= 0).all()

    eps = pa.concat_tables([pq.read_table(f) for f in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))])
    rows = eps.to_pylist()
    assert [r["episode_index"] for r in rows] == list(range(info["total_episodes"]))
    assert info["splits"] == {"train": f"0:{info['total_episodes']}"}
    previous = 0
    for r in rows:
        assert r["dataset_from_index"] == previous and r["dataset_to_index"] - r["dataset_from_index"] == r["length"]
        frames = np.flatnonzero(ep == r["episode_index"])
        assert len(frames) == r["length"] and frames[0] == r["dataset_from_index"]
        assert np.array_equal(fi[frames], np.arange(r["length"]))
        data_file = root / info["data_path"].format(chunk_index=r["data/chunk_index"], file_index=r["data/file_index"])
        assert r["episode_index"] in set(pq.read_table(data_file, columns=["episode_index"]).column(0).to_pylist())
        for name, f in features.items():
            if f["dtype"] == "video":
                video = root / info["video_path"].format(video_key=name, chunk_index=r[f"videos/{name}/chunk_index"],
                                                         file_index=r[f"videos/{name}/file_index"])
                assert video.is_file(), video
                start, stop = r[f"videos/{name}/from_timestamp"], r[f"videos/{name}/to_timestamp"]
                assert abs((stop - start) - r["length"] / fps) < 1e-6
            if f["dtype"] not in ("video", "image", "string"):
                for stat in ("min", "max", "mean", "std", "count"):
                    assert f"stats/{name}/{stat}" in r, (name, stat)
        previous = r["dataset_to_index"]
    assert previous == n
    tasks = pq.read_table(root / "meta" / "tasks.parquet")
    assert set(np.unique(table.column("task_index").to_numpy())) <= set(tasks.column("task_index").to_pylist())
    assert info["total_tasks"] == len(tasks)
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    stats = json.loads((root / "meta" / "stats.json").read_text())
    for name, f in features.items():
        assert {"min", "max", "mean", "std", "count"} <= set(stats[name]), name
        assert stats[name]["count"] == [n]
        if f["dtype"] in ("video", "image"):
            assert np.asarray(stats[name]["mean"]).shape == (3, 1, 1)
        else:
            assert np.asarray(stats[name]["mean"]).shape == tuple(f["shape"])
    return info
