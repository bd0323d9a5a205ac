"""A LeRobot policy scored by LeRobot's own evaluation loop on `cotrain/PlanarPushing-v0` (issue 36's real check).

Runs in an environment with lerobot installed (docs/gym_env.md); not part of
the test suite. LeRobot builds an env from an `EnvConfig` whose package is imported and whose gym id is made;
here the config names our package (`sim_envs`, which registers the id) and id, so `make_env` and `eval_policy`
run unchanged: LeRobot's vector env, its preprocess_observation, its processors, its rollout.

    PYTHONPATH=. python docs/scripts/lerobot_eval_check.py POLICY_FOLDER --episodes 20 --seed 100000 \
        [--compare EVAL_FOLDER] [--batch-size 1]

--compare: a `cotrain eval POLICY_FOLDER --seed S --trials N` folder; prints both per start seed and the
agreement. LeRobot's loop seeds the env per episode but torch once (set_seed), so its sampler noise for a
start seed depends on the episodes before it and on the batch; `cotrain eval` draws it per trial.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.envs.configs import EnvConfig
from lerobot.envs.factory import make_env, make_env_pre_post_processors
from lerobot.policies.factory import make_policy, make_pre_post_processors
from lerobot.scripts.lerobot_eval import eval_policy
from lerobot.utils.random_utils import set_seed

import sim_envs  # noqa: F401  (registers cotrain/PlanarPushing-v0)
from sim_envs.geometry import TASK


@EnvConfig.register_subclass("cotrain")
@dataclasses.dataclass
class CotrainPushingEnv(EnvConfig):
    """Our env for LeRobot's factory: the state observations a policy trained on `cotrain export` reads."""
    task: str | None = "PlanarPushing-v0"
    fps: int = int(TASK.control_hz)
    episode_length: int = TASK.max_steps
    preset: str = "target"
    features: dict = dataclasses.field(default_factory=lambda: {
        "action": PolicyFeature(type=FeatureType.ACTION, shape=(2,)),
        "agent_pos": PolicyFeature(type=FeatureType.STATE, shape=(2,)),
        "environment_state": PolicyFeature(type=FeatureType.ENV, shape=(3,))})
    features_map: dict = dataclasses.field(default_factory=lambda: {
        "action": "action", "agent_pos": "observation.state", "environment_state": "observation.environment_state"})

    @property
    def package_name(self) -> str:
        return "sim_envs"

    @property
    def gym_id(self) -> str:
        return "cotrain/PlanarPushing-v0"

    @property
    def gym_kwargs(self) -> dict:
        return {"obs_type": "environment_state_agent_pos", "preset": self.preset,
                "max_episode_steps": self.episode_length}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policy", help="LeRobot pretrained-policy folder")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=100000, help="first start seed (as cotrain eval --seed)")
    parser.add_argument("--batch-size", type=int, default=1, help="LeRobot's eval.batch_size (envs in lockstep)")
    parser.add_argument("--episode-length", type=int, default=TASK.max_steps,
                        help="steps per episode (as cotrain eval --time-limit x 10; default the task's 750)")
    parser.add_argument("--compare", default=None, help="a cotrain eval folder of the same policy and seeds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    set_seed(args.seed)                                        # as lerobot_eval does, once
    env_cfg = CotrainPushingEnv(episode_length=args.episode_length)
    env = make_env(env_cfg, n_envs=args.batch_size)["cotrain"][0]     # {suite: {task id: vector env}}
    policy_cfg = PreTrainedConfig.from_pretrained(args.policy)
    policy_cfg.pretrained_path = args.policy
    policy_cfg.device = "cpu"
    policy = make_policy(cfg=policy_cfg, env_cfg=env_cfg)
    policy.eval()
    preprocessor, postprocessor = make_pre_post_processors(
        policy_cfg=policy_cfg, pretrained_path=args.policy, preprocessor_overrides={"device_processor": {"device": "cpu"}})
    env_pre, env_post = make_env_pre_post_processors(env_cfg=env_cfg, policy_cfg=policy_cfg)
    started = time.perf_counter()
    with torch.no_grad():
        info = eval_policy(env, policy, env_pre, env_post, preprocessor, postprocessor, n_episodes=args.episodes,
                           start_seed=args.seed)
    wall = time.perf_counter() - started
    env.close()
    theirs = {int(e["seed"]): bool(e["success"]) for e in info["per_episode"]}
    print(json.dumps({"lerobot_pc_success": 100 * sum(theirs.values()) / len(theirs), "episodes": len(theirs),
                      "wall_s": round(wall, 1)}))
    if args.compare:
        ours = {r["seed"]: r["outcome"] == "success" for r in map(json.loads,
                (Path(args.compare) / "trials.jsonl").read_text().splitlines())}
        shared = sorted(set(ours) & set(theirs))
        same = sum(ours[s] == theirs[s] for s in shared)
        print(json.dumps({"cotrain_eval_pc_success": 100 * sum(ours[s] for s in shared) / len(shared),
                          "seeds": [shared[0], shared[-1]], "same_outcome": f"{same}/{len(shared)}",
                          "per_seed": {s: [ours[s], theirs[s]] for s in shared}}))


if __name__ == "__main__":
    main()
