"""Which episodes the trainer (and the classifier) take from a store."""
import numpy as np
import pytest

from harness.core.errors import DatasetError
from harness.learning.train_config import DatasetSpec
from harness.learning.training_data import load_dataset
from tests.helpers import write_store


def test_failed_episodes_are_skipped_and_max_episodes_counts_kept_ones(tmp_path):
    path = tmp_path / "s.zarr"
    write_store(path, n_episodes=5, lengths=[3, 4, 5, 6, 7])     # success = [F, T, F, T, F], values = index
    raw = load_dataset(DatasetSpec(str(path), max_episodes=2), [], "s")
    assert list(raw.episode_ends) == [4, 4 + 6]
    assert np.array_equal(raw.action[:, 0], [1.0] * 4 + [3.0] * 6)    # episodes 1 and 3, in order
    every = load_dataset(DatasetSpec(str(path), max_episodes=2, only_success=False), [], "s")
    assert np.array_equal(every.action[:, 0], [0.0] * 3 + [1.0] * 4)


def test_a_store_without_successful_episodes_is_refused(tmp_path):
    path = tmp_path / "s.zarr"
    write_store(path, n_episodes=1)                               # episode 0 failed
    with pytest.raises(DatasetError, match="none has meta/success true"):
        load_dataset(DatasetSpec(str(path)), [], "s")
