"""Training windows cut from episodes, with edge padding as diffusion_policy does (numpy only).

A window is `horizon` consecutive steps of one episode. Its first `n_obs` steps are the observation
history, the step `n_obs - 1` is "now", and the policy predicts actions for all `horizon` steps but executes
`n_action` of them starting at "now". So that the first steps of an episode (no history yet) and its last
steps (no future) are trained on too, windows may start up to `n_obs - 1` steps before the episode and end
up to `n_action - 1` steps after it; the missing steps repeat the first / last step (edge padding).

A window is named by (episode, t0): t0 is the step (relative to the episode start, possibly negative)
where the window begins. This pair is also what the annotations store records, so the trainer can find
the classifier's sigma_n for each of its windows.
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class WindowSpec:
    n_obs: int = 2          # observation history steps
    horizon: int = 16       # predicted action steps
    n_action: int = 8       # executed action steps (from the current step on)

    def __post_init__(self):
        if self.n_obs < 1 or self.horizon < 1 or self.n_action < 1:
            raise ValueError("n_obs, horizon and n_action must be >= 1")
        if self.n_obs - 1 + self.n_action > self.horizon:
            raise ValueError(f"n_obs - 1 + n_action ({self.n_obs - 1 + self.n_action}) must be <= horizon "
                             f"({self.horizon}): the executed actions must lie inside the predicted horizon")

    @property
    def pad_before(self) -> int:
        return self.n_obs - 1

    @property
    def pad_after(self) -> int:
        return self.n_action - 1


@dataclasses.dataclass
class WindowIndex:
    """All windows of a set of episodes. episode (N,) int64, t0 (N,) int64; episode_ends as in the store."""
    spec: WindowSpec
    episode_ends: np.ndarray   # (E,) cumulative step counts of the episodes the arrays hold
    episode: np.ndarray        # (N,)
    t0: np.ndarray             # (N,)

    def __len__(self) -> int:
        return len(self.episode)

    @property
    def episode_starts(self) -> np.ndarray:
        return np.concatenate([[0], self.episode_ends[:-1]]).astype(np.int64)

    def steps(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Global step indices of windows `rows` (all if None), edge-padded: (n, horizon) int64."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows)
        ep = self.episode[rows]
        starts = self.episode_starts[ep]
        lengths = self.episode_ends[ep] - starts
        local = self.t0[rows, None] + np.arange(self.spec.horizon)[None, :]    # (n, horizon)
        local = np.clip(local, 0, lengths[:, None] - 1)
        return starts[:, None] + local

    def select_episodes(self, episodes) -> np.ndarray:
        """Rows of the windows that belong to the given episodes."""
        return np.flatnonzero(np.isin(self.episode, np.asarray(list(episodes), dtype=np.int64)))


def make_windows(episode_ends: np.ndarray, spec: WindowSpec) -> WindowIndex:
    """Every window of every episode, ordered by (episode, t0)."""
    ends = np.asarray(episode_ends, dtype=np.int64)
    lengths = np.diff(np.concatenate([[0], ends]))
    eps, t0s = [], []
    for e, length in enumerate(lengths):
        # first window starts pad_before steps early; the last one ends pad_after steps late
        first, last = -spec.pad_before, int(length) - spec.horizon + spec.pad_after
        last = max(last, first)  # a very short episode still gives one (padded) window
        t0 = np.arange(first, last + 1, dtype=np.int64)
        eps.append(np.full(len(t0), e, dtype=np.int64))
        t0s.append(t0)
    episode = np.concatenate(eps) if eps else np.zeros(0, np.int64)
    t0 = np.concatenate(t0s) if t0s else np.zeros(0, np.int64)
    return WindowIndex(spec, ends, episode, t0)


def split_episodes(n_episodes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) episode ids. Val gets round(fraction * n) episodes, at least 1 if fraction > 0 and n >= 2."""
    n_val = int(round(val_fraction * n_episodes))
    if val_fraction > 0 and n_episodes >= 2:
        n_val = max(n_val, 1)
    n_val = min(n_val, n_episodes - 1) if n_episodes else 0
    perm = np.random.default_rng([seed, 0xA1]).permutation(n_episodes)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def obs_features(agent_pos: np.ndarray, slider_pose: np.ndarray) -> np.ndarray:
    """Per-step low-dim observation: pusher xy, slider xy, cos(theta), sin(theta). (..., 6) float32.

    theta enters as cos/sin so that the wrap at +-pi is not a jump the network must learn.
    """
    theta = slider_pose[..., 2]
    return np.concatenate([agent_pos[..., :2], slider_pose[..., :2],
                           np.cos(theta)[..., None], np.sin(theta)[..., None]], axis=-1).astype(np.float32)


OBS_DIM = 6
# Columns of obs_features that each low-dim observation fills (data.low_dim chooses which a policy sees)
LOW_DIM_COLUMNS = {"agent_pos": (0, 1), "slider_pose": (2, 3, 4, 5)}
ACTION_DIM = 2
