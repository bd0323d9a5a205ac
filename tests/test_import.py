"""Importers of real robot logs: round trips of small fixtures written here, and rejection of every kind of
malformed source without creating (or touching) the output."""
from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zarr

from harness.cli import main as cli_main
from harness.core.errors import DatasetError, UserError
from harness.core.store import EpisodeStore
from real_data.importers import import_logs

LENGTHS = (5, 7)


def episode_arrays(length: int, ep: int) -> dict[str, np.ndarray]:
    """Distinct, known values per episode and step."""
    t = np.arange(length, dtype=np.float64)
    return {
        "state": np.stack([0.5 + 0.01 * t, -0.1 + 0.002 * t + ep, 0.3 * np.ones(length)], axis=1),
        "slider_state": np.stack([0.6 + 0.001 * t, 0.05 * ep + 0 * t, 0.1 * t - 0.2], axis=1),
        "action": np.stack([0.51 + 0.01 * t, -0.1 + 0.002 * t + ep], axis=1),
        "overhead_camera": np.full((length, 8, 6, 3), 10 * ep + 1, dtype=np.uint8) + t.astype(np.uint8)[:, None, None, None],
    }


# ------------------------------------------------------------------ diffusion-policy fixtures
def write_replay_buffer(path: Path, lengths=LENGTHS, images=True, as_zip=False, edit=None) -> Path:
    """A zarr v2 ReplayBuffer in the published layout. `edit(arrays, ends)` may corrupt it before writing."""
    eps = [episode_arrays(n, i) for i, n in enumerate(lengths)]
    arrays = {k: np.concatenate([e[k] for e in eps]) for k in eps[0]}
    arrays["target"] = np.zeros((len(arrays["action"]), 3))
    if not images:
        del arrays["overhead_camera"]
    ends = np.cumsum(lengths).astype(np.int64)
    if edit is not None:
        arrays, ends = edit(arrays, ends)
    folder = path.with_suffix("") if as_zip else path
    root = zarr.open_group(str(folder), mode="w", zarr_format=2)
    data, meta = root.create_group("data"), root.create_group("meta")
    for key, value in arrays.items():
        data.create_array(key, shape=value.shape, dtype=value.dtype, chunks=value.shape or None)[...] = value
    if ends is not None:
        meta.create_array("episode_ends", shape=ends.shape, dtype=ends.dtype)[...] = ends
    if not as_zip:
        return path
    with zipfile.ZipFile(path, "w") as zf:  # keys at the zip's root, as zarr's ZipStore writes them
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(folder).as_posix())
    return path


def test_diffusion_policy_round_trip(tmp_path):
    src = write_replay_buffer(tmp_path / "src.zarr")
    summary = import_logs(src, "diffusion-policy", tmp_path / "out.zarr")
    store = EpisodeStore(tmp_path / "out.zarr")
    assert (store.domain, store.source, store.attrs["env"]) == ("real", "imported", "real")
    assert store.n_episodes == 2 and summary.n_steps_out == sum(LENGTHS)
    for i, n in enumerate(LENGTHS):
        ep, want = store.episode(i), episode_arrays(n, i)
        np.testing.assert_allclose(ep["agent_pos"], want["state"][:, :2], atol=1e-6)
        np.testing.assert_allclose(ep["slider_pose"], want["slider_state"], atol=1e-6)
        np.testing.assert_allclose(ep["action"], want["action"], atol=1e-6)
        np.testing.assert_array_equal(ep["image"], want["overhead_camera"])
    assert store.meta("source_episode").tolist() == [0, 1]
    assert store.attrs["generator"]["format"] == "diffusion-policy"


def test_diffusion_policy_zip_and_mapping(tmp_path):
    src = write_replay_buffer(tmp_path / "src.zarr.zip", images=False, as_zip=True)
    mapping = tmp_path / "map.yaml"
    # Take the pusher from the action stream instead, at 20 Hz: every second sample survives.
    mapping.write_text("agent_pos: {key: action}\nimage: null\nrate_hz: 20\n")
    import_logs(src, "diffusion-policy", tmp_path / "out.zarr", mapping_path=mapping)
    store = EpisodeStore(tmp_path / "out.zarr")
    assert "image" not in store.data_keys
    want = episode_arrays(LENGTHS[1], 1)["action"][::2]
    np.testing.assert_allclose(store.episode(1)["agent_pos"], want, atol=1e-6)


def _drop(key):
    def edit(arrays, ends):
        del arrays[key]
        return arrays, ends
    return edit


def _set(key, fn):
    def edit(arrays, ends):
        arrays[key] = fn(arrays[key])
        return arrays, ends
    return edit


def _ends(fn):
    return lambda arrays, ends: (arrays, fn(ends))


def _nan(a):
    a = a.astype(np.float64)
    a[3, 1] = np.nan
    return a


