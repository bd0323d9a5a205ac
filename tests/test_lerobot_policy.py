"""LeRobot policies in `cotrain eval` (eval/lerobot_policy.py), without the lerobot package: a stand-in with
LeRobot's `select_action` / `reset` interface and habits (its own observation queue and action chunk, noise
from torch's global generator), a real small torch module."""
from __future__ import annotations

import json
import math
from collections import deque

import pytest
import torch

from eval.evaluation import EvalSettings, run_eval
from eval.lerobot_policy import LeRobotPolicy, read_lerobot_folder
from eval.metrics import TrialRecord
from eval.paired import paired_table
from eval.rollouts import evaluate
from harness.cli import main
from harness.core.errors import UserError

STATE_MAP = {"observation.state": "agent_pos", "observation.environment_state": "slider_pose"}


class StandInLeRobotPolicy(torch.nn.Module):
    """select_action(batch) -> (1, 2): two observations in its queue (padded at reset, as LeRobot's diffusion
    policy), chunks of four pusher targets from a linear layer plus noise from torch's global generator."""
    n_obs_steps, n_action_steps = 2, 4

    def __init__(self, image: tuple[int, int] | None = None):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.net = torch.nn.Linear(2 * 5, 2 * self.n_action_steps)
        self.image = image          # (H, W) of observation.image it expects, or None
        self.reset()

    def reset(self):
        self._obs: deque = deque(maxlen=self.n_obs_steps)
        self._actions: deque = deque()

    @torch.no_grad()
    def select_action(self, batch: dict) -> torch.Tensor:
        assert batch["observation.state"].shape == (1, 2) and batch["observation.state"].dtype == torch.float32
        assert batch["observation.environment_state"].shape == (1, 3) and batch["task"] == [batch["task"][0]]
        if self.image is not None:
            image = batch["observation.image"]                           # (1, 3, H, W) in [0, 1]
            assert image.shape == (1, 3, *self.image) and image.dtype == torch.float32
            assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0 and float(image.std()) > 0
        x = torch.cat([batch["observation.state"], batch["observation.environment_state"]], dim=-1)   # (1, 5)
        self._obs.extend([x] * (self.n_obs_steps if not self._obs else 1))
        if not self._actions:
            steps = 0.01 * torch.tanh(self.net(torch.cat(list(self._obs), dim=-1))).reshape(1, -1, 2)
            steps = steps + 0.004 * torch.randn(steps.shape)                  # (1, 4, 2) m
            self._actions.extend((batch["observation.state"][:, None] + steps.cumsum(1)).transpose(0, 1))
        return self._actions.popleft()                                          # (1, 2)


def test_a_trial_is_a_function_of_its_start_seed_whatever_ran_before_it():
    """The stand-in keeps state across calls and draws noise from the global generator, as LeRobot's policies
    do; the adapter resets it per trial and seeds each step from (start seed, step), so seed 5 alone and
    seed 5 after seed 4 (with n_envs 2: still one trial at a time) are the same trial."""
    policy = LeRobotPolicy(StandInLeRobotPolicy(), STATE_MAP)
    rng_before = torch.get_rng_state()
    both = evaluate(policy, "target", [4, 5], n_envs=2, progress=False, max_steps=25)
    alone = evaluate(policy, "target", [5], progress=False, max_steps=25)
    assert both[1] == alone[0]
    assert both[0].final_xy_error != both[1].final_xy_error
    assert torch.equal(torch.get_rng_state(), rng_before)       # the caller's random stream did not move


def test_the_adapter_feeds_the_plain_camera_as_lerobot_does(tmp_path):
    policy = LeRobotPolicy(StandInLeRobotPolicy(image=(48, 48)), {**STATE_MAP, "observation.image": "image"},
                           image_shapes={"image": (48, 48, 3)})
    summary = run_eval("stand_in_lerobot", EvalSettings(trials=2, seed=3, time_limit=1.0, n_envs=2, workers=1),
                       tmp_path / "ev", progress=False, policy=policy)
    assert summary.n_trials == 2


