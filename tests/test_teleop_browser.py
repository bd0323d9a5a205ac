"""Browser teleoperation, headless: a real Meshcat server receives the websocket messages a browser would
send (gamepad stick, slider drags, button clicks), and the real session records into a real store."""
from __future__ import annotations

import numpy as np
import pytest

from harness.core.store import EpisodeStore, validate
from real_data.teleop import inputs
from real_data.teleop.browser import make_session
from real_data.teleop.inputs import Command
from tests.helpers import ScriptedInput
from real_data.teleop.session import TeleopSession


@pytest.fixture(scope="module")
def meshcat():
    from pydrake.geometry import Meshcat
    return Meshcat()


def test_browser_session_records_resets_discards_and_stops(meshcat, tmp_path):
    out = tmp_path / "teleop.zarr"
    session = make_session(meshcat, "target", out, realtime=False)
    script = {}   # tick -> what the "browser" sends just before the session polls at that tick
    real_poll = session.source.poll

    def poll():
        tick = poll.count
        poll.count += 1
        if tick in script:
            script[tick]()
        return real_poll()
    poll.count = 0
    session.source.poll = poll

    x_slider = inputs.SLIDERS["x"][0]
    script[3] = lambda: inputs.gamepad(meshcat, axes=(0.0, 1.0))      # idle ticks 0-2 are not recorded
    # Stick down (pusher toward -y) for ticks 3..17: episode A has 15 steps, then the gamepad's A resets.
    script[18] = lambda: inputs.gamepad(meshcat, buttons=(0,))
    script[19] = lambda: inputs.gamepad(meshcat)                       # release
    script[21] = lambda: inputs.inject(meshcat, {"type": "slider", "name": x_slider,
                                                 "value": meshcat.GetSliderValue(x_slider) + 0.05})
    script[30] = lambda: inputs.press(meshcat, "reset")               # episode B (9 steps); A is committed
    script[31] = lambda: inputs.press(meshcat, "discard")             # drop B
    script[32] = lambda: inputs.inject(meshcat, {"type": "slider", "name": x_slider, "value": 0.4})
    script[40] = lambda: inputs.gamepad(meshcat, buttons=(9,))        # Start: stop, drop the open episode
    summary = session.run(max_ticks=200)

    assert (summary.committed, summary.discarded) == (1, 1)
    validate(out)
    store = EpisodeStore(out)
    assert (store.domain, store.source, store.attrs["env"]) == ("target", "teleop_human", "target")
    assert store.n_episodes == 1 and store.episode_lengths.tolist() == [15]
    assert store.meta("seed").tolist() == [0] and store.meta("outcome").tolist() == ["reset"]
    ep = store.episode(0)
    # The stick moved the commanded target steadily toward -y, and the pusher followed it.
    dy = np.diff(ep["action"][:, 1])
    assert (dy[1:] < 0).all() and ep["action"][-1, 1] < ep["action"][0, 1] - 0.1
    assert ep["agent_pos"][-1, 1] < ep["agent_pos"][0, 1] - 0.08
    assert np.allclose(ep["action"][:, 0], ep["action"][0, 0])


def test_session_logic_with_scripted_input(tmp_path):
    """Seeds already in the store are skipped; a success ends the episode; Ctrl-C-like stop keeps work."""
    from harness.core.writer import EpisodeWriter
    from sim_envs.env import PushTEnv
    from sim_envs.geometry import TASK

    env = PushTEnv("target")
    out = tmp_path / "s.zarr"
    writer = EpisodeWriter(out, domain="target", source="teleop_human", env="target", env_params={}, generator={})
    cmds = [Command(velocity=np.array([0.1, 0.0]))] * 3 + [Command(reset=True)] + \
           [Command(target=np.array([0.3, 0.0]))] * 4 + [Command(reset=True), Command(stop=True)]
    session = TeleopSession(env, ScriptedInput(cmds), writer, iter([5, 6, 7]), realtime=False)
    summary = session.run(max_ticks=100)
    assert summary.seeds == [5, 6]
    store = EpisodeStore(out)
    assert store.episode_lengths.tolist() == [3, 4]
    a = store.episode(1)["action"]
    # An absolute target far away is approached at the speed limit, never jumped to.
    steps = np.linalg.norm(np.diff(a, axis=0), axis=1)
    assert np.allclose(steps, 0.25 * TASK.control_dt, atol=1e-9)
