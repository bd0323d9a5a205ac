"""What pixels cost in closed loop: lockstep rollouts with and without cameras, side by side in one run.

    python benchmarks/pixel_speed.py [--n-envs 25] [--steps 120] [--visual target_96] [--threads 1] [--lp-pool]

Every row steps the same K target-physics envs through the same scripted pushes (so the contact work is
identical) for --steps control steps, and adds one cost at a time:
  - sim:                 the physics alone (no camera, no policy);
  - state policy:        + a chunk query of the state policy (MLP 256 x 4, 8 Heun steps) every n_action steps,
                         for all K envs at once: what `cotrain eval` does for a state checkpoint;
  - render every frame:  + the visual preset's cameras rendered at every step (RenderEngineVtk, EGL);
  - pixel policy (cnn), every frame: + the query of the same MLP conditioned on the small GroupNorm CNN's
                         features of each camera, centre crop 84: the pixel study's policy, its image
                         settings read from experiments/pixels.yaml;
  - pixel policy (cnn / resnet18), as eval renders: new frames only at the steps whose observations the
                         next query reads (its n_obs = 2 of every n_action = 8 steps), as `cotrain eval` does
                         (eval.rollouts.run_wave); resnet18 is diffusion_policy's (GroupNorm, spatial softmax).
The policies are untrained (their speed does not depend on their weights); their actions are discarded, the
envs follow the scripted pusher. Reports env steps per second, the aggregate real-time factor, and each
row's cost over the state-policy row: the issue's bar is "rendering and encoding <= 50% over state-only".
Without a GPU, frames are drawn by Mesa's llvmpipe in the calling thread (sim_envs.scene sets LP_NUM_THREADS=0);
--lp-pool draws them with llvmpipe's default pool of one rasterizer thread per core instead, for comparison.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

from harness.core.configs import from_dict
from harness.learning.model import build_model
from harness.learning.normalizer import Affine, Normalizer
from harness.learning.policy import ChunkSampler, DiffusionPolicy
from harness.learning.train_config import TrainConfig
from harness.learning.windows import WindowSpec
from harness.study.fingerprint import cpu_model
import sim_envs.scene  # noqa: F401  (sets LP_NUM_THREADS=0 unless it is set)
from sim_envs.scripted import ScriptedPusher
from sim_envs.vector_env import VectorEnv
from sim_envs.visual import load_visual
from train_speed import STUDY_IMAGE   # the pixel study's image settings, read from its config


def make_policy(cameras: dict[str, tuple], encoder: str | None) -> DiffusionPolicy:
    """An untrained MLP 256 x 4 policy (8 Heun steps), with a `encoder` per camera when given: the pixel
    study's own for "small", diffusion_policy's ResNet-18 with the study's crop and features otherwise."""
    policy_cfg = {"arch": "mlp"}
    data = {"datasets": []}
    if encoder:
        image = {k: v for k, v in STUDY_IMAGE.items() if encoder == "small" or k != "widths"}
        policy_cfg["image"] = {**image, "encoder": encoder}
        data["cameras"] = [key[len("image."):] for key in cameras]
    cfg = from_dict(TrainConfig, {"policy": policy_cfg, "data": data, "diffusion": {"num_steps": 8}}, "benchmark")
    torch.manual_seed(0)
    net, formulation = build_model(cfg, 0.5)
    identity = Normalizer(Affine(np.zeros(6), np.ones(6)), Affine(np.zeros(2), np.ones(2)))   # offset 0, scale 1
    return DiffusionPolicy(net, identity, WindowSpec(2, 16, 8), ChunkSampler.from_config(cfg.diffusion, formulation),
                           image_shapes=cameras if encoder else None)


def run(n_envs: int, steps: int, visual, policy: DiffusionPolicy | None, lazy: bool = False) -> float:
    """Seconds for `steps` lockstep control steps of n_envs envs (policy queried every n_action steps);
    lazy: render only the frames the next query reads."""
    with VectorEnv(n_envs, "target", workers=1, visual=visual) as vec:
        pushers = [ScriptedPusher() for _ in range(n_envs)]
        obs = vec.reset(list(range(n_envs)))
        history = {k: np.repeat(v[:, None], 2, axis=1) for k, v in obs.items()}     # {key: (K, 2, ...)}
        start = time.perf_counter()
        for t in range(steps):
            if policy is not None and t % 8 == 0:
                policy.act(history, seeds=list(range(n_envs)))
            actions = np.stack([p.act({k: v[i] for k, v in obs.items()}) for i, p in enumerate(pushers)])
            render = (t % 8) >= 8 - 2 if lazy else True        # after this step, fewer than n_obs actions left
            obs, _ = vec.step(actions, render=[render] * n_envs)
            history = {k: np.concatenate([history[k][:, 1:], np.asarray(v)[:, None]], axis=1) for k, v in obs.items()}
        return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-envs", type=int, default=25, help="envs in lockstep (the study's eval: 25)")
    p.add_argument("--steps", type=int, default=120, help="control steps per row (0.1 s each)")
    p.add_argument("--visual", default="target_96", help="visual preset whose cameras are rendered")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the study's eval workers use 1)")
    p.add_argument("--lp-pool", action="store_true",
                   help="render with llvmpipe's thread pool (a thread per core) instead of the calling thread")
    args = p.parse_args()
    if args.lp_pool:   # read by Mesa when the first renderer starts, which is after this line
        os.environ["LP_NUM_THREADS"] = str(os.cpu_count())
    torch.set_num_threads(args.threads)
    look = load_visual(args.visual)
    shapes = look.camera_shapes()
    cnn, resnet = make_policy(shapes, "small"), make_policy(shapes, "resnet18")
    rows = [("sim", None, None, False), ("state policy", None, make_policy(shapes, None), False),
            ("render every frame", look, None, False), ("pixel policy (cnn), every frame", look, cnn, False),
            ("pixel policy (cnn), as eval renders", look, cnn, True),
            ("pixel policy (resnet18), as eval renders", look, resnet, True)]
    print(f"{args.n_envs} envs in lockstep, {args.steps} control steps, torch threads {args.threads}, cameras "
          f"{', '.join(f'{k} {s[0]}x{s[1]}' for k, s in shapes.items())} ({look.name}); "
          f"LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS')}; CPU: {cpu_model()}")
    print("| row | wall s | env steps/s | real-time factor (aggregate) | cost over the state-policy row |")
    print("| --- | --- | --- | --- | --- |")
    base = None
    for label, visual, policy, lazy in rows:
        wall = run(args.n_envs, args.steps, visual, policy, lazy)
        base = wall if label == "state policy" else base
        over = f"{wall / base - 1:+.0%}" if base is not None and label != "state policy" else ""
        env_steps = args.n_envs * args.steps
        print(f"| {label} | {wall:.1f} | {env_steps / wall:.0f} | {env_steps * 0.1 / wall:.1f}x | {over} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
