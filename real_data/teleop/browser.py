"""Wiring of browser teleoperation: Meshcat + the target env + MeshcatInput + the session + the store."""
from __future__ import annotations

import dataclasses
import itertools

from harness.core.writer import EpisodeWriter
from real_data.teleop.inputs import BUTTONS, SLIDERS, MeshcatInput
from real_data.teleop.session import SessionSummary, TeleopSession

TARGET_PATH = "/teleop/target"


def open_store(out, env_config, extra: dict) -> EpisodeWriter:
    return EpisodeWriter(out, domain="target", source="teleop_human", env=env_config.name,
                         env_params=dataclasses.asdict(env_config),
                         generator={"generator": "real_data.teleop.browser", **extra})


def free_seeds(writer: EpisodeWriter, seed: int):
    """seed, seed + 1, ... skipping seeds already recorded in the store."""
    done = {int(s) for s in writer.meta("seed")}
    return (s for s in itertools.count(seed) if s not in done)


def make_session(meshcat, env_name: str, out, seed: int = 0, image_size=None, max_speed: float = 0.25,
                 realtime: bool = True) -> TeleopSession:
    """Everything but the loop, so a test can drive the very same objects headless."""
    from pydrake.geometry import Rgba, Sphere
    from pydrake.math import RigidTransform
    from sim_envs.env import PushTEnv   # (imports Drake: the session's inputs are tested without a simulator)

    env = PushTEnv(preset=env_name, image_size=image_size, meshcat=meshcat)
    writer = open_store(out, env.config, {"seed": seed, "max_speed": max_speed,
                                          "image_size": list(image_size) if image_size else None})
    source = MeshcatInput(meshcat)
    meshcat.SetObject(TARGET_PATH, Sphere(0.006), Rgba(1.0, 0.75, 0.0, 0.9))

    def draw_target(obs, target):
        meshcat.SetTransform(TARGET_PATH, RigidTransform([float(target[0]), float(target[1]), 0.04]))

    return TeleopSession(env, source, writer, free_seeds(writer, seed), realtime=realtime,
                         max_speed=max_speed, on_step=draw_target)


def run_browser_teleop(env_name: str, out, seed: int = 0, port=None, image_size=None,
                       max_speed: float = 0.25) -> SessionSummary:
    from pydrake.geometry import Meshcat, MeshcatParams

    params = MeshcatParams()
    if port is not None:
        params.port = port
    meshcat = Meshcat(params)
    session = make_session(meshcat, env_name, out, seed, image_size, max_speed)
    print(f"open {meshcat.web_url()} in a browser")
    print("move: arrow keys, the mouse on the sliders (" + ", ".join(v[0] for v in SLIDERS.values()) +
          "), or a gamepad's left stick")
    print("keys: " + "; ".join(v[0] for v in BUTTONS.values()))
    print("an episode ends on success or reset; Ctrl-C also stops (the unfinished episode is dropped)")
    return session.run()