DP_BAD = {
    "missing key": (_drop("slider_state"), "data/slider_state: missing array"),
    "unequal lengths": (_set("action", lambda a: a[:-1]), "data/action: has 11 rows"),
    "non-monotone ends": (_ends(lambda e: np.array([8, 5, 12])), "not monotone"),
    "empty episode": (_ends(lambda e: np.array([5, 5, 12])), "episode 1 is empty"),
    "ends past data": (_ends(lambda e: np.array([5, 13])), "last episode ends at 13"),
    "missing ends": (_ends(lambda e: None), "meta/episode_ends: missing array"),
    "nan": (_set("slider_state", _nan), "data/slider_state: NaN or inf at row 3"),
    "inf": (_set("action", lambda a: a * np.inf), "data/action: NaN or inf"),
    "wrong dtype": (_set("state", lambda a: a > 0), "needs a numeric array"),
    "wrong shape": (_set("state", lambda a: a[:, :1]), "column 1 out of range"),
    "too few columns": (_set("slider_state", lambda a: a[:, :2]), "column 2 out of range"),
    "image dtype": (_set("overhead_camera", lambda a: a.astype(np.float32) + 0.5), "images must be uint8 or whole"),
    "image shape": (_set("overhead_camera", lambda a: a[..., :2]), "images must be (H, W, 3)"),
}


