"""Who are the corrupt windows the classifier calls clean already at sigma = 0 (sigma_n = 0)?

Under truncated per-datapoint (ADP) these windows alone share the lowest noise levels with the clean data
(docs/objectives.md section 15), so what they look like decides what the policy learns there. Each
window is described at its decision step (the last observation step, t0 + n_obs - 1) by:
  phase           where it lies in its episode, 0 = first step, 1 = last
  pusher_speed    mean commanded pusher speed over its action chunk (m/s)
  in_contact      the pusher within 5 mm of the T at that step (share)
  goal_distance   distance of the T's position from the goal (m)
and each feature is summarised for the sigma_n = 0 windows against all windows of the dataset.
"""
from __future__ import annotations

import numpy as np

from harness.core.errors import DatasetError
from harness.learning.annotations import AnnotatedDataset
from harness.learning.windows import make_windows, WindowSpec
from sim_envs.geometry import pusher_slider_distance, TASK

CONTACT_GAP = 0.005   # m: the pusher counts as touching the T within this gap
FEATURES = ("phase", "pusher_speed", "in_contact", "goal_distance")


def window_features(episodes: list[dict], ds: AnnotatedDataset, spec: WindowSpec, where="store") -> dict[str, np.ndarray]:
    """(N,) per feature for the annotated windows of `ds`, in its window order.

    episodes: the episodes the classifier read, in its order ({action, agent_pos, slider_pose} arrays each):
    the store's *kept* ones (successful, the first n: training_data.kept_episodes), which the study report
    reads (harness/study/report.py); a store with a failed episode (teleop demos keep theirs) has its later
    episodes one further on, so only that list numbers them as the classifier did. where: the store, named
    when its windows are not the annotated ones."""
    ends = np.cumsum([len(e["action"]) for e in episodes]).astype(np.int64)   # (n,) as the classifier's
    windows = make_windows(ends, spec)
    if not (len(episodes) == ds.n_episodes and np.array_equal(windows.episode, ds.episode)
            and np.array_equal(windows.t0, ds.t0)):
        raise DatasetError(where, None, "its windows are not the annotated ones (the store changed after "
                           "it was annotated); re-annotate")
    starts = windows.episode_starts[ds.episode]
    lengths = ends[ds.episode] - starts
    local = np.clip(ds.t0 + spec.n_obs - 1, 0, lengths - 1)
    step = starts + local                                                     # (N,) decision step
    action, agent_pos, slider_pose = (np.concatenate([e[k] for e in episodes]) if episodes else np.zeros((0, 2))
                                      for k in ("action", "agent_pos", "slider_pose"))
    chunk = action[windows.steps()]                                           # (N, horizon, 2)
    speed = np.linalg.norm(np.diff(chunk, axis=1), axis=-1).mean(axis=1) / TASK.control_dt
    pusher, slider = agent_pos[step], slider_pose[step]
    gap = np.array([pusher_slider_distance(p, s) for p, s in zip(pusher, slider)])
    return {"phase": local / np.maximum(lengths - 1, 1), "pusher_speed": speed,
            "in_contact": (gap <= CONTACT_GAP).astype(float),
            "goal_distance": np.linalg.norm(slider[:, :2] - np.asarray(TASK.goal[:2]), axis=1)}


def profile_rows(features: dict[str, np.ndarray], sigma_n: np.ndarray, dataset: str) -> list[list]:
    """CSV rows: dataset, feature, group, windows, mean, q25, median, q75 for the groups sigma_n = 0,
    0 < sigma_n < inf, never, and all."""
    groups = {"sigma_n = 0": sigma_n == 0, "0 < sigma_n < inf": np.isfinite(sigma_n) & (sigma_n > 0),
              "never": np.isinf(sigma_n), "all": np.ones(len(sigma_n), bool)}
    rows = []
    for name in FEATURES:
        values = features[name]
        for group, mask in groups.items():
            v = values[mask]
            stats = [float(v.mean()), *np.quantile(v, [0.25, 0.5, 0.75]).tolist()] if len(v) else [None] * 4
            rows.append([dataset, name, group, int(mask.sum()), *stats])
    return rows


PROFILE_HEADER = ["dataset", "feature", "group", "windows", "mean", "q25", "median", "q75"]


def zero_window_profile(found: dict[str, tuple[AnnotatedDataset, list[dict]]], spec: WindowSpec
                        ) -> tuple[list[list], dict]:
    """(CSV rows, {dataset: (features, sigma_n)}) for every annotated corrupt dataset in `found`
    (name -> (its annotations, its annotated episodes), as the study report reads them)."""
    rows, data = [], {}
    for name, (ds, episodes) in found.items():
        features = window_features(episodes, ds, spec, ds.path)
        rows += profile_rows(features, ds.sigma_n, name)
        data[name] = (features, ds.sigma_n)
    return rows, data