def test_a_lerobot_policy_and_one_of_ours_in_one_paired_table(tmp_path, capsys):
    """`cotrain eval ... --versus FOLDER`: rows paired by start seed, McNemar's test against the first."""
    theirs = tmp_path / "lerobot_eval"
    run_eval("outputs/lerobot/pretrained_model", EvalSettings(trials=3, seed=20, time_limit=1.0, n_envs=3, workers=1),
             theirs, progress=False, policy=LeRobotPolicy(StandInLeRobotPolicy(), STATE_MAP))
    ours = tmp_path / "ours"
    assert main(["eval", "scripted", "--trials", "3", "--seed", "20", "--time-limit", "1", "--workers", "1",
                 "--out", str(ours), "--no-progress", "--versus", str(theirs)]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert "p (McNemar exact)" in rows[0]
    assert rows[2].startswith("| lerobot/pretrained_model | 1 | 3 | 0.0% ") and "(baseline)" in rows[2]
    assert rows[3].startswith("| scripted | 1 | 3 | 0.0% ") and "| 0 / 0 | 1.00 |" in rows[3]


def test_the_paired_table_counts_wins_and_losses_on_shared_start_seeds():
    def records(seeds, wins):
        return [TrialRecord(s, "success" if s in wins else "timeout", 10, 1.0 if s in wins else math.nan, 0.0, 0.0)
                for s in seeds]
    ours = records(range(10), wins={0, 1, 2, 3, 4, 5, 6, 7})
    theirs = records(range(2, 12), wins={2, 10, 11})   # paired on 2..9: ours alone wins 3..7; 10, 11 unpaired
    rows = [line for line in paired_table([("ours", ours), ("theirs", theirs)], "ours").splitlines()
            if line.startswith("| ")]
    assert "| 0 / 5 | 0.06 |" in rows[3] and rows[3].startswith("| theirs | 1 | 10 | 30.0% ")


def _folder(tmp_path, name="policy", inputs=None, files=("model.safetensors",)):
    folder = tmp_path / name
    folder.mkdir()
    for f in files:
        (folder / f).write_bytes(b"\0" * 8)
    config = {"type": "diffusion", "n_obs_steps": 2,
              "input_features": inputs or {"observation.state": {"type": "STATE", "shape": [2]},
                                           "observation.environment_state": {"type": "ENV", "shape": [3]}},
              "output_features": {"action": {"type": "ACTION", "shape": [2]}}}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_pretrained_folder_maps_to_our_observation_keys(tmp_path):
    folder = read_lerobot_folder(_folder(tmp_path, inputs={
        "observation.state": {"type": "STATE", "shape": [2]},
        "observation.image": {"type": "VISUAL", "shape": [3, 96, 96]},
        "observation.images.wrist": {"type": "VISUAL", "shape": [3, 128, 128]}}))
    assert dict(folder.obs_map) == {"observation.state": "agent_pos", "observation.image": "image",
                                    "observation.images.wrist": "image.wrist"}
    assert dict(folder.image_shapes) == {"image": (96, 96, 3), "image.wrist": (128, 128, 3)}
    assert folder.cameras.image_size == (96, 96) and folder.policy_type == "diffusion"
    with pytest.raises(UserError, match="shape"):
        read_lerobot_folder(_folder(tmp_path, "bad_shape", inputs={"observation.state": {"shape": [7]}}))


@pytest.mark.parametrize("case, expect", [
    ("no_config", "policy: no config.json"),
    ("pickle", "pytorch_model.bin: a pickle weight file"),
    ("unknown_key", "config.json: input_features: unknown observation key 'observation.velocity'"),
    ("no_weights", "policy: no model.safetensors"),
    ("versus", "no eval_spec.json; --versus takes the folder of another `cotrain eval`"),
])
def test_bad_lerobot_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, case, expect):
    folder = _folder(tmp_path, files=("model.safetensors", "pytorch_model.bin") if case == "pickle"
                     else () if case == "no_weights" else ("model.safetensors",),
                     inputs={"observation.velocity": {"type": "STATE", "shape": [2]}} if case == "unknown_key" else None)
    if case == "no_config":
        (folder / "config.json").unlink()
    out = tmp_path / "out"
    argv = ["eval", str(folder), "--trials", "1", "--out", str(out), "--workers", "1", "--no-progress"]
    if case == "versus":
        argv = ["eval", "scripted", "--trials", "1", "--out", str(out), "--versus", str(folder), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expect in err, err
    assert not out.exists()


def test_without_lerobot_a_good_folder_is_refused_in_one_line(tmp_path, capsys):
    try:
        import lerobot  # noqa: F401
        pytest.skip("lerobot is installed here")
    except ImportError:
        pass
    out = tmp_path / "out"
    assert main(["eval", str(_folder(tmp_path)), "--trials", "1", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs the lerobot package" in err and not out.exists()
