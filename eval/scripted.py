"""A batched, chunked stand-in for the diffusion policy: for tests and the evaluation-speed benchmark.

It has the diffusion policy's interface (`n_obs`, `n_action`, `horizon`, `act(obs_history, noise=...)`),
so a rollout cannot tell them apart. Each chunk is planned open loop from the latest observation with
`sim_envs.scripted.ScriptedPusher` (orbit behind the T, push it toward the goal), assuming the slider stays
put. `noise_scale` > 0 adds the given per-sample noise to the actions, which makes it stochastic in the same
way as the diffusion sampler: its randomness comes only from the `noise` argument.
"""
from __future__ import annotations

import numpy as np

from sim_envs.scripted import ScriptedPusher


class ChunkedScriptedPolicy:
    def __init__(self, n_obs: int = 2, n_action: int = 8, noise_scale: float = 0.0):
        self.n_obs = n_obs
        self.n_action = n_action
        self.horizon = n_action
        self.noise_scale = noise_scale
        self.calls = 0          # act() calls, i.e. batched queries (for tests of batching)

    def act(self, obs_history: dict, noise: np.ndarray | None = None) -> np.ndarray:
        """{agent_pos (B, n_obs, 2), slider_pose (B, n_obs, 3)} -> (B, n_action, 2)."""
        self.calls += 1
        agent = np.asarray(obs_history["agent_pos"])[:, -1]       # (B, 2) latest
        slider = np.asarray(obs_history["slider_pose"])[:, -1]    # (B, 3)
        out = np.zeros((len(agent), self.n_action, 2))
        for b in range(len(agent)):
            pusher = ScriptedPusher()
            pos = agent[b].copy()
            for t in range(self.n_action):
                pos = pusher.act({"agent_pos": pos, "slider_pose": slider[b]})
                out[b, t] = pos
        if noise is not None and self.noise_scale > 0:
            out = out + self.noise_scale * np.asarray(noise)[:, : self.n_action]
        return out
