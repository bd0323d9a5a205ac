"""eval/window_profile.py: the features of the corrupt windows, and the sigma_n = 0 profile table."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_stores import write_store  # noqa: E402

from eval.window_profile import CONTACT_GAP, profile_rows, window_features  # noqa: E402
from harness.learning.annotations import AnnotatedDataset  # noqa: E402
from harness.core.store import EpisodeStore  # noqa: E402
from harness.study.report import read_annotated_episodes  # noqa: E402
from harness.learning.windows import WindowSpec, make_windows  # noqa: E402
from sim_envs.geometry import TASK, pusher_slider_distance  # noqa: E402


def test_features_describe_each_window_at_its_decision_step(tmp_path):
    path = write_store(tmp_path / "sim.zarr", "sim", 3, length=30, seed=4)
    store, spec = EpisodeStore(path), WindowSpec(2, 8, 4)
    w = make_windows(store.episode_ends, spec)
    sigma_n = np.where(w.episode == 0, 0.0, np.where(w.episode == 1, 0.3, np.inf))
    ds = AnnotatedDataset(str(path), 3, w.episode, w.t0, sigma_n)
    f = window_features(read_annotated_episodes(path, ds), ds, spec)
    assert all(len(v) == len(w) for v in f.values())
    first = np.flatnonzero(w.episode == 1)
    phase = f["phase"][first]
    assert phase.min() >= 0 and phase.max() <= 1 and np.all(np.diff(phase) >= 0)   # runs through the episode
    k = first[5]
    step = store.episode_ends[0] + w.t0[k] + spec.n_obs - 1
    pose, pusher = store.data("slider_pose")[step], store.data("agent_pos")[step]
    assert f["goal_distance"][k] == pytest.approx(np.hypot(pose[0] - TASK.goal[0], pose[1] - TASK.goal[1]))
    assert f["in_contact"][k] == float(pusher_slider_distance(pusher, pose) <= CONTACT_GAP)
    chunk = store.data("action")[w.steps([k])[0]]
    assert f["pusher_speed"][k] == pytest.approx(np.linalg.norm(np.diff(chunk, axis=0), axis=1).mean() * TASK.control_hz)
    rows = {(r[1], r[2]): r for r in profile_rows(f, sigma_n, "gcs")}
    assert rows[("phase", "sigma_n = 0")][3] == np.sum(w.episode == 0)
    assert rows[("phase", "never")][3] == np.sum(w.episode == 2) and rows[("phase", "all")][3] == len(w)
    assert rows[("goal_distance", "sigma_n = 0")][4] == pytest.approx(f["goal_distance"][w.episode == 0].mean())
