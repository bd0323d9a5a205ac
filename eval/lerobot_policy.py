"""LeRobot pretrained policies in `cotrain eval`: the same start seeds, the same trials, one table with ours.

`cotrain eval FOLDER` where FOLDER is what LeRobot's `save_pretrained` writes (config.json, model.safetensors,
and since LeRobot 0.4 the policy_{pre,post}processor files that hold the normalization). Only safetensors
weights are loaded; a folder holding a pickle weight file (.bin, .pt, .pth, .pkl, .ckpt) is refused, since
unpickling runs code.

Observation keys: the policy's `input_features` (config.json) are LeRobot feature names, and each must be one
that `cotrain export` writes (real_data/exporters/lerobot.py, so a policy trained on an export reads them):

    observation.state               <- agent_pos     (2,)  pusher x, y
    observation.environment_state   <- slider_pose   (3,)  slider x, y, theta
    observation.image               <- image         the plain top-down camera, (3, H, W) in [0, 1]
    observation.images.<camera>     <- image.<camera> a visual preset's camera (--visual)

Determinism: a LeRobot policy keeps its own state (select_action's observation and action queues, reset()
clears them) for the whole batch it is called with, and draws its sampler's noise from torch's global
generator, so in LeRobot's own loop a trial's actions depend on its batch and on the trials before it. Here
each trial runs alone (batch 1, one env at a time per worker), starts with reset(), and every select_action
call draws from torch's generator seeded by (start seed, step) (`trial_rng`, as our policies' noise), inside
`torch.random.fork_rng` so nothing else's randomness moves. A trial is then a function of (folder, start
seed) whatever --n-envs and --workers, and pairs with our policies' trials on the same start seed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from eval.rollouts import trial_rng
from harness.core.errors import UserError
from real_data.exporters.lerobot import CAMERA_PREFIX, CORE, DEFAULT_TASK, IMAGE_FEATURE
from sim_envs.visual import IMAGE_PREFIX, CameraSetup

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# our observation key of each low-dim LeRobot feature, and its shape: the inverse of `cotrain export`
LOW_DIM = {CORE[key][0]: (key, len(CORE[key][1])) for key in ("agent_pos", "slider_pose")}
ACTION = CORE["action"][0]


def is_lerobot_folder(path) -> bool:
    """A folder given where a checkpoint goes is a LeRobot policy (our checkpoints are single files)."""
    return Path(path).is_dir()


@dataclasses.dataclass(frozen=True)
class LeRobotFolder:
    """A checked LeRobot pretrained-policy folder; loaded in each evaluation worker (`load_policy`)."""
    path: str
    policy_type: str                         # config.json "type", e.g. diffusion
    obs_map: tuple[tuple[str, str], ...]     # (LeRobot feature, our observation key), in config order
    image_shapes: tuple[tuple[str, tuple[int, int, int]], ...]   # (our camera key, (H, W, 3))
    one_trial_at_a_time: ClassVar[bool] = True   # eval.rollouts: waves of one env (see the module docstring)

    @property
    def cameras(self) -> CameraSetup | None:
        """The plain camera at the policy's size; a visual preset's cameras come from --visual."""
        shapes = dict(self.image_shapes)
        return CameraSetup(tuple(shapes["image"][:2])) if "image" in shapes else None

    def load_policy(self, device: str = "cpu") -> "LeRobotPolicy":
        """The LeRobot policy with its processors, behind our rollout interface (needs the lerobot package)."""
        policy, preprocess, postprocess = _load_lerobot(self.path, device)
        return LeRobotPolicy(policy, dict(self.obs_map), preprocess, postprocess, dict(self.image_shapes), device)

    def sha256(self) -> str:
        """One hash over the folder's files (not its subfolders, such as an eval/ written beside them)."""
        digest = hashlib.sha256()
        for path in sorted(p for p in Path(self.path).iterdir() if p.is_file()):
            digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()


def read_lerobot_folder(path) -> LeRobotFolder:
    """Check a LeRobot pretrained-policy folder without importing lerobot; UserError (one line naming the file
    and the problem) for a missing config.json or weights, a pickle weight file, or an observation key that
    cotrain does not produce."""
    folder = Path(path)
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise UserError(f"{folder / pickles[0]}: a pickle weight file; only safetensors weights are loaded "
                        f"({WEIGHTS}), since unpickling runs code")
    config_path = folder / CONFIG
    if not config_path.is_file():
        raise UserError(f"{folder}: no {CONFIG}; a LeRobot pretrained-policy folder holds {CONFIG} and {WEIGHTS}")
    if not (folder / WEIGHTS).is_file():
        raise UserError(f"{folder}: no {WEIGHTS}; a LeRobot pretrained-policy folder holds {CONFIG} and {WEIGHTS}")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{config_path}: not readable JSON ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        raise UserError(f"{config_path}: type: missing; a LeRobot policy config names its policy type")
    inputs, outputs = config.get("input_features"), config.get("output_features")
    if not isinstance(inputs, dict) or not inputs:
        raise UserError(f"{config_path}: input_features: missing or empty")
    action = outputs.get(ACTION) if isinstance(outputs, dict) else None
    if _shape(action) != [2]:
        raise UserError(f"{config_path}: output_features: {ACTION} must have shape [2] (pusher x, y), "
                        f"got {_shape(action)}")
    obs_map, image_shapes = [], []
    for name, feature in inputs.items():
        key, shape = _our_key(name), _shape(feature)
        if key is None:
            raise UserError(f"{config_path}: input_features: unknown observation key {name!r}; cotrain provides "
                            f"{', '.join(LOW_DIM)}, {IMAGE_FEATURE} and {CAMERA_PREFIX}<camera>")
        if name in LOW_DIM:
            if shape != [LOW_DIM[name][1]]:
                raise UserError(f"{config_path}: input_features: {name} must have shape [{LOW_DIM[name][1]}] "
                                f"({key}), got {shape}")
        else:
            if not (isinstance(shape, list) and len(shape) == 3 and shape[0] == 3
                    and all(isinstance(s, int) and s > 0 for s in shape)):
                raise UserError(f"{config_path}: input_features: {name} must have shape [3, H, W], got {shape}")
            image_shapes.append((key, (shape[1], shape[2], 3)))
        obs_map.append((name, key))
    return LeRobotFolder(str(folder), config["type"], tuple(obs_map), tuple(image_shapes))


