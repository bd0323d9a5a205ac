"""Small builders shared by tests: real stores written through the real writer."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.core.writer import EpisodeWriter
from real_data.teleop.inputs import Command
from sim_envs.geometry import TASK


def episode(length: int, value: float = 0.0) -> dict[str, np.ndarray]:
    """An episode whose every entry equals `value`, so a torn episode is easy to spot."""
    return {
        "agent_pos": np.full((length, 2), value),
        "slider_pose": np.full((length, 3), value),
        "action": np.full((length, 2), value),
    }


def write_store(path, n_episodes: int = 3, domain: str = "target", source: str = "teleop_scripted",
                lengths=None) -> None:
    with EpisodeWriter(path, domain=domain, source=source, env="target", env_params={"mu": 0.5},
                       generator={"seed": 0}) as writer:
        for i in range(n_episodes):
            length = lengths[i] if lengths is not None else 4 + i
            writer.add_episode(episode(length, float(i)), {"seed": i, "success": bool(i % 2)})


def tree_digest(path) -> str:
    """Every file under a folder (name and bytes): equal digests mean nothing in it was touched."""
    import hashlib
    digest = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


class ScriptedInput:
    """A teleop input (real_data.teleop.inputs) giving commands from a list, one per step (then empty ones)."""

    def __init__(self, commands):
        self.commands = list(commands)

    def start(self, pusher_xy) -> None:
        pass

    def follow(self, target_xy) -> None:
        pass

    def poll(self) -> Command:
        return self.commands.pop(0) if self.commands else Command()


def straight_line_actions(start, goal, speed: float = 0.1, dt: float = TASK.control_dt) -> np.ndarray:
    """(T, 2) a constant-speed straight path from start to goal: the simplest 'planner-style' reference."""
    start, goal = np.asarray(start, float), np.asarray(goal, float)
    n = max(2, int(np.ceil(np.linalg.norm(goal - start) / (speed * dt))) + 1)
    return start + (goal - start) * np.linspace(0.0, 1.0, n)[:, None]
