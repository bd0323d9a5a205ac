"""Tiny synthetic dataset stores for the learning tests (real zarr, real writer; no simulation).

Each episode: the pusher moves from a random start on a smooth curve; the action is the next pusher
position. "sim" episodes add a fast wiggle to the actions (a different action style), which is what the
clean-vs-corrupt classifier has to find.
"""
from __future__ import annotations

import numpy as np

from harness.core.writer import EpisodeWriter


def episode(rng: np.random.Generator, length: int, wiggle: float) -> dict[str, np.ndarray]:
    t = np.arange(length + 1, dtype=np.float64)
    start = rng.uniform([0.4, -0.2], [0.6, 0.1])
    heading = rng.uniform(-np.pi, np.pi)
    path = start + 0.008 * t[:, None] * np.array([np.cos(heading), np.sin(heading)]) \
        + 0.01 * np.sin(t / 4)[:, None] * np.array([-np.sin(heading), np.cos(heading)])
    agent = path[:-1]
    action = path[1:] + wiggle * np.sin(2.5 * t[1:])[:, None] * np.array([1.0, -1.0])
    slider = np.column_stack([np.full(length, start[0] + 0.05), np.full(length, start[1]),
                              np.full(length, heading)])
    return {"agent_pos": agent, "slider_pose": slider, "action": action}


def write_store(path, domain: str, n_episodes: int, length: int = 24, wiggle: float = 0.0, seed: int = 0,
                image_hw: tuple[int, int] | None = None):
    rng = np.random.default_rng(seed)
    source = "gcs_kinematic" if domain == "sim" else "teleop_scripted"
    with EpisodeWriter(path, domain=domain, source=source, env="synthetic", env_params={},
                       generator={"test": True}) as w:
        for e in range(n_episodes):
            data = episode(rng, length, wiggle)
            if image_hw is not None:
                data["image"] = rng.integers(0, 255, (length, *image_hw, 3), dtype=np.uint8)
            w.add_episode(data, meta={"seed": e, "success": True})
    return path


def write_noisy_copy(src, path, noise: float | np.ndarray, seed: int = 0, copies: int = 1):
    """Corrupt data that are, by construction, clean data plus Gaussian noise: every episode of the store
    `src` again (`copies` times), with N(0, noise^2) added to each action coordinate (raw units; an array
    gives one standard deviation per action dimension)."""
    from harness.core.store import EpisodeStore

    rng = np.random.default_rng(seed)
    store = EpisodeStore(src)
    with EpisodeWriter(path, domain="sim", source="gcs_kinematic", env="synthetic", env_params={},
                       generator={"test": True, "noise_copy_of": str(src)}) as w:
        for _ in range(copies):
            for e in range(store.n_episodes):
                data = store.episode(e, ["agent_pos", "slider_pose", "action"])
                data["action"] = data["action"] + noise * rng.standard_normal(data["action"].shape)
                w.add_episode(data, meta={"seed": e, "success": True})
    return path