def _our_key(name: str) -> str | None:
    if name in LOW_DIM:
        return LOW_DIM[name][0]
    if name == IMAGE_FEATURE:
        return "image"
    camera = name[len(CAMERA_PREFIX):] if name.startswith(CAMERA_PREFIX) else ""
    return IMAGE_PREFIX + camera if camera.replace("_", "").isalnum() else None


def _shape(feature) -> list | None:
    return list(feature["shape"]) if isinstance(feature, dict) and isinstance(feature.get("shape"), list) else None


class LeRobotPolicy:
    """A LeRobot policy (`select_action(batch) -> (1, 2)`, `reset()`) behind our rollout interface.

    Our rollout asks for a chunk of n_action actions from the last n_obs observations; a LeRobot policy keeps
    its own history and chunk, so this asks for one action from the latest observation each step (n_obs =
    n_action = 1), and `start_trials([seed])` (called by eval.rollouts.run_wave at each trial's start) resets
    it and sets the trial's random stream."""
    n_obs = 1
    n_action = 1
    one_trial_at_a_time = True

    def __init__(self, policy, obs_map: dict[str, str], preprocess: Callable | None = None,
                 postprocess: Callable | None = None, image_shapes: dict | None = None, device: str = "cpu",
                 task: str = DEFAULT_TASK):
        self.policy = policy
        self.obs_map = dict(obs_map)                 # LeRobot feature -> our observation key
        self.preprocess = preprocess or (lambda batch: batch)      # LeRobot's normalizer pipeline
        self.postprocess = postprocess or (lambda action: action)  # and its un-normalizer
        self.image_shapes = dict(image_shapes or {})   # our camera key -> (H, W, 3): eval.rollouts renders them
        self.cameras = CameraSetup(tuple(self.image_shapes["image"][:2])) if "image" in self.image_shapes else None
        self.device = device
        self.task = task                             # the task text `cotrain export` labels frames with
        self._seed: int | None = None
        self._step = 0

    def start_trials(self, seeds) -> None:
        seeds = [int(s) for s in seeds]
        if len(seeds) != 1:
            raise ValueError(f"a LeRobot policy runs one trial at a time, got {len(seeds)} (eval.rollouts waves)")
        self.policy.reset()
        self._seed, self._step = seeds[0], 0

    def act(self, obs_history: dict) -> np.ndarray:
        """{key: (1, 1, ...)} -> (1, 1, 2) world-frame pusher target for this step."""
        import torch
        if self._seed is None:
            raise RuntimeError("start_trials must be called before act")
        batch = {name: self._feature(name, np.asarray(obs_history[key])[:, -1]) for name, key in self.obs_map.items()}
        batch["task"] = [self.task]
        seed = int(trial_rng(self._seed, self._step).integers(2**63 - 1))
        devices = [torch.device(self.device)] if torch.device(self.device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            action = self.postprocess(self.policy.select_action(self.preprocess(batch)))
        self._step += 1
        return np.asarray(action.detach().cpu().numpy(), dtype=np.float64).reshape(1, 1, 2)

    def _feature(self, name: str, value: np.ndarray):
        """One observation as LeRobot's preprocess_observation makes it: float32 (1, D), or an image
        (1, 3, H, W) float32 in [0, 1] from (1, H, W, 3) uint8."""
        import torch
        if name in LOW_DIM:
            return torch.as_tensor(value, dtype=torch.float32)
        return torch.as_tensor(value).permute(0, 3, 1, 2).contiguous().to(torch.float32) / 255.0


def _load_lerobot(path: str, device: str):
    """(policy, preprocessor, postprocessor) as LeRobot's own evaluation makes them, weights from safetensors."""
    try:
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import get_policy_class, make_pre_post_processors
    except ImportError as exc:
        raise UserError(f"{path}: evaluating a LeRobot policy needs the lerobot package ({exc}); install it in "
                        "its own environment: pip install 'lerobot==0.4.4' (docs/gym_env.md)") from None
    config = PreTrainedConfig.from_pretrained(path)
    config.device = device
    policy = get_policy_class(config.type).from_pretrained(path, config=config)
    policy.eval()
    preprocess, postprocess = make_pre_post_processors(
        config, pretrained_path=path, preprocessor_overrides={"device_processor": {"device": device}})
    return policy, preprocess, postprocess