@pytest.mark.parametrize("kind", sorted(DP_BAD))
def test_diffusion_policy_rejects_malformed(tmp_path, kind, capsys):
    edit, message = DP_BAD[kind]
    src = write_replay_buffer(tmp_path / "src.zarr", edit=edit)
    out = tmp_path / "out.zarr"
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_logs(src, "diffusion-policy", out)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src.zarr"]  # no temporary left behind either
    # The CLI says it in one line and exits 2.
    assert cli_main(["import", str(src), "--format", "diffusion-policy", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err and not out.exists()


def test_not_a_store_and_existing_output_untouched(tmp_path):
    junk = tmp_path / "junk.zarr"
    junk.write_text("not zarr")
    with pytest.raises(DatasetError, match="not a zarr v2 store"):
        import_logs(junk, "diffusion-policy", tmp_path / "out.zarr")
    out = tmp_path / "out.zarr"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    good = write_replay_buffer(tmp_path / "good.zarr")
    with pytest.raises(UserError, match="output exists"):
        import_logs(good, "diffusion-policy", out)
    bad = write_replay_buffer(tmp_path / "bad.zarr", edit=_drop("action"))
    with pytest.raises(UserError):
        import_logs(bad, "diffusion-policy", out, overwrite=True)
    with pytest.raises(UserError, match="not a store made by `cotrain import`"):
        import_logs(good, "diffusion-policy", out, overwrite=True)    # --overwrite replaces only an import
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    imported = tmp_path / "imported.zarr"
    import_logs(good, "diffusion-policy", imported)
    import_logs(good, "diffusion-policy", imported, overwrite=True)    # an earlier import: replaced


# ------------------------------------------------------------------ LeRobot fixtures
def _features(image_kind: str | None):
    feats = {
        "observation.state": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
        "observation.environment_state": {"dtype": "float32", "shape": [3], "names": ["x", "y", "theta"]},
        "action": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    if image_kind:
        feats["observation.image"] = {"dtype": image_kind, "shape": [3, 16, 16], "names": ["channels", "height", "width"]}
    return feats


def lerobot_episode(length: int, ep: int, fps: float) -> dict:
    t = np.arange(length) / fps
    return {
        "observation.state": np.stack([0.5 + 0.1 * t, 0.2 * t - ep], axis=1),
        "observation.environment_state": np.stack([0.6 + 0.05 * t, 0.1 + 0 * t, 3.0 + 0.5 * t], axis=1),
        "action": np.stack([0.52 + 0.1 * t, 0.2 * t - ep], axis=1),
        "timestamp": t,
        "frames": np.stack([np.full((16, 16, 3), (40 * ep + 20 * k) % 250, np.uint8) for k in range(length)]),
    }


def _table(eps: dict[int, dict], image_kind=None) -> pa.Table:
    cols = {k: [] for k in ("observation.state", "observation.environment_state", "action", "timestamp",
                            "frame_index", "episode_index", "index")}
    images, index = [], 0
    for ep, e in eps.items():
        n = len(e["timestamp"])
        for k in ("observation.state", "observation.environment_state", "action"):
            cols[k].extend(e[k].astype(np.float32).tolist())
        cols["timestamp"].extend(e["timestamp"].tolist())
        cols["frame_index"].extend(range(n))
        cols["episode_index"].extend([ep] * n)
        cols["index"].extend(range(index, index + n))
        index += n
        if image_kind == "image":
            import imageio.v3 as iio
            images.extend({"bytes": iio.imwrite("<bytes>", f, extension=".png"), "path": None} for f in e["frames"])
    table = pa.table(cols)
    if image_kind == "image":
        table = table.append_column("observation.image", pa.array(images))
    return table


def write_lerobot(path: Path, version="v2.1", fps=10.0, lengths=LENGTHS, image_kind=None, edit=None) -> Path:
    """A LeRobot dataset folder. `edit(eps, info, meta_rows)` may corrupt it before writing."""
    eps = {i: lerobot_episode(n, i, fps) for i, n in enumerate(lengths)}
    info = {"codebase_version": version, "fps": fps, "chunks_size": 1000, "features": _features(image_kind),
            "total_episodes": len(lengths)}
    if version.startswith("v2"):
        info["data_path"] = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
        info["video_path"] = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
    else:
        info["data_path"] = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
        info["video_path"] = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    meta_rows, start, t0 = [], 0, 0.0
    for i, n in enumerate(lengths):
        row = {"episode_index": i, "length": n, "tasks": ["push the T"]}
        if version == "v3.0":
            row.update({"data/chunk_index": 0, "data/file_index": 0, "dataset_from_index": start,
                        "dataset_to_index": start + n})
            if image_kind == "video":
                row.update({"videos/observation.image/chunk_index": 0, "videos/observation.image/file_index": 0,
                            "videos/observation.image/from_timestamp": t0,
                            "videos/observation.image/to_timestamp": t0 + n / fps})
        start, t0 = start + n, t0 + n / fps
        meta_rows.append(row)
    if edit is not None:
        edit(eps, info, meta_rows)
    (path / "meta").mkdir(parents=True)
    (path / "meta" / "info.json").write_text(json.dumps(info))
    if version.startswith("v2"):
        (path / "meta" / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in meta_rows))
        for ep, e in eps.items():
            f = path / info["data_path"].format(episode_chunk=0, episode_index=ep)
            f.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(_table({ep: e}, image_kind), f)
            if image_kind == "video":
                _write_video(path / info["video_path"].format(episode_chunk=0, video_key="observation.image",
                                                              episode_index=ep), e["frames"], fps)
    else:
        (path / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(meta_rows), path / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
        f = path / info["data_path"].format(chunk_index=0, file_index=0)
        f.parent.mkdir(parents=True)
        pq.write_table(_table(eps, image_kind), f)
        if image_kind == "video":
            _write_video(path / info["video_path"].format(video_key="observation.image", chunk_index=0, file_index=0),
                         np.concatenate([e["frames"] for e in eps.values()]), fps)
    return path


def _write_video(file: Path, frames: np.ndarray, fps: float) -> None:
    import imageio.v2 as iio
    file.parent.mkdir(parents=True, exist_ok=True)
    with iio.get_writer(str(file), "ffmpeg", fps=fps, codec="libx264", quality=10, macro_block_size=16,
                        ffmpeg_log_level="error") as w:
        for f in frames:
            w.append_data(f)


@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_lerobot_round_trip(tmp_path, version):
    src = write_lerobot(tmp_path / "src", version=version)
    import_logs(src, "lerobot", tmp_path / "out.zarr")
    store = EpisodeStore(tmp_path / "out.zarr")
    assert store.n_episodes == 2 and store.domain == "real"
    for i, n in enumerate(LENGTHS):
        ep, want = store.episode(i), lerobot_episode(n, i, 10.0)
        np.testing.assert_allclose(ep["agent_pos"], want["observation.state"], atol=1e-6)
        np.testing.assert_allclose(ep["slider_pose"], want["observation.environment_state"], atol=1e-6)
        np.testing.assert_allclose(ep["action"], want["action"], atol=1e-6)
    assert store.attrs["generator"]["source_info"]["codebase_version"] == version


@pytest.mark.parametrize("version,kind", [("v2.1", "image"), ("v2.1", "video"), ("v3.0", "video")])
def test_lerobot_images(tmp_path, version, kind):
    src = write_lerobot(tmp_path / "src", version=version, image_kind=kind)
    import_logs(src, "lerobot", tmp_path / "out.zarr")
    store = EpisodeStore(tmp_path / "out.zarr")
    for i, n in enumerate(LENGTHS):
        got, want = store.episode(i)["image"], lerobot_episode(n, i, 10.0)["frames"]
        assert got.shape == want.shape and got.dtype == np.uint8
        tol = 0 if kind == "image" else 6   # video is lossy; frames are flat grey levels 20 apart
        assert np.abs(got.astype(int) - want.astype(int)).max() <= tol


def test_lerobot_resamples_30hz_to_10hz(tmp_path):
    """At 30 fps every third frame lands on the 10 Hz grid; the angle crosses +pi and must not be averaged
    through 0."""
    def wrap_angle(eps, info, rows):
        for e in eps.values():
            th = e["observation.environment_state"][:, 2]
            e["observation.environment_state"][:, 2] = (th + math.pi) % (2 * math.pi) - math.pi
            e["timestamp"] = e["timestamp"] + 0.01   # timestamps need not start at zero
    src = write_lerobot(tmp_path / "src", fps=30.0, lengths=(31, 10), edit=wrap_angle)
    import_logs(src, "lerobot", tmp_path / "out.zarr")
    store = EpisodeStore(tmp_path / "out.zarr")
    assert store.episode_lengths.tolist() == [11, 4]
    ep = store.episode(0)
    t = np.arange(11) * 0.1
    np.testing.assert_allclose(ep["agent_pos"], np.stack([0.5 + 0.1 * t, 0.2 * t], axis=1), atol=1e-5)
    want_theta = (3.0 + 0.5 * t + math.pi) % (2 * math.pi) - math.pi
    np.testing.assert_allclose(np.cos(ep["slider_pose"][:, 2] - want_theta), 1.0, atol=1e-8)


def _edit_ep(key, fn, ep=1):
    def edit(eps, info, rows):
        eps[ep][key] = fn(eps[ep][key])
    return edit


def _lr_nan(a):
    a = a.copy()
    a[2, 0] = np.nan
    return a


def _lr_info(fn):
    return lambda eps, info, rows: fn(info)


def _lr_rows(fn):
    return lambda eps, info, rows: fn(rows)


LR_BAD = {
    "missing feature": (_lr_info(lambda i: i["features"].pop("observation.environment_state")),
                        "features.observation.environment_state: missing feature", "v2.1"),
    "bad version": (_lr_info(lambda i: i.update(codebase_version="v1.6")), "codebase_version must be", "v2.1"),
    "no fps": (_lr_info(lambda i: i.pop("fps")), "fps must be", "v2.1"),
    "nan": (_edit_ep("action", _lr_nan), "action: NaN or inf at row", "v2.1"),
    "length mismatch": (_lr_rows(lambda r: r[1].update(length=99)), "unequal lengths", "v2.1"),
    "empty episode v3": (_lr_rows(lambda r: r.append({**r[-1], "episode_index": 2, "length": 0,
                                                      "dataset_from_index": 12, "dataset_to_index": 12})),
                         "episode 2 is empty", "v3.0"),
    "non-monotone timestamps": (_edit_ep("timestamp", lambda t: t[::-1].copy()), "timestamps not monotone", "v2.1"),
    "non-monotone offsets v3": (_lr_rows(lambda r: r[1].update(dataset_from_index=2, dataset_to_index=9)),
                                "not monotone", "v3.0"),
    "wrong width": (lambda eps, info, rows: [e.update({"observation.environment_state": e[
        "observation.environment_state"][:, :2]}) for e in eps.values()], "column 2 out of range", "v2.1"),
}


@pytest.mark.parametrize("kind", sorted(LR_BAD))
def test_lerobot_rejects_malformed(tmp_path, kind):
    edit, message, version = LR_BAD[kind]
    src = write_lerobot(tmp_path / "src", version=version, edit=edit)
    out = tmp_path / "out.zarr"
    with pytest.raises(DatasetError, match=message):
        import_logs(src, "lerobot", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_lerobot_ragged_and_missing_video(tmp_path):
    src = write_lerobot(tmp_path / "a")
    table = pq.read_table(src / "data/chunk-000/episode_000001.parquet")
    state = table.column("observation.state").to_pylist()
    state[3] = [0.1, 0.2, 0.3]
    table = table.set_column(table.column_names.index("observation.state"), "observation.state", pa.array(state))
    pq.write_table(table, src / "data/chunk-000/episode_000001.parquet")
    with pytest.raises(DatasetError, match="unequal lengths: row"):
        import_logs(src, "lerobot", tmp_path / "out.zarr")

    src = write_lerobot(tmp_path / "b", image_kind="video")
    (src / "videos/chunk-000/observation.image/episode_000001.mp4").unlink()
    with pytest.raises(DatasetError, match="missing video file for episode 1"):
        import_logs(src, "lerobot", tmp_path / "out.zarr")
    (tmp_path / "c").mkdir()
    with pytest.raises(DatasetError, match="meta/info.json: missing file"):
        import_logs(tmp_path / "c", "lerobot", tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists()


def test_bad_mapping_file_is_a_config_error(tmp_path):
    from harness.core.errors import ConfigError
    src = write_replay_buffer(tmp_path / "src.zarr")
    for text, key in [("agent_pos: {key: state, columns: [0, 1, 2]}\n", "agent_pos.columns"),
                      ("action: {key: action, colums: [0, 1]}\n", "action.colums"),
                      ("rate_hz: -5\n", "rate_hz")]:
        mapping = tmp_path / "map.yaml"
        mapping.write_text(text)
        with pytest.raises(ConfigError, match=key if key != "rate_hz" else "rate_hz must be positive"):
            import_logs(src, "diffusion-policy", tmp_path / "out.zarr", mapping_path=mapping)
        assert not (tmp_path / "out.zarr").exists()


# ------------------------------------------------------------------ interop bugs (issue 13), reproduced first
def _numbered_frames(n: int, ep: int, hw=(4, 4)) -> np.ndarray:
    """Frame k of episode ep: red = k % 256, green = k // 256, blue = ep: every frame distinct."""
    k = np.arange(n)
    frames = np.zeros((n, *hw, 3), np.uint8)
    frames[..., 0] = (k % 256)[:, None, None]
    frames[..., 1] = (k // 256)[:, None, None]
    frames[..., 2] = ep
    return frames


def _pusher_episode(n: int, ep: int, fps: float = 10.0) -> dict:
    t = np.arange(n) / fps
    return {"observation.state": np.stack([0.5 + 0.001 * t, 0.01 * ep - 0.001 * t], axis=1),
            "observation.environment_state": np.stack([0.6 + 0.0005 * t, 0.02 + 0 * t, np.sin(t)], axis=1),
            "action": np.stack([0.51 + 0.001 * t, 0.01 * ep - 0.001 * t], axis=1)}


PUSHER_FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
    "observation.environment_state": {"dtype": "float32", "shape": [3], "names": ["x", "y", "theta"]},
    "action": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
}


@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_lerobot_float32_timestamps_at_10hz_pass_through(tmp_path, version):
    """LeRobot stores timestamps as float32. At 10 Hz the source is on the output grid and must pass through
    untouched: an absolute 1e-6 s tolerance failed on them (float32 rounding reaches ~2e-6 s after 32 s), so
    a 45 s episode was interpolated, lost its last frame, and got the previous frame's image at many steps."""
    from tests.lerobot_fixtures import write_dataset
    lengths = (450, 539)
    episodes = [{**_pusher_episode(n, i), "observation.image": _numbered_frames(n, i)} for i, n in enumerate(lengths)]
    features = {**PUSHER_FEATURES, "observation.image": {"dtype": "image", "shape": [4, 4, 3],
                                                          "names": ["height", "width", "channels"]}}
    src = write_dataset(tmp_path / "src", episodes, features, version=version)
    summary = import_logs(src, "lerobot", tmp_path / "out.zarr")
    assert summary.n_steps_out == summary.n_steps_in == sum(lengths)
    store = EpisodeStore(tmp_path / "out.zarr")
    assert store.episode_lengths.tolist() == list(lengths)
    for i, n in enumerate(lengths):
        got, want = store.episode(i), episodes[i]
        np.testing.assert_array_equal(got["agent_pos"], want["observation.state"].astype(np.float32))
        np.testing.assert_array_equal(got["slider_pose"], want["observation.environment_state"].astype(np.float32))
        np.testing.assert_array_equal(got["image"], want["observation.image"])   # each step its own frame


def test_resampling_tolerance_is_relative_to_the_time_step():
    from real_data.importers import resample
    f32 = lambda t: np.asarray(t, np.float32).astype(np.float64)   # noqa: E731 - timestamps as LeRobot has them
    # 10 Hz for an hour: on the grid, nothing lost.
    times = f32(np.arange(36000) / 10)
    assert resample.on_grid(times, 10.0) and len(resample.output_times(times, 10.0)) == 36000
    # 30 Hz for 50 s to 10 Hz: grid time k is source frame 3k exactly, for images (hold) and low-dim alike.
    times = f32(np.arange(1500) / 30)
    grid = resample.output_times(times, 10.0)
    assert len(grid) == 500
    np.testing.assert_array_equal(resample.hold_indices(times, grid), 3 * np.arange(500))
    values = np.arange(1500, dtype=np.float64)[:, None] * np.array([[1.0, -2.0]])
    np.testing.assert_array_equal(resample.resample_lowdim(times, values, grid), values[::3])
    # Extras: floating point interpolated, integers and booleans held.
    ints = np.arange(1500) % 7
    np.testing.assert_array_equal(resample.resample_any(times, ints, grid), ints[::3])
    np.testing.assert_array_equal(resample.resample_any(times, np.arange(1500.0)[:, None, None] * np.ones((1, 2, 2)),
                                                        grid)[:, 1, 1], np.arange(0, 1500, 3))
    # Halfway between samples is still interpolated.
    np.testing.assert_allclose(resample.resample_lowdim(np.array([0.0, 0.2]), np.array([[0.0], [2.0]]),
                                                        np.array([0.0, 0.1, 0.2])), [[0.0], [1.0], [2.0]])


def _jpeg2k_store(path: Path, cameras=("overhead_camera", "wrist_camera"), codec=None) -> tuple[Path, dict]:
    """A ReplayBuffer whose cameras are Jpeg2k-compressed, as diffusion_policy's real-robot stores are."""
    from imagecodecs.numcodecs import Jpeg2k
    write_replay_buffer(path, images=False)
    root = zarr.open_group(str(path), mode="r+", zarr_format=2)
    frames = {}
    for c, name in enumerate(cameras):
        frames[name] = np.concatenate([_numbered_frames(n, i + 10 * c, (8, 8)) for i, n in enumerate(LENGTHS)])
        arr = root["data"].create_array(name, shape=frames[name].shape, chunks=(1, 8, 8, 3), dtype="uint8",
                                        compressors=[Jpeg2k(reversible=True)])
        arr[...] = frames[name]
    return path, frames


def test_diffusion_policy_jpeg2k_cameras_import(tmp_path):
    """diffusion_policy's real-robot stores compress cameras with Jpeg2k (codec id imagecodecs_jpeg2k). That
    crashed the import with UnknownCodecError, even with `image: null`: listing arrays read every codec."""
    src, frames = _jpeg2k_store(tmp_path / "src.zarr")
    import_logs(src, "diffusion-policy", tmp_path / "out.zarr")
    store = EpisodeStore(tmp_path / "out.zarr")
    np.testing.assert_array_equal(store.data("image"), frames["overhead_camera"])
    np.testing.assert_array_equal(store.data("image.wrist_camera"), frames["wrist_camera"])
    mapping = tmp_path / "map.yaml"
    mapping.write_text("image: null\n")
    summary = import_logs(src, "diffusion-policy", tmp_path / "out2.zarr", mapping_path=mapping)
    assert dict(summary.fates)["data/overhead_camera"] == "-> data/image.overhead_camera (camera)"


def test_unknown_codec_is_one_line_or_a_named_drop(tmp_path, capsys):
    """An array whose codec is not installed: needed -> refused in one line naming array and codec (exit 2);
    not needed -> dropped and named in the summary, with a warning."""
    src = write_replay_buffer(tmp_path / "src.zarr")
    zarray = src / "data" / "overhead_camera" / ".zarray"
    meta = json.loads(zarray.read_text())
    meta["compressor"] = {"id": "imagecodecs_nosuch"}
    zarray.write_text(json.dumps(meta))
    out = tmp_path / "out.zarr"
    with pytest.raises(DatasetError, match="data/overhead_camera: cannot read: its codec 'imagecodecs_nosuch' is "
                                           "not installed"):
        import_logs(src, "diffusion-policy", out)
    assert cli_main(["import", str(src), "--format", "diffusion-policy", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "imagecodecs_nosuch" in err and not out.exists()
    mapping = tmp_path / "map.yaml"
    mapping.write_text("image: null\n")
    summary = import_logs(src, "diffusion-policy", out, mapping_path=mapping)
    assert dict(summary.fates)["data/overhead_camera"].startswith("dropped: cannot read: its codec 'imagecodecs_nosuch'")
    assert any("imagecodecs_nosuch" in w for w in summary.warnings)
    assert "image" not in EpisodeStore(out).data_keys


def test_diffusion_policy_keeps_every_key(tmp_path):
    """target, keypoint, n_contacts, further cameras and per-episode meta arrays were dropped silently."""
    def add(arrays, ends):
        n = len(arrays["action"])
        arrays["keypoint"] = np.random.default_rng(0).normal(size=(n, 9, 2)).astype(np.float32)
        arrays["n_contacts"] = (np.arange(n) % 3)[:, None].astype(np.float32)
        arrays["wrist_camera"] = arrays["overhead_camera"][:, ::-1].copy()
        arrays["label"] = np.array(["x"] * n)
        return arrays, ends
    src = write_replay_buffer(tmp_path / "src.zarr", edit=add)
    root = zarr.open_group(str(src), mode="r+", zarr_format=2)
    root["meta"].create_array("operator", shape=(2,), dtype="int64")[...] = [7, 9]
    root["meta"].create_array("bounds", shape=(2, 2), dtype="float64")[...] = 0.0
    summary = import_logs(src, "diffusion-policy", tmp_path / "out.zarr")
    fates = dict(summary.fates)
    assert fates == {
        "meta/episode_ends": "used: episode boundaries (2 episodes)",
        "data/state": "-> data/agent_pos (columns 0, 1); column 2 not imported",
        "data/slider_state": "-> data/slider_pose (columns 0, 1, 2)",
        "data/action": "-> data/action (columns 0, 1)",
        "data/overhead_camera": "-> data/image",
        "data/wrist_camera": "-> data/image.wrist_camera (camera)",
        "data/keypoint": "-> data/extra.keypoint",
        "data/n_contacts": "-> data/extra.n_contacts",
        "data/target": "-> data/extra.target",
        "data/label": "dropped: not numeric (dtype <U1)",
        "meta/operator": "-> meta/extra.operator",
        "meta/bounds": "dropped: not one value per episode (shape (2, 2), 2 episodes)",
    }
    store = EpisodeStore(tmp_path / "out.zarr")
    raw = zarr.open_group(str(src), mode="r", zarr_format=2)
    for key in ("keypoint", "n_contacts", "target"):
        np.testing.assert_array_equal(store.data(f"extra.{key}"), np.asarray(raw[f"data/{key}"][:], np.float32))
    np.testing.assert_array_equal(store.data("image.wrist_camera"), raw["data/wrist_camera"][:])
    assert store.meta("extra.operator").tolist() == [7, 9]
    assert [k for k, _ in store.attrs["generator"]["source_info"]["keys"]] == list(fates)
    text = "\n".join(summary.lines())
    assert all(key in text for key in fates)


def _pusht_zip(path: Path) -> Path:
    """diffusion_policy's pusht.zip: a zip of the folder pusht/pusht_cchi_v7_replay.zarr; PushT units are
    pixels of a 512 x 512 window, `img` is float32 holding 0..255, state = agent x, y, block x, y, angle."""
    folder = path.parent / "pusht_src" / "pusht" / "pusht_cchi_v7_replay.zarr"
    rng = np.random.default_rng(1)
    n = 12
    state = np.column_stack([rng.uniform(0, 512, (n, 4)), rng.uniform(-np.pi, np.pi, n)]).astype(np.float32)
    arrays = {"state": state, "action": rng.uniform(0, 512, (n, 2)).astype(np.float32),
              "keypoint": rng.uniform(0, 512, (n, 9, 2)).astype(np.float32),
              "n_contacts": rng.integers(0, 3, (n, 1)).astype(np.float32),
              "img": rng.integers(0, 256, (n, 6, 6, 3)).astype(np.float32)}
    root = zarr.open_group(str(folder), mode="w", zarr_format=2)
    for key, value in arrays.items():
        root.require_group("data").create_array(key, shape=value.shape, dtype=value.dtype)[...] = value
    root.require_group("meta").create_array("episode_ends", shape=(2,), dtype="int64")[...] = [5, 12]
    with zipfile.ZipFile(path, "w") as zf:
        base = path.parent / "pusht_src"
        for f in sorted(base.rglob("*")):
            zf.write(f, f.relative_to(base).as_posix() + ("/" if f.is_dir() else ""))
    return path, arrays


PUSHT_MAP = """\
# PushT: pixels (512 px = 0.8 m here) -> metres, centred on the workspace
agent_pos:   {key: state, columns: [0, 1], scale: 0.0015625, offset: [0.2, -0.4]}
slider_pose: {key: state, columns: [2, 3, 4], scale: [0.0015625, 0.0015625, 1.0], offset: [0.2, -0.4, 0.0]}
action:      {key: action, scale: 0.0015625, offset: [0.2, -0.4]}
image:       img
"""


def test_pusht_zip_of_a_folder_with_scale_and_offset(tmp_path):
    """pusht.zip (a zip of a folder) was refused as "not a zarr v2 store"; with no scale the pixels import
    next to metres without a word."""
    src, arrays = _pusht_zip(tmp_path / "pusht.zip")
    mapping = tmp_path / "pusht.yaml"
    mapping.write_text("agent_pos: {key: state, columns: [0, 1]}\nslider_pose: {key: state, columns: [2, 3, 4]}\n"
                       "image: img\n")
    summary = import_logs(src, "diffusion-policy", tmp_path / "raw.zarr", mapping_path=mapping)
    assert any("pixels?" in w and "agent_pos" in w for w in summary.warnings)
    mapping.write_text(PUSHT_MAP)
    summary = import_logs(src, "diffusion-policy", tmp_path / "out.zarr", mapping_path=mapping)
    assert summary.warnings == []
    store = EpisodeStore(tmp_path / "out.zarr")
    s = 0.0015625
    np.testing.assert_allclose(store.data("agent_pos"), arrays["state"][:, :2] * s + [0.2, -0.4], rtol=1e-6)
    np.testing.assert_allclose(store.data("slider_pose"), arrays["state"][:, 2:] * [s, s, 1] + [0.2, -0.4, 0],
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(store.data("image"), arrays["img"].astype(np.uint8))
    np.testing.assert_array_equal(store.data("extra.keypoint"), arrays["keypoint"])   # kept in source units
    fates = dict(summary.fates)
    assert fates["data/state"] == ("-> data/agent_pos (columns 0, 1; scale 0.0015625; offset [0.2, -0.4]), "
                                   "data/slider_pose (columns 2, 3, 4; scale [0.0015625, 0.0015625, 1.0]; "
                                   "offset [0.2, -0.4, 0.0])")
    assert store.attrs["generator"]["source_info"]["zip_folder"] == "pusht/pusht_cchi_v7_replay.zarr"


def test_lerobot_keeps_every_key_and_finds_a_differently_named_camera(tmp_path):
    """A camera named observation.images.top (LeRobot's common name) was skipped with no warning; extra
    features, task strings, feature names, robot type and episode metadata were dropped."""
    from tests.lerobot_fixtures import write_dataset
    lengths = (6, 4)
    episodes = [{**_pusher_episode(n, i), "observation.images.top": _numbered_frames(n, i),
                 "next.reward": np.linspace(0, 1, n), "observation.velocity": np.ones((n, 2)) * i,
                 "task_index": np.full(n, i, np.int64)} for i, n in enumerate(lengths)]
    features = {**PUSHER_FEATURES,
                "observation.images.top": {"dtype": "image", "shape": [4, 4, 3], "names": ["height", "width", "channels"]},
                "next.reward": {"dtype": "float32", "shape": [1], "names": None},
                "observation.velocity": {"dtype": "float32", "shape": [2], "names": ["vx", "vy"]},
                "language": {"dtype": "string", "shape": [1], "names": None}}
    src = write_dataset(tmp_path / "src", episodes, features, tasks=["push the T", "push it again"],
                        episode_meta=[{"success": True, "operator": "ann"}, {"success": False, "operator": "bob"}])
    summary = import_logs(src, "lerobot", tmp_path / "out.zarr")
    fates = dict(summary.fates)
    assert fates["observation.images.top"].startswith("-> data/image (the only camera")
    assert any("observation.images.top" in w and "only camera" in w for w in summary.warnings)
    assert fates["next.reward"] == "-> data/extra.next.reward"
    assert fates["observation.velocity"] == "-> data/extra.observation.velocity"
    assert fates["language"] == "dropped: dtype 'string' is not numeric"
    assert fates["task_index"].startswith("-> data/extra.task_index")
    assert fates["meta/episodes: success"] == "-> meta/extra.success"
    assert fates["meta/episodes: operator"] == "-> meta/extra.operator"     # text per episode is kept
    assert fates["meta/tasks.parquet"].startswith("kept in attrs")
    assert set(fates) >= set(features) | {"timestamp", "frame_index", "episode_index", "index", "task_index"}
    store = EpisodeStore(tmp_path / "out.zarr")
    np.testing.assert_array_equal(store.episode(1)["image"], episodes[1]["observation.images.top"])
    np.testing.assert_allclose(store.episode(0)["extra.next.reward"], np.linspace(0, 1, 6), atol=1e-7)
    assert store.data("extra.task_index").tolist() == [0] * 6 + [1] * 4
    assert store.meta("extra.success").tolist() == [True, False]
    assert store.meta("extra.operator").tolist() == ["ann", "bob"]
    info = store.attrs["generator"]["source_info"]
    assert info["robot_type"] == "so100" and info["tasks"] == {"0": "push the T", "1": "push it again"}
    assert info["features"]["observation.velocity"]["names"] == ["vx", "vy"]


def test_lerobot_several_cameras_none_named(tmp_path):
    from tests.lerobot_fixtures import write_dataset
    cam = {"dtype": "image", "shape": [4, 4, 3], "names": ["height", "width", "channels"]}
    episodes = [{**_pusher_episode(5, 0), "observation.images.top": _numbered_frames(5, 0),
                 "observation.images.wrist": _numbered_frames(5, 9)}]
    src = write_dataset(tmp_path / "src", episodes, {**PUSHER_FEATURES, "observation.images.top": cam,
                                                     "observation.images.wrist": cam}, version="v2.1")
    summary = import_logs(src, "lerobot", tmp_path / "out.zarr")
    assert any("no data/image" in w and "observation.images.wrist" in w for w in summary.warnings)
    store = EpisodeStore(tmp_path / "out.zarr")
    assert "image" not in store.data_keys
    np.testing.assert_array_equal(store.data("image.wrist"), episodes[0]["observation.images.wrist"])
    mapping = tmp_path / "map.yaml"
    mapping.write_text("image: observation.images.wrist\ndrop: [observation.images.top]\n")
    summary = import_logs(src, "lerobot", tmp_path / "out2.zarr", mapping_path=mapping)
    store = EpisodeStore(tmp_path / "out2.zarr")
    assert sorted(store.data_keys) == ["action", "agent_pos", "extra.task_index", "image", "slider_pose"]
    assert dict(summary.fates)["observation.images.top"] == "dropped: listed in the mapping's drop"


def test_mapping_scale_and_offset_are_checked(tmp_path):
    from harness.core.errors import ConfigError
    src = write_replay_buffer(tmp_path / "src.zarr")
    for text, match in [("action: {key: action, scale: [1, 2, 3]}\n", "action.scale: must be one number or 2"),
                        ("agent_pos: {key: state, columns: [0, 1], offset: [0, .nan]}\n", "agent_pos.offset"),
                        ("slider_pose: {key: slider_state, scale: 0}\n", "slider_pose.scale: must not be 0"),
                        ("extras: maybe\n", "extras")]:
        (tmp_path / "m.yaml").write_text(text)
        with pytest.raises(ConfigError, match=match):
            import_logs(src, "diffusion-policy", tmp_path / "out.zarr", mapping_path=tmp_path / "m.yaml")
    assert not (tmp_path / "out.zarr").exists()
