"""`cotrain export --format lerobot`: the written folder follows LeRobot v3.0's rules, and importing it gives
back the store's arrays."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.cli import main
from harness.core.errors import ConfigError, UserError
from harness.core.store import EpisodeStore
from harness.core.writer import EpisodeWriter
from real_data.exporters import export_lerobot
from real_data.importers import import_logs
from tests.helpers import tree_digest
from tests.lerobot_fixtures import check_v3_layout, write_dataset

LENGTHS = (6, 9, 4)


def frames(n: int, ep: int, offset: int = 0) -> np.ndarray:
    """Flat grey frames 20 levels apart (so lossy video still tells them apart), with a gradient."""
    level = (40 * ep + 20 * np.arange(n) + offset) % 200 + 20
    img = np.broadcast_to(level[:, None, None, None], (n, 16, 16, 3)).astype(np.int64)
    return (img + np.arange(16)[None, :, None, None] // 4).astype(np.uint8)


def write_source_store(path: Path) -> Path:
    rng = np.random.default_rng(0)
    with EpisodeWriter(path, domain="real", source="imported", env="real", env_params={}, generator={"t": 1}) as w:
        for ep, n in enumerate(LENGTHS):
            w.add_episode({
                "agent_pos": rng.uniform(0.3, 0.9, (n, 2)), "slider_pose": rng.uniform(-0.3, 0.3, (n, 3)),
                "action": rng.uniform(0.3, 0.9, (n, 2)), "image": frames(n, ep),
                "image.wrist": frames(n, ep, offset=10),
                "extra.target": rng.normal(size=(n, 3)), "extra.n_contacts": rng.integers(0, 3, n),
                "extra.keypoint": rng.normal(size=(n, 9, 2)), "extra.touching": rng.integers(0, 2, n).astype(bool),
            }, meta={"seed": 10 + ep, "success": ep != 1, "length": 0.1 * n})
    return path


def test_png_export_round_trips_exactly(tmp_path):
    store_path = write_source_store(tmp_path / "s.zarr")
    summary = export_lerobot(store_path, tmp_path / "lr", images="png")
    info = check_v3_layout(tmp_path / "lr")
    assert info["features"]["observation.image"]["dtype"] == "image"
    assert info["features"]["keypoint"] == {"dtype": "float32", "shape": [9, 2], "names": None}
    assert info["features"]["n_contacts"]["shape"] == [1] and info["video_path"] is None
    assert ("data/agent_pos", "observation.state (float32)") in summary.features
    import_logs(tmp_path / "lr", "lerobot", tmp_path / "back.zarr")
    a, b = EpisodeStore(store_path), EpisodeStore(tmp_path / "back.zarr")
    assert a.episode_lengths.tolist() == b.episode_lengths.tolist() == list(LENGTHS)
    for key in a.data_keys:
        x, y = a.data(key), b.data(key)
        assert x.dtype == y.dtype and x.shape == y.shape, key
        np.testing.assert_array_equal(x, y, err_msg=key)
    assert b.meta("extra.seed").tolist() == [10, 11, 12]
    assert b.meta("extra.success").tolist() == [True, False, True]
    np.testing.assert_array_equal(b.meta("extra.cotrain.length"), a.meta("length"))   # `length` is LeRobot's
    assert info["features"]["observation.images.wrist"]["dtype"] == "image"   # LeRobot's name for a camera
    stats = json.loads((tmp_path / "lr" / "meta" / "stats.json").read_text())
    q01, q99 = np.asarray(stats["observation.image"]["q01"]), np.asarray(stats["observation.image"]["q99"])
    assert q01.shape == q99.shape == (3, 1, 1) and np.all(q01 <= q99)
    assert np.all(np.asarray(stats["observation.image"]["min"]) <= q01)
    assert np.all(q99 <= np.asarray(stats["observation.image"]["max"]))


def test_png_columns_read_as_images_in_hugging_face_datasets(tmp_path):
    """`datasets.load_dataset("parquet", ...)` takes a column's feature from the parquet schema's
    "huggingface" metadata (`Features.from_arrow_schema`); without it a PNG column read as a {"bytes",
    "path"} dict instead of an image. LeRobot writes that metadata, and so does the export now. Checked on
    the schema with pyarrow, which is what `datasets` reads (it is not a dependency of this repository)."""
    import pyarrow as pa

    export_lerobot(write_source_store(tmp_path / "s.zarr"), tmp_path / "lr", images="png")
    schema = pq.read_schema(tmp_path / "lr" / "data" / "chunk-000" / "file-000.parquet")
    assert b"huggingface" in (schema.metadata or {})
    features = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert features["observation.image"] == features["observation.images.wrist"] == {"_type": "Image"}
    image_storage = pa.struct([("bytes", pa.binary()), ("path", pa.string())])   # HF Image's arrow type
    assert schema.field("observation.image").type == schema.field("observation.images.wrist").type == image_storage
    assert features["observation.state"] == {"feature": {"dtype": "float32", "_type": "Value"}, "length": 2,
                                             "_type": "Sequence"}
    assert features["n_contacts"] == {"dtype": "int64", "_type": "Value"}
    assert features["timestamp"] == {"dtype": "float32", "_type": "Value"}
    assert "keypoint" not in features        # (9, 2) per step: left to datasets' own reading of nested lists
    assert set(features) <= set(schema.names)


def test_video_export_in_several_files(tmp_path):
    """Tiny file-size limits force a new data file and a new video file per episode: the episode ranges,
    file indices and video time offsets must still point at the right frames."""
    store_path = write_source_store(tmp_path / "s.zarr")
    export_lerobot(store_path, tmp_path / "lr", data_file_mb=1e-6, video_file_mb=1e-6)
    info = check_v3_layout(tmp_path / "lr")
    assert info["features"]["observation.image"]["dtype"] == "video"
    assert len(list((tmp_path / "lr" / "data").rglob("*.parquet"))) == 3
    assert len(list((tmp_path / "lr" / "videos" / "observation.images.wrist").rglob("*.mp4"))) == 3
    export_lerobot(store_path, tmp_path / "lr1")                   # default limits: one file holds all
    rows = pq.read_table(tmp_path / "lr1" / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [r["videos/observation.image/from_timestamp"] for r in rows] == [0.0, 0.6, 1.5]
    assert [r["videos/observation.image/file_index"] for r in rows] == [0, 0, 0]
    for out in ("lr", "lr1"):
        import_logs(tmp_path / out, "lerobot", tmp_path / f"{out}.zarr")
        a, b = EpisodeStore(store_path), EpisodeStore(tmp_path / f"{out}.zarr")
        for key in ("agent_pos", "slider_pose", "action", "extra.keypoint", "extra.n_contacts"):
            np.testing.assert_array_equal(a.data(key), b.data(key))
        for key in ("image", "image.wrist"):                       # h264 is lossy: same frames, close values
            assert np.abs(a.data(key).astype(int) - b.data(key).astype(int)).max() <= 6, key


def test_export_never_writes_into_what_it_did_not_make(tmp_path, capsys):
    store_path = write_source_store(tmp_path / "s.zarr")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    before = tree_digest(foreign)
    with pytest.raises(UserError, match="not an export made by cotrain"):
        export_lerobot(store_path, foreign)
    assert main(["export", str(store_path), "--format", "lerobot", "--out", str(foreign)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and tree_digest(foreign) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(store_path), "--format", "lerobot", "--out", str(empty), "--images", "png"]) == 0
    assert "exported 3 episodes" in capsys.readouterr().out
    done = tree_digest(empty)
    assert not export_lerobot(store_path, empty, images="png").features            # same export: nothing to do
    with pytest.raises(ConfigError, match="images: was 'png'"):
        export_lerobot(store_path, empty, images="video")
    assert tree_digest(empty) == done
    with pytest.raises(UserError, match="no such store"):
        export_lerobot(tmp_path / "nope.zarr", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_interrupted_export_leaves_nothing(tmp_path):
    store_path = write_source_store(tmp_path / "s.zarr")

    class Bar:
        def __init__(self, **_):
            pass

        def update(self, n):
            raise KeyboardInterrupt

        def close(self):
            pass

    with pytest.raises(KeyboardInterrupt):
        export_lerobot(store_path, tmp_path / "lr", progress=Bar)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_lerobot_tasks_names_and_robot_type_survive_import_and_export(tmp_path):
    n = 5
    t = np.arange(n) / 10
    episodes = [{"observation.state": np.stack([0.5 + t, t], 1), "observation.environment_state": np.stack([t, t, t], 1),
                 "action": np.stack([t, 0.5 + t], 1), "observation.velocity": np.ones((n, 2)),
                 "task_index": np.full(n, ep, np.int64)} for ep in range(2)]
    features = {"observation.state": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
                "observation.environment_state": {"dtype": "float32", "shape": [3], "names": ["x", "y", "theta"]},
                "action": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
                "observation.velocity": {"dtype": "float32", "shape": [2], "names": ["vx", "vy"]}}
    src = write_dataset(tmp_path / "src", episodes, features, tasks=["push left", "push right"], robot_type="ur5")
    import_logs(src, "lerobot", tmp_path / "s.zarr")
    export_lerobot(tmp_path / "s.zarr", tmp_path / "lr")
    info = check_v3_layout(tmp_path / "lr")
    assert info["robot_type"] == "ur5" and info["total_tasks"] == 2
    assert info["features"]["observation.velocity"]["names"] == ["vx", "vy"]
    assert "extra.task_index" not in info["features"] and "task_index" in info["features"]
    tasks = pq.read_table(tmp_path / "lr" / "meta" / "tasks.parquet").to_pylist()
    assert tasks == [{"task_index": 0, "task": "push left"}, {"task_index": 1, "task": "push right"}]
    rows = pq.read_table(tmp_path / "lr" / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [r["tasks"] for r in rows] == [["push left"], ["push right"]]
    data = pq.read_table(tmp_path / "lr" / "data" / "chunk-000" / "file-000.parquet")
    assert data.column("task_index").to_pylist() == [0] * n + [1] * n
    stats = json.loads((tmp_path / "lr" / "meta" / "stats.json").read_text())
    np.testing.assert_allclose(stats["observation.state"]["max"], [0.9, 0.4], rtol=1e-6)
    assert set(stats["action"]) >= {"min", "max", "mean", "std", "count", "q01", "q99"}


def test_an_exported_sim_store_imports_back_as_sim_data(tmp_path):
    """Export records what the data are; import restores it, so GCS demos never turn into clean data."""
    rng = np.random.default_rng(1)
    with EpisodeWriter(tmp_path / "sim.zarr", domain="sim", source="gcs_kinematic", env="sim",
                       env_params={"mu": 0.3}, generator={"planner": "gcs"}) as w:
        for n in LENGTHS:
            w.add_episode({"agent_pos": rng.uniform(0.3, 0.9, (n, 2)), "slider_pose": rng.uniform(-0.3, 0.3, (n, 3)),
                           "action": rng.uniform(0.3, 0.9, (n, 2))}, meta={"seed": n, "success": True})
    export_lerobot(tmp_path / "sim.zarr", tmp_path / "lr", images="png")
    import_logs(tmp_path / "lr", "lerobot", tmp_path / "back.zarr")
    back = EpisodeStore(tmp_path / "back.zarr").attrs
    assert (back["domain"], back["source"], back["env"], back["env_params"]) == ("sim", "gcs_kinematic", "sim",
                                                                                   {"mu": 0.3})
    assert back["generator"]["importer"] == "real_data.importers"
    assert back["generator"]["origin_generator"] == {"planner": "gcs"}
    import_logs(tmp_path / "lr", "lerobot", tmp_path / "back.zarr", overwrite=True)   # still our import
    (tmp_path / "lr" / "meta" / "cotrain_origin.json").write_text('{"domain": "moon"}')
    with pytest.raises(UserError, match="cotrain_origin.json: needs domain"):
        import_logs(tmp_path / "lr", "lerobot", tmp_path / "again.zarr")
