"""Our stores as diffusion_policy's own tools see them: an uncommitted tail (which its ReplayBuffer refuses)
cut off by `cotrain validate --repair`, and episodes appended with its `add_episode` (which writes data and
episode_ends only, no per-episode metadata) accepted and reported by the validator."""
from __future__ import annotations

import numpy as np
import pytest
import zarr

from harness.cli import main
from harness.core.errors import DatasetError
from harness.core.store import EpisodeStore, validate
from harness.core.writer import EpisodeWriter, repair
from tests.helpers import write_store


def dp_accepts(path) -> bool:
    """diffusion_policy's ReplayBuffer.__init__ check: every data array is exactly episode_ends[-1] long."""
    root = zarr.open_group(str(path), mode="r")
    ends = root["meta/episode_ends"][:]
    return len(ends) > 0 and all(arr.shape[0] == ends[-1] for _, arr in root["data"].arrays())


def dp_add_episode(path, data: dict) -> None:
    """What diffusion_policy's ReplayBuffer.add_episode does to a zarr store: grow every given data array,
    write the values, append the new end. No meta/<key> besides episode_ends."""
    root = zarr.open_group(str(path), mode="r+")
    ends = root["meta/episode_ends"]
    start = int(ends[-1]) if ends.shape[0] else 0
    n = len(next(iter(data.values())))
    for key, value in data.items():
        arr = root["data"][key]
        arr.resize((start + n, *arr.shape[1:]))
        arr[start:] = value
    ends.resize((ends.shape[0] + 1,))
    ends[-1] = start + n


def test_uncommitted_tail_is_reported_and_repaired(tmp_path, capsys):
    path = tmp_path / "s.zarr"
    write_store(path, n_episodes=3)                       # lengths 4, 5, 6
    root = zarr.open_group(str(path), mode="r+")
    before = {k: np.asarray(a[:]) for k, a in root["data"].arrays()}
    for _, arr in root["data"].arrays():                  # a writer killed mid-append
        arr.resize((arr.shape[0] + 3, *arr.shape[1:]))
    root["meta/seed"].resize((4,))
    summary = validate(path)
    assert summary.uncommitted_steps == 3 and not dp_accepts(path)
    assert any("--repair" in line for line in summary.lines())
    assert main(["validate", str(path), "--repair"]) == 0
    out = capsys.readouterr().out
    assert "3 from data/action" in out and "1 from meta/seed" in out and out.rstrip().endswith("valid")
    assert dp_accepts(path) and validate(path).uncommitted_steps == 0
    root = zarr.open_group(str(path), mode="r")
    for key, values in before.items():
        np.testing.assert_array_equal(root["data"][key][:], values)
    assert main(["validate", str(path), "--repair"]) == 0
    assert "nothing to cut off" in capsys.readouterr().out


def test_repair_refuses_a_store_being_written(tmp_path, capsys):
    path = tmp_path / "s.zarr"
    write_store(path, n_episodes=1)
    with EpisodeWriter(path, domain="target", source="teleop_scripted", env="target", env_params={}, generator={}):
        with pytest.raises(DatasetError, match="another writer"):
            repair(path)
        assert main(["validate", str(path), "--repair"]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_episodes_appended_by_diffusion_policy(tmp_path, capsys):
    path = tmp_path / "s.zarr"
    write_store(path, n_episodes=3)
    dp_add_episode(path, {"agent_pos": np.ones((7, 2)), "slider_pose": np.ones((7, 3)), "action": np.ones((7, 2))})
    assert dp_accepts(path)
    summary = validate(path)                              # was: "meta/seed: has 3 values for 4 episodes"
    assert summary.n_episodes == 4 and summary.partial_meta == {"seed": 3, "success": 3}
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "meta/seed has values for the first 3 of 4 episodes" in out
    store = EpisodeStore(path)
    np.testing.assert_array_equal(store.episode(3)["action"], np.ones((7, 2)))
    with pytest.raises(DatasetError, match="meta/seed: has values for 3 of 4 episodes"):
        store.meta("seed")                                # never silently paired with the wrong episodes
    assert store.meta("success", missing=True).tolist() == [False, True, False, True]
    assert main(["info", str(path)]) == 0                 # the appended episode's values show as "-"
    info = capsys.readouterr().out
    assert "success    33.3% of 3 episodes with a value" in info
    assert info.rstrip().splitlines()[-1].split()[-2:] == ["-", "-"]
    # Training keeps the appended episode (no success value) and drops the known failures.
    from harness.learning.training_data import load_dataset
    from harness.learning.train_config import DatasetSpec
    raw = load_dataset(DatasetSpec(path=str(path), role="clean"), image_keys=[], name="d")
    assert raw.episode_ends.tolist() == [5, 5 + 7]
    # Our writer will not append after them (its values would be paired with the wrong episodes).
    with pytest.raises(DatasetError, match="meta/seed: has values for 3 of 4 episodes"):
        EpisodeWriter(path, domain="target", source="teleop_scripted", env="target", env_params={}, generator={})
